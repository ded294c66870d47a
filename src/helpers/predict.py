"""Use a saved model: p(fake) for one image, a list of files, or whole folders.

    python -m helpers.predict MODEL_DIR PATH... [--csv OUT] [--faces auto|on|off] [--runtime auto|keras|litert]

A `Detector` loads the model folder once. It scores images with the folder's LiteRT export
(model.tflite, see `helpers.export`) when that is present and fresh: several times faster on a CPU.
Otherwise it calls the Keras model through one compiled `tf.function`, so a single image costs
milliseconds rather than the ~50 ms that `model.predict` spends setting up each call. Choose with
`runtime=` or $DEEPFAKE_RUNTIME. Images are decoded exactly as in training (`images.load_resized`).

A whole photo is not what the model learnt from: `predict_photo` (and `--faces`) first finds each
face and crops it the way the model's training images were cropped (`helpers.faces`), then scores
every face on its own. `predict_image` and `predict_files` score images as given, unless asked to
find faces: they are also how test sets of face crops are scored.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import config, export, saving
from helpers.errors import BadArgumentError, UserError
from helpers.faces import CropStyle, Face, crop_face, find_faces_in_many
from helpers.files import printable, write_atomically
from helpers.images import ImageError, ImageSource, load_image, load_resized, resize

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DECODE_WORKERS = 4
PHOTOS_AT_ONCE = 8  # whole photos held decoded to find faces in, twice that while the next ones decode
RUNTIMES = ("auto", "keras", "litert")
FACE_MODES = ("auto", "on", "off")  # find faces when the model records a crop style / always / never
NO_FACE = "no face found (score the whole image with faces='off', or --faces off)."


class NoCropStyleError(UserError, ValueError):
    """Faces were asked for, but the model's sidecar does not say how its training faces were cropped."""


@dataclass
class Prediction:
    """The verdict on one image. `error` says why an image could not be scored (then no label or score)."""

    source: str
    label: str | None
    p_fake: float | None
    threshold: float
    backbone: str
    error: str | None = None
    faces_found: int | None = None  # how many faces the photo held; None: nobody looked
    face: int | None = None  # which of them this row scores (1 = leftmost); None: the whole image
    box: tuple[int, int, int, int] | None = None  # that face's x, y, width, height in the photo
    face_confidence: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


BOX_COLUMNS = ("box_x", "box_y", "box_width", "box_height")


def to_frame(predictions: list[Prediction]) -> pd.DataFrame:
    """Predictions as a table, one row each (one per face when faces were found); the box in four columns."""
    columns = [field.name for field in dataclasses.fields(Prediction) if field.name != "box"]
    rows = [{**dataclasses.asdict(p), **dict(zip(BOX_COLUMNS, p.box or (None,) * 4))} for p in predictions]
    frame = pd.DataFrame(rows, columns=[*columns, *BOX_COLUMNS])
    for column in ("faces_found", "face", *BOX_COLUMNS):
        frame[column] = frame[column].astype("Int64")  # whole numbers, blank where there is none
    return frame


def _walk(folder: Path) -> tuple[list[Path], dict[Path, str]]:
    """A folder's visible image files (sorted), and the links and unreadable folders skipped, with why."""
    files, skipped = [], {}

    def unreadable(err: OSError) -> None:
        skipped[Path(err.filename)] = f"cannot read the folder ({err.strerror or err})."

    for top, folders, names in os.walk(folder, onerror=unreadable):
        folders[:] = [name for name in folders if not name.startswith(".")]
        images = [name for name in names if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")]
        for name in folders + images:  # a linked folder is listed in `folders`; os.walk does not enter it
            path = Path(top) / name
            if path.is_symlink():
                skipped[path] = "a symbolic link: not followed inside a folder (name it to score what it points to)."
            elif path.is_file():
                files.append(path)
    return sorted(files), skipped


def expand_paths(paths) -> tuple[list[Path], dict[Path, str]]:
    """Files stay as given; folders become their image files (recursive, sorted, hidden ones skipped).

    Also returns what was skipped inside folders, with why: symbolic links and folders that cannot be read.
    """
    expanded, skipped = [], {}
    for path in map(Path, paths):
        if path.is_dir():
            files, passed_over = _walk(path)
            expanded += files
            skipped.update(passed_over)
        else:
            expanded.append(path)  # a missing file is reported by predict_files, not dropped silently
    return expanded, skipped


def _source_name(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "filename", "") or "image")  # a PIL image opened from a file knows its name


def resolve_runtime(runtime: str | None = None) -> str:
    """The runtime asked for: the argument, else $DEEPFAKE_RUNTIME, else `auto`."""
    runtime = (runtime or os.environ.get(config.RUNTIME_ENV) or "auto").strip().lower()
    if runtime not in RUNTIMES:
        raise BadArgumentError(f"Unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)} "
                               f"(set ${config.RUNTIME_ENV} or pass runtime=...).")
    return runtime


