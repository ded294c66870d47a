"""The upload demo of lesson 07: drop photos into a notebook, get a card for each face it finds.

The logic is plain functions, tested without a browser. `analyse_upload` turns a file's name and
bytes into a `DemoResult`: the photo with each face boxed and numbered, and a `FaceResult` per
face, cropped the way the model's training faces were, scored, explained (Grad-CAM) and read
against the model's threshold (`helpers.verdicts`: fake, real or uncertain). `render_result`
turns a result into a card of widgets, one card per face, each with its own flag buttons;
`save_flag` keeps an upload whose verdict on one face someone says is wrong. Lesson 07 wires these
to a FileUpload in the open; `build_app` is the same app, packaged. The web app
(`helpers.web_app`) shows the same results through the same functions.

A photo in which no face is found gets "no face found"; scoring the whole image is a second,
explicit step (faces="off"), as the score of a whole photo squeezed into the model's square
means little.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from helpers import config, images, verdicts
from helpers.detector import Detector, as_detector

FACE_BENCHMARKS = config.REPO_ROOT / "benchmarks" / "faces"  # benchmarks/bench_faces.py's committed results
CROP_SIZE = 224  # the longest side of a face's crop and Grad-CAM map on its card
PHOTO_SIZE = 640  # the longest side of the upload as shown, each face boxed and numbered
MAX_UPLOAD_BYTES = 20 * 2**20  # far above any face photo; the browser sends the whole file to the kernel
FLAG_RECORD = "flag.json"  # beside the upload, in a folder of its own per flag
COLOURS = {"fake": "#c62828", "real": "#2e7d32", "uncertain": "#9a6700"}  # a verdict's colour, on cards and boxes

NO_FACE_NOTE = ("No face was found. If the image is a face crop, score the whole image instead; a whole "
                "photo squeezed into the model's square gives a score that means little.")
WHOLE_IMAGE_NOTE = ("The whole image was scored, squeezed into the model's square: the score means something "
                    "only if the image is a face crop.")
NO_STYLE_NOTE = ("This model does not record how its training faces were cropped, so the whole image was "
                 "scored as it is: upload tight face crops.")
# images.load_image's messages that need plain words (the others are plain already)
PLAIN_ERRORS = {
    "not an image file": "this is not an image file, or not one this demo can open: upload a photo (JPEG, PNG, WebP, ...).",
    "the image data is truncated or corrupt": "the image file is damaged or cut short (an unfinished download?): "
                                              "save the photo again and upload the new copy.",
}


@dataclass
class FaceResult:
    """One face of an upload, or the whole upload when it was scored whole (then `box` and `number` are None)."""

    crop: np.ndarray  # what the model saw, at display size
    overlay: np.ndarray  # the Grad-CAM map for "fake" over `crop`
    reading: verdicts.Reading  # p(fake) against the model's threshold
    box: tuple[int, int, int, int] | None = None  # x, y, width, height in the upload's pixels
    number: int | None = None  # 1 = the leftmost face; the number drawn on the photo
    confidence: float | None = None  # the face detector's
    second_look: bool = False  # found only in the photo's equalised grey copy (helpers.faces)

    @property
    def p_fake(self) -> float:
        return self.reading.p_fake

    @property
    def label(self) -> str:
        """The side of the threshold, 'fake' or 'real'."""
        return self.reading.label

    @property
    def verdict(self) -> str:
        """'fake', 'real' or 'uncertain'."""
        return self.reading.verdict

    @property
    def title(self) -> str:
        return "The whole image" if self.number is None else f"Face {self.number}"


@dataclass
class DemoResult:
    """What the demo knows about one uploaded file. With `error` set, only name, threshold and model are filled."""

    name: str
    threshold: float
    model: dict  # `model_record` of the detector, kept with a flag
    image: np.ndarray | None = None  # the upload, scaled down for display, each face found boxed and numbered
    faces: list[FaceResult] = field(default_factory=list)
    faces_mode: str = "on"  # "on": faces were looked for; "off": the whole image was scored
    note: str | None = None  # how the upload was read, when it matters: no face found, or scored whole
    error: str | None = None
    content: bytes = field(default=b"", repr=False)  # the upload as sent, saved with a flag

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def no_face(self) -> bool:
        """Faces were looked for and none was found: the whole-image score is offered as the next step."""
        return self.ok and not self.faces

    def summary(self) -> str:
        """One plain line: what was found and each verdict, or why nothing was."""
        if not self.ok:
            return f"{self.name} was not analysed: {self.error}"
        if self.no_face:
            return f"{self.name}: no face found."
        if self.faces[0].number is None:
            return f"{self.name}, the whole image: {self.faces[0].verdict}."
        count = f"{len(self.faces)} face{'s' if len(self.faces) > 1 else ''} found"
        return f"{self.name}: {count}: " + ", ".join(f"face {face.number} {face.verdict}" for face in self.faces) + "."


def _plain_error(message: str) -> str:
    for start, plain in PLAIN_ERRORS.items():
        if message.startswith(start):
            return plain
    return message


def _shrink(image: np.ndarray, size: int) -> np.ndarray:
    """Shrink so the longest side is at most `size`, keeping the aspect ratio."""
    picture = Image.fromarray(image)
    picture.thumbnail((size, size), Image.BICUBIC)
    return np.asarray(picture)


def draw_boxes(image: np.ndarray, shown: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """`shown` (a display copy of `image`) with each face's box, in its verdict's colour, and its number."""
    scale = shown.shape[1] / image.shape[1]
    picture = Image.fromarray(shown)
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(14, round(max(shown.shape[:2]) / 28)))
    line = max(2, round(max(shown.shape[:2]) / 200))
    for face in faces:
        x, y, width, height = (value * scale for value in face.box)
        colour = COLOURS[face.verdict]
        pen.rectangle((x, y, x + width, y + height), outline=colour, width=line)
        left, top, right, bottom = pen.textbbox((0, 0), str(face.number), font=font)
        tag_y = y - (bottom + 4) if y >= bottom + 4 else y + line  # above the box, or inside it at the top
        pen.rectangle((x, tag_y, x + right + 6, tag_y + bottom + 4), fill=colour)
        pen.text((x + 3, tag_y + 2 - top / 2), str(face.number), fill="white", font=font)
    return np.asarray(picture)


def model_record(detector: Detector) -> dict:
    """What a flag records about the model."""
    metadata = detector.metadata
    return {"folder": detector.directory.name if detector.directory else None,
            "backbone": detector.backbone, "image_size": detector.image_size,
            "threshold": detector.threshold, "saved_at": metadata.get("saved_at"),
            "trained_on": Path(metadata.get("data", {}).get("root") or "").name or None}


def analyse_upload(detector: Detector, name: str, content, faces: str = "on", max_bytes: int = MAX_UPLOAD_BYTES,
                   max_pixels: int = images.MAX_PIXELS) -> DemoResult:
    """Decode one uploaded file, find its faces, score, explain and read each; bad input gives a plain `error`.

    faces: "on" (find faces; none found gives a result without faces) or "off" (score the whole image);
    "auto" as in `Detector.predict_photo`. A model that records no crop style always scores whole images.
    """
    from helpers import gradcam  # Keras: imported with the model, so the web app's arguments are checked at once

    record = model_record(detector)
    if len(content) > max_bytes:
        return DemoResult(name, detector.threshold, record, error=f"the file is larger than {max_bytes / 2**20:g} MB, "
                          "the most this demo takes: upload a smaller image.")
    try:
        image = images.load_image(bytes(content), name=name, max_pixels=max_pixels)
    except ValueError as err:  # the card shows the name already: keep load_image's message without it
        return DemoResult(name, detector.threshold, record, error=_plain_error(str(err).removeprefix(f"{name}: ")))
    mode = "off" if detector.crop_style is None else faces
    result = DemoResult(name, detector.threshold, record, _shrink(image, PHOTO_SIZE), faces_mode=mode,
                        content=bytes(content))
    inputs = detector.photo_inputs(image, mode)
    if inputs[0][1] is None:  # faces="on" and none found
        result.note = NO_FACE_NOTE
        return result
    batch = np.stack([model_input for _, model_input in inputs])
    scores = detector.p_fake(batch)
    heatmaps = gradcam.gradcam(detector.model, batch, class_index=1)
    for number, ((face, model_input), p_fake, heatmap) in enumerate(zip(inputs, scores, heatmaps), 1):
        shown = _shrink(image if face is None else model_input.astype(np.uint8), CROP_SIZE)
        reading = verdicts.Reading(float(p_fake), detector.threshold)
        if face is None:
            result.faces.append(FaceResult(shown, gradcam.overlay(shown, heatmap), reading))
        else:
            result.faces.append(FaceResult(shown, gradcam.overlay(shown, heatmap), reading, face.box(), number,
                                           face.confidence, face.second_look))
    if result.faces[0].number is None:
        result.note = NO_STYLE_NOTE if detector.crop_style is None else WHOLE_IMAGE_NOTE
    else:
        result.image = draw_boxes(image, result.image, result.faces)
    return result


def describe_model(detector: Detector) -> str:
    """A sentence or two on the model: backbone, size, training data, validation ROC-AUC, threshold, face cropping."""
    metadata = detector.metadata
    trained_on = Path(metadata.get("data", {}).get("root") or "").name or "unrecorded data"
    text = (f"The model is {detector.backbone} at {detector.image_size} px, trained on {trained_on} "
            f"({metadata.get('profile', 'unknown')} profile)")
    roc_auc = metadata.get("validation", {}).get("roc_auc")
    text += f", with a validation ROC-AUC of {roc_auc:.3f}. " if roc_auc is not None else ". "
    low, high = verdicts.uncertain_band(detector.threshold)
    text += (f"It calls a face fake from p(fake) {verdicts.score_text(detector.threshold)} up, and uncertain "
             f"from {verdicts.score_text(low)} to {verdicts.score_text(high)}. ")
    text += ("It finds each face and crops it the way its training faces were cropped." if detector.crop_style else
             "It records no face crop style, so whole images are scored as they are.")
    return text


def model_warning(detector: Detector) -> str | None:
    """The warning to show above the demo for a model with a low or unrecorded validation ROC-AUC."""
    return verdicts.model_warning(detector.metadata.get("validation", {}))


# ----------------------------------------------------------------------------- what a face card shows
def img_tag(image: np.ndarray, width: int | None = None) -> str:
    """An <img> (a PNG inline) at most `width` px wide (default: its own width); it shrinks with its box and
    keeps its aspect ratio."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    source = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<img src='data:image/png;base64,{source}' width='{image.shape[1]}' height='{image.shape[0]}' "
            f"style='display:block;width:{width or image.shape[1]}px;max-width:100%;height:auto' alt=''>")


