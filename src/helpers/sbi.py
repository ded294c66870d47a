"""Self-Blended Images (SBI): training fakes made from one real face, with no face-swap model at all.

A face swap pastes a generated face into someone else's video frame and blends the two along a seam.
Whatever model made the face, that seam leaves traces: the inner face is a little off in colour or
sharpness from the skin around it, the boundary is soft, and features sit a pixel or two from where
the head says they should. Shiohara & Yamasaki ("Detecting Deepfakes with Self-Blended Images",
CVPR 2022) train a detector on those traces alone, so it does not learn the fingerprint of one swap
method and keeps working on methods it never saw.

Their training fakes need only real images. Take one real face (the *target*), make a slightly
altered copy of it (the *source*: colours shifted, sharpness changed, a tiny zoom and shift), and
paste the copy's central face back onto the original through a soft, randomly shaped mask. The
result shows the same person, yet it carries exactly the seam a face swap leaves.

The paper draws its mask from face landmarks. Our crops are aligned faces, so the mask here starts
from a randomly jittered ellipse around the centre of the crop instead. Every random choice comes
from one seed: the same image and seed give the same pseudo-fake, byte for byte, on any machine.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from scipy import ndimage

from helpers import config
from helpers.files import text_bytes
from helpers.images import resize

SBI_TRANSFORM = "sbi"  # the name of the transform, also the suffix of its rows' relpath ("...#sbi")
NO_TRANSFORM = -1  # transform_seed of an ordinary row: the image is used as it is
SBI_SPLITS = ("train", "validation")  # the test split stays real data
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # as in the paper: a full blend half of the time

# Source alterations, in 0..255 units unless noted.
RGB_SHIFT = 12.0
HUE_SHIFT = 0.02  # a fraction of the colour circle
SATURATION_SHIFT = 0.1  # a fraction of the full scale
VALUE_SHIFT = 0.05  # a fraction of the full scale
BRIGHTNESS_SHIFT = 0.1  # a fraction of the full scale
CONTRAST = (0.8, 1.2)
DOWNSCALE = (0.3, 0.7)  # the size of the low-resolution detour, as a fraction of the image
SHARPEN_RADIUS = (1.0, 3.0)
SHARPEN_PERCENT = (50, 150)
SCALE = (0.95, 1.05)
SHIFT = 0.03  # a fraction of the image size

# The mask, as fractions of the image size: an ellipse around the central face of an aligned crop.
# The limits keep the whole mask, blur included, inside the central 90% of the crop.
CENTRE = (0.5, 0.53)  # x, y: a little below the middle, where the nose of an aligned face sits
CENTRE_JITTER = 0.03
SEMI_AXES = ((0.22, 0.30), (0.27, 0.34))  # x, y
TILT_DEGREES = 10.0
WOBBLE_ORDERS = (2, 3, 4, 5)  # waves around the outline: 2 squashes the ellipse, 5 makes it lumpy
WOBBLE_AMPLITUDE = 0.015  # per wave, a fraction of the radius
BLUR_SIGMA = (0.01, 0.03)
BLUR_TRUNCATE = 3.0  # the blur reaches 3 sigma and no further, so the mask is exactly 0 beyond it


@dataclass(frozen=True)
class SelfBlend:
    """One pseudo-fake and what it was made of (all the same height and width)."""

    fake: np.ndarray  # uint8 (H, W, 3): mask * source + (1 - mask) * target
    mask: np.ndarray  # float32 (H, W) in 0..1, the blend ratio included
    source: np.ndarray  # uint8 (H, W, 3): the altered copy
    target: np.ndarray  # uint8 (H, W, 3): the original face
    ratio: float  # the blend ratio: the mask's peak


def self_blend(image: np.ndarray, seed: int) -> SelfBlend:
    """Blend an altered copy of a real face crop back into it through a soft face mask.

    Every random choice is drawn from `seed`: the same image and seed give the same bytes.
    """
    target = _checked(image)
    rng = np.random.default_rng(seed)
    source = alter_source(target, rng)
    ratio = float(rng.choice(BLEND_RATIOS))
    mask = face_mask(target.shape[:2], rng) * np.float32(ratio)
    return SelfBlend(blend(source, target, mask), mask, source, target, ratio)


def pseudo_fake(image: np.ndarray, seed: int) -> np.ndarray:
    """Just the pseudo-fake of `self_blend`: what the data pipeline feeds the model."""
    return self_blend(image, seed).fake


def _checked(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}.")
    return image


# ----------------------------------------------------------------------------- the source copy
def alter_source(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The copy to blend in: new colours, then a blurrier or a sharper version, slightly zoomed and shifted."""
    pixels = jitter_colours(image, rng)
    pixels = resample(pixels, rng) if rng.random() < 0.5 else sharpen(pixels, rng)
    return scale_and_shift(pixels, rng)


