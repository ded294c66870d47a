"""The upload demo of lesson 07: drop photos into a notebook, see each face's p(fake) and where the model looked.

The logic is two plain functions, tested without a browser: `analyse_upload` turns a file's name
and bytes into a `DemoResult` (the photo with its faces boxed, and a `FaceResult` per face, cropped
as the model's training data was), and `render_result` turns that into a card of widgets.
`build_app` wires them to a FileUpload; its callback only calls these two. The web app
(`helpers.web_app`) shows the same `DemoResult`.
"""
from __future__ import annotations

import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from helpers import config, images
from helpers.detector import Detector, as_detector

FACE_BENCHMARKS = config.REPO_ROOT / "benchmarks" / "faces"  # benchmarks/bench_faces.py's committed results
DISPLAY_SIZE = 224  # the longest side of the pictures on a card
MAX_UPLOAD_BYTES = 20 * 2**20  # far above any face photo; the browser sends the whole file to the kernel


@dataclass
class FaceResult:
    """One face of an upload, or the whole upload when no face was looked for or found (then `box` is None)."""

    crop: np.ndarray  # what the model saw, at display size
    p_fake: float
    label: str
    overlay: np.ndarray  # the Grad-CAM map for "fake" over `crop`
    box: tuple[int, int, int, int] | None = None  # x, y, width, height in the upload's pixels
    number: int | None = None  # 1 = the leftmost face; the number drawn on the photo


@dataclass
class DemoResult:
    """What the demo knows about one uploaded file. With `error` set, only name and threshold are filled."""

    name: str
    threshold: float
    image: np.ndarray | None = None  # the upload, scaled down for display, each face found boxed and numbered
    faces: list[FaceResult] = field(default_factory=list)
    note: str | None = None  # how the upload was read, when it matters: no face found, or none looked for
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


NO_FACE_NOTE = ("No face was found, so the whole image was scored, squeezed into the model's square: "
                "the score means little unless the image is already a face crop.")
NO_FACE_ERROR = "no face found in this image."
NO_STYLE_NOTE = ("This model does not record how its training faces were cropped, so the whole image was "
                 "scored as it is: upload tight face crops.")


def _for_display(image: np.ndarray) -> np.ndarray:
    """Shrink so the longest side is at most DISPLAY_SIZE, keeping the aspect ratio."""
    picture = Image.fromarray(image)
    picture.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE), Image.BICUBIC)
    return np.asarray(picture)