def verdict_html(face: FaceResult) -> str:
    """A face's verdict as HTML: a badge, p(fake) on a bar with the threshold and the uncertain band marked,
    the line that reads the number, and how the face was found."""
    reading, colour = face.reading, COLOURS[face.verdict]
    low, high = reading.band
    score, threshold = verdicts.score_text(face.p_fake), verdicts.score_text(reading.threshold)
    found = ""
    if face.number is not None:
        found = (f"found in grey, on a second look (face detector {face.confidence:.2f})" if face.second_look else
                 f"face detector {face.confidence:.2f}")
        found = f"<div style='font-size:0.85em;color:#555'>{found}; box {', '.join(map(str, face.box))}</div>"
    return (
        f"<div class='verdict' data-verdict='{face.verdict}' style='line-height:1.4'>"
        f"<div><b>{face.title}</b> <span class='badge' style='background:{colour};color:white;border-radius:4px;"
        f"padding:1px 8px;font-weight:bold'>{face.verdict.upper()}</span></div>"
        f"<div>p(fake) <b class='score'>{score}</b></div>"
        f"<div class='bar' role='img' aria-label='p(fake) {score} on a scale from 0 to 1, threshold {threshold}' "
        "style='position:relative;height:14px;margin:4px 0 20px;max-width:320px;background:#e8e8e8;border-radius:3px'>"
        f"<div class='band' style='position:absolute;left:{100 * low:.2f}%;width:{100 * (high - low):.2f}%;top:0;"
        "bottom:0;background:repeating-linear-gradient(45deg,#c8c8c8 0 3px,#f4f4f4 3px 6px)'></div>"
        f"<div class='fill' style='position:absolute;left:0;width:{100 * face.p_fake:.2f}%;top:3px;bottom:3px;"
        f"background:{colour};border-radius:2px'></div>"
        f"<div class='threshold' style='position:absolute;left:{100 * reading.threshold:.2f}%;top:-3px;bottom:-3px;"
        "width:2px;margin-left:-1px;background:#111'></div>"
        f"<div style='position:absolute;top:16px;left:{min(max(100 * reading.threshold, 15), 85):.2f}%;"
        f"transform:translateX(-50%);font-size:0.75em;white-space:nowrap'>threshold {threshold}</div></div>"
        f"<div class='reading'>{html.escape(reading.sentence)}</div>{found}</div>")


