"""The web demo: upload a photo in a browser, see each face's p(fake) and where the model looked (Gradio).

    deepfake-lessons app MODEL_DIR [--port 7860] [--host 127.0.0.1] [--flag-dir DIR]
    deepfake-lessons app MODEL_DIR ...

It shows what lesson 07's notebook demo shows, computed by the same `demo.analyse_upload`: the file
is decoded and checked, each face is found and cropped the way the model's training faces were, and
every face gets its p(fake), its label at the model's threshold and its Grad-CAM overlay. Two
buttons flag a wrong verdict: the upload and a small JSON file go into a local folder, to review.

The page asks nothing of the internet: Gradio's analytics and version check are off, its theme's
fonts are served by the app itself, and no share link is made. space/ deploys it as a Hugging Face Space.
"""
from __future__ import annotations

import argparse
import html
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from helpers import config

if TYPE_CHECKING:
    import gradio as gr

# Before gradio and huggingface_hub are imported (each reads these once; TensorFlow imports the Hub's
# package): no telemetry from either, no call home for gradio's latest version or the Hub's agent list.
# Gradio itself, slow to import, is imported only where the app is built and served, so that a bad
# argument or model folder is refused at once.
os.environ[config.GRADIO_ANALYTICS_ENV] = "False"
os.environ[config.HF_TELEMETRY_ENV] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from helpers import arguments, demo  # noqa: E402
from helpers.errors import UserError  # noqa: E402
from helpers.detector import Detector, as_detector  # noqa: E402

DEFAULT_PORT = 7860
EXAMPLES_DIR = config.CACHE_DIR / "web-app" / "examples"  # written at start-up; safe to delete
FLAGS = {"wrongly real": "fake", "wrongly fake": "real"}  # a flag, and what the person says the image is
FLAG_RECORD = "flag.json"  # beside the upload, in a folder of its own per flag
FACE_CHOICES = [  # (what the page says, the `faces` mode of demo.analyse_upload)
    ("find faces; if none, score the whole image anyway", "auto"),
    ("find faces; if none, say 'no face found'", "on"),
    ("do not look for faces: score the whole image (for face crops)", "off"),
]
TABLE_COLUMNS = ["face", "p(fake)", "label", "box (x, y, width, height)"]
CSS = ".message {font-size: 1.05em}"
log = logging.getLogger(__name__)


class ModelSourceError(UserError, FileNotFoundError):
    """The model the Space should load is neither a folder here nor downloadable from the Hub."""


@dataclass
class Analysis:
    """One analysed upload: what the page shows, and what a flag saves."""

    name: str
    content: bytes
    faces: str  # the mode it was analysed in
    result: demo.DemoResult


@dataclass
class Page:
    """The page's outputs for one upload, in the order the app wires them."""

    message: str  # HTML: what happened, errors and notes included
    photo: np.ndarray | None  # the upload with its faces boxed and numbered
    table: pd.DataFrame  # a row per face: number, p(fake), label, box
    gallery: list[tuple[np.ndarray, str]]  # per face: the crop the model saw, then its Grad-CAM overlay
    analysis: Analysis | None  # kept in the session for the flag buttons

    def outputs(self) -> tuple:
        return self.message, self.photo, self.table, self.gallery, self.analysis


def describe_model(detector: Detector) -> str:
    """One line on the model: backbone, size, training data, validation ROC-AUC, threshold, face cropping."""
    metadata = detector.metadata
    trained_on = Path(metadata.get("data", {}).get("root") or "").name or "unrecorded data"
    parts = [f"{detector.backbone} at {detector.image_size} px, trained on {trained_on} "
             f"({metadata.get('profile', 'unknown')} profile)"]
    roc_auc = metadata.get("validation", {}).get("roc_auc")
    if roc_auc is not None:
        parts.append(f"validation ROC-AUC {roc_auc:.3f}")
    parts.append(f"labels a face fake from p(fake) {detector.threshold:.3f} up")
    parts.append("faces are found and cropped the way its training faces were" if detector.crop_style else
                 "it records no face crop style, so whole images are scored as they are")
    return "Model: " + "; ".join(parts) + "."


