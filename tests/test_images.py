"""Decoding whatever a user hands us: every mode, orientation and kind of bad input."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import images


def _bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def photo() -> Image.Image:
    """A 40x20 image whose left half is red and right half blue: orientation is easy to check."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    return Image.fromarray(pixels)


def test_all_sources_give_the_same_pixels(photo, tmp_path):
    path = tmp_path / "a.png"
    photo.save(path)
    expected = np.asarray(photo)
    for source in (path, str(path), path.read_bytes(), photo, expected):
        result = images.load_image(source)
        assert result.dtype == np.uint8 and result.shape == (20, 40, 3)
        np.testing.assert_array_equal(result, expected)


def test_exif_rotation_is_applied(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    upright = images.load_image(_bytes(photo, "JPEG", exif=exif, quality=95))
    assert upright.shape == (40, 20, 3)
    assert upright[2, 10, 0] > 200 and upright[-3, 10, 2] > 200  # red on top, blue below


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_every_mode_becomes_rgb(photo, mode):
    converted = photo.convert(mode) if mode != "I;16" else Image.fromarray(
        (np.asarray(photo.convert("L")).astype(np.uint16) * 257))
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    result = images.load_image(_bytes(converted, fmt))
    assert result.shape == (20, 40, 3) and result.dtype == np.uint8
    assert result.max() > 0


def test_sixteen_bit_is_scaled_not_clipped():
    grey = Image.fromarray(np.full((8, 8), 65535 // 2, np.uint16))
    assert abs(int(images.load_image(_bytes(grey, "PNG"))[0, 0, 0]) - 127) <= 1


def test_transparency_goes_on_white():
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert images.load_image(_bytes(clear, "PNG"))[0, 0].tolist() == [255, 255, 255]


def test_animated_images_give_their_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    first = images.load_image(buffer.getvalue())
    assert first[0, 0, 0] > 200 and first[0, 0, 1] < 50


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
    (b"<html><body>404</body></html>", "not an image"),
])
def test_bad_bytes_give_plain_errors(content, message):
    with pytest.raises(ValueError, match=message):
        images.load_image(content, name="upload.jpg")


def test_truncated_jpeg_is_refused(photo):
    whole = _bytes(photo.resize((200, 100)), "JPEG", quality=90)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        images.load_image(whole[: len(whole) // 2])


def test_oversized_and_bomb_images_are_refused():
    big = _bytes(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ValueError, match="allowed"):
        images.load_image(big, max_pixels=1_000_000)
    bomb = _bytes(Image.new("1", (20000, 20000)), "PNG")  # 400 megapixels in a few kilobytes
    with pytest.raises(ValueError, match="too many pixels|allowed"):
        images.load_image(bomb)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        images.load_image(tmp_path / "gone.jpg")


def test_arrays_of_other_types():
    assert images.load_image(np.ones((4, 4), np.float32)).max() == 255  # 0..1 floats
    assert images.load_image(np.zeros((4, 4, 1), np.uint8)).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="expected"):
        images.load_image(np.zeros((4, 4, 5)))


def test_resize_gives_the_model_size(photo):
    assert images.load_resized(photo, 16).shape == (16, 16, 3)


def test_every_way_in_gives_the_pixels_load_image_then_resize_gives(photo):
    tall = photo.resize((40, 700)).convert("P")  # several strips (images.STRIP_ROWS), the last one short
    for source in (_bytes(tall, "PNG", transparency=3), _bytes(photo.convert("LA"), "PNG"), tall, np.asarray(photo)):
        for size in (16, 40):
            np.testing.assert_array_equal(images.load_resized(source, size),
                                          images.resize(images.load_image(source), size))
    assert tall.mode == "P" and tall.size == (40, 700)  # the caller's image is left as it was


PEAK_MEMORY = """
import sys
from pathlib import Path
from helpers import images

def kilobytes(field):  # this process's memory as Linux reports it
    return int(next(line for line in open("/proc/self/status") if line.startswith(field)).split()[1])

small = Path(sys.argv[1]).with_name("small.png")
images.load_resized(small, 224), images.load_image(small)  # imports and first allocations: not counted
Path("/proc/self/clear_refs").write_text("5")  # the peak so far becomes the memory in use now
before = kilobytes("VmRSS:")
pixels = images.load_image(sys.argv[1]) if sys.argv[2] == "full" else images.load_resized(sys.argv[1], 224)
print((kilobytes("VmHWM:") - before) * 1024)
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="reads the peak memory as Linux reports it")
@pytest.mark.parametrize("wanted", ["full", "resized"])
def test_a_large_palette_image_decodes_without_full_size_copies(tmp_path, wanted):
    side = 4000
    indices = np.zeros((side, side), np.uint8)
    indices[::50], indices[:, ::70] = 1, 2
    path = tmp_path / "palette.png"
    palette = Image.fromarray(indices, "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    palette.save(path, transparency=0)  # 16 megapixels in a few kilobytes, with a transparent colour
    palette.resize((300, 300)).save(tmp_path / "small.png", transparency=0)
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(path), wanted],
                            capture_output=True, text=True, check=True)
    copies = int(result.stdout) / (side * side * 3)  # in full-size RGB arrays
    assert copies < 3  # the decoded image and the result: 1.7 (full), 2.0 (resized); converting it whole, 6.0