def face_html(face: FaceResult) -> str:
    """A face's card, as both demos show it (without its flag buttons): the crop the model saw, its Grad-CAM
    map and the verdict, side by side where there is room and one under the other where there is not."""
    return (
        "<div class='face' style='display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;line-height:1.4'>"
        "<div style='display:flex;gap:4px;flex:0 1 324px;min-width:0'>"
        f"<figure style='margin:0;flex:1 1 0;min-width:0'>{img_tag(face.crop, 160)}</figure>"
        f"<figure style='margin:0;flex:1 1 0;min-width:0'>{img_tag(face.overlay, 160)}</figure></div>"
        f"<div style='flex:1 1 220px;min-width:0'>{verdict_html(face)}"
        "<div style='font-size:0.8em;color:#555'>Left: what the model saw. Right: where it found evidence for "
        "'fake' (Grad-CAM; red is strongest).</div></div></div>")


# ----------------------------------------------------------------------------- flags
def default_flag_dir() -> Path:
    """$DEEPFAKE_FLAG_DIR, else data/flagged: flagged uploads are data, kept out of git like the rest of data/."""
    return Path(os.environ.get(config.FLAG_DIR_ENV) or config.DATA_DIR / "flagged")


def _suffix(name: str) -> str:
    """The upload's file extension when it looks like one (for opening the saved copy), else .bin."""
    suffix = Path(name).suffix.lower()
    return suffix if 2 <= len(suffix) <= 6 and suffix[1:].isalnum() else ".bin"


