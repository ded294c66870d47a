"""The dataset: find the images, check them, split them, and load them for figures.

Two layouts are recognised (folder names in any capitalisation; two folders whose names differ only
by it, such as Real/ and real/, are refused, as is a root holding both layouts):

    splits (the Kaggle "Deepfake and real images" layout)     flat (split here, 70/15/15)
    ROOT/Train/Real/*.jpg   ROOT/Train/Fake/*.jpg               ROOT/real/*.jpg
    ROOT/Validation/...     (also "val" or "valid")             ROOT/fake/*.jpg
    ROOT/Test/...

Labels are defined once, in `config.CLASS_NAMES`: 0 = real, 1 = fake. Nothing in this module ever
deletes, moves or rewrites a file in the data root, and the scan follows no symbolic link out of it.

Command line: `deepfake-lessons scan [ROOT]`, or `python -m helpers scan|download|import` (see `--help`).
"""
from __future__ import annotations

import argparse
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from helpers import config, files, lesson_sets
from helpers.config import CLASS_NAMES, SPLITS  # lessons 00 and 05 read data.CLASS_NAMES
from helpers.errors import UserError
from helpers.file_cache import measure_files
from helpers.images import load_image, load_resized

FLAT_FRACTIONS = (0.70, 0.15, 0.15)
_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation",
                  "val": "validation", "valid": "validation", "test": "test", "testing": "test"}
_CLASS_ALIASES = {"real": "real", "fake": "fake"}

EXPECTED_LAYOUT = """Expected one of these layouts (folder names in any capitalisation):
  ROOT/Train/Real, ROOT/Train/Fake, ROOT/Validation/Real, ... ROOT/Test/Fake   (also Val or Valid)
  ROOT/real, ROOT/fake                                   (split 70/15/15 here, the same on every machine)"""
LAYOUT_HINT = ("expected ROOT/Train|Validation|Test/Real|Fake (also Val or Valid) or ROOT/real and ROOT/fake, "
               "in any capitalisation")  # EXPECTED_LAYOUT in one line, for error messages
OUTSIDE_ROOT = "a symbolic link out of the data root: not followed (copy the file into the data root)."


class DatasetLayoutError(UserError, ValueError):
    """The folder does not hold images in a layout we understand."""


class AmbiguousLayoutError(DatasetLayoutError):
    """The folder holds data, but in two ways at once (Real/ and real/, both layouts): which to use is the user's call."""


def _subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted."""
    return [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def _named_subdirs(folder: Path, aliases: dict[str, str], kind: str) -> dict[str, Path]:
    """The visible sub-folders named (in any capitalisation) as one of `aliases`, by what they stand for.

    Two that stand for the same split or class (Real/ and real/, Val/ and Validation/) are refused,
    naming both: taking either one would leave the other's images out.
    """
    found = {}
    for path in _subdirs(folder):
        meaning = aliases.get(path.name.lower())
        if meaning in found:
            raise AmbiguousLayoutError(f"{folder} has two folders for the {meaning} {kind}, {found[meaning].name} and "
                                     f"{path.name}: keep one (move the other's images into it).")
        if meaning:
            found[meaning] = path
    return found


def _class_dirs(folder: Path) -> dict[str, Path]:
    found = _named_subdirs(folder, _CLASS_ALIASES, "class")
    missing = [c for c in CLASS_NAMES if c not in found]
    if missing:
        raise DatasetLayoutError(f"{folder} has no {' or '.join(missing)} folder: {LAYOUT_HINT}.")
    return found


def _files(folder: Path) -> list[Path]:
    """Every visible file below `folder`, sorted: images and non-images alike (the scan sorts them)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _flat_split(names: list[str], seed: int) -> list[str]:
    """Assign 70/15/15 by a hash of each file name and the seed: independent of file-system order.

    A name that is not valid UTF-8 is hashed too (`files.text_bytes`); every other name as it always was.
    """
    order = sorted(names, key=lambda n: hashlib.sha256(files.text_bytes(f"{seed}:{n}")).hexdigest())
    n_train = round(len(order) * FLAT_FRACTIONS[0])
    n_val = round(len(order) * FLAT_FRACTIONS[1])
    split_of = {n: ("train" if i < n_train else "validation" if i < n_train + n_val else "test")
                for i, n in enumerate(order)}
    return [split_of[n] for n in names]


