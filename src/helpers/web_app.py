"""The web demo: upload a photo in a browser, get a card for each face in it (Gradio).

    deepfake-lessons app MODEL_DIR [--port 7860] [--host 127.0.0.1] [--flag-dir DIR]

It shows what lesson 07's notebook demo shows, computed and drawn by the same functions of
`helpers.demo`: the photo with each face boxed and numbered, and a card per face with the crop the
model saw, its Grad-CAM map, a verdict (fake, real, or uncertain near the threshold), p(fake) on a
bar with the threshold marked, and a line that reads the number. Each card has two flag buttons:
a flag that disagrees with the verdict saves the upload and a small JSON record in a local folder,
to review. A photo with no face gets "no face found", and a button to score the whole image.

The page reads on a phone: the input previews the photo (and takes a pasted image or the webcam),
the result scrolls into view, and every error, the browser's own checks of a file's type and size
included, is said in plain words where the result would be.

The page asks nothing of the internet: Gradio's analytics and version check are off, its theme's
fonts are served by the app itself, and no share link is made. space/ deploys it as a Hugging Face Space.

Importing this module sets two environment variables, on purpose: Gradio and huggingface_hub read
them once, when they are first imported (Keras may import the Hub's package), so the `app` command,
which imports this module before anything else, must set them first.
"""
from __future__ import annotations

import argparse
import html
import logging
import os
import time
from dataclasses import dataclass
from functools import partial
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
from PIL import Image  # noqa: E402

from helpers import arguments, demo, lesson_sets  # noqa: E402
from helpers.demo import default_flag_dir  # noqa: E402, F401  (the command's default, in `run`)
from helpers.errors import UserError  # noqa: E402
from helpers.detector import Detector, as_detector  # noqa: E402

DEFAULT_PORT = 7860
EXAMPLES_DIR = config.CACHE_DIR / "web-app" / "examples"  # written at start-up; safe to delete
FACE_CHOICES = [  # (what the page says, the `faces` mode of demo.analyse_upload)
    ("find the faces in a photo", "on"),
    ("score the whole image as it is (for a face crop)", "off"),
]
EMPTY_MESSAGE = "Upload a photo or a face crop, paste one, use the webcam, or pick an example."
# The browser refuses some files itself (not an image, too large) and says so in a passing pop-up; this
# says it in plain words in the page's message instead, where the result would be.
BROWSER_ERRORS_JS = """
() => {
  const plain = text => {
    const name = (text.match(/"([^"]+)"/) || text.match(/: (.+?)\\. Only/) || [, "The file"])[1];
    if (/exceed the maximum allowed size/i.test(text))
      return `${name} was not analysed: the file is larger than %(limit)s MB, the most this demo takes: upload a smaller image.`;
    if (/Invalid file type/i.test(text))
      return `${name} was not analysed: this is not an image file: upload a photo (JPEG, PNG, WebP, ...).`;
    return `The file was not analysed: ${text}`;
  };
  new MutationObserver(records => {
    for (const record of records) for (const node of record.addedNodes) {
      if (!(node instanceof HTMLElement)) continue;
      const said = [node, ...node.querySelectorAll('*')].filter(item => item.matches('.toast-message-text.error'));
      const box = document.querySelector('#message .prose') || document.querySelector('#message');
      if (said.length && box) {
        box.textContent = plain(said.at(-1).textContent.trim());
        box.scrollIntoView({block: 'center'});
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
}
""" % {"limit": f"{demo.MAX_UPLOAD_BYTES / 2**20:g}"}
# After an analysis, bring the result to the top of the window (again once the face cards have been drawn)
SCROLL_TO_RESULT_JS = """
() => {
  const scroll = () => document.getElementById('message')?.scrollIntoView({block: 'start'});
  scroll();
  setTimeout(scroll, 400);
  setTimeout(scroll, 1200);
}
"""
CSS = """
.message {font-size: 1.05em}
#model-warning {border-left: 4px solid #c62828; background: #fdecea; padding: 6px 10px; border-radius: 4px}
.face-card {border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 8px !important; gap: 4px !important}
.flag-row {align-items: center; gap: 6px !important; flex-wrap: wrap; justify-content: flex-start}
.flag-row > * {flex: 0 0 auto !important; min-width: 0 !important; width: auto !important}
"""
log = logging.getLogger(__name__)


