"""The dataset: find the images, check them, split them, and load them for figures.

Two layouts are recognised (folder names in any capitalisation):

    splits (the Kaggle "Deepfake and real images" layout)     flat (split here, 70/15/15)
    ROOT/Train/Real/*.jpg   ROOT/Train/Fake/*.jpg               ROOT/real/*.jpg
    ROOT/Validation/...     (also "val" or "valid")             ROOT/fake/*.jpg
    ROOT/Test/...

Labels are defined once, in `config.CLASS_NAMES`: 0 = real, 1 = fake. Nothing in this module ever
deletes, moves or rewrites a file in the data root.

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


class DatasetLayoutError(UserError, ValueError):
    """The folder does not hold images in a layout we understand."""


def _subdirs(folder: Path) -> dict[str, Path]:
    """Visible sub-folders by lower-case name."""
    return {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _class_dirs(folder: Path) -> dict[str, Path]:
    found = {_CLASS_ALIASES[k]: p for k, p in _subdirs(folder).items() if k in _CLASS_ALIASES}
    missing = [c for c in CLASS_NAMES if c not in found]
    if missing:
        raise DatasetLayoutError(f"{folder} has no {' or '.join(missing)} folder.\n{EXPECTED_LAYOUT}")
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
        raise DatasetLayoutError(f"Data root {root} does not exist or is not a folder.\n{EXPECTED_LAYOUT}\n"
                                 f"Get data with `deepfake-lessons download` or set ${config.DATA_ENV}.")
    subdirs = _subdirs(root)
    if any(name in _SPLIT_ALIASES for name in subdirs):
        return "splits", root
    if any(name in _CLASS_ALIASES for name in subdirs):
        return "flat", root
    if len(subdirs) == 1:  # e.g. a Kaggle zip that unpacks into "Dataset/"
        return find_layout(next(iter(subdirs.values())))
    raise DatasetLayoutError(f"{root} holds neither split folders nor real/fake folders.\n{EXPECTED_LAYOUT}")


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
        splits = {}
        for name, folder in _subdirs(base).items():
            if name in _SPLIT_ALIASES:
                if _SPLIT_ALIASES[name] in splits:
                    raise DatasetLayoutError(f"{base} has two folders for the {_SPLIT_ALIASES[name]} split.")
                splits[_SPLIT_ALIASES[name]] = folder
        for split in SPLITS:
            if split not in splits:
                if split in required:
                    raise DatasetLayoutError(f"{base} has no {split} folder.\n{EXPECTED_LAYOUT}")
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
        for row in self.bad.itertuples():
            lines.append(f"left out: {row.relpath}: {row.error}")
        return files.printable("\n".join(lines))



def _inspect(path: str) -> dict:
    """Open and fully decode one file; report its properties or why it cannot be used."""
    info = {"ok": False, "error": "", "width": 0, "height": 0, "mode": "", "format": "", "bytes": 0}
    try:
        info["bytes"] = os.path.getsize(path)
        load_image(path, name=Path(path).name)  # the full decode: catches truncated data too
        with Image.open(path) as image:
            info.update(width=image.width, height=image.height, mode=image.mode, format=image.format or "")
        info["ok"] = True
    except ValueError as err:  # load_image's plain message, after the file name
        info["error"] = str(err).split(": ", 1)[-1]
    except Exception as err:  # PIL raises many types for odd files; one bad file must not stop the scan
        info["error"] = f"{type(err).__name__}: {err}"
    return info


SCAN_COLUMNS = {"ok": "bool", "error": "str", "width": "int64", "height": "int64", "mode": "str",
                "format": "str", "bytes": "int64"}  # what `scan` records of each file, as `_inspect` returns it


def scan(frame: pd.DataFrame, progress: bool = True, workers: int = 4, cache: bool = True) -> ScanReport:
    """Open every image in `frame` and report unreadable, truncated, empty or non-image files.

    Each file is decoded once: later scans reuse its result while it keeps its size and modification
    time (.cache/scan, see `measure_files`), so a lesson run again does not decode the whole root
    again. `cache=False` decodes every file.
    """
    infos = measure_files(frame["path"], _inspect, SCAN_COLUMNS, "scan", frame.attrs.get("root"),
                          cache=cache, progress=progress, workers=workers)
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