def _message(result: demo.DemoResult) -> str:
    name = f"<b>{html.escape(result.name)}</b>"
    if not result.ok:
        hint = (f" Choose &quot;{html.escape(FACE_CHOICES[0][0])}&quot; to score it all the same."
                if result.error == demo.NO_FACE_ERROR else "")
        return f"{name} was not analysed: {html.escape(result.error)}{hint}"
    found = [face for face in result.faces if face.number is not None]
    if found:
        labels = ", ".join(f"face {face.number}: {face.label} (p(fake) {face.p_fake:.3f})" for face in found)
        text = f"{name}: {len(found)} face{'s' if len(found) > 1 else ''} found. {labels}."
    else:
        face = result.faces[0]
        text = f"{name}, the whole image: {face.label} (p(fake) {face.p_fake:.3f})."
    note = f"<br><small>{html.escape(result.note)}</small>" if result.note else ""
    return text + note


def _table(result: demo.DemoResult) -> pd.DataFrame:
    rows = [["whole image" if face.number is None else face.number, round(face.p_fake, 3), face.label,
             "" if face.box is None else ", ".join(map(str, face.box))] for face in result.faces]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"face": str})


def _gallery(result: demo.DemoResult) -> list[tuple[np.ndarray, str]]:
    items = []
    for face in result.faces:
        title = "whole image" if face.number is None else f"face {face.number}"
        items.append((face.crop, f"{title}: p(fake) {face.p_fake:.3f}, {face.label}"))
        items.append((face.overlay, f"{title}: Grad-CAM, red where it sees 'fake'"))
    return items


def page_for(analysis: Analysis) -> Page:
    """What the page shows for an analysed upload."""
    result = analysis.result
    return Page(_message(result), result.image, _table(result), _gallery(result), analysis)


def _empty_page(message: str) -> Page:
    return Page(message, None, pd.DataFrame(columns=TABLE_COLUMNS), [], None)


def default_flag_dir() -> Path:
    """$DEEPFAKE_FLAG_DIR, else data/flagged: flagged uploads are data, kept out of git like the rest of data/."""
    return Path(os.environ.get(config.FLAG_DIR_ENV) or config.DATA_DIR / "flagged")


def _suffix(name: str) -> str:
    """The upload's file extension when it looks like one (for opening the saved copy), else .bin."""
    suffix = Path(name).suffix.lower()
    return suffix if 2 <= len(suffix) <= 6 and suffix[1:].isalnum() else ".bin"


class WebDemo:
    """The app's two actions on one Detector: analyse an uploaded file, and flag its verdict."""

    def __init__(self, detector: Detector, flag_dir: str | os.PathLike | None = None):
        self.detector = detector
        self.flag_dir = Path(flag_dir) if flag_dir else default_flag_dir()

    def analyse(self, path: str | os.PathLike | None, faces: str = "auto") -> Page:
        """The page for the file at `path` (what the browser uploaded); any failure becomes a message."""
        if not path:
            return _empty_page("Upload a photo or a face crop, or pick an example below.")
        name = Path(path).name
        try:
            with open(path, "rb") as file:  # one byte past the limit is enough to refuse a file as too large
                content = file.read(demo.MAX_UPLOAD_BYTES + 1)
            result = demo.analyse_upload(self.detector, name, content, faces=faces)
        except (UserError, OSError) as err:  # a model without a crop style asked for faces; a vanished upload
            result = demo.DemoResult(name, self.detector.threshold, error=str(err))
            content = b""
        except Exception as err:  # a bug, not bad input: a line in the page, the traceback in the server's log
            log.exception("analysing %s failed", name)
            result = demo.DemoResult(name, self.detector.threshold, error=f"unexpected {type(err).__name__}: {err}")
            content = b""
        return page_for(Analysis(name, content, faces, result))

    def flag(self, analysis: Analysis | None, flag: str) -> str:
        """Save the analysed upload and a JSON record in a new folder of the flag folder; say what happened."""
        if flag not in FLAGS:
            raise ValueError(f"unknown flag {flag!r}: one of {', '.join(FLAGS)}")
        if analysis is None:
            return "Nothing to flag yet: upload an image first, then flag its verdict if it is wrong."
        if not analysis.result.ok:
            return f"Nothing to flag: {html.escape(analysis.name)} got no verdict: {html.escape(analysis.result.error)}"
        when = datetime.now(timezone.utc)
        record = {
            "name": analysis.name,
            "flag": flag,
            "truth": FLAGS[flag],
            "time": when.isoformat(timespec="seconds"),
            "faces_mode": analysis.faces,
            "faces": [{"face": face.number, "box": face.box, "p_fake": face.p_fake, "label": face.label}
                      for face in analysis.result.faces],
            "model": self._model_record(),
        }
        self.flag_dir.mkdir(parents=True, exist_ok=True)
        while True:  # a new folder per flag: mkdir takes a name no one holds, or fails; nothing is overwritten
            folder = self.flag_dir / f"{when:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        record["file"] = f"upload{_suffix(analysis.name)}"
        (folder / record["file"]).write_bytes(analysis.content)
        (folder / FLAG_RECORD).write_text(json.dumps(record, indent=2))  # last: a folder with it is complete
        return f"Flagged {html.escape(analysis.name)} as {flag}: saved as {folder.name}. Thank you."

    def _model_record(self) -> dict:
        metadata = self.detector.metadata
        return {"folder": self.detector.directory.name if self.detector.directory else None,
                "backbone": self.detector.backbone, "image_size": self.detector.image_size,
                "threshold": self.detector.threshold, "saved_at": metadata.get("saved_at"),
                "trained_on": Path(metadata.get("data", {}).get("root") or "").name or None}


