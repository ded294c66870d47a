"""Use a saved model: p(fake) for one image, a list of files, or whole folders.

    python -m helpers.predict MODEL_DIR PATH... [--csv OUT] [--backend auto|keras|litert]

A `Detector` loads the model folder once. It scores images with the folder's LiteRT export
(model.tflite, see `helpers.export`) when that is present and fresh: several times faster on a CPU.
Otherwise it calls the Keras model through one compiled `tf.function`, so a single image costs
milliseconds rather than the ~50 ms that `model.predict` spends setting up each call. Choose with
`backend=` or $DEEPFAKE_BACKEND. Images are decoded exactly as in training (`images.load_resized`).
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

from helpers import export, saving
from helpers.images import ImageSource, load_resized

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DECODE_WORKERS = 4
BACKEND_ENV = "DEEPFAKE_BACKEND"  # auto | keras | litert
BACKENDS = ("auto", "keras", "litert")


@dataclass
class Prediction:
    """The verdict on one image. `error` says why an image could not be scored (then no label or score)."""

    source: str
    label: str | None
    p_fake: float | None
    threshold: float
    backbone: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def to_frame(predictions: list[Prediction]) -> pd.DataFrame:
    """Predictions as a table, one row each: source, label, p_fake, threshold, backbone, error."""
    columns = [field.name for field in dataclasses.fields(Prediction)]
    return pd.DataFrame([dataclasses.asdict(p) for p in predictions], columns=columns)


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


def resolve_backend(backend: str | None = None) -> str:
    """The backend asked for: the argument, else $DEEPFAKE_BACKEND, else `auto`."""
    backend = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}: choose one of {', '.join(BACKENDS)} "
                         f"(set ${BACKEND_ENV} or pass backend=...).")
    return backend


class Detector:
    """A loaded model folder: the Keras model, its sidecar, and fast p(fake) for images and files.

    `model` is always the Keras model (Grad-CAM needs its gradients); `backend` says what scores
    images: "litert" (the folder's fresh model.tflite) or "keras".
    """

    def __init__(self, model, metadata: dict, directory: str | os.PathLike | None = None,
                 backend: str | None = None, verbose: bool = False):
        import tensorflow as tf

        self.model = model
        self.metadata = metadata
        self.directory = Path(directory) if directory else None
        self.image_size = int(metadata["image_size"])
        self.threshold = float(metadata["threshold"])
        self.backbone = str(metadata["backbone"])
        # A fixed signature with a free batch dimension: traced once, whatever the batch size.
        signature = tf.TensorSpec((None, self.image_size, self.image_size, 3), tf.float32)
        self._forward = tf.function(lambda images: model(images, training=False)[:, 1],
                                    input_signature=[signature])
        self._runner, self.backend_reason = self._choose_runner(resolve_backend(backend))
        self.backend = "keras" if self._runner is None else "litert"
        if verbose:
            print(f"using {self.backend_reason}")

    def _choose_runner(self, backend: str) -> tuple[export.TFLiteRunner | None, str]:
        """The LiteRT runner to use (or None for Keras), and a line saying which and why."""
        if backend == "keras":
            return None, "Keras: asked for (backend='keras')"
        if self.directory is None:
            reason = "the model was not loaded from a folder, so it has no export"
        else:
            try:
                runner = export.load_runner(self.directory)
                return runner, f"LiteRT ({export.runtime_name().split()[0]}) {export.EXPORT_FILE}"
            except export.ExportError as err:
                reason = str(err)
        if backend == "litert":
            raise export.ExportError(f"LiteRT was asked for, but {reason}.")
        if self.directory is not None and export.is_exported(self.directory):  # broken, not just absent
            warnings.warn(f"Not using {export.EXPORT_FILE}: {reason}; predicting with Keras.", stacklevel=4)
        return None, f"Keras: {reason}"

    @classmethod
    def load(cls, model_dir: str | os.PathLike, verbose: bool = True, backend: str | None = None) -> Detector:
        """Load a saved model folder (see `saving.load_model`); raises saving.ModelFileError if it is damaged.

        backend: "auto" (LiteRT when model.tflite is fresh, else Keras), "keras" or "litert" (an error
        when the export is missing or stale); default $DEEPFAKE_BACKEND, else "auto".
        """
        backend = resolve_backend(backend)  # a typo fails before the slow part
        model, metadata = saving.load_model(model_dir, verbose=verbose)
        return cls(model, metadata, model_dir, backend=backend, verbose=verbose)

    def __repr__(self) -> str:
        return (f"Detector({self.backbone}, {self.image_size} px, threshold {self.threshold:.3f}, "
                f"{self.backend}, from {self.directory or 'memory'})")

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

    def predict_image(self, source: ImageSource, name: str | None = None) -> Prediction:
        """Score one image: a path, bytes, a PIL image or an array. Bad input raises ValueError (a plain message)."""
        name = name or _source_name(source)
        image = load_resized(source, self.image_size, name=name)
        return self._prediction(name, self.p_fake(image[None])[0])

    def _load(self, path: Path) -> tuple[np.ndarray | None, str | None]:
        name = str(path)
        try:
            return load_resized(path, self.image_size, name=name), None
        except ValueError as err:
            return None, str(err).removeprefix(f"{name}: ")  # load_image's message without the file name
        except OSError as err:  # unreadable (permissions, a vanished network drive): skip it, keep going
            return None, f"cannot read the file ({err.strerror or err})."

    def predict_files(self, paths, batch_size: int = 32, progress: bool = True) -> list[Prediction]:
        """Score many files (folders are expanded). Bad files get a Prediction with `error` set; the run goes on.

        What a folder holds but cannot be scored (links, unreadable sub-folders) comes last, also with `error` set.
        """
        from tqdm.auto import tqdm

        files, skipped = expand_paths([paths] if isinstance(paths, (str, os.PathLike)) else paths)
        batches = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
        predictions = []
        with ThreadPoolExecutor(DECODE_WORKERS) as pool, tqdm(total=len(files), desc="predicting", unit="image",
                                                              disable=not progress, leave=False) as bar:
            pending = [pool.submit(self._load, path) for path in batches[0]] if batches else []
            for index, batch in enumerate(batches):
                loaded = [future.result() for future in pending]
                if index + 1 < len(batches):  # decode the next batch while the model runs on this one
                    pending = [pool.submit(self._load, path) for path in batches[index + 1]]
                predictions += self._score_batch(batch, loaded)
                bar.update(len(batch))
        return predictions + [Prediction(str(path), None, None, self.threshold, self.backbone, error)
                              for path, error in skipped.items()]

    def _score_batch(self, paths: list[Path], loaded: list[tuple[np.ndarray | None, str | None]]) -> list[Prediction]:
        good = [image for image, _ in loaded if image is not None]
        scores = iter(self.p_fake(np.stack(good)) if good else [])
        return [self._prediction(str(path), next(scores)) if error is None
                else Prediction(str(path), None, None, self.threshold, self.backbone, error)
                for path, (_, error) in zip(paths, loaded)]


@functools.lru_cache(maxsize=2)
def _cached_detector(directory: str, backend: str, file_times: tuple[int, ...]) -> Detector:
    return Detector.load(directory, backend=backend)


def as_detector(model_dir_or_detector: Detector | str | os.PathLike, backend: str | None = None) -> Detector:
    """A Detector as given, or the one for a model folder (kept loaded until its files change)."""
    if isinstance(model_dir_or_detector, Detector):
        return model_dir_or_detector
    directory = Path(model_dir_or_detector).resolve()
    files = (directory / name for name in (saving.SIDECAR_FILE, saving.MODEL_FILE, saving.WEIGHTS_FILE,
                                           export.EXPORT_FILE))
    file_times = tuple(path.stat().st_mtime_ns if path.is_file() else 0 for path in files)
    return _cached_detector(str(directory), resolve_backend(backend), file_times)


def predict_image(model_dir_or_detector: Detector | str | os.PathLike, source: ImageSource,
                  name: str | None = None) -> Prediction:
    """One call from a model folder (or Detector) and an image to a Prediction."""
    return as_detector(model_dir_or_detector).predict_image(source, name=name)


# ----------------------------------------------------------------------------- command line
def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write to a temporary name, then rename: an interrupted run never leaves half a CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_csv(temporary, index=False)
    os.replace(temporary, path)


def _report(predictions: list[Prediction]) -> str:
    table = to_frame([p for p in predictions if p.ok])
    lines = []
    if len(table):
        table = table.rename(columns={"source": "file"})[["file", "p_fake", "label"]]
        lines.append(table.to_string(index=False, formatters={"p_fake": "{:.3f}".format}))
    bad = [p for p in predictions if not p.ok]
    lines.append(f"{len(table)} images scored, {len(bad)} left out.")
    lines += [f"left out: {p.source}: {p.error}" for p in bad]
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.predict", description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", help="a saved model folder (model.keras, model.weights.h5, model.json)")
    parser.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--csv", type=Path, help="also write the predictions to this CSV file")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", choices=BACKENDS,
                        help=f"auto: model.tflite when fresh, else Keras (default: ${BACKEND_ENV} or auto)")
    args = parser.parse_args(argv)
    try:
        detector = as_detector(args.model_dir, backend=args.backend)
        print(detector)
        predictions = detector.predict_files(args.paths, batch_size=args.batch_size)
        print(_report(predictions))
        if args.csv:
            _write_csv(to_frame(predictions), args.csv)
            print(f"Wrote {args.csv}")
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not any(p.ok for p in predictions):
        found = f"all {len(predictions)} files were left out" if predictions else "no image files were found"
        print(f"error: nothing could be scored in {', '.join(args.paths)}: {found}.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main())