def jitter_colours(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB shifts, then HSV shifts, then brightness and contrast, each as a PIL lookup table (fast)."""
    levels = np.arange(256, dtype=np.float32)
    rgb_shift = rng.uniform(-RGB_SHIFT, RGB_SHIFT, (3, 1))
    picture = Image.fromarray(image).point(_lookup(levels + rgb_shift))
    hue, saturation, value = 256 * rng.uniform(-1, 1, 3) * (HUE_SHIFT, SATURATION_SHIFT, VALUE_SHIFT)
    hsv_table = np.stack([np.rint(levels + hue) % 256, levels + saturation, levels + value])  # hue goes round
    picture = picture.convert("HSV").point(_lookup(hsv_table)).convert("RGB")
    mean = np.asarray(picture).mean()
    contrast = rng.uniform(*CONTRAST)
    brightness = 255 * rng.uniform(-BRIGHTNESS_SHIFT, BRIGHTNESS_SHIFT)
    return np.asarray(picture.point(_lookup(np.tile((levels - mean) * contrast + mean + brightness, 3))))


def _lookup(values: np.ndarray) -> list[int]:
    """A PIL point() table: the new value of each 0..255 level, band after band."""
    return _to_uint8(values).ravel().tolist()


def resample(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down to a random lower resolution and back up: the copy loses its finest detail."""
    height, width = image.shape[:2]
    factor = rng.uniform(*DOWNSCALE)
    small = Image.fromarray(image).resize((max(1, round(width * factor)), max(1, round(height * factor))),
                                          Image.BILINEAR)
    return np.asarray(small.resize((width, height), Image.BILINEAR))


def sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An unsharp mask with a random radius and strength: the copy gets crisper edges."""
    unsharp = ImageFilter.UnsharpMask(radius=rng.uniform(*SHARPEN_RADIUS),
                                      percent=int(rng.integers(*SHARPEN_PERCENT, endpoint=True)), threshold=0)
    return np.asarray(Image.fromarray(image).filter(unsharp))


def scale_and_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zoom about the centre and shift by a few pixels, so the features no longer line up exactly."""
    height, width = image.shape[:2]
    scale = rng.uniform(*SCALE)
    shift_x, shift_y = rng.uniform(-SHIFT, SHIFT, 2) * (width, height)
    centre_x, centre_y = width / 2, height / 2
    # PIL maps each output pixel back to the input: input = (output - centre - shift) / scale + centre.
    inverse = (1 / scale, 0, centre_x - (centre_x + shift_x) / scale,
               0, 1 / scale, centre_y - (centre_y + shift_y) / scale)
    return np.asarray(Image.fromarray(image).transform((width, height), Image.AFFINE, inverse, Image.BILINEAR))


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- the mask and the blend
def face_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft float32 mask over the central face: a jittered, tilted ellipse, its outline bent by a few
    random waves (a cheap elastic deformation), its edge blurred by a random amount."""
    height, width = shape
    centre = (np.array(CENTRE) + rng.uniform(-CENTRE_JITTER, CENTRE_JITTER, 2)) * (width, height)
    semi_axes = (rng.uniform(*SEMI_AXES[0]) * width, rng.uniform(*SEMI_AXES[1]) * height)
    tilt = np.radians(rng.uniform(-TILT_DEGREES, TILT_DEGREES))
    u, v = ellipse_frame(shape, centre, semi_axes, tilt)
    angle = np.arctan2(v, u)
    radius = np.ones_like(angle)
    for order in WOBBLE_ORDERS:
        amplitude, phase = rng.uniform(0, WOBBLE_AMPLITUDE), rng.uniform(0, 2 * np.pi)
        radius += np.float32(amplitude) * np.cos(np.float32(order) * angle + np.float32(phase))
    inside = (np.hypot(u, v) <= radius).astype(np.float32)
    sigma = rng.uniform(*BLUR_SIGMA) * min(shape)
    return np.clip(ndimage.gaussian_filter(inside, sigma, truncate=BLUR_TRUNCATE), 0, 1)  # rounding can pass 1


def ellipse_frame(shape: tuple[int, int], centre, semi_axes, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's place in an ellipse's own frame, (u, v): the ellipse is u^2 + v^2 <= 1.

    `centre` (x, y) and `semi_axes` (x, y) in pixels, `tilt` in radians. float32: half the memory
    traffic of float64.
    """
    height, width = shape
    (centre_x, centre_y), (semi_x, semi_y) = centre, semi_axes
    dx = np.arange(width, dtype=np.float32)[None, :] + np.float32(0.5 - centre_x)  # from pixel centres
    dy = np.arange(height, dtype=np.float32)[:, None] + np.float32(0.5 - centre_y)
    cos, sin = np.float32(np.cos(tilt)), np.float32(np.sin(tilt))
    return (dx * cos + dy * sin) / np.float32(semi_x), (dy * cos - dx * sin) / np.float32(semi_y)


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """mask * source + (1 - mask) * target, rounded to uint8; where the mask is 0 the target is untouched."""
    alpha = mask[..., None]
    return _to_uint8(alpha * source + (1 - alpha) * target)


# ----------------------------------------------------------------------------- the dataset layer
def transform_seed(relpath: str, seed: int = config.SEED) -> int:
    """The seed of one pseudo-fake row, from its relpath and the run's seed: the same on every machine."""
    digest = hashlib.sha256(text_bytes(f"{seed}:{relpath}")).digest()
    return int.from_bytes(digest[:4], "big")  # below 2**32: a valid NumPy seed that fits any int column


def add_pseudo_fakes(frame: pd.DataFrame, seed: int = config.SEED) -> pd.DataFrame:
    """The frame plus one pseudo-fake row for each real train and validation image.

    A pseudo-fake row keeps its real image's path, gets relpath "<relpath>#sbi", label 1 (fake) and a
    `transform_seed` >= 0; ordinary rows get transform_seed -1. The dataset layer makes the pseudo-fake
    from the path and the seed when it loads the image, so nothing is ever written to disk.
    """
    if "transform_seed" in frame.columns:
        raise ValueError("This frame already has a transform_seed column: pseudo-fakes were added before.")
    fake_label = config.CLASS_NAMES.index("fake")
    reals = frame[(frame["label"] == config.CLASS_NAMES.index("real")) & frame["split"].isin(SBI_SPLITS)]
    fakes = reals.assign(relpath=reals["relpath"] + f"#{SBI_TRANSFORM}", label=fake_label, class_name="fake")
    fakes["transform_seed"] = [transform_seed(relpath, seed) for relpath in fakes["relpath"]]
    split_order = {split: i for i, split in enumerate(config.SPLITS)}
    result = (pd.concat([frame.assign(transform_seed=NO_TRANSFORM), fakes])
              .sort_values(["split", "label", "relpath"],
                           key=lambda column: column.map(split_order) if column.name == "split" else column)
              .reset_index(drop=True))
    result["transform_seed"] = result["transform_seed"].astype(np.int64)
    result.attrs.update(frame.attrs)
    return result


# ----------------------------------------------------------------------------- for the lesson
PREVIEW_TITLES = ("real (target)", "altered copy (source)", "mask", "pseudo-fake", "difference x4")


def preview_gallery(faces, seed: int = config.SEED) -> tuple[list[np.ndarray], list[str]]:
    """One row per face: the real face, its altered copy, the mask, the pseudo-fake and where they differ.

    Rows for `plots.image_grid(..., columns=5)`; the difference is magnified 4 times to be visible.
    """
    gallery, titles = [], []
    for index, face in enumerate(faces):
        blended = self_blend(face, seed + index)
        mask = np.repeat(blended.mask[..., None] * 255, 3, axis=2)
        difference = 4 * np.abs(blended.fake.astype(np.int16) - blended.target)
        gallery += [blended.target, blended.source, _to_uint8(mask), blended.fake, _to_uint8(difference)]
        titles += [*PREVIEW_TITLES[:2], f"mask (ratio {blended.ratio:g})", *PREVIEW_TITLES[3:]]
    return gallery, titles


def speed(face: np.ndarray, sizes=(224, 256), count: int = 100) -> pd.DataFrame:
    """Pseudo-fakes per second at each size, made one after another (one core), by wall clock and CPU time.

    CPU time leaves out the time other programs held the core, so it is the steadier number on a busy machine.
    """
    rows = []
    for size in sizes:
        image = resize(face, size)
        wall, cpu = time.perf_counter(), time.process_time()
        for seed in range(count):
            pseudo_fake(image, seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append({"size": size, "images": count, "per_second_wall": count / wall,
                     "per_second_cpu": count / cpu, "ms_per_image_cpu": 1000 * cpu / count})
    return pd.DataFrame(rows).set_index("size")
