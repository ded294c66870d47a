"""A `Detector`: a saved model folder, loaded once, that scores images fast.

It scores images with the folder's LiteRT export (model.tflite, see `helpers.litert`) when that is
present and fresh: several times faster on a CPU. Otherwise it calls the Keras model through one
compiled `tf.function`, so a single image costs milliseconds rather than the ~50 ms that
`model.predict` spends setting up each call. Images are decoded exactly as in training
(`images.load_resized`).

A whole photo is not what the model learnt from: `predict_photo` first finds each face and crops it
the way the model's training images were cropped (`helpers.faces`), then scores every face on its
own. `predict_image` scores an image as given (a face crop). `helpers.predict` scores files and
folders with a Detector, and is the `predict` command.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import config, litert, saving
from helpers.config import RUNTIMES
from helpers.errors import BadArgumentError, UserError
from helpers.faces import CropStyle, Face, crop_face, find_faces_in_many
from helpers.files import printable
from helpers.images import ImageSource, load_image, load_resized, resize

FACE_MODES = ("auto", "on", "off")  # find faces when the model records a crop style / always / never
NO_FACE = "no face found (score the whole image with faces='off', or --faces off)."


class NoCropStyleError(UserError, ValueError):
    """Faces were asked for, but the model's sidecar does not say how its training faces were cropped."""


@dataclass
class Prediction:
    """The verdict on one image. `error` says why an image could not be scored (then no label or score)."""

    source: str
    label: str | None
    p_fake: float | None
    threshold: float
    backbone: str
    error: str | None = None
    faces_found: int | None = None  # how many faces the photo held; None: nobody looked
    face: int | None = None  # which of them this row scores (1 = leftmost); None: the whole image
    box: tuple[int, int, int, int] | None = None  # that face's x, y, width, height in the photo
    face_confidence: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _source_name(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "filename", "") or "image")  # a PIL image opened from a file knows its name


