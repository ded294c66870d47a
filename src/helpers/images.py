"""Turn whatever a user hands us (a path, bytes, a PIL image, an array) into an RGB uint8 array.

Every place that reads an image goes through `load_image`, so training, prediction and the
upload demo see pixels decoded the same way, and bad input fails the same, plain way.

Memory: a decode holds the decoded image (1 to 4 bytes a pixel, by its mode) and the RGB result
(3 bytes a pixel; `load_resized`'s is PIL's RGB image, 4), converted a strip of rows at a time, never
a third copy: at most about 8 bytes a pixel, so MAX_PIXELS keeps one decode, and each thread that
decodes in parallel, under about 330 MB. (A 6000 x 6000 palette PNG of 130 KB: 160 MB, was 620 MB.)
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
STRIP_ROWS = 256  # rows converted to RGB at a time (see `_rgb_strips`)

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


WIDE_GREYS = ("I;16", "I;16B", "I;16L", "I")  # greys of more than 8 bits: scaled down to 0-255


def _strip_to_rgb(strip: Image.Image, grey_peak: float) -> Image.Image:
    """Rows of an image in any PIL mode as 8-bit RGB: wide greys scaled by `grey_peak`, transparency on white."""
    if strip.mode in WIDE_GREYS:
        scaled = np.asarray(strip, dtype=np.float64) / grey_peak * 255.0
        strip = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")
    if strip.mode == "P":
        strip = strip.convert("RGBA" if strip.has_transparency_data else "RGB")
    if strip.mode in ("RGBA", "LA"):
        rgba = strip.convert("RGBA")
        background = Image.new("RGB", strip.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)  # an RGBA mask: its alpha
        return background
    return strip.convert("RGB")


def _rgb_strips(image: Image.Image):
    """(top row, the next STRIP_ROWS rows as RGB) down the whole image.

    Converting a strip at a time keeps the memory of a decode to the decoded image and its result;
    converting a palette image whole took four more full-size copies.
    """
    grey_peak = 255.0
    if image.mode in WIDE_GREYS:  # one scale for the whole image, not one per strip
        grey_peak = 65535.0 if image.mode.startswith("I;16") or image.getextrema()[1] > 255 else 255.0
    for top in range(0, image.height, STRIP_ROWS):
        box = (0, top, image.width, min(top + STRIP_ROWS, image.height))
        yield top, _strip_to_rgb(image.crop(box), grey_peak)


def _rgb_array(image: Image.Image) -> np.ndarray:
    """The image as an (H, W, 3) uint8 RGB array, filled strip by strip (`_rgb_strips`)."""
    array = np.empty((image.height, image.width, 3), np.uint8)
    for top, strip in _rgb_strips(image):
        array[top:top + strip.height] = np.asarray(strip)
    return array


def _rgb_image(image: Image.Image) -> Image.Image:
    """The image in PIL's RGB mode: itself when it is, else filled strip by strip (`_rgb_strips`)."""
    if image.mode == "RGB":
        return image
    rgb = Image.new("RGB", image.size)
    for top, strip in _rgb_strips(image):
        rgb.paste(strip, (0, top))
    return rgb


def _decode(source: ImageSource, name: str, max_pixels: int, convert):
    """Open, check, decode and turn upright `source` (not an array), then `convert` the PIL image."""
    image = _open(source, name)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} pixels is more than the {max_pixels:,} allowed.")
    try:
        image.seek(0)  # animated GIF/PNG/WebP: the first frame
        image.load()
        if image is source:  # the caller's own image: turned on a copy, and left as it was
            image = ImageOps.exif_transpose(image)
        else:
            ImageOps.exif_transpose(image, in_place=True)  # without a second full-size copy
        return convert(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({err}).") from err


def _name(source: ImageSource, name: str | None) -> str:
    return name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")


def load_image(source: ImageSource, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode `source` into an (H, W, 3) uint8 RGB array, upright as the camera meant it.

    Handles EXIF rotation, greyscale, palette, RGBA, CMYK, 16-bit and animated images (first frame).
    Raises ImageError (a ValueError) with a plain message for empty, truncated, non-image or oversized input.
    """
    name = _name(source, name)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name)
    return _decode(source, name, max_pixels, _rgb_array)


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


def _resized(image: Image.Image, size: int) -> np.ndarray:
    """An RGB PIL image as a size x size array: the antialiased bicubic resize every caller shares."""
    if image.size == (size, size):
        return np.asarray(image)
    return np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=None))


def resize(array: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB array to size x size with antialiasing (the one resize used everywhere)."""
    if array.shape[0] == size and array.shape[1] == size:
        return array
    return _resized(Image.fromarray(array), size)


def load_resized(source: ImageSource, size: int, name: str | None = None) -> np.ndarray:
    """What the model sees: `load_image` then `resize`, the same pixels, without a full-size array in between."""
    name = _name(source, name)
    if isinstance(source, np.ndarray):
        return resize(_array_to_rgb(source, name), size)
    return _decode(source, name, MAX_PIXELS, lambda image: _resized(_rgb_image(image), size))
