"""The saved model folder: the one contract between training and everything after it.

    MODEL_DIR/model.keras        the whole model (architecture + weights), Keras 3 format
    MODEL_DIR/model.weights.h5   the weights alone, for rebuilding when model.keras will not load
    MODEL_DIR/model.json         the sidecar: how to rebuild and use the model, and how it scored
    MODEL_DIR/training_files.json  content hashes of the training and validation images (overlap checks)

Every file is written to a temporary name first and renamed into place, so a crash never leaves a
half-written model behind. Reading the sidecar checks every field that is used after training
(`read_metadata`); loading checks each file against the sha256 the sidecar recorded, and the
sidecar's image_size against the model's input.
"""
from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from helpers.config import CLASS_NAMES
from helpers.errors import UserError
from helpers.faces import CropStyle, shown
from helpers.files import sha256_of, write_atomically, write_json

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "model.weights.h5"
SIDECAR_FILE = "model.json"
TRAINING_FILES = "training_files.json"
MAX_IMAGE_SIZE = 4096  # pixels a side: a sidecar asking for more is damaged (the profiles use 96 to 384)
SHA256 = re.compile("[0-9a-f]{64}")


class ModelFileError(UserError, ValueError):
    """A saved model folder is missing a file, or holds one that is truncated or foreign."""


def save_model(model, directory: str | os.PathLike, metadata: dict) -> Path:
    """Save model.keras, model.weights.h5 and the model.json sidecar (metadata plus versions and checksums)."""
    import keras
    import tensorflow as tf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / MODEL_FILE, model.save)
    write_atomically(directory / WEIGHTS_FILE, model.save_weights)
    sidecar = {
        **metadata,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {name: sha256_of(directory / name) for name in (MODEL_FILE, WEIGHTS_FILE)},
    }
    write_json(directory / SIDECAR_FILE, sidecar)
    return directory


def _finite(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # not a bool, not nan or inf


def _text_or_null(value) -> bool:
    return value is None or isinstance(value, str)


def _path_or_null(value) -> bool:
    return value is None or (isinstance(value, str) and "\0" not in value)  # no path holds a NUL


# The fields everything after training reads, what each must be, and how an error says so.
REQUIRED_FIELDS = {
    "backbone": (lambda v: isinstance(v, str) and v != "", "a backbone's name"),
    "image_size": (lambda v: type(v) is int and 0 < v <= MAX_IMAGE_SIZE,
                   f"a positive whole number of pixels, at most {MAX_IMAGE_SIZE}"),
    "class_names": (lambda v: v == list(CLASS_NAMES), json.dumps(list(CLASS_NAMES))),
    "threshold": (lambda v: _finite(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "files": (lambda v: isinstance(v, dict) and {MODEL_FILE, WEIGHTS_FILE} <= set(v)
              and all(isinstance(digest, str) and SHA256.fullmatch(digest) for digest in v.values()),
              f"the sha256 (64 hex digits) of {MODEL_FILE} and of {WEIGHTS_FILE}, by name"),
}
OPTIONAL_FIELDS = {  # "a.b": b inside a (checked once a is known to be an object)
    "profile": (lambda v: isinstance(v, str), "a profile's name"),
    "saved_at": (lambda v: isinstance(v, str), "a time"),
    "augmentations": (lambda v: isinstance(v, list) and all(isinstance(name, str) for name in v),
                      "a list of layer names"),
    "data": (lambda v: isinstance(v, dict), "an object"),
    "data.root": (_path_or_null, "a folder's path or null"),
    "data.fingerprint": (_text_or_null, "text or null"),
    "validation": (lambda v: isinstance(v, dict), "an object"),
    "validation.roc_auc": (lambda v: v is None or _finite(v), "a number or null"),
    "training": (lambda v: isinstance(v, dict), "an object"),
}


def read_metadata(directory: str | os.PathLike) -> dict:
    """The sidecar of a saved model folder, with every field that is used after training checked.

    A field of the wrong type or out of its range (a threshold of nan, 5 or "abc"; a `files` entry that
    is not a sha256) is a ModelFileError naming the field and the file. So is a sidecar without `files`:
    without it, the model's files could not be checked against what was saved.
    """
    path = Path(directory) / SIDECAR_FILE
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: {directory} is not a saved model folder "
                             "(train one with `deepfake-lessons train`).")
    try:
        metadata = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON ({err}); the file is damaged.") from err
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path} holds {type(metadata).__name__}, not an object: it was not written by "
                             "helpers.saving.")
    missing = [key for key in REQUIRED_FIELDS if key not in metadata]
    if missing:
        unchecked = (f" (without files, the sha256 of {MODEL_FILE} and {WEIGHTS_FILE}, those files could not be "
                     "checked)" if "files" in missing else "")
        raise ModelFileError(f"{path} lacks {', '.join(missing)}: it was not written by helpers.saving{unchecked}; "
                             "save or train the model again.")
    for field, (accept, expected) in {**REQUIRED_FIELDS, **OPTIONAL_FIELDS}.items():
        outer, _, inner = field.partition(".")
        holder = metadata.get(outer) if inner else metadata
        key = inner or outer
        if isinstance(holder, dict) and key in holder and not accept(holder[key]):
            raise ModelFileError(f"{path}: {field} must be {expected}, not {shown(holder[key])}; the file is damaged "
                                 "or was edited.")
    try:
        CropStyle.from_metadata(metadata)
    except ValueError as err:
        raise ModelFileError(f"{path}: {err}; the file is damaged or was edited.") from None
    return metadata