class Detector:
    """A loaded model folder: the Keras model, its sidecar, and fast p(fake) for images and files.

    `model` is always the Keras model (Grad-CAM needs its gradients); `runtime` says what scores
    images: "litert" (the folder's fresh model.tflite) or "keras".
    """

    def __init__(self, model, metadata: dict, directory: str | os.PathLike | None = None,
                 runtime: str | None = None, verbose: bool = False):
        import tensorflow as tf

        self.model = model
        self.metadata = metadata
        self.directory = Path(directory) if directory else None
        self.image_size = int(metadata["image_size"])
        self.threshold = float(metadata["threshold"])
        self.backbone = str(metadata["backbone"])
        self.crop_style = CropStyle.from_metadata(metadata)  # None: a model trained before face finding
        # A fixed signature with a free batch dimension: traced once, whatever the batch size.
        signature = tf.TensorSpec((None, self.image_size, self.image_size, 3), tf.float32)
        self._forward = tf.function(lambda images: model(images, training=False)[:, 1],
                                    input_signature=[signature])
        self._runner, self.runtime_reason = self._choose_runner(resolve_runtime(runtime))
        self.runtime = "keras" if self._runner is None else "litert"
        if verbose:
            print(f"using {self.runtime_reason}")

    def _choose_runner(self, runtime: str) -> tuple[export.TFLiteRunner | None, str]:
        """The LiteRT runner to use (or None for Keras), and a line saying which and why."""
        if runtime == "keras":
            return None, "Keras: asked for (runtime='keras')"
        if self.directory is None:
            reason = "the model was not loaded from a folder, so it has no export"
        else:
            try:
                runner = export.load_runner(self.directory)
                return runner, f"LiteRT ({export.runtime_name().split()[0]}) {export.EXPORT_FILE}"
            except export.ExportError as err:
                reason = str(err)
        if runtime == "litert":
            raise export.ExportError(f"LiteRT was asked for, but {reason}.")
        if self.directory is not None and export.is_exported(self.directory):  # broken, not just absent
            warnings.warn(f"Not using {export.EXPORT_FILE}: {reason}; predicting with Keras.", stacklevel=4)
        return None, f"Keras: {reason}"

    @classmethod
    def load(cls, model_dir: str | os.PathLike, verbose: bool = True, runtime: str | None = None) -> Detector:
        """Load a saved model folder (see `saving.load_model`); raises saving.ModelFileError if it is damaged.

        runtime: "auto" (LiteRT when model.tflite is fresh, else Keras), "keras" or "litert" (an error
        when the export is missing or stale); default $DEEPFAKE_RUNTIME, else "auto".
        """
        runtime = resolve_runtime(runtime)  # a typo fails before the slow part
        model, metadata = saving.load_model(model_dir, verbose=verbose)
        return cls(model, metadata, model_dir, runtime=runtime, verbose=verbose)

    def __repr__(self) -> str:
        return printable(f"Detector({self.backbone}, {self.image_size} px, threshold {self.threshold:.3f}, "
                         f"{self.runtime}, from {self.directory or 'memory'})")

    def label(self, p_fake: float) -> str:
        """'fake' at or above the model's threshold, else 'real' (the rule metrics.at_threshold uses)."""
        return "fake" if p_fake >= self.threshold else "real"

    def p_fake(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """p(fake) for an (N, size, size, 3) array of 0-255 RGB images, already at the model's size."""
        images = np.asarray(images)
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"Expected images of shape (N, {', '.join(map(str, expected))}), got {images.shape}; "
                             "use images.load_resized to prepare them.")
        forward = self._forward if self._runner is None else (lambda batch: self._runner(batch)[:, 1])
        scores = [np.asarray(forward(images[i:i + batch_size].astype(np.float32)))
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(scores).astype(float) if scores else np.zeros(0)

    def _prediction(self, source: str, p_fake: float) -> Prediction:
        return Prediction(source, self.label(p_fake), float(p_fake), self.threshold, self.backbone)

    def _failed(self, source: str, error: str, **face) -> Prediction:
        return Prediction(source, None, None, self.threshold, self.backbone, error, **face)

    def face_mode(self, faces: str) -> str:
        """'auto', 'on' or 'off' as it applies to this model: 'auto' is 'off' when it records no crop style."""
        if faces not in FACE_MODES:
            raise BadArgumentError(f"Unknown faces mode {faces!r}: choose one of {', '.join(FACE_MODES)}.")
        if self.crop_style is None and faces == "on":
            raise NoCropStyleError(f"{self.directory or 'This model'}: its model.json records no face crop style "
                                   "(it was trained before face finding existed); retrain it, or score whole "
                                   "images with faces='off'.")
        return "off" if self.crop_style is None else faces

    def predict_image(self, source: ImageSource, name: str | None = None) -> Prediction:
        """Score one image as it is (a face crop): a path, bytes, a PIL image or an array.

        Bad input raises ValueError (a plain message). For a whole photo use `predict_photo`.
        """
        name = name or _source_name(source)
        image = load_resized(source, self.image_size, name=name)
        return self._prediction(name, self.p_fake(image[None])[0])

    def predict_photo(self, source: ImageSource, name: str | None = None, faces: str = "auto") -> list[Prediction]:
        """Score each face in a photo, cropped like the training data: one Prediction per face.

        faces: "auto" finds faces when the model records its crop style and scores the whole image when
        none is found; "on" reports "no face found" instead; "off" scores the whole image.
        """
        mode = self.face_mode(faces)
        name = name or _source_name(source)
        image = load_resized(source, self.image_size, name=name) if mode == "off" else load_image(source, name=name)
        return self._score(mode, [name], [(image, None)])

    def _load(self, path: Path, mode: str) -> tuple[np.ndarray | None, str | None]:
        name = str(path)
        try:
            if mode == "off":
                return load_resized(path, self.image_size, name=name), None
            return load_image(path, name=name), None
        except ImageError as err:
            return None, str(err).removeprefix(f"{name}: ")  # load_image's message without the file name
        except OSError as err:  # unreadable (permissions, a vanished network drive): skip it, keep going
            return None, f"cannot read the file ({err.strerror or err})."

    def predict_files(self, paths, batch_size: int = 32, progress: bool = True, faces: str = "off") -> list[Prediction]:
        """Score many files (folders are expanded). Bad files get a Prediction with `error` set; the run goes on.

        faces: "off" scores each image as it is (face crops, a test set); "auto" or "on" score each face
        found, one Prediction per face, as `predict_photo` does. What a folder holds but cannot be scored
        (links, unreadable sub-folders) comes last, also with `error` set. Finding faces needs each photo
        whole (a 12-megapixel one: 36 MB), so then at most PHOTOS_AT_ONCE make a batch.
        """
        from tqdm.auto import tqdm

        mode = self.face_mode(faces)
        files, skipped = expand_paths([paths] if isinstance(paths, (str, os.PathLike)) else paths)
        step = batch_size if mode == "off" else min(batch_size, PHOTOS_AT_ONCE)
        batches = [files[i:i + step] for i in range(0, len(files), step)]
        predictions = []
        with ThreadPoolExecutor(DECODE_WORKERS) as pool, tqdm(total=len(files), desc="predicting", unit="image",
                                                              disable=not progress, leave=False) as bar:
            pending = [pool.submit(self._load, path, mode) for path in batches[0]] if batches else []
            for index, batch in enumerate(batches):
                loaded = [future.result() for future in pending]
                if index + 1 < len(batches):  # decode the next batch while the model runs on this one
                    pending = [pool.submit(self._load, path, mode) for path in batches[index + 1]]
                predictions += self._score(mode, [str(path) for path in batch], loaded)
                bar.update(len(batch))
        return predictions + [self._failed(str(path), error) for path, error in skipped.items()]

    def photo_inputs(self, photo: np.ndarray, faces: str = "auto") -> list[tuple[Face | None, np.ndarray | None]]:
        """What the model sees of a decoded photo: each face found with its crop at the model's size.

        (None, the whole image resized) when faces are not looked for, or none is found in 'auto';
        [(None, None)] when none is found in 'on'.
        """
        mode = self.face_mode(faces)
        return self._inputs(mode, photo, find_faces_in_many([photo])[0] if mode != "off" else [])

    def _inputs(self, mode: str, image: np.ndarray, found: list[Face]) -> list[tuple[Face | None, np.ndarray | None]]:
        if found:
            return [(face, resize(crop_face(image, face, self.crop_style), self.image_size)) for face in found]
        return [(None, None if mode == "on" else resize(image, self.image_size))]

    def _score(self, mode: str, names: list[str], loaded: list[tuple[np.ndarray | None, str | None]]) -> list[Prediction]:
        """Predictions for decoded images (resized ones when mode is 'off', whole photos otherwise)."""
        photos = [image for image, _ in loaded if image is not None]
        found = iter(find_faces_in_many(photos) if mode != "off" and photos else [[]] * len(photos))
        rows = []  # (name, the model's input or None, why not, what the row says about faces)
        for name, (image, error) in zip(names, loaded):
            if image is None:
                rows.append((name, None, error, {}))
                continue
            faces_here = next(found)
            for number, (face, model_input) in enumerate(self._inputs(mode, image, faces_here), start=1):
                about = {} if mode == "off" else {"faces_found": len(faces_here)}
                if face is not None:
                    about.update(face=number, box=face.box(), face_confidence=face.confidence)
                rows.append((name, model_input, NO_FACE if model_input is None else None, about))
        inputs = [model_input for _, model_input, _, _ in rows if model_input is not None]
        scores = iter(self.p_fake(np.stack(inputs)) if inputs else [])
        return [self._failed(name, error, **face) if model_input is None
                else dataclasses.replace(self._prediction(name, next(scores)), **face)
                for name, model_input, error, face in rows]


@functools.lru_cache(maxsize=2)
def _cached_detector(directory: str, runtime: str, file_times: tuple[int, ...]) -> Detector:
    return Detector.load(directory, runtime=runtime)


def as_detector(model_dir_or_detector: Detector | str | os.PathLike, runtime: str | None = None) -> Detector:
    """A Detector as given, or the one for a model folder (kept loaded until its files change)."""
    if isinstance(model_dir_or_detector, Detector):
        return model_dir_or_detector
    directory = Path(model_dir_or_detector).resolve()
    files = (directory / name for name in (saving.SIDECAR_FILE, saving.MODEL_FILE, saving.WEIGHTS_FILE,
                                           export.EXPORT_FILE))
    file_times = tuple(path.stat().st_mtime_ns if path.is_file() else 0 for path in files)
    return _cached_detector(str(directory), resolve_runtime(runtime), file_times)


def predict_image(model_dir_or_detector: Detector | str | os.PathLike, source: ImageSource,
                  name: str | None = None) -> Prediction:
    """One call from a model folder (or Detector) and an image to a Prediction."""
    return as_detector(model_dir_or_detector).predict_image(source, name=name)


def predict_photo(model_dir_or_detector: Detector | str | os.PathLike, source: ImageSource,
                  name: str | None = None, faces: str = "auto") -> list[Prediction]:
    """One call from a model folder (or Detector) and a photo to a Prediction per face."""
    return as_detector(model_dir_or_detector).predict_photo(source, name=name, faces=faces)


# ----------------------------------------------------------------------------- command line
def _report(predictions: list[Prediction]) -> str:
    table = to_frame([p for p in predictions if p.ok])
    lines = []
    if len(table):
        columns = ["file", "face", "p_fake", "label"] if table["face"].notna().any() else ["file", "p_fake", "label"]
        table = table.rename(columns={"source": "file"})[columns]
        lines.append(table.to_string(index=False, formatters={"p_fake": "{:.3f}".format}))
    bad = [p for p in predictions if not p.ok]
    images_scored = table["file"].nunique() if len(table) else 0
    faces = f" ({len(table)} faces)" if len(table) and table["face"].notna().any() else ""
    lines.append(f"{images_scored} images scored{faces}, {len(bad)} left out.")
    lines += [f"left out: {p.source}: {p.error}" for p in bad]
    return printable("\n".join(lines))


def _write_csv(predictions: list[Prediction], path: str | os.PathLike) -> Path:
    """Write `to_frame(predictions)` as CSV (atomically), with each file name as it is printed (`files.printable`).

    A name that is not valid UTF-8 cannot be written as it is: its undecodable bytes become \\xNN escapes.
    """
    table = to_frame(predictions)
    for column in ("source", "error"):
        table[column] = table[column].map(printable, na_action="ignore")
    return write_atomically(path, lambda temporary: table.to_csv(temporary, index=False))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (helpers.cli runs it)."""
    parser.add_argument("model_dir", help="a saved model folder (model.keras, model.weights.h5, model.json)")
    parser.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--csv", type=Path, help="also write the predictions to this CSV file (file names as "
                                                 "printed: a name's bytes that are not UTF-8 as \\xNN)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--runtime", choices=RUNTIMES,
                        help=f"auto: model.tflite when fresh, else Keras (default: ${config.RUNTIME_ENV} or auto)")
    parser.add_argument("--faces", choices=FACE_MODES, default="auto",
                        help="find each face and crop it like the training data, one row per face (auto: when the "
                             "model records its crop style, and the whole image when no face is found; on: report "
                             "'no face found' instead; off: score each image as it is)")


def run(args: argparse.Namespace) -> None:
    detector = as_detector(args.model_dir, runtime=args.runtime)
    print(detector)
    predictions = detector.predict_files(args.paths, batch_size=args.batch_size, faces=args.faces)
    print(_report(predictions))
    if args.csv:
        _write_csv(predictions, args.csv)
        print(printable(f"Wrote {args.csv}"))
    if not any(p.ok for p in predictions):
        found = f"all {len(predictions)} files were left out" if predictions else "no image files were found"
        raise UserError(printable(f"nothing could be scored in {', '.join(args.paths)}: {found}."))


if __name__ == "__main__":
    from helpers import cli

    sys.exit(cli.run_command("predict"))
