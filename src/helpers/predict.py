"""Predict: p(fake) for an image, a photo's faces, or every image file in files and folders.

    deepfake-lessons predict MODEL_DIR PATH... [--csv OUT [--overwrite]] [--faces auto|on|off] [--runtime auto|keras|litert]

`predict_image` and `predict_photo` take a model folder (or a loaded `detector.Detector`) and one
image. `predict_files` walks files and folders, decodes the next batch while the model scores this
one, and gives every file a row: a bad file gets its reason instead of a score, and the run goes
on. `to_frame` makes a table of the rows, and the command prints it and writes it as CSV (never over
an existing file unless --overwrite, never into a model folder: `model_folders.check_result_file`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import arguments, config, model_folders
from helpers.detector import FACE_MODES, RUNTIMES, Detector, Prediction, as_detector
from helpers.errors import BadArgumentError, UserError
from helpers.files import one_line, printable, write_atomically
from helpers.images import ImageError, ImageSource, load_image, load_resized
from helpers.progress import bar as progress_bar

# What a folder walk scores; a file it cannot decode (HEIC without a plugin, say) is left out with its reason.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".avif", ".heic", ".heif"}
PLUGIN_HINTS = dict.fromkeys((".heic", ".heif"), "HEIC and HEIF photos need the pillow-heif package, or convert "
                                                  "them to JPEG")
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
        reason = str(err).removeprefix(f"{name}: ")  # load_image's message without the file name
        hint = PLUGIN_HINTS.get(path.suffix.lower())
        return None, f"{reason.removesuffix('.')} ({hint})." if hint and "PIL can read" in reason else reason
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
    if batch_size < 1:
        raise BadArgumentError(f"batch_size must be 1 or more, not {batch_size}.")
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
def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def report(predictions: list[Prediction]) -> str:
    """What the command prints: a line per scored image or face, a count, and each file left out with why.

    File names are shown on one line each (`files.one_line`): a name holding a newline cannot forge a line.
    """
    table = to_frame([p for p in predictions if p.ok]).rename(columns={"source": "file"})
    bad = [p for p in predictions if not p.ok]
    has_face = table["face"].notna()
    lines = []
    if len(table):
        shown = table.assign(file=table["file"].map(one_line))
        columns = ["file", "p_fake", "label"]
        if has_face.any():  # a row without a face is an image scored whole (no face was found in it)
            shown["face"] = [str(face) if found else "whole" for face, found in zip(shown["face"], has_face)]
            columns.insert(1, "face")
        lines.append(shown[columns].to_string(index=False, formatters={"p_fake": "{:.3f}".format}))
    faceless = table.loc[table["faces_found"].eq(0).fillna(False).astype(bool), "file"].nunique()  # none found
    parts = [_counted(int(has_face.sum()), "face")] if has_face.any() else []
    parts += [f"{_counted(faceless, 'image')} with no face found, scored whole"] if faceless else []
    summary = f"{_counted(table['file'].nunique(), 'image')} scored" + (f" ({'; '.join(parts)})" if parts else "")
    lines.append(f"{summary}, {len(bad)} left out.")
    lines += [f"left out: {one_line(p.source)}: {one_line(p.error)}" for p in bad]
    return "\n".join(lines)


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
    parser.add_argument("--overwrite", action="store_true", help="replace the --csv file if it exists")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=32)
    parser.add_argument("--runtime", choices=RUNTIMES,
                        help=f"auto: model.tflite when fresh, else Keras (default: ${config.RUNTIME_ENV} or auto)")
    parser.add_argument("--faces", choices=FACE_MODES, default="auto",
                        help="find each face and crop it like the training data, one row per face (auto: when the "
                             "model records its crop style, and the whole image when no face is found; on: report "
                             "'no face found' instead; off: score each image as it is)")


def run(args: argparse.Namespace) -> None:
    if args.csv:  # before the model loads and the files are scored: a refusal costs nothing
        model_folders.check_result_file(args.csv, args.overwrite)
    detector = as_detector(args.model_dir, runtime=args.runtime)
    print(detector)
    predictions = predict_files(detector, args.paths, batch_size=args.batch_size, faces=args.faces)
    print(report(predictions))
    if args.csv:
        model_folders.check_result_file(args.csv, args.overwrite)  # again: a file may have appeared meanwhile
        write_csv(predictions, args.csv)
        print(one_line(f"Wrote {args.csv}"))
    if not any(p.ok for p in predictions):
        found = f"all {len(predictions)} files were left out" if predictions else "no image files were found"
        raise UserError(one_line(f"nothing could be scored in {', '.join(args.paths)}: {found}."))