def save_flag(result: DemoResult, number: int | None, truth: str, flag_dir: str | os.PathLike) -> str:
    """Someone says face `number` of `result` (None: the whole image) is `truth` ("fake" or "real"): save the
    upload and a JSON record in a new folder of `flag_dir`, and say what happened. A flag that agrees with the
    verdict is refused, and nothing is written."""
    if truth not in config.CLASS_NAMES:
        raise ValueError(f"unknown truth {truth!r}: one of {', '.join(config.CLASS_NAMES)}")
    face = next((face for face in result.faces if face.number == number), None)
    if face is None:
        return "Nothing to flag: this upload has no such face."
    if face.verdict == truth:
        return (f"Not flagged: {face.title.lower()} already reads {truth}. Flag a verdict only when you think "
                "it is wrong.")
    when = datetime.now(timezone.utc)
    record = {"name": result.name, "face": number, "truth": truth, "verdict": face.verdict, "p_fake": face.p_fake,
              "threshold": face.reading.threshold, "box": face.box, "faces_mode": result.faces_mode,
              "time": when.isoformat(timespec="seconds"), "model": result.model,
              "file": f"upload{_suffix(result.name)}"}
    flag_dir = Path(flag_dir)
    flag_dir.mkdir(parents=True, exist_ok=True)
    while True:  # a new folder per flag: mkdir takes a name no one holds, or fails; nothing is overwritten
        folder = flag_dir / f"{when:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    (folder / record["file"]).write_bytes(result.content)
    (folder / FLAG_RECORD).write_text(json.dumps(record, indent=2))  # last: a folder with it is complete
    return f"Flagged {face.title.lower()} of {result.name} as {truth}: saved as {folder.name}. Thank you."


# ----------------------------------------------------------------------------- the notebook's widgets
def _face_card(result: DemoResult, face: FaceResult, flag_dir: str | os.PathLike | None) -> widgets.VBox:
    """One face: `face_html`, and with a flag folder two flag buttons and the answer to a click."""
    parts = [widgets.HTML(face_html(face), layout=widgets.Layout(overflow="visible"))]
    if flag_dir is not None:
        said = widgets.HTML("")
        buttons = []
        for truth in config.CLASS_NAMES:
            button = widgets.Button(description=f"It is {truth}", tooltip=f"flag: {face.title.lower()} is {truth}",
                                    layout=widgets.Layout(width="auto"))
            button.on_click(lambda _, truth=truth: setattr(said, "value", html.escape(
                save_flag(result, face.number, truth, flag_dir))))
            buttons.append(button)
        parts += [widgets.HBox([widgets.HTML("Wrong verdict? This face:"), *buttons],
                               layout=widgets.Layout(flex_flow="row wrap", align_items="center")), said]
    card = widgets.VBox(parts, layout=widgets.Layout(border="1px solid #ddd", padding="6px", margin="4px 0",
                                                     overflow="visible"))
    card.add_class("face-card")
    return card


