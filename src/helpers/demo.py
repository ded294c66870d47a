"""The upload demo of lesson 06: drop face images into a notebook, see p(fake) and where the model looked.

The logic is two plain functions, tested without a browser: `analyse_upload` turns a file's name
and bytes into a `DemoResult`, and `render_result` turns that into a card of widgets. `build_app`
wires them to a FileUpload; its callback only calls these two.
"""
from __future__ import annotations

import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from PIL import Image

from helpers import gradcam, images
from helpers.predict import Detector, as_detector

DISPLAY_SIZE = 224  # the longest side of the pictures on a card
MAX_UPLOAD_BYTES = 20 * 2**20  # far above any face photo; the browser sends the whole file to the kernel


@dataclass
class DemoResult:
    """What the demo knows about one uploaded file. With `error` set, only name and threshold are filled."""

    name: str
    threshold: float
    image: np.ndarray | None = None  # the upload, scaled down for display
    p_fake: float | None = None
    label: str | None = None
    overlay: np.ndarray | None = None  # the Grad-CAM map for "fake" over `image`
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _for_display(image: np.ndarray) -> np.ndarray:
    """Shrink so the longest side is at most DISPLAY_SIZE, keeping the aspect ratio."""
    picture = Image.fromarray(image)
    picture.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE), Image.BICUBIC)
    return np.asarray(picture)


def analyse_upload(detector: Detector, name: str, content, max_bytes: int = MAX_UPLOAD_BYTES,
                   max_pixels: int = images.MAX_PIXELS) -> DemoResult:
    """Decode one uploaded file, score it and explain it; bad input gives a result with a plain `error`."""
    if len(content) > max_bytes:
        return DemoResult(name, detector.threshold,
                          error=f"the file is larger than {max_bytes / 2**20:g} MB; upload a smaller image.")
    try:
        image = images.load_image(bytes(content), name=name, max_pixels=max_pixels)
    except ValueError as err:  # the card shows the name already: keep load_image's message without it
        return DemoResult(name, detector.threshold, error=str(err).removeprefix(f"{name}: "))
    model_input = images.resize(image, detector.image_size)[None]
    p_fake = float(detector.p_fake(model_input)[0])
    heatmap = gradcam.gradcam(detector.model, model_input, class_index=1)[0]
    shown = _for_display(image)
    return DemoResult(name, detector.threshold, shown, p_fake, detector.label(p_fake),
                      gradcam.overlay(shown, heatmap))


def _png(image: np.ndarray) -> widgets.Image:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return widgets.Image(value=buffer.getvalue(), format="png")


def _card_layout() -> widgets.Layout:
    return widgets.Layout(border="1px solid #ccc", padding="6px", margin="4px 0", align_items="center")


def render_result(result: DemoResult) -> widgets.Widget:
    """A card: the image, its Grad-CAM overlay, p(fake) as a bar and the label; or the error message."""
    name = html.escape(result.name)
    if not result.ok:
        return widgets.HTML(f"<b>{name}</b> was not analysed: {html.escape(result.error)}",
                            layout=_card_layout())
    colour = "danger" if result.label == "fake" else "success"
    bar = widgets.FloatProgress(value=result.p_fake, min=0.0, max=1.0, bar_style=colour,
                                description="p(fake)", layout=widgets.Layout(width="260px"))
    verdict = widgets.HTML(
        f"<b>{name}</b><br>p(fake) = {result.p_fake:.3f}<br>"
        f"label: <b>{result.label}</b> (fake from p(fake) {result.threshold:.3f} up)<br>"
        "<small>right: where the evidence for 'fake' lies (Grad-CAM)</small>")
    return widgets.HBox([_png(result.image), _png(result.overlay), widgets.VBox([verdict, bar])],
                        layout=_card_layout())


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in an ipywidgets 8 FileUpload value (a tuple of dicts).

    The browser's uploads carry their content as a memoryview; values set from Python may hold bytes.
    """
    return [(item["name"], bytes(item["content"])) for item in value]


class DemoApp(widgets.VBox):
    """The upload app: a FileUpload, a Clear button, and one card per analysed file (newest first)."""

    def __init__(self, detector: Detector):
        self.detector = detector
        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Upload images")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.cards = widgets.VBox()
        header = widgets.HTML(f"<b>Deepfake detector</b>: {html.escape(repr(detector))}. "
                              "Upload face images (JPEG, PNG, ...); each gets a card below.")
        super().__init__([header, widgets.HBox([self.upload, self.clear_button]), self.cards])
        self.upload.observe(self._on_upload, names="value")
        self.clear_button.on_click(self.clear)

    def add(self, name: str, content) -> None:
        """Analyse one file's bytes and put its card on top. The app keeps working whatever happens."""
        try:
            card = render_result(analyse_upload(self.detector, name, content))
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


def build_app(detector: Detector | str | os.PathLike) -> DemoApp:
    """The upload app for a Detector or a saved model folder; display it in a notebook cell."""
    return DemoApp(as_detector(detector))