def draw_boxes(image: np.ndarray, shown: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """`shown` (a display copy of `image`) with each face's box and number drawn on it."""
    scale = shown.shape[1] / image.shape[1]
    picture = Image.fromarray(shown)
    pen = ImageDraw.Draw(picture)
    for face in faces:
        x, y, width, height = (value * scale for value in face.box)
        colour = (220, 40, 40) if face.label == "fake" else (40, 160, 60)
        pen.rectangle((x, y, x + width, y + height), outline=colour, width=2)
        pen.text((x + 3, y + 2), str(face.number), fill=colour)
    return np.asarray(picture)


def analyse_upload(detector: Detector, name: str, content, faces: str = "auto", max_bytes: int = MAX_UPLOAD_BYTES,
                   max_pixels: int = images.MAX_PIXELS) -> DemoResult:
    """Decode one uploaded file, find its faces, score and explain each; bad input gives a plain `error`.

    faces: as in `Detector.predict_photo` ("auto", "on" or "off").
    """
    from helpers import gradcam  # Keras: imported with the model, so the web app's arguments are checked at once

    if len(content) > max_bytes:
        return DemoResult(name, detector.threshold,
                          error=f"the file is larger than {max_bytes / 2**20:g} MB; upload a smaller image.")
    try:
        image = images.load_image(bytes(content), name=name, max_pixels=max_pixels)
    except ValueError as err:  # the card shows the name already: keep load_image's message without it
        return DemoResult(name, detector.threshold, error=str(err).removeprefix(f"{name}: "))
    inputs = detector.photo_inputs(image, faces)
    if inputs[0][1] is None:  # faces="on" and none found
        return DemoResult(name, detector.threshold, _for_display(image), error=NO_FACE_ERROR)
    batch = np.stack([model_input for _, model_input in inputs])
    scores = detector.p_fake(batch)
    heatmaps = gradcam.gradcam(detector.model, batch, class_index=1)
    results = []
    for number, ((face, _), model_input, p_fake, heatmap) in enumerate(zip(inputs, batch, scores, heatmaps), 1):
        shown = _for_display(image if face is None else model_input.astype(np.uint8))
        results.append(FaceResult(shown, float(p_fake), detector.label(p_fake), gradcam.overlay(shown, heatmap),
                                  None if face is None else face.box(), None if face is None else number))
    found = [face for face in results if face.box is not None]
    shown = _for_display(image)
    if found or faces == "off":
        note = None
    else:
        note = NO_STYLE_NOTE if detector.crop_style is None else NO_FACE_NOTE
    return DemoResult(name, detector.threshold, draw_boxes(image, shown, found) if found else shown, results, note)


def _png(image: np.ndarray) -> widgets.Image:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return widgets.Image(value=buffer.getvalue(), format="png")


def _card_layout() -> widgets.Layout:
    return widgets.Layout(border="1px solid #ccc", padding="6px", margin="4px 0", align_items="center")


def _face_row(face: FaceResult, threshold: float) -> widgets.Widget:
    """One face: its crop, its Grad-CAM overlay, p(fake) as a bar and the label."""
    colour = "danger" if face.label == "fake" else "success"
    bar = widgets.FloatProgress(value=face.p_fake, min=0.0, max=1.0, bar_style=colour,
                                description="p(fake)", layout=widgets.Layout(width="260px"))
    title = "the whole image" if face.number is None else f"face {face.number}"
    verdict = widgets.HTML(
        f"<b>{title}</b><br>p(fake) = {face.p_fake:.3f}<br>"
        f"label: <b>{face.label}</b> (fake from p(fake) {threshold:.3f} up)<br>"
        "<small>right: where the evidence for 'fake' lies (Grad-CAM)</small>")
    return widgets.HBox([_png(face.crop), _png(face.overlay), widgets.VBox([verdict, bar])])


def render_result(result: DemoResult) -> widgets.Widget:
    """A card: the upload with its faces boxed, then per face the crop, its overlay, p(fake) and the label.

    A file that could not be analysed gets a card with the error message instead.
    """
    name = html.escape(result.name)
    if not result.ok:
        return widgets.HTML(f"<b>{name}</b> was not analysed: {html.escape(result.error)}",
                            layout=_card_layout())
    note = f"<br><small>{html.escape(result.note)}</small>" if result.note else ""
    faces = widgets.VBox([_face_row(face, result.threshold) for face in result.faces])
    return widgets.VBox([widgets.HTML(f"<b>{name}</b>{note}"), widgets.HBox([_png(result.image), faces])],
                        layout=_card_layout())


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in an ipywidgets 8 FileUpload value (a tuple of dicts).

    The browser's uploads carry their content as a memoryview; values set from Python may hold bytes.
    """
    return [(item["name"], bytes(item["content"])) for item in value]


class DemoApp(widgets.VBox):
    """The upload app: a FileUpload, a Clear button, and one card per analysed file (newest first)."""

    def __init__(self, detector: Detector, faces: str = "auto"):
        self.detector = detector
        self.faces = faces
        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Upload images")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.cards = widgets.VBox()
        header = widgets.HTML(f"<b>Deepfake detector</b>: {html.escape(repr(detector))}. "
                              "Upload photos or face crops (JPEG, PNG, ...); each gets a card below, with a row "
                              "for each face found, cropped the way the model's training faces were.")
        super().__init__([header, widgets.HBox([self.upload, self.clear_button]), self.cards])
        self.upload.observe(self._on_upload, names="value")
        self.clear_button.on_click(self.clear)

    def add(self, name: str, content) -> None:
        """Analyse one file's bytes and put its card on top. The app keeps working whatever happens."""
        try:
            card = render_result(analyse_upload(self.detector, name, content, faces=self.faces))
        except Exception as err:  # a bug, not bad input: show it on the card, keep the app alive
            card = render_result(DemoResult(name, self.detector.threshold,
                                            error=f"unexpected {type(err).__name__}: {err}"))
        self.cards.children = (card, *self.cards.children)

    def add_files(self, paths) -> None:
        """Analyse files from disk through the same path as an upload (for demos without a browser)."""
        for path in map(Path, paths):
            self.add(path.name, path.read_bytes())

    def _on_upload(self, change) -> None:
        files = uploaded_files(change["new"])
        if not files:  # our own reset below
            return
        for name, content in files:
            self.add(name, content)
        self.upload.value = ()  # so that uploading the same file again is a change, and is analysed again

    def clear(self, _button=None) -> None:
        """Remove every card."""
        self.cards.children = ()
        self.upload.value = ()


def build_app(detector: Detector | str | os.PathLike, faces: str = "auto") -> DemoApp:
    """The upload app for a Detector or a saved model folder; display it in a notebook cell.

    faces: "auto" (find faces, else score the whole image), "on" (find faces, else say so) or "off".
    """
    return DemoApp(as_detector(detector), faces)


def face_finding_table(folder: str | os.PathLike = FACE_BENCHMARKS) -> pd.DataFrame:
    """Test ROC-AUC without and with face finding, per data set, for face crops and for whole photos.

    Read from the JSON that benchmarks/bench_faces.py wrote: one row per data set and kind of image.
    """
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        result = json.loads(path.read_text())
        for kind, label in (("crops", "face crops, as in training"), ("photos", "the face in a 672x504 photo")):
            measured = result[kind]
            rows.append({"data": result["data"], "images": label, "test images": result["test_images"],
                         "without face finding": _auc_text(measured["without_faces"]),
                         "with face finding": _auc_text(measured["with_faces"]),
                         "difference": f"{measured['difference']:+.3f} [{measured['difference_interval'][0]:+.3f}, "
                                       f"{measured['difference_interval'][1]:+.3f}]",
                         "no face found": measured["faces"]["no face"]})
    return pd.DataFrame(rows).set_index(["data", "images"])


def _auc_text(measured: dict) -> str:
    low, high = measured["interval"]
    return f"{measured['roc_auc']:.3f} [{low:.3f}, {high:.3f}]"
