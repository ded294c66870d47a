"""Find the faces in a photo and crop each one the way a model's training images were cropped.

A detector learns from face crops, but people hand it whole photos. Squashing a photo into the
model's square puts the face at a size and place the model never saw. So we find each face with
MTCNN (the `mtcnn` package: MIT licence, its three small networks ship inside the wheel, so it
works offline) and cut a crop around it.

How big that crop is, and where the face sits in it, is measured on the model's own training
images: the same detector runs on a sample of them, and the medians become the model's `CropStyle`,
stored in its sidecar (model.json). A model trained on tight crops gets tight crops, one trained on
loose crops gets loose ones; if the training faces have level eyes (aligned data), new faces are
rotated to level eyes too. A training image run through `crop_face` comes out as nearly itself.

MTCNN misses some faces in grey or low-contrast photos. Where it finds none, it takes a second
look at the photo in grey with its histogram equalised, at the same cut-off: on grey copies of
test faces this finds more of the missed faces than a lower cut-off does, and the tests check
that it finds none in scenes without a face.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from PIL import Image, ImageOps

from helpers import config, images

STYLE_SAMPLE = 200  # training images the crop style is measured on (about 5 s on a CPU)
MIN_CONFIDENCE = 0.90  # MTCNN's own score for "a face"; lower finds more faces and more false ones
MAX_DETECT_SIDE = 1024  # larger photos are shrunk for finding faces; crops come from the full photo
MIN_FACE_FRACTION = 0.5  # a crop style needs a face found in at least this share of the sampled images
ALIGNED_MAX_TILT = 5.0  # degrees: when 9 in 10 training faces have eyes this level, the data is aligned
STYLE_KEY = "face_crop"  # where the sidecar keeps the CropStyle
MAX_CROP_SCALE = 10.0  # crops at most 10 faces wide, centred at most 10 faces off (trained ones: about 1-3)


class TooFewFacesError(ValueError):
    """Too few faces were found in the training images to measure how they were cropped."""


@dataclass(frozen=True)
class Face:
    """One face found in a photo: its box (pixels of the photo), MTCNN's confidence and 5 landmarks."""

    x: float
    y: float
    width: float
    height: float
    confidence: float
    landmarks: dict[str, tuple[float, float]]  # left_eye, right_eye, nose, mouth_left, mouth_right
    second_look: bool = False  # found only in the equalised grey copy of the photo

    @property
    def size(self) -> float:
        """One length for the face: the side of a square with the box's area."""
        return math.sqrt(self.width * self.height)

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    @property
    def tilt(self) -> float:
        """The angle of the line from the left eye to the right eye, in degrees (0: level)."""
        (x1, y1), (x2, y2) = self.landmarks["left_eye"], self.landmarks["right_eye"]
        return math.degrees(math.atan2(y2 - y1, x2 - x1))

    def box(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) rounded to whole pixels, for tables and drawing."""
        return round(self.x), round(self.y), round(self.width), round(self.height)


@dataclass(frozen=True)
class CropStyle:
    """How a model's training crops frame their faces, in units of the face's size (`Face.size`).

    scale: the crop's side; offset_x, offset_y: from the face box's centre to the crop's centre;
    level_eyes: rotate each face so its eyes are level (the training faces were aligned).
    """

    scale: float
    offset_x: float
    offset_y: float
    level_eyes: bool
    tilt_p90: float  # degrees: 9 in 10 training faces tilt less than this
    faces_found: int
    images_sampled: int

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: dict) -> CropStyle | None:
        """The style a model's sidecar records, or None if it records none (a model trained before faces).

        Raises ValueError, naming the field, for a style that is not one `measure_crop_style` could have made.
        """
        stored = metadata.get(STYLE_KEY)
        if stored is None:
            return None
        names = [field.name for field in fields(cls)]
        if not isinstance(stored, dict) or sorted(stored) != sorted(names):
            raise ValueError(f"{STYLE_KEY} must be null or an object of {', '.join(names)}, not {shown(stored)}")
        for name, (accept, expected) in _STYLE_RULES.items():
            if not accept(stored[name]):
                raise ValueError(f"{STYLE_KEY}.{name} must be {expected}, not {shown(stored[name])}")
        return cls(**stored)


def _finite(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _count(value) -> bool:
    return type(value) is int and value >= 0


_OFFSET = (lambda v: _finite(v) and abs(v) <= MAX_CROP_SCALE, f"a number from -{MAX_CROP_SCALE:g} to +{MAX_CROP_SCALE:g}")
_STYLE_RULES = {  # what each CropStyle field may be in a sidecar, and how an error says so
    "scale": (lambda v: _finite(v) and 0 < v <= MAX_CROP_SCALE, f"a number above 0, at most {MAX_CROP_SCALE:g}"),
    "offset_x": _OFFSET,
    "offset_y": _OFFSET,
    "level_eyes": (lambda v: isinstance(v, bool), "true or false"),
    "tilt_p90": (lambda v: _finite(v) and 0 <= v <= 180, "a number of degrees from 0 to 180"),
    "faces_found": (_count, "a whole number of 0 or more"),
    "images_sampled": (_count, "a whole number of 0 or more"),
}


def shown(value) -> str:
    """A value read from JSON, as JSON (null, NaN, "abc"), for an error message; cut short when long."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=1)
