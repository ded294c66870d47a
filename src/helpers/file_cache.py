"""Per-file measurements kept between runs: a file that has not changed is not opened again.

`measure_files(paths, measure, columns, kind, root)` runs `measure(path) -> dict` on every file and
keeps the results in `.cache/<kind>/`, one CSV per data root, keyed by each file's path, size and
modification time. `data.scan` (is each image readable, and how big) and the audit's file
properties (`file_properties`) both go through it, so lesson 01 run a second time on 190,000
images reads two CSV files instead of decoding every image twice.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import config, files
from helpers.progress import bar

CACHE_KEY = {"path": "str", "size": "int64", "mtime_ns": "int64"}  # a result holds while its file keeps these
CACHE_VERSION = 1  # part of every cache file's name: raise it when what is measured changes


class CacheWarning(UserWarning):
    """A cache file could not be read or written: the work is done again, and nothing else is lost."""


def _cache_file(kind: str, root: str) -> Path:
    """.cache/<kind>/<root folder name>-<hash of its path>.csv: one file per data root and kind."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(root).name)[:40] or "root"
    digest = hashlib.sha256(files.text_bytes(f"{CACHE_VERSION}\0{root}")).hexdigest()[:12]
    return config.CACHE_DIR / kind / f"{name}-{digest}.csv"


def _stat_keys(paths: list[str]) -> tuple[list[int], list[int]]:
    """Size and modification time (ns) of each file; -1 for one that cannot be looked at (never cached)."""
    sizes, times = [], []
    for path in paths:
        try:
            status = os.stat(path)
            sizes.append(status.st_size)
            times.append(status.st_mtime_ns)
        except OSError:
            sizes.append(-1)
            times.append(-1)
    return sizes, times


def _read_cache(path: Path, columns: dict[str, str]) -> pd.DataFrame | None:
    """The cached rows, or None when there are none; a damaged file is reported and ignored."""
    dtypes = {**CACHE_KEY, **columns}
    try:
        table = pd.read_csv(path, dtype=dtypes, keep_default_na=False, float_precision="round_trip",
                            encoding_errors=files.NAME_ERRORS)
        if list(table.columns) != list(dtypes):
            raise ValueError(f"columns {list(table.columns)}, expected {list(dtypes)}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, OverflowError, TypeError) as err:  # ParserError and bad values are ValueErrors
        warnings.warn(f"The cache file {path} is damaged ({type(err).__name__}: {str(err)[:200]}): "
                      "measuring every file again and writing it anew.", CacheWarning, stacklevel=3)
        return None
    return table.drop_duplicates("path", keep="last")


def _write_cache(path: Path, table: pd.DataFrame) -> None:
    """Write atomically (a crash leaves the old file or the new one, never half of one); warn if it fails."""
    try:
        files.write_atomically(path, lambda temporary: table.to_csv(temporary, index=False, errors=files.NAME_ERRORS))
    except OSError as err:
        warnings.warn(f"Could not write the cache file {path} ({err}): the next run measures these files again.",
                      CacheWarning, stacklevel=3)
        return
    _forget_missing_roots(path)


def _forget_missing_roots(kept: Path) -> None:
    """Delete the other cache files of this kind whose first file is gone (a deleted or moved root)."""
    for other in kept.parent.glob("*.csv"):
        if other == kept:
            continue
        try:
            first = pd.read_csv(other, usecols=["path"], nrows=1, dtype="str", keep_default_na=False,
                                encoding_errors=files.NAME_ERRORS)
            if len(first) and not os.path.exists(first["path"].iloc[0]):
                other.unlink()
        except (OSError, ValueError):  # unreadable, or removed meanwhile: its own root's next run reports it
            continue


def measure_files(paths, measure, columns: dict[str, str], kind: str, root: str | None = None,
                  cache: bool = True, progress: bool = True, workers: int = 4) -> pd.DataFrame:
    """`measure(path) -> dict` of every file, as a frame with `columns` (name -> dtype), in order.

    With `cache`, results live in .cache/<kind>/, one file per data `root`, keyed by each file's path,
    size and modification time: an unchanged file is not opened again, a changed or new one is. A
    damaged cache file is reported (CacheWarning) and rebuilt. `measure` runs in `workers` threads.
    """
    paths = [str(path) for path in paths]

    def measured(chosen: list[str]) -> pd.DataFrame:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = list(bar(pool.map(measure, chosen), show=progress and bool(chosen), total=len(chosen),
                            desc=kind, leave=False))
        return pd.DataFrame(rows, columns=list(columns)).astype(columns)

    if not cache or not paths:
        return measured(paths)
    location = _cache_file(kind, str(root or os.path.commonpath(paths)))
    sizes, times = _stat_keys(paths)
    keys = pd.DataFrame({"path": paths, "size": sizes, "mtime_ns": times}).astype(CACHE_KEY)
    stored = _read_cache(location, columns)
    if stored is None:
        stored = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in {**CACHE_KEY, **columns}.items()})
    found = keys.merge(stored, on=list(CACHE_KEY), how="left", indicator=True)
    missing = (found.pop("_merge") == "left_only").to_numpy()
    if not missing.any():
        return found[list(columns)].astype(columns)
    fresh = pd.concat([keys[missing].reset_index(drop=True), measured(keys["path"][missing].tolist())], axis=1)
    result = pd.concat([found[~missing].assign(position=np.flatnonzero(~missing)),
                        fresh.assign(position=np.flatnonzero(missing))])
    result = result.sort_values("position")[list(columns)].astype(columns).reset_index(drop=True)
    entries = pd.concat([keys, result], axis=1)
    entries = entries[entries["size"] >= 0]  # a file that could not be looked at is measured every time
    others = stored[~stored["path"].isin(keys["path"])]  # other files of the root: kept while they exist
    others = others[[os.path.exists(path) for path in others["path"]]]
    _write_cache(location, pd.concat([others, entries], ignore_index=True))
    return result