# ----------------------------------------------------------------------------- examples
def _save_png(array: np.ndarray, path: Path) -> Path:
    if not path.is_file():
        Image.fromarray(array).save(path)
    return path


def write_examples(folder: str | os.PathLike = EXAMPLES_DIR, data_root: str | os.PathLike | None = None) -> list[Path]:
    """Example files for the page: a photo with one face and one without (pictures scikit-image ships),
    and a real and a fake test face of the data root (the argument, else $DEEPFAKE_DATA) when it has them."""
    import skimage.data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    examples = [_save_png(skimage.data.astronaut(), folder / "astronaut.png"),
                _save_png(skimage.data.coffee(), folder / "coffee-no-face.png")]
    root = data_root or os.environ.get(config.DATA_ENV)
    if root:
        examples += _test_faces(Path(root), folder)
    return examples


def _test_faces(root: Path, folder: Path) -> list[Path]:
    """Copies of the first real and the first fake test image of a data root (none if it has no test split)."""
    from helpers import data

    try:
        frame = data.index_dataset(root, required=())
    except data.DatasetLayoutError:
        return []
    test = frame[frame["split"] == "test"]
    copies = []
    for class_name in config.CLASS_NAMES:
        rows = test[test["class_name"] == class_name]
        if len(rows):
            source = Path(rows["path"].iloc[0])
            copy = folder / f"test-{class_name}{source.suffix.lower()}"
            copy.write_bytes(source.read_bytes())
            copies.append(copy)
    return copies


