"""What the audit measures in each image file: how it was saved, and what its corners and borders hold.

Per file: the sha256 of its bytes, the JPEG quality (estimated from its quantisation table), EXIF
and ICC metadata, a perceptual hash (for `near_duplicates`), and the brightness, contrast and edge
strength of each corner and border strip (where watermarks and logos live). `describe_files` keeps
the results between runs (`file_cache`), so a second audit opens only new or changed files.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
from PIL import Image

from helpers.file_cache import measure_files
from helpers.images import load_image

CORNER_FRACTION = 1 / 8  # side of each corner patch, as a fraction of the shorter image side
BORDER_FRACTION = 1 / 16  # width of each border strip, likewise
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# The IJG (libjpeg) base luminance table in natural order: every encoder built on libjpeg,
# PIL included, scales this table by the quality setting.
_IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


def _ijg_tables() -> np.ndarray:
    """The luminance table libjpeg writes at each quality 1..100, shape (100, 64)."""
    quality = np.arange(1, 101)[:, None]
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    return np.clip((_IJG_LUMINANCE[None, :] * scale + 50) // 100, 1, 255)


_QUALITY_TABLES = _ijg_tables()


def estimate_jpeg_quality(quantization: dict | None) -> float:
    """The libjpeg quality (1-100) whose luminance table is closest to the file's; 100 without one.

    `quantization` is what PIL exposes as `image.quantization` for a JPEG. Images without it
    (PNG and other lossless formats) count as quality 100: nothing was thrown away.
    """
    if not quantization:
        return 100.0
    table = np.asarray(quantization[min(quantization)], dtype=np.int64).ravel()[:64]
    errors = np.abs(_QUALITY_TABLES - table).sum(axis=1)
    return float(np.flatnonzero(errors == errors.min())[-1] + 1)  # ties near 100: the highest


REGIONS = ("corner_top_left", "corner_top_right", "corner_bottom_left", "corner_bottom_right",
           "border_top", "border_bottom", "border_left", "border_right")


def region_statistics(pixels: np.ndarray) -> dict[str, float]:
    """Brightness (mean), contrast (std) and edge strength of each corner patch and border strip.

    A watermark, a logo or a camera timestamp lives in a corner or along an edge. Its sharp strokes
    raise the edge strength (the mean grey-level step between neighbouring pixels) far above that
    of a background, even when they barely change the region's mean or contrast.
    """
    grey = pixels.astype(np.float32) @ _LUMA
    side = min(grey.shape)
    patch = max(2, round(side * CORNER_FRACTION))
    strip = max(2, round(side * BORDER_FRACTION))
    corners = (grey[:patch, :patch], grey[:patch, -patch:], grey[-patch:, :patch], grey[-patch:, -patch:])
    borders = (grey[:strip], grey[-strip:], grey[:, :strip], grey[:, -strip:])
    regions = dict(zip(REGIONS, corners + borders))
    stats = {}
    for name, region in regions.items():
        stats[f"{name}_mean"] = float(region.mean())
        stats[f"{name}_std"] = float(region.std())
        stats[f"{name}_edges"] = float(np.abs(np.diff(region, axis=0)).mean() + np.abs(np.diff(region, axis=1)).mean())
    return stats


def describe_file(path: str) -> dict:
    """Everything the audit measures on one readable file, from one read of its bytes."""
    raw = Path(path).read_bytes()
    with Image.open(io.BytesIO(raw)) as image:
        properties = {
            "sha256": hashlib.sha256(raw).hexdigest(),
            "jpeg_quality": estimate_jpeg_quality(getattr(image, "quantization", None)),
            "has_exif": "exif" in image.info,
            "has_icc_profile": "icc_profile" in image.info,
        }
    pixels = load_image(raw, name=path)
    properties["phash"] = str(imagehash.phash(Image.fromarray(pixels)))
    properties.update(region_statistics(pixels))
    return properties


DESCRIBED = {"sha256": "str", "jpeg_quality": "float64", "has_exif": "bool", "has_icc_profile": "bool", "phash": "str",
             **{f"{region}_{statistic}": "float64" for region in REGIONS for statistic in ("mean", "std", "edges")}}


def describe_files(files: pd.DataFrame, progress: bool = True, workers: int = 4, cache: bool = True) -> pd.DataFrame:
    """`files` (readable rows of a scan) with the audit's measurements (DESCRIBED) added as columns.

    Like the scan, the measurements are kept per file in .cache/audit (`measure_files`): a second
    audit of the same data opens only the files that are new or changed.
    """
    measured = measure_files(files["path"], describe_file, DESCRIBED, "audit", files.attrs.get("root"),
                             cache=cache, progress=progress, workers=workers)
    return pd.concat([files.reset_index(drop=True), measured], axis=1)
