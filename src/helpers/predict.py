"""Predict: p(fake) for an image, a photo's faces, or every image file in files and folders.

    deepfake-lessons predict MODEL_DIR PATH... [--csv OUT] [--faces auto|on|off] [--runtime auto|keras|litert]

`predict_image` and `predict_photo` take a model folder (or a loaded `detector.Detector`) and one
image. `predict_files` walks files and folders, decodes the next batch while the model scores this
one, and gives every file a row: a bad file gets its reason instead of a score, and the run goes
on. `to_frame` makes a table of the rows, and the command prints it and writes it as CSV.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import config
from helpers.detector import FACE_MODES, RUNTIMES, Detector, Prediction, as_detector
from helpers.errors import UserError
from helpers.files import printable, write_atomically
from helpers.images import ImageError, ImageSource, load_image, load_resized
from helpers.progress import bar as progress_bar

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DECODE_WORKERS = 4
PHOTOS_AT_ONCE = 8  # whole photos held decoded to find faces in, twice that while the next ones decode
BOX_COLUMNS = ("box_x", "box_y", "box_width", "box_height")


def predict_image(model_dir_or_detector: Detector | str | os.PathLike, source: ImageSource,
                  name: str | None = None) -> Prediction:
    """One call from a model folder (or Detector) and an image to a Prediction."""
    return as_detector(model_dir_or_detector).predict_image(source, name=name)


def predict_photo(model_dir_or_detector: Detector | str | os.PathLike, source: ImageSource,
                  name: str | None = None, faces: str = "auto") -> list[Prediction]:
    """One call from a model folder (or Detector) and a photo to a Prediction per face."""
    return as_detector(model_dir_or_detector).predict_photo(source, name=name, faces=faces)


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


def _load(path: Path, mode: str, image_size: int) -> tuple[np.ndarray | None, str | None]:
    """A file decoded for a face mode (resized for 'off', whole otherwise), or None and why not."""
    name = str(path)
    try:
        if mode == "off":
            return load_resized(path, image_size, name=name), None
        return load_image(path, name=name), None
    except ImageError as err:
        return None, str(err).removeprefix(f"{name}: ")  # load_image's message without the file name
    except OSError as err:  # unreadable (permissions, a vanished network drive): skip it, keep going
        return None, f"cannot read the file ({err.strerror or err})."


def predict_files(model_dir_or_detector: Detector | str | os.PathLike, paths, batch_size: int = 32,
                  progress: bool = True, faces: str = "off") -> list[Prediction]:
    """Score many files (folders are expanded). Bad files get a Prediction with `error` set; the run goes on.

    faces: "off" scores each image as it is (face crops, a test set); "auto" or "on" score each face
    found, one Prediction per face, as `predict_photo` does. What a folder holds but cannot be scored
    (links, unreadable sub-folders) comes last, also with `error` set. Finding faces needs each photo
    whole (a 12-megapixel one: 36 MB), so then at most PHOTOS_AT_ONCE make a batch.
    """
    detector = as_detector(model_dir_or_detector)
    mode = detector.face_mode(faces)
    files, skipped = expand_paths([paths] if isinstance(paths, (str, os.PathLike)) else paths)
    step = batch_size if mode == "off" else min(batch_size, PHOTOS_AT_ONCE)
    batches = [files[i:i + step] for i in range(0, len(files), step)]
    predictions = []
    with ThreadPoolExecutor(DECODE_WORKERS) as pool, progress_bar(total=len(files), show=progress, desc="predicting",
                                                                  unit="image", leave=False) as bar:
        def submit(batch):
            return [pool.submit(_load, path, mode, detector.image_size) for path in batch]

        pending = submit(batches[0]) if batches else []
        for index, batch in enumerate(batches):
            loaded = [future.result() for future in pending]
            if index + 1 < len(batches):  # decode the next batch while the model runs on this one
                pending = submit(batches[index + 1])
            predictions += detector.score(mode, [str(path) for path in batch], loaded)
            bar.update(len(batch))
    return predictions + [detector.failed(str(path), error) for path, error in skipped.items()]


def to_frame(predictions: list[Prediction]) -> pd.DataFrame:
    """Predictions as a table, one row each (one per face when faces were found); the box in four columns."""
    columns = [field.name for field in dataclasses.fields(Prediction) if field.name != "box"]
    rows = [{**dataclasses.asdict(p), **dict(zip(BOX_COLUMNS, p.box or (None,) * 4))} for p in predictions]
    frame = pd.DataFrame(rows, columns=[*columns, *BOX_COLUMNS])
    for column in ("faces_found", "face", *BOX_COLUMNS):
        frame[column] = frame[column].astype("Int64")  # whole numbers, blank where there is none
    return frame


# ----------------------------------------------------------------------------- command line
def report(predictions: list[Prediction]) -> str:
    """What the command prints: a line per scored image or face, a count, and each file left out with why."""
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


def write_csv(predictions: list[Prediction], path: str | os.PathLike) -> Path:
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
    predictions = predict_files(detector, args.paths, batch_size=args.batch_size, faces=args.faces)
    print(report(predictions))
    if args.csv:
        write_csv(predictions, args.csv)
        print(printable(f"Wrote {args.csv}"))
    if not any(p.ok for p in predictions):
        found = f"all {len(predictions)} files were left out" if predictions else "no image files were found"
        raise UserError(printable(f"nothing could be scored in {', '.join(args.paths)}: {found}."))