def find_layout(root: Path) -> tuple[str, Path]:
    """Return ("splits" | "flat", folder), looking one level down if the root only wraps the data."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"Data root {root} does not exist or is not a folder: get data with "
                                 f"`deepfake-lessons download` or set ${config.DATA_ENV} ({LAYOUT_HINT}).")
    splits = _named_subdirs(root, _SPLIT_ALIASES, "split")
    classes = _named_subdirs(root, _CLASS_ALIASES, "class")
    if splits and classes:
        names = ", ".join(path.name for path in [*splits.values(), *classes.values()])
        raise AmbiguousLayoutError(f"{root} holds both layouts ({names}): split folders and real/fake folders side "
                                 "by side; move one of the two out, so that no image is left out unseen.")
    if splits:
        return "splits", root
    if classes:
        return "flat", root
    subdirs = _subdirs(root)
    if len(subdirs) == 1:  # e.g. a Kaggle zip that unpacks into "Dataset/"
        return find_layout(subdirs[0])
    raise DatasetLayoutError(f"{root} holds neither split folders nor real/fake folders: {LAYOUT_HINT}.")


def index_dataset(root: str | os.PathLike, seed: int = config.SEED,
                  required: tuple[str, ...] = SPLITS) -> pd.DataFrame:
    """One row per file: path, relpath (from the root), split, label, class_name, and group where known.

    `group` names the images that come from one source (`lesson_sets.source_groups`: the source video
    of each `dfdc-faces` image), so that intervals resample whole sources (`helpers.metrics`); the
    column is absent when no grouping is known, e.g. for the Kaggle set. In the splits layout, each split in `required` must have its folder; the others are indexed when present.
    The frame's `attrs` record the root and the layout. Files are not opened here: see `scan`.
    """
    layout, base = find_layout(Path(root).expanduser().resolve())
    rows = []
    if layout == "splits":
        splits = _named_subdirs(base, _SPLIT_ALIASES, "split")
        for split in SPLITS:
            if split not in splits:
                if split in required:
                    raise DatasetLayoutError(f"{base} has no {split} folder: {LAYOUT_HINT}.")
                continue
            for class_name, folder in _class_dirs(splits[split]).items():
                rows += [(p, split, class_name) for p in _files(folder)]
    else:
        for class_name, folder in _class_dirs(base).items():
            files = _files(folder)
            names = [p.relative_to(folder).as_posix() for p in files]
            rows += list(zip(files, _flat_split(names, seed), [class_name] * len(files)))
    frame = pd.DataFrame(rows, columns=["path", "split", "class_name"])
    if frame.empty:
        raise DatasetLayoutError(f"{base} has the right folders but no files in them.")
    frame["label"] = frame["class_name"].map(CLASS_NAMES.index).astype(int)
    frame["relpath"] = [p.relative_to(base).as_posix() for p in frame["path"]]
    frame["path"] = frame["path"].map(str)
    frame = frame.sort_values(["split", "label", "relpath"], key=_split_order).reset_index(drop=True)
    frame.attrs.update(root=str(base), layout=layout)
    frame = frame[["path", "relpath", "split", "label", "class_name"]]
    groups = lesson_sets.source_groups(frame)
    if groups is not None:  # images that come in groups (a real and its fake from one video) say so
        frame[config.GROUP_COLUMN] = groups
    return frame


def _split_order(column: pd.Series) -> pd.Series:
    return column.map(SPLITS.index) if column.name == "split" else column


def counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per split (rows, in train/validation/test order) and class (columns, real then fake)."""
    table = pd.crosstab(frame["split"], frame["class_name"])
    return table.reindex(index=[s for s in SPLITS if s in table.index], columns=list(CLASS_NAMES), fill_value=0)