class Detector:
    """A loaded model folder: the Keras model, its sidecar, and fast p(fake) for images and files.

    `model` is always the Keras model (Grad-CAM needs its gradients); `runtime` says what scores
    images: "litert" (the folder's fresh model.tflite) or "keras".
    """

    def __init__(self, model, metadata: dict, directory: str | os.PathLike | None = None,
                 runtime: str = "auto", verbose: bool = False):
        self.model = model
        self.metadata = metadata
        self.directory = Path(directory) if directory else None
        self.image_size = int(metadata["image_size"])
        self.threshold = float(metadata["threshold"])
        self.backbone = str(metadata["backbone"])
        self.crop_style = CropStyle.from_metadata(metadata)  # None: a model trained before face finding
        from helpers import classifier  # Keras: imported when a model is in hand, so that importing this is light

        self._forward = classifier.inference_function(model)  # traced once, whatever the batch size
        if runtime not in RUNTIMES:
            raise BadArgumentError(f"Unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
        self._runner, self.runtime_reason = self._choose_runner(runtime)
        self.runtime = "keras" if self._runner is None else "litert"
        if verbose:
            print(f"using {self.runtime_reason}")

    def _choose_runner(self, runtime: str) -> tuple[litert.TFLiteRunner | None, str]:
        """The LiteRT runner to use (or None for Keras), and a line saying which and why."""
        if runtime == "keras":
            return None, "Keras: asked for (runtime='keras')"
        if self.directory is None:
            reason = "the model was not loaded from a folder, so it has no export"
        else:
            try:
                runner = litert.load_runner(self.directory)
                return runner, f"LiteRT ({litert.runtime_name().split()[0]}) {litert.EXPORT_FILE}"
            except litert.ExportError as err:
                reason = str(err)
        if runtime == "litert":
            raise litert.ExportError(f"LiteRT was asked for, but {reason}.")
        if self.directory is not None and litert.is_exported(self.directory):  # broken, not just absent
            warnings.warn(f"Not using {litert.EXPORT_FILE}: {reason}; predicting with Keras.", stacklevel=4)
        return None, f"Keras: {reason}"

    @classmethod
    def load(cls, model_dir: str | os.PathLike, verbose: bool = True, runtime: str | None = None) -> Detector:
        """Load a saved model folder (see `saving.load_model`); raises saving.ModelFileError if it is damaged.

        runtime: "auto" (LiteRT when model.tflite is fresh, else Keras), "keras" or "litert" (an error
        when the export is missing or stale); default $DEEPFAKE_RUNTIME, else "auto".
        """
        runtime = config.resolve_runtime(runtime)  # a typo fails before the slow part
        model, metadata = saving.load_model(model_dir, verbose=verbose)
        return cls(model, metadata, model_dir, runtime=runtime, verbose=verbose)

    def __repr__(self) -> str:
        return printable(f"Detector({self.backbone}, {self.image_size} px, threshold {self.threshold:.3f}, "
                         f"{self.runtime}, from {self.directory or 'memory'})")

    def label(self, p_fake: float) -> str:
        """'fake' at or above the model's threshold, else 'real' (the rule metrics.at_threshold uses)."""
        return "fake" if p_fake >= self.threshold else "real"

    def p_fake(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """p(fake) for an (N, size, size, 3) array of 0-255 RGB images, already at the model's size."""
        images = np.asarray(images)
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"Expected images of shape (N, {', '.join(map(str, expected))}), got {images.shape}; "
                             "use images.load_resized to prepare them.")
        forward = (lambda batch: self._forward(batch)[:, 1]) if self._runner is None else (lambda batch: self._runner(batch)[:, 1])
        scores = [np.asarray(forward(images[i:i + batch_size].astype(np.float32)))
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(scores).astype(float) if scores else np.zeros(0)

    def _prediction(self, source: str, p_fake: float) -> Prediction:
        return Prediction(source, self.label(p_fake), float(p_fake), self.threshold, self.backbone)

    def failed(self, source: str, error: str, **face) -> Prediction:
        """The row for an image that could not be scored: `error` says why."""
        return Prediction(source, None, None, self.threshold, self.backbone, error, **face)

    def face_mode(self, faces: str) -> str:
        """'auto', 'on' or 'off' as it applies to this model: 'auto' is 'off' when it records no crop style."""
        if faces not in FACE_MODES:
            raise BadArgumentError(f"Unknown faces mode {faces!r}: choose one of {', '.join(FACE_MODES)}.")
        if self.crop_style is None and faces == "on":
            raise NoCropStyleError(f"{self.directory or 'This model'}: its model.json records no face crop style "
                                   "(it was trained before face finding existed); retrain it, or score whole "
                                   "images with faces='off'.")
        return "off" if self.crop_style is None else faces

    def predict_image(self, source: ImageSource, name: str | None = None) -> Prediction:
        """Score one image as it is (a face crop): a path, bytes, a PIL image or an array.

        Bad input raises ValueError (a plain message). For a whole photo use `predict_photo`.
        """
        name = name or _source_name(source)
        image = load_resized(source, self.image_size, name=name)
        return self._prediction(name, self.p_fake(image[None])[0])

    def predict_photo(self, source: ImageSource, name: str | None = None, faces: str = "auto") -> list[Prediction]:
        """Score each face in a photo, cropped like the training data: one Prediction per face.

        faces: "auto" finds faces when the model records its crop style and scores the whole image when
        none is found; "on" reports "no face found" instead; "off" scores the whole image.
        """
        mode = self.face_mode(faces)
        name = name or _source_name(source)
        image = load_resized(source, self.image_size, name=name) if mode == "off" else load_image(source, name=name)
        return self.score(mode, [name], [(image, None)])

    def photo_inputs(self, photo: np.ndarray, faces: str = "auto") -> list[tuple[Face | None, np.ndarray | None]]:
        """What the model sees of a decoded photo: each face found with its crop at the model's size.

        (None, the whole image resized) when faces are not looked for, or none is found in 'auto';
        [(None, None)] when none is found in 'on'.
        """
        mode = self.face_mode(faces)
        return self._inputs(mode, photo, find_faces_in_many([photo])[0] if mode != "off" else [])

    def _inputs(self, mode: str, image: np.ndarray, found: list[Face]) -> list[tuple[Face | None, np.ndarray | None]]:
        if found:
            return [(face, resize(crop_face(image, face, self.crop_style), self.image_size)) for face in found]
        return [(None, None if mode == "on" else resize(image, self.image_size))]

    def score(self, mode: str, names: list[str], loaded: list[tuple[np.ndarray | None, str | None]]) -> list[Prediction]:
        """Predictions for decoded images, each given as (image, None) or (None, why it could not be read).

        `mode` is a `face_mode`: 'off' takes images already at the model's size; 'auto' and 'on' take whole
        photos and score each face found in them (photos are searched for faces as one batch).
        """
        photos = [image for image, _ in loaded if image is not None]
        found = iter(find_faces_in_many(photos) if mode != "off" and photos else [[]] * len(photos))
        rows = []  # (name, the model's input or None, why not, what the row says about faces)
        for name, (image, error) in zip(names, loaded):
            if image is None:
                rows.append((name, None, error, {}))
                continue
            faces_here = next(found)
            for number, (face, model_input) in enumerate(self._inputs(mode, image, faces_here), start=1):
                about = {} if mode == "off" else {"faces_found": len(faces_here)}
                if face is not None:
                    about.update(face=number, box=face.box(), face_confidence=face.confidence)
                rows.append((name, model_input, NO_FACE if model_input is None else None, about))
        inputs = [model_input for _, model_input, _, _ in rows if model_input is not None]
        scores = iter(self.p_fake(np.stack(inputs)) if inputs else [])
        return [self.failed(name, error, **face) if model_input is None
                else dataclasses.replace(self._prediction(name, next(scores)), **face)
                for name, model_input, error, face in rows]


@functools.lru_cache(maxsize=2)
def _cached_detector(directory: str, runtime: str, file_times: tuple[int, ...]) -> Detector:
    return Detector.load(directory, runtime=runtime)


def as_detector(model_dir_or_detector: Detector | str | os.PathLike, runtime: str | None = None) -> Detector:
    """A Detector as given, or the one for a model folder (kept loaded until its files change)."""
    if isinstance(model_dir_or_detector, Detector):
        return model_dir_or_detector
    directory = Path(model_dir_or_detector).resolve()
    files = (directory / name for name in (saving.SIDECAR_FILE, saving.MODEL_FILE, saving.WEIGHTS_FILE,
                                           litert.EXPORT_FILE))
    file_times = tuple(path.stat().st_mtime_ns if path.is_file() else 0 for path in files)
    return _cached_detector(str(directory), config.resolve_runtime(runtime), file_times)