class ModelSourceError(UserError, FileNotFoundError):
    """The model the Space should load is neither a folder here nor downloadable from the Hub."""


@dataclass
class Page:
    """The page's outputs for one upload, in the order the app wires them."""

    message: str  # HTML: what happened, errors and notes included
    photo: np.ndarray | None  # the upload with its faces boxed and numbered
    faces: list[dict]  # a record per face, for API clients (the page draws the cards from `result`)
    result: demo.DemoResult | None  # kept in the session: the cards and their flag buttons read it

    def outputs(self) -> tuple:
        return self.message, self.photo, self.faces, self.result


def _message(result: demo.DemoResult) -> str:
    note = f"<br><small>{html.escape(result.note)}</small>" if result.note else ""
    return html.escape(result.summary()) + note


def _faces(result: demo.DemoResult) -> list[dict]:
    return [{"face": face.number, "verdict": face.verdict, "p_fake": face.p_fake, "threshold": face.reading.threshold,
             "reading": face.reading.sentence, "box": face.box} for face in result.faces]


def page_for(result: demo.DemoResult) -> Page:
    """What the page shows for an analysed upload."""
    return Page(_message(result), result.image, _faces(result), result)


class WebDemo:
    """The app's two actions on one Detector: analyse an uploaded file, and flag the verdict on one of its faces."""

    def __init__(self, detector: Detector, flag_dir: str | os.PathLike | None = None):
        self.detector = detector
        self.flag_dir = Path(flag_dir) if flag_dir else default_flag_dir()

    def _failed(self, name: str, error: str) -> demo.DemoResult:
        return demo.DemoResult(name, self.detector.threshold, demo.model_record(self.detector), error=error)

    def analyse(self, path: str | os.PathLike | None, faces: str = "on") -> Page:
        """The page for the file at `path` (what the browser uploaded); any failure becomes a message."""
        if not path:
            return Page(EMPTY_MESSAGE, None, [], None)
        name = Path(path).name
        try:
            with open(path, "rb") as file:  # one byte past the limit is enough to refuse a file as too large
                content = file.read(demo.MAX_UPLOAD_BYTES + 1)
            result = demo.analyse_upload(self.detector, name, content, faces=faces)
        except OSError as err:  # a vanished upload
            result = self._failed(name, f"the upload could not be read ({err.strerror or err}): try again.")
        except Exception as err:  # a bug, not bad input: a line in the page, the traceback in the server's log
            log.exception("analysing %s failed", name)
            result = self._failed(name, f"unexpected {type(err).__name__}: {err}")
        return page_for(result)

    def flag(self, result: demo.DemoResult | None, number: int | None, truth: str) -> str:
        """Flag face `number` of the analysed upload as `truth` (see `demo.save_flag`); say what happened."""
        if result is None:
            return "Nothing to flag yet: upload an image first."
        return html.escape(demo.save_flag(result, number, truth, self.flag_dir))


# ----------------------------------------------------------------------------- examples
def _save_png(array: np.ndarray, path: Path) -> Path:
    if not path.is_file():
        Image.fromarray(array).save(path)
    return path


def group_photo(faces: list[np.ndarray], side: int = 240, gap: int = 60) -> np.ndarray:
    """A photo of several faces side by side on a plain grey wall, each `side` px high, keeping its shape."""
    scaled = [np.asarray(Image.fromarray(face).resize((round(face.shape[1] * side / face.shape[0]), side),
                                                      Image.BICUBIC)) for face in faces]
    width = sum(face.shape[1] for face in scaled) + gap * (len(scaled) + 1)
    photo = np.full((side + 2 * gap, width, 3), 200, dtype=np.uint8)
    x = gap
    for face in scaled:
        photo[gap:gap + side, x:x + face.shape[1]] = face
        x += face.shape[1] + gap
    return photo