@dataclass
class ScanReport:
    """What `scan` found: every file with its properties, and which ones cannot be used."""

    files: pd.DataFrame

    @property
    def good(self) -> pd.DataFrame:
        return self.files[self.files["ok"]].reset_index(drop=True)

    @property
    def bad(self) -> pd.DataFrame:
        return self.files[~self.files["ok"]].reset_index(drop=True)

    def counts(self) -> pd.DataFrame:
        """Usable images per split (rows) and class (columns)."""
        return counts(self.good)

    def __str__(self) -> str:
        good = self.good
        lines = [f"{len(self.files)} files scanned in {self.files.attrs.get('root', '?')} "
                 f"({self.files.attrs.get('layout', '?')} layout): {len(good)} usable, {len(self.bad)} left out.",
                 self.counts().to_string()]
        if len(good):
            sizes = good.groupby(["width", "height"]).size().sort_values(ascending=False)
            lines.append("sizes: " + ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.head(5).items()))
            lines.append("modes: " + ", ".join(f"{m} ({n})" for m, n in good["mode"].value_counts().items()))
        for row in self.bad.itertuples():  # one line each, whatever a name holds (a newline, say)
            lines.append(f"left out: {files.one_line(row.relpath)}: {files.one_line(row.error)}")
        return files.printable("\n".join(lines))



NOT_SCANNED = {"ok": False, "error": "", "width": 0, "height": 0, "mode": "", "format": "", "bytes": 0}


def _inspect(path: str) -> dict:
    """Open and fully decode one file; report its properties or why it cannot be used."""
    info = dict(NOT_SCANNED)
    try:
        info["bytes"] = os.path.getsize(path)
        load_image(path, name=Path(path).name)  # the full decode: catches truncated data too
        with Image.open(path) as image:
            info.update(width=image.width, height=image.height, mode=image.mode, format=image.format or "")
        info["ok"] = True
    except ValueError as err:  # load_image's plain message, after the file name (which may hold ": ")
        info["error"] = str(err).removeprefix(f"{Path(path).name}: ")
    except Exception as err:  # PIL raises many types for odd files; one bad file must not stop the scan
        info["error"] = f"{type(err).__name__}: {err}"
    return info


SCAN_COLUMNS = {"ok": "bool", "error": "str", "width": "int64", "height": "int64", "mode": "str",
                "format": "str", "bytes": "int64"}  # what `scan` records of each file, as `_inspect` returns it


def outside_root(paths, root: str | os.PathLike) -> list[bool]:
    """For each path below `root`: whether it is really elsewhere (a symbolic link, of its own or of a
    folder on the way, that points out of the root). Each folder is resolved once."""
    real_root = os.path.realpath(root)
    real_folders: dict[str, str] = {}
    result = []
    for path in map(str, paths):
        folder, name = os.path.split(path)
        if folder not in real_folders:
            real_folders[folder] = os.path.realpath(folder)
        real = os.path.realpath(path) if os.path.islink(path) else os.path.join(real_folders[folder], name)
        result.append(os.path.commonpath([real, real_root]) != real_root)
    return result


def scan(frame: pd.DataFrame, progress: bool = True, workers: int = 4, cache: bool = True) -> ScanReport:
    """Open every image in `frame` and report unreadable, truncated, empty or non-image files.

    Each file is decoded once: later scans reuse its result while it keeps its size and modification
    time (.cache/scan, see `measure_files`), so a lesson run again does not decode the whole root
    again. `cache=False` decodes every file. A file reached through a symbolic link out of the root is
    left out unopened (OUTSIDE_ROOT).
    """
    root = frame.attrs.get("root")
    outside = outside_root(frame["path"], root) if root else [False] * len(frame)
    inside = [path for path, out in zip(frame["path"], outside) if not out]
    infos = measure_files(inside, _inspect, SCAN_COLUMNS, "scan", root, cache=cache, progress=progress,
                          workers=workers)
    if any(outside):
        measured = iter(infos.to_dict("records"))
        refused = {**NOT_SCANNED, "error": OUTSIDE_ROOT}
        infos = pd.DataFrame([refused if out else next(measured) for out in outside],
                             columns=list(SCAN_COLUMNS)).astype(SCAN_COLUMNS)
    files = pd.concat([frame.reset_index(drop=True), infos], axis=1)
    files.attrs.update(frame.attrs)
    return ScanReport(files)


