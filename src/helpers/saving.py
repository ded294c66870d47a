"""The saved model folder: the one contract between training and everything after it.

    MODEL_DIR/model.keras        the whole model (architecture + weights), Keras 3 format
    MODEL_DIR/model.weights.h5   the weights alone, for rebuilding when model.keras will not load
    MODEL_DIR/model.json         the sidecar: how to rebuild and use the model, and how it scored
    MODEL_DIR/training_files.json  content hashes of the training and validation images (overlap checks)

Every file is written to a temporary name first and renamed into place, so a crash never leaves a
half-written model behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "model.weights.h5"
SIDECAR_FILE = "model.json"
TRAINING_FILES = "training_files.json"


class ModelFileError(ValueError):
    """A saved model folder is missing a file, or holds one that is truncated or foreign."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic(path: Path, write) -> None:
    """Call write(temporary_path) and move the result onto `path` in one step."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix="".join(path.suffixes))
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes owner-only files; a model folder is meant to be shared
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write JSON atomically (also used for metrics and benchmark results)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


def save_model(model, directory: str | os.PathLike, metadata: dict) -> Path:
    """Save model.keras, model.weights.h5 and the model.json sidecar (metadata plus versions and checksums)."""
    import keras
    import tensorflow as tf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic(directory / MODEL_FILE, model.save)
    _atomic(directory / WEIGHTS_FILE, model.save_weights)
    sidecar = {
        **metadata,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {name: _sha256(directory / name) for name in (MODEL_FILE, WEIGHTS_FILE)},
    }
    write_json(directory / SIDECAR_FILE, sidecar)
    return directory


def read_metadata(directory: str | os.PathLike) -> dict:
    """The sidecar of a saved model folder, checked for the keys everything after training needs."""
    path = Path(directory) / SIDECAR_FILE
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: {directory} is not a saved model folder "
                             "(train one with `python -m helpers.train`).")
    try:
        metadata = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON ({err}); the file is damaged.") from err
    missing = [key for key in ("backbone", "image_size", "class_names", "threshold") if key not in metadata]
    if missing:
        raise ModelFileError(f"{path} lacks {', '.join(missing)}: it was not written by helpers.saving.")
    return metadata


def _rebuild(directory: Path, metadata: dict):
    from helpers.model import build_classifier

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

    Tries model.keras in Keras' safe mode (compile=False: we only predict or recompile); if that
    fails, rebuilds the architecture from the sidecar and loads model.weights.h5.
    """
    import keras

    import helpers.augment  # noqa: F401  registers the custom augmentation layers for loading
    import helpers.model  # noqa: F401  registers FakeAUC

    directory = Path(directory)
    metadata = read_metadata(directory)
    path = directory / MODEL_FILE
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True), metadata
    except Exception as err:  # any failure here falls back to the weights file
        if verbose:
            print(f"Could not load {path} ({type(err).__name__}: {str(err)[:200]}); "
                  f"rebuilding from {SIDECAR_FILE} and loading {WEIGHTS_FILE}.")
    return _rebuild(directory, metadata), metadata