# ----------------------------------------------------------------------------- the app
def build_app(detector_or_model_dir: Detector | str | os.PathLike, examples: list | None = None,
              flag_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The Gradio app for a Detector or a saved model folder; start it with `serve`.

    examples: files to offer beside the upload (default: `write_examples()`); flag_dir: where flags go
    (default: `default_flag_dir()`).
    """
    detector = as_detector(detector_or_model_dir)  # first: a damaged model folder is refused before gradio loads
    import gradio as gr

    web = WebDemo(detector, flag_dir)
    examples = write_examples() if examples is None else [Path(path) for path in examples]
    with gr.Blocks(title="Deepfake detector", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# Deepfake detector\nUpload a photo or a face crop. Each face is found, cropped the way the "
                    "model's training faces were, and scored on its own; the heat map shows where the evidence "
                    "for 'fake' lies. A score is a model's guess, not proof.")
        gr.Markdown(describe_model(detector), elem_id="model-description")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Photo or face crop (JPEG, PNG, ...)", file_count="single",
                                 type="filepath", elem_id="upload")
                faces = gr.Radio(FACE_CHOICES, value="auto", label="Faces", elem_id="faces",
                                 interactive=detector.crop_style is not None)
                if examples:
                    gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Examples")
            with gr.Column(scale=2):
                message = gr.HTML("Upload a photo or a face crop, or pick an example.", elem_id="message",
                                  elem_classes="message")
                photo = gr.Image(label="The photo, each face found boxed and numbered", type="numpy", format="png",
                                 interactive=False, elem_id="photo", buttons=[])
                table = gr.Dataframe(headers=TABLE_COLUMNS, label="Each face", interactive=False,
                                     elem_id="faces-table")
                gallery = gr.Gallery(label="Each face: the crop the model saw, and where it looked (Grad-CAM)",
                                     columns=2, format="png", elem_id="gallery", buttons=[], interactive=False)
                with gr.Row():
                    wrongly_real = gr.Button("Flag: wrongly real (it is fake)", elem_id="flag-wrongly-real")
                    wrongly_fake = gr.Button("Flag: wrongly fake (it is real)", elem_id="flag-wrongly-fake")
                flag_message = gr.HTML("", elem_id="flag-message")
        analysis = gr.State(None)

        def analyse(path, faces_mode):
            return web.analyse(path, faces_mode).outputs()

        gr.on([upload.change, faces.change], analyse, inputs=[upload, faces],
              outputs=[message, photo, table, gallery, analysis], api_name="analyse")
        wrongly_real.click(lambda state: web.flag(state, "wrongly real"), inputs=[analysis], outputs=[flag_message],
                           api_name="flag_wrongly_real")
        wrongly_fake.click(lambda state: web.flag(state, "wrongly fake"), inputs=[analysis], outputs=[flag_message],
                           api_name="flag_wrongly_fake")
        upload.change(lambda _: "", inputs=[upload], outputs=[flag_message], api_visibility="private")
    app.queue(default_concurrency_limit=1)  # one model: analyses wait their turn
    return app


def serve(app: gr.Blocks, host: str | None = None, port: int | None = None, block: bool = True,
          quiet: bool = False) -> str:
    """Start the app's server and return its local URL; with block=True, serve until Ctrl-C, then close the
    server and raise KeyboardInterrupt (so the command exits with 130: gradio's own wait would swallow it).

    host, port: default $GRADIO_SERVER_NAME (else 127.0.0.1) and $GRADIO_SERVER_PORT (else 7860 or the next free).
    Nothing is asked of the internet: no share link, analytics or version check, no fonts from elsewhere.
    """
    import gradio as gr

    _, url, _ = app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True,
                           quiet=quiet, inline=False, max_file_size=demo.MAX_UPLOAD_BYTES, footer_links=["api"],
                           run_history=False, pwa=False, mcp_server=False, ssr_mode=False, enable_monitoring=False,
                           theme=gr.themes.Default(), css=CSS)
    if block:
        try:
            while app.is_running:
                time.sleep(0.1)
        except KeyboardInterrupt:
            app.close(verbose=False)
            raise
    return url


# ----------------------------------------------------------------------------- a Space's model
def model_dir_from_env(default: str | os.PathLike = "model") -> Path:
    """The model folder a Space serves: downloaded from the Hub repo $DEEPFAKE_MODEL_REPO ("owner/name",
    or "owner/name@revision") when it is set, else the folder $DEEPFAKE_MODEL_DIR (default `default`)."""
    repo = os.environ.get(config.MODEL_REPO_ENV, "").strip()
    if repo:
        from huggingface_hub import snapshot_download

        repo_id, _, revision = repo.partition("@")
        try:
            return Path(snapshot_download(repo_id, revision=revision or None))
        except Exception as err:  # offline, a typo, a private repo without a token: one line, not a traceback
            first_sentence = " ".join(str(err).split()).split(". ")[0].rstrip(".")[:300]
            raise ModelSourceError(f"could not download the model {repo} named by ${config.MODEL_REPO_ENV} "
                                   f"({type(err).__name__}: {first_sentence}).") from err
    folder = Path(os.environ.get(config.MODEL_DIR_ENV) or default)
    if not folder.is_dir():
        raise ModelSourceError(f"no model folder at {folder}: commit one there, point ${config.MODEL_DIR_ENV} "
                               f"at one, or name a model repo in ${config.MODEL_REPO_ENV}.")
    return folder


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (helpers.cli runs it)."""
    parser.add_argument("model_dir", help="a saved model folder (model.keras, model.weights.h5, model.json)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    parser.add_argument("--port", type=arguments.port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--flag-dir", type=Path, help="where the flag buttons save uploads and their verdicts "
                        f"(default: ${config.FLAG_DIR_ENV}, else data/flagged)")


def run(args: argparse.Namespace) -> None:
    flag_dir = (args.flag_dir or default_flag_dir()).resolve()
    app = build_app(args.model_dir, flag_dir=flag_dir)
    print(f"flags go to {flag_dir}")
    serve(app, host=args.host, port=args.port)