def render_result(result: DemoResult, detector: Detector | None = None,
                  flag_dir: str | os.PathLike | None = None) -> widgets.VBox:
    """A card for one upload: what was found, the photo with its faces boxed, then a card per face.

    detector: offers "score the whole image" where no face was found; flag_dir: gives each face flag buttons
    that save there. A file that could not be analysed gets a card with the error message instead.
    """
    card = widgets.VBox(layout=widgets.Layout(border="1px solid #bbb", padding="6px", margin="6px 0",
                                              overflow="visible"))
    card.add_class("demo-card")
    note = f"<br><small>{html.escape(result.note)}</small>" if result.note else ""
    parts = [widgets.HTML(f"<div style='line-height:1.4'><b>{html.escape(result.summary())}</b>{note}</div>")]
    if result.image is not None:
        parts.append(widgets.HTML(img_tag(result.image), layout=widgets.Layout(overflow="visible")))
    if result.no_face and detector is not None:
        whole = widgets.Button(description="Score the whole image", icon="expand", layout=widgets.Layout(width="auto"))

        def score_whole(_button):
            scored = analyse_upload(detector, result.name, result.content, faces="off")
            card.children = render_result(scored, detector, flag_dir).children

        whole.on_click(score_whole)
        parts.append(whole)
    parts += [_face_card(result, face, flag_dir) for face in result.faces]
    card.children = parts
    return card


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in an ipywidgets 8 FileUpload value (a tuple of dicts).

    The browser's uploads carry their content as a memoryview; values set from Python may hold bytes.
    """
    return [(item["name"], bytes(item["content"])) for item in value]


def header(detector: Detector) -> widgets.HTML:
    """What the app says above its upload button: the model in a sentence, and a warning where one is due."""
    warning = model_warning(detector)
    warning = ("" if warning is None else
               f"<div class='model-warning' style='border-left:4px solid {COLOURS['fake']};background:#fdecea;"
               f"padding:4px 8px;margin:4px 0'><b>Warning:</b> {html.escape(warning)}</div>")
    return widgets.HTML(f"<div style='line-height:1.4'><b>Deepfake detector.</b> "
                        f"{html.escape(describe_model(detector))}{warning}Upload photos or face crops (JPEG, PNG, "
                        "...): each gets a card below, with a card for each face found. A verdict is a model's "
                        "guess, not proof.</div>")


class DemoApp(widgets.VBox):
    """The upload app: a FileUpload, a Clear button, and one card per analysed file (newest first)."""

    def __init__(self, detector: Detector, faces: str = "on", flag_dir: str | os.PathLike | None = None):
        self.detector = detector
        self.faces = faces
        self.flag_dir = flag_dir
        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Upload images")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.cards = widgets.VBox()
        super().__init__([header(detector), widgets.HBox([self.upload, self.clear_button]), self.cards])
        self.add_class("demo-app")
        self.upload.observe(self._on_upload, names="value")
        self.clear_button.on_click(self.clear)

    def card(self, name: str, content) -> widgets.Widget:
        """The card for one file's bytes. The app keeps working whatever happens."""
        try:
            return render_result(analyse_upload(self.detector, name, content, faces=self.faces), self.detector,
                                 self.flag_dir)
        except Exception as err:  # a bug, not bad input: show it on the card, keep the app alive
            return render_result(DemoResult(name, self.detector.threshold, model_record(self.detector),
                                            error=f"unexpected {type(err).__name__}: {err}"))

    def add(self, name: str, content) -> None:
        """Analyse one file's bytes and put its card on top."""
        self.cards.children = (self.card(name, content), *self.cards.children)

    def add_files(self, paths) -> None:
        """Analyse files from disk through the same path as an upload (for demos without a browser)."""
        for path in map(Path, paths):
            self.add(path.name, path.read_bytes())

    def _on_upload(self, change) -> None:
        for name, content in uploaded_files(change["new"]):
            self.add(name, content)
        if change["new"]:
            self.upload.value = ()  # so that uploading the same file again is a change, and is analysed again

    def clear(self, _button=None) -> None:
        """Remove every card."""
        self.cards.children = ()
        self.upload.value = ()


def build_app(detector: Detector | str | os.PathLike, faces: str = "on",
              flag_dir: str | os.PathLike | None = None) -> DemoApp:
    """The upload app for a Detector or a saved model folder; display it in a notebook cell.

    faces: "on" (find faces, else say "no face found" and offer the whole-image score) or "off" (score
    whole images: for face crops). flag_dir: where flags go (default `default_flag_dir()`).
    """
    return DemoApp(as_detector(detector), faces, Path(flag_dir) if flag_dir else default_flag_dir())


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