def subset(frame: pd.DataFrame, profile: config.Profile, seed: int = config.SEED) -> pd.DataFrame:
    """At most `profile.max_per_class` images per split and class, drawn with a seed.

    The smoke profile also balances the classes (the same count of each), so its tiny runs are fair.
    """
    if profile.max_per_class is None:
        return frame.reset_index(drop=True)
    parts = []
    for split, group in frame.groupby("split", sort=False):
        limit = profile.max_per_class
        if profile.balance_classes:
            limit = min(limit, group["label"].value_counts().min())
        for _, members in group.groupby("label"):
            parts.append(members.sample(n=min(limit, len(members)), random_state=seed).sort_values("relpath"))
    result = pd.concat(parts).sort_values(["split", "label", "relpath"], key=_split_order).reset_index(drop=True)
    result.attrs.update(frame.attrs)
    return result


def load_split(root: str | os.PathLike, profile: config.Profile,
               progress: bool = True) -> tuple[pd.DataFrame, ScanReport]:
    """The usual first step: index the root, scan every file, keep the good ones, take the profile's subset."""
    report = scan(index_dataset(root), progress=progress)
    frame = report.good
    frame.attrs.update(report.files.attrs)
    return subset(frame, profile), report


def by_split(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{"train": ..., "validation": ..., "test": ...}, each keeping the frame's root and layout."""
    parts = {}
    for split in SPLITS:
        parts[split] = frame[frame["split"] == split].reset_index(drop=True)
        parts[split].attrs.update(frame.attrs)
    return parts


def load_frames(root: str | os.PathLike, profile: config.Profile,
                verbose: bool = True) -> dict[str, pd.DataFrame]:
    """Index, scan and subset a data root; return its usable images by split."""
    frame, report = load_split(root, profile, progress=verbose)
    if verbose:
        print(f"{len(frame)} images in the {profile.name} profile; "
              f"{len(report.bad)} unreadable files left out.")
    return by_split(frame)


def require_both_classes(frames: dict[str, pd.DataFrame], splits=("train", "validation")) -> None:
    """Refuse, before any training, a split that lacks real or fake images (DatasetLayoutError).

    Training needs both classes, and so do the validation ROC-AUC, the checkpoint that follows it
    and the threshold chosen on it: with one class they are meaningless.
    """
    for split in splits:
        found = counts(frames[split]).loc[split] if len(frames[split]) else pd.Series(0, index=CLASS_NAMES)
        missing = [name for name in CLASS_NAMES if found.get(name, 0) == 0]
        if missing:
            root = frames[split].attrs.get("root", "the data root")
            raise DatasetLayoutError(f"The {split} split of {root} has no {' and no '.join(missing)} images "
                                     f"({found.to_dict()}): training needs both classes in it.")



def load_images(frame: pd.DataFrame, image_size: int, workers: int = 4) -> np.ndarray:
    """All images of `frame` as one (N, size, size, 3) uint8 array, for figures and small experiments."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        images = list(pool.map(lambda p: load_resized(p, image_size), frame["path"]))
    return np.stack(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8)


def fingerprint(frame: pd.DataFrame) -> str:
    """A short hash of which files (by relative path and size) a frame holds: the same data, the same hash."""
    digest = hashlib.sha256()
    for relpath, path in sorted(zip(frame["relpath"], frame["path"])):
        digest.update(files.text_bytes(f"{relpath}\0{os.path.getsize(path)}\n"))
    return digest.hexdigest()[:16]


def content_hashes(frame: pd.DataFrame) -> list[str]:
    """Short SHA-1 hashes of every file's bytes, sorted: finds the same image under another name or folder."""
    def digest(path: str) -> str:
        with open(path, "rb") as handle:
            return hashlib.sha1(handle.read()).hexdigest()[:12]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return sorted(pool.map(digest, frame["path"].drop_duplicates()))


def class_weights(labels) -> dict[int, float]:
    """Weights that make each class count equally in the loss: scikit-learn's "balanced", n / (classes * n_class)."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels, dtype=int)
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    if (counts == 0).any():
        raise ValueError(f"Both classes need images to train on; counts are {dict(zip(CLASS_NAMES, counts))}.")
    weights = compute_class_weight("balanced", classes=np.arange(len(CLASS_NAMES)), y=labels)
    return {i: float(weight) for i, weight in enumerate(weights)}


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`scan`'s arguments (helpers.cli runs the command)."""
    parser.add_argument("root", nargs="?", help=f"data root (default: ${config.DATA_ENV} or data/)")


def run(args: argparse.Namespace) -> None:
    print(scan(index_dataset(config.data_root(args.root))))