def _mismatch(directory: Path, metadata: dict, name: str) -> str | None:
    """Why `name` is not the file the sidecar recorded, or None (it matches, or is absent)."""
    path = directory / name
    if not path.is_file() or sha256_of(path) == metadata["files"][name]:
        return None
    return f"{path} does not match its sha256 in {SIDECAR_FILE} (it was changed, swapped or cut short)"


def _check_input_size(model, metadata: dict, directory: Path) -> None:
    """Refuse a sidecar whose image_size is not the size the model takes."""
    shape = tuple(model.input_shape[1:3])
    size = metadata["image_size"]
    if shape != (size, size):
        raise ModelFileError(f"{directory / SIDECAR_FILE}: image_size is {size}, but the model takes "
                             f"{shape[0]}x{shape[1]} images; the sidecar belongs to another model.")


def _rebuild(directory: Path, metadata: dict):
    from helpers.classifier import build_classifier

    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise ModelFileError(f"{path} is missing, and model.keras could not be loaded either.")
    from helpers.augment import EXTRA_LAYERS, RECIPE

    names = metadata.get("augmentations", list(RECIPE))
    model = build_classifier(metadata["backbone"], metadata["image_size"], weights=None,
                             augmentations=tuple(n for n in names if n in RECIPE),
                             extra_augmentations=tuple(n for n in names if n in EXTRA_LAYERS))
    try:
        model.load_weights(path)
    except Exception as err:  # h5py and Keras raise many types for damaged or foreign files
        raise ModelFileError(f"{path} could not be loaded into a rebuilt {metadata['backbone']} model "
                             f"({type(err).__name__}: {err}); the file is truncated or from another model.") from err
    return model


def load_model(directory: str | os.PathLike, verbose: bool = True):
    """Load a saved model folder: (model, metadata).

    Tries model.keras in Keras' safe mode (compile=False: we only predict or recompile); if it does
    not match its recorded sha256 or fails to load, rebuilds the architecture from the sidecar and
    loads model.weights.h5, saying why in one line (when `verbose`). Raises ModelFileError when
    neither file can be used, or when the sidecar's image_size is not the model's input size.
    """
    directory = Path(directory)
    metadata = read_metadata(directory)  # first: a damaged sidecar is refused before Keras is imported
    import keras

    import helpers.augment  # noqa: F401  registers the custom augmentation layers for loading
    import helpers.classifier  # noqa: F401  registers FakeAUC

    path = directory / MODEL_FILE
    model, reason = None, _mismatch(directory, metadata, MODEL_FILE)
    if reason is None:
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as err:  # any failure here falls back to the weights file
            reason = f"Could not load {path} ({type(err).__name__}: {' '.join(str(err).split())[:200]})"
    if model is None:
        weights_reason = _mismatch(directory, metadata, WEIGHTS_FILE)
        if weights_reason:
            raise ModelFileError(f"{reason}; and {weights_reason}: train or copy the model folder again.")
        if verbose:
            print(f"{reason}; rebuilding from {SIDECAR_FILE} and loading {WEIGHTS_FILE}.")
        model = _rebuild(directory, metadata)
    _check_input_size(model, metadata, directory)
    return model, metadata