def example_roots() -> list[Path]:
    """Where the examples' test faces come from: $DEEPFAKE_DATA, else the lesson sets downloaded into data/."""
    if os.environ.get(config.DATA_ENV):
        return [Path(os.environ[config.DATA_ENV])]
    return [config.DATA_DIR / name for name in lesson_sets.NAMES if (config.DATA_DIR / name).is_dir()]


def write_examples(folder: str | os.PathLike = EXAMPLES_DIR, data_roots: list | None = None) -> list[Path]:
    """Example files for the page, written once into `folder`.

    Always: pictures scikit-image ships (public domain or CC0): NASA's portrait of Eileen Collins (one face),
    the same beside Lav Varshney's cameraman (two faces) and a coffee cup (no face). From each data root
    (default `example_roots()`): its first real and first fake test face, and, from the first root, three of
    its test faces side by side (two real, one fake).
    """
    import skimage.data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    astronaut, cameraman = skimage.data.astronaut(), np.repeat(skimage.data.camera()[..., None], 3, axis=-1)
    examples = [_save_png(astronaut, folder / "astronaut.png"),
                _save_png(np.concatenate([astronaut, cameraman], axis=1), folder / "two-people.png"),
                _save_png(skimage.data.coffee(), folder / "coffee-no-face.png")]
    for number, root in enumerate(example_roots() if data_roots is None else map(Path, data_roots)):
        examples += _test_faces(root, folder, group=number == 0)
    return examples


def _test_faces(root: Path, folder: Path, group: bool) -> list[Path]:
    """Copies of a data root's first real and first fake test face, and a photo of three of its test faces
    (none if it has no test split). Faces are taken in file name order, skipping images in which no face is found."""
    from helpers import data, faces, images

    try:
        frame = data.index_dataset(root, required=())
    except data.DatasetLayoutError:
        return []
    test = frame[frame["split"] == "test"].sort_values("path")
    wanted = {"real": 2 if group else 1, "fake": 1}
    picked = {class_name: [] for class_name in wanted}
    for path, class_name in zip(test["path"], test["class_name"]):
        if len(picked[class_name]) < wanted[class_name] and len(faces.find_faces(images.load_image(path))) == 1:
            picked[class_name].append(Path(path))
        if all(len(picked[name]) == count for name, count in wanted.items()):
            break
    copies = []
    for class_name, paths in picked.items():
        if paths:
            copy = folder / f"{root.name}-{class_name}{paths[0].suffix.lower()}"
            copy.write_bytes(paths[0].read_bytes())
            copies.append(copy)
    if group and len(picked["real"]) == 2 and picked["fake"]:
        three = [images.load_image(path) for path in (picked["real"][0], picked["fake"][0], picked["real"][1])]
        copies.append(_save_png(group_photo(three), folder / f"{root.name}-three-faces.png"))
    return copies