def _detector():
    from mtcnn import MTCNN

    return MTCNN()


def _faces(found: list[dict], shrink: float, min_confidence: float, second_look: bool = False) -> list[Face]:
    faces = []
    for item in found:
        if item["confidence"] < min_confidence:
            continue
        x, y, width, height = (float(value) * shrink for value in item["box"])
        landmarks = {name: (float(px) * shrink, float(py) * shrink) for name, (px, py) in item["keypoints"].items()}
        faces.append(Face(x, y, width, height, float(item["confidence"]), landmarks, second_look))
    return sorted(faces, key=lambda face: (face.x, face.y))  # reading order: face 1 is the leftmost


def _for_detection(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The photo shrunk to at most MAX_DETECT_SIDE, and the factor that maps its pixels back."""
    longest = max(image.shape[:2])
    if longest <= MAX_DETECT_SIDE:
        return image, 1.0
    picture = Image.fromarray(image)
    picture.thumbnail((MAX_DETECT_SIDE, MAX_DETECT_SIDE), Image.BILINEAR)
    return np.asarray(picture), longest / max(picture.size)


def _equalised_grey(image: np.ndarray) -> np.ndarray:
    """The photo in grey with its histogram equalised, as RGB: the second look's input."""
    return np.asarray(ImageOps.equalize(Image.fromarray(image).convert("L")).convert("RGB"))


def _detect(images: list[np.ndarray]) -> list[list[dict]]:
    """MTCNN's detections for each image; images of one shape go through as one batch."""
    by_shape: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(index)
    found: list[list[dict]] = [[] for _ in images]
    for indices in by_shape.values():
        batch = [images[i] for i in indices]
        # fit_to_image=False: a face cut by the photo's edge keeps its true size (tight training crops do that)
        results = _detector().detect_faces(batch if len(batch) > 1 else batch[0], fit_to_image=False)
        for i, result in zip(indices, results if len(batch) > 1 else [results]):
            found[i] = result
    return found


def find_faces_in_many(photos: list[np.ndarray], min_confidence: float = MIN_CONFIDENCE,
                       second_look: bool = True) -> list[list[Face]]:
    """The faces in each of many RGB photos, left to right; photos of one shape are searched as one batch.

    second_look: search the photos where none is found again, in equalised grey (see the module's docstring).
    """
    prepared = [_for_detection(photo) for photo in photos]
    found = [_faces(result, shrink, min_confidence)
             for result, (_, shrink) in zip(_detect([small for small, _ in prepared]), prepared)]
    again = [i for i, faces in enumerate(found) if not faces] if second_look else []
    for i, result in zip(again, _detect([_equalised_grey(prepared[i][0]) for i in again])):
        found[i] = _faces(result, prepared[i][1], min_confidence, second_look=True)
    return found


def find_faces(photo: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> list[Face]:
    """The faces in one RGB photo (an (H, W, 3) uint8 array), left to right."""
    return find_faces_in_many([photo], min_confidence)[0]


def measure_crop_style(crops: list[np.ndarray]) -> CropStyle:
    """Measure how training crops frame their faces: the medians over the crops where a face was found.

    Raises TooFewFacesError when a face is found in fewer than MIN_FACE_FRACTION of them.
    """
    rows = []
    for crop, found in zip(crops, find_faces_in_many(crops, second_look=False)):  # as styles were always measured
        if not found:
            continue
        face = max(found, key=lambda f: f.confidence)  # a training crop shows one face
        height, width = crop.shape[:2]
        centre_x, centre_y = face.centre
        rows.append((math.sqrt(width * height) / face.size, (width / 2 - centre_x) / face.size,
                     (height / 2 - centre_y) / face.size, abs(face.tilt)))
    if len(rows) < max(1, MIN_FACE_FRACTION * len(crops)):
        raise TooFewFacesError(f"A face was found in only {len(rows)} of {len(crops)} training images, "
                               "too few to measure how they were cropped.")
    scale, offset_x, offset_y, tilt = np.asarray(rows).T
    tilt_p90 = float(np.percentile(tilt, 90))
    return CropStyle(float(np.median(scale)), float(np.median(offset_x)), float(np.median(offset_y)),
                     tilt_p90 < ALIGNED_MAX_TILT, tilt_p90, len(rows), len(crops))


def crop_style_of(paths, sample: int = STYLE_SAMPLE, seed: int = config.SEED) -> CropStyle:
    """Measure the crop style of training images on a seeded sample of their files."""
    paths = list(paths)
    if len(paths) > sample:
        paths = [paths[i] for i in sorted(np.random.default_rng(seed).choice(len(paths), sample, replace=False))]
    return measure_crop_style([images.load_image(path) for path in paths])


def _square(photo: np.ndarray, centre_x: float, centre_y: float, side: int) -> np.ndarray:
    """The side x side square of `photo` centred on a point; parts beyond the edges repeat the edge pixels."""
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    height, width = photo.shape[:2]
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        photo = np.pad(photo, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return photo[top + pad:top + pad + side, left + pad:left + pad + side]


def crop_face(photo: np.ndarray, face: Face, style: CropStyle) -> np.ndarray:
    """The square crop around `face` that the style describes, at the photo's own resolution."""
    side = max(1, round(style.scale * face.size))
    box_x, box_y = face.centre
    if not style.level_eyes or abs(face.tilt) < 0.5:
        return _square(photo, box_x + style.offset_x * face.size, box_y + style.offset_y * face.size, side)
    # Level the eyes: turn a region about the point between the eyes, then crop from the turned region.
    (eye_x1, eye_y1), (eye_x2, eye_y2) = face.landmarks["left_eye"], face.landmarks["right_eye"]
    pivot_x, pivot_y = (eye_x1 + eye_x2) / 2, (eye_y1 + eye_y2) / 2
    turn = math.radians(face.tilt)  # PIL turns anticlockwise on screen: (dx, dy) -> (dx cos + dy sin, dy cos - dx sin)
    dx, dy = box_x - pivot_x, box_y - pivot_y
    dx, dy = dx * math.cos(turn) + dy * math.sin(turn), dy * math.cos(turn) - dx * math.sin(turn)
    dx, dy = dx + style.offset_x * face.size, dy + style.offset_y * face.size  # the crop's centre, eyes level
    big = 2 * math.ceil(math.hypot(dx, dy) + side / math.sqrt(2)) + 2  # holds the crop at any angle
    region = Image.fromarray(np.ascontiguousarray(_square(photo, pivot_x, pivot_y, big)))
    turned = np.asarray(region.rotate(face.tilt, resample=Image.BICUBIC))
    return _square(turned, big / 2 + dx, big / 2 + dy, side)
