"""Shortcuts planted on purpose: a watermark on every fake, or fakes saved at another JPEG quality.

Lesson 01 plants them in a copy of a data set to show that the audit finds them and that a model
learns them. This rebuilds, on a small scale, how the StyleGAN2 fakes of ffhq-stylegan2 were first
published. Nothing here writes into the data: only into a new folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from helpers.errors import FolderExistsError
from helpers.images import load_image


def stamp_watermark(pixels: np.ndarray, text: str = "AI-GENERATED") -> np.ndarray:
    """The image with `text` stamped in white into its bottom-right corner, as some generators publish."""
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, image.height // 16))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(2, image.height // 64)
    draw.text((image.width - (right - left) - margin - left, image.height - (bottom - top) - margin - top),
              text, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def plant_shortcuts(frame: pd.DataFrame, folder: str | Path, watermark: bool = True,
                    fake_quality: int | None = None, quality: int = 90) -> Path:
    """Copy `frame`'s images into `folder` (Train/Validation/Test x Real/Fake) with shortcuts planted.

    Every image is decoded and re-saved at `quality`; fakes get a watermark and/or `fake_quality`
    instead. This rebuilds, on a small scale, how the StyleGAN2 fakes of ffhq-stylegan2 were
    first published. Each image keeps its split, so `frame` needs all three. It writes only
    inside `folder`, never into the data, and refuses a `folder` that exists and is not empty.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FolderExistsError(f"{folder} already exists and is not an empty folder; "
                                "choose a new folder for the planted copy (nothing was deleted).")
    for row in frame.itertuples():
        pixels = load_image(row.path)
        is_fake = row.label == 1
        if is_fake and watermark:
            pixels = stamp_watermark(pixels)
        target = folder / row.split.title() / row.class_name.title() / Path(row.relpath).with_suffix(".jpg").name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, quality=fake_quality if (is_fake and fake_quality) else quality)
    return folder
