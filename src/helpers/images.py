"""Turn whatever a user hands us (a path, bytes, a PIL image, an array) into an RGB uint8 array.

Every place that reads an image goes through `load_image`, so training, prediction and the
upload demo see pixels decoded the same way, and bad input fails the same, plain way.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from helpers.errors import UserError

MAX_PIXELS = 40_000_000  # about 6,300 x 6,300: far beyond any face crop, well below a bomb
MAX_BYTES = 50 * 1024 * 1024

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray


class ImageError(UserError, ValueError):
    """An image that cannot be used: missing, unreadable, empty, too large, not an image, or corrupt."""


def _open(source: ImageSource, name: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{name}: no such file.")
        try:
            if path.stat().st_size > MAX_BYTES:
                raise ImageError(f"{name}: the file is larger than {MAX_BYTES // 2**20} MB.")
            data = path.read_bytes()
        except OSError as err:  # permissions, a file removed meanwhile, a network drive gone
            raise ImageError(f"{name}: the file cannot be read ({err.strerror or err}).") from err
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes).")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name}: the file is larger than {MAX_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        raise ImageError(f"{name}: not an image file PIL can read.") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name}: the image has too many pixels to be safe to decode.") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: 16-bit greys are scaled, transparency goes on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(source: ImageSource, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode `source` into an (H, W, 3) uint8 RGB array, upright as the camera meant it.

    Handles EXIF rotation, greyscale, palette, RGBA, CMYK, 16-bit and animated images (first frame).
    Raises ImageError (a ValueError) with a plain message for empty, truncated, non-image or oversized input.
    """
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name)
    image = _open(source, name)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} pixels is more than the {max_pixels:,} allowed.")
    try:
        image.seek(0)  # animated GIF/PNG/WebP: the first frame
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({err}).") from err
    return np.asarray(rgb, dtype=np.uint8)


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got {array.shape}.")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if array.dtype != np.uint8:
        high = 1.0 if np.issubdtype(array.dtype, np.floating) and array.max() <= 1.0 else 255.0
        array = np.clip(array.astype(np.float64) / high * 255.0, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def resize(array: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB array to size x size with antialiasing (the one resize used everywhere)."""
    if array.shape[0] == size and array.shape[1] == size:
        return array
    return np.asarray(Image.fromarray(array).resize((size, size), Image.BICUBIC, reducing_gap=None))


def load_resized(source: ImageSource, size: int, name: str | None = None) -> np.ndarray:
    """`load_image` then `resize`: what the model sees."""
    return resize(load_image(source, name=name), size)