# ----------------------------------------------------------------------------- the app
def _photo_input(**kwargs) -> gr.Image:
    """An image input that hands the upload over as the file it was: gradio's own would open it first and
    answer a file it cannot read with an error of its own, instead of the page's message."""
    import gradio as gr

    photo = gr.Image(type="filepath", image_mode=None, **kwargs)
    opened = photo.preprocess

    def as_uploaded(payload):
        if payload is not None and payload.path:
            return payload.path
        return opened(payload)  # nothing, or a picture sent inline (a data: URL)

    photo.preprocess = as_uploaded  # on this one input: a subclass would make gradio write a .pyi beside this file
    return photo


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
    warning = demo.model_warning(detector)
    with gr.Blocks(title="Deepfake detector", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# Deepfake detector\nUpload a photo or a face crop. Each face is found, cropped the way the "
                    "model's training faces were, and scored on its own; the heat map shows where the evidence "
                    "for 'fake' lies. A verdict is a model's guess, not proof.")
        gr.Markdown(demo.describe_model(detector), elem_id="model-description")
        if warning:
            gr.HTML(f"<b>Warning:</b> {html.escape(warning)}", elem_id="model-warning")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                upload = _photo_input(label="Photo or face crop", sources=["upload", "clipboard", "webcam"],
                                      height=300, elem_id="upload", buttons=[])
                faces = gr.Radio(FACE_CHOICES, value="on", label="Faces", elem_id="faces",
                                 interactive=detector.crop_style is not None)
            with gr.Column(scale=2, min_width=280):
                message = gr.HTML(EMPTY_MESSAGE, elem_id="message", elem_classes="message")
                photo = gr.Image(label="The photo, each face found boxed and numbered", show_label=False, type="numpy",
                                 format="png", interactive=False, elem_id="photo", buttons=[])
                faces_data = gr.JSON(visible=False)  # for API clients: the page draws the cards instead
                state = gr.State(None)

                @gr.render(inputs=[state], triggers=[state.change])
                def cards(result):
                    if result is None:
                        return
                    if result.no_face:
                        whole = gr.Button("Score the whole image anyway", elem_id="score-whole")
                        whole.click(lambda path: web.analyse(path, "off").outputs(), inputs=[upload],
                                    outputs=[message, photo, faces_data, state], api_visibility="private",
                                    show_progress_on=[message])
                    for face in result.faces:
                        key = "whole" if face.number is None else face.number
                        with gr.Column(elem_classes="face-card", elem_id=f"face-{key}", key=f"face-{key}"):
                            gr.HTML(demo.face_html(face))
                            with gr.Row(elem_classes="flag-row"):
                                gr.HTML("Wrong verdict? Flag it:", elem_classes="flag-label")
                                buttons = {truth: gr.Button(f"It is {truth}", size="sm", elem_classes=f"flag-{truth}")
                                           for truth in config.CLASS_NAMES}
                            said = gr.HTML("", elem_classes="flag-message")
                            for truth, button in buttons.items():
                                button.click(partial(web.flag, number=face.number, truth=truth), inputs=[state],
                                             outputs=[said], api_visibility="private")

        if examples:
            gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Examples", examples_per_page=12,
                        elem_id="examples")

        def analyse(path, faces_mode):
            if not path:  # emptied: the result goes; the message stays (the browser's refusal of a file, said by
                return gr.skip(), *Page("", None, [], None).outputs()[1:]  # the page's script, or the clear event's)
            return web.analyse(path, faces_mode).outputs()

        outputs = [message, photo, faces_data, state]
        gr.on([upload.change, faces.change], analyse, inputs=[upload, faces], outputs=outputs, api_name="analyse",
              show_progress_on=[message]).then(None, js=SCROLL_TO_RESULT_JS)
        upload.clear(lambda: web.analyse(None).outputs(), outputs=outputs, api_visibility="private")
    app.queue(default_concurrency_limit=1)  # one model: analyses wait their turn
    return app


def serve(app: gr.Blocks, host: str | None = None, port: int | None = None, block: bool = True,
          quiet: bool = False) -> str:
    """Start the app's server and return its local URL; with block=True, serve until Ctrl-C, then close the
    server and raise KeyboardInterrupt (so the command exits with 130: gradio's own wait would swallow it).

    host, port: default $GRADIO_SERVER_NAME (else 127.0.0.1) and $GRADIO_SERVER_PORT (else 7860 or the next free).
    Nothing is asked of the internet: no share link, analytics or version check, no fonts from elsewhere.
    Gradio's own start-up lines are kept quiet (one suggests a share link); one line says where the page is.
    """
    import gradio as gr

    try:  # Ctrl-C while the server starts (its port may already answer) closes it too
        _, url, _ = app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True,
                               quiet=True, inline=False, max_file_size=demo.MAX_UPLOAD_BYTES, footer_links=["api"],
                               run_history=False, pwa=False, mcp_server=False, ssr_mode=False,
                               enable_monitoring=False, theme=gr.themes.Default(), css=CSS, js=BROWSER_ERRORS_JS)
        if not quiet:
            print(f"The demo is at {url} (Ctrl-C stops it).", flush=True)
        while block and app.is_running:
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
