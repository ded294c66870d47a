"""Export a saved model to LiteRT (TensorFlow Lite) for fast CPU inference, checked against Keras.

    deepfake-lessons export MODEL_DIR [--quantize dynamic|int8] [--data DATA_ROOT]   (or python -m helpers export ...)

Keras pays a fixed cost on every call (graph dispatch, `predict`'s loop); the LiteRT interpreter runs a
flat list of XNNPACK kernels with none of that, several times faster on a CPU. The exported graph is
the inference graph only: the `augment_*` layers are identity at inference, and their random ops are
left out rather than converted.

    MODEL_DIR/model.tflite          the exported model (float32, free batch dimension)
    MODEL_DIR/model-int8.tflite     with --quantize int8 (or -dynamic): a quarter of the size, p(fake) moves
    MODEL_DIR/model.json            gains an "export" (or "export_int8") entry: what was exported, from
                                    which files, how well it agrees with Keras

`helpers.litert` runs the exported file, and says whether it is still fresh.
"""
from __future__ import annotations

import argparse
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from helpers import data, files, saving
from helpers.errors import BadArgumentError
from helpers.images import ImageError, load_resized
from helpers.litert import (ExportError, TFLiteRunner, entry_key, export_path, read_sidecar, runtime_name,
                            source_hashes)

TOLERANCE = 1e-4  # largest |p(fake) difference| from Keras a float32 export may show on the verification images
VERIFY_PER_CLASS = 16  # test images per class a float32 export is verified on
# Quantization changes p(fake) by up to ~0.2, so no tolerance on scores can hold: a quantized export is
# judged by what it does to the ranking instead, ROC-AUC on the validation split, and kept only if
# that drops by less than MAX_AUC_DROP.
QUANTIZATIONS = ("dynamic", "int8")
MAX_AUC_DROP = 0.005
QUANTIZED_VERIFY_PER_CLASS = 100  # validation images per class
REPRESENTATIVE_PER_CLASS = 50  # training images per class that calibrate int8 quantization


# ----------------------------------------------------------------------------- conversion
def inference_model(model):
    """The same model without its `augment_*` layers, sharing every other layer (and so every weight).

    The augmentation layers pass images through unchanged at inference; skipping them keeps their
    random ops out of the exported graph.
    """
    import keras

    def skip_augmentation(layer, *args, **kwargs):
        return args[0] if layer.name.startswith("augment_") else layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=skip_augmentation)


def to_tflite(model, quantize: str | None = None, representative: np.ndarray | None = None) -> bytes:
    """Convert a functional Keras model's inference graph to a .tflite flatbuffer with a free batch dimension.

    quantize: None (float32), "dynamic" (int8 weights) or "int8" (weights and activations, calibrated
    on `representative` images; input and output stay float32).
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if quantize not in (None, *QUANTIZATIONS):
        raise BadArgumentError(f"Unknown quantization {quantize!r}: choose one of {', '.join(QUANTIZATIONS)}.")
    graph = inference_model(model)
    spec = tf.TensorSpec((None, *graph.inputs[0].shape[1:]), tf.float32, name="image")
    forward = tf.function(lambda images: graph(images, training=False), input_signature=[spec])
    # The converter leaves Keras 3 variables as uninitialised resource handles (NaN out), so freeze them
    # into constants first; that also lets it fold BatchNorm into the convolutions.
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    # The converter writes its trackable object out as a SavedModel first. The frozen function has no
    # variables for it to keep alive, so an empty module does: the same bytes, five times faster than the model.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        if representative is None or not len(representative):
            raise ValueError("int8 quantization needs representative images to calibrate on.")
        converter.representative_dataset = lambda: ([image[None].astype(np.float32)] for image in representative)
    return converter.convert()


# ----------------------------------------------------------------------------- images to verify and calibrate on
def _images(root, split: str | None, per_class: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` readable images of each class (of one split, if given), in a fixed order,
    as float32 (N, size, size, 3) images and their labels."""
    try:
        frame = data.index_dataset(root)
    except (data.DatasetLayoutError, OSError) as err:
        raise ExportError(f"Cannot read the data root {root} ({err}); pass another with --data.") from err
    if split and (frame["split"] == split).any():
        frame = frame[frame["split"] == split]
    chosen, labels = [], []
    for label in sorted(frame["label"].unique()):
        loaded = 0
        for path in sorted(frame.loc[frame["label"] == label, "path"]):
            try:
                chosen.append(load_resized(path, size))
            except (ImageError, OSError):  # an unreadable file is not a reason to refuse an export
                continue
            labels.append(label)
            loaded += 1
            if loaded == per_class:
                break
    if not chosen:
        raise ExportError(f"No readable images in {root}.")
    return np.stack(chosen).astype(np.float32), np.asarray(labels)


def _data_root(metadata: dict, data_root) -> str:
    root = data_root or metadata.get("data", {}).get("root")
    if not root or not Path(root).is_dir():
        raise ExportError(f"The data root {root!r} recorded in {saving.SIDECAR_FILE} is not here: pass one "
                          "with --data (real images are needed to check the export against Keras).")
    return str(root)


# ----------------------------------------------------------------------------- export
def _keras_scores(model, images: np.ndarray) -> np.ndarray:
    return model.predict(images, batch_size=32, verbose=0)[:, 1]  # predict runs in inference mode


def verify_float(model, runner: TFLiteRunner, root: str, size: int) -> dict:
    """Check a float32 export against Keras on test images: p(fake) within TOLERANCE, else ExportError."""
    images, _ = _images(root, "test", VERIFY_PER_CLASS, size)
    difference = float(np.max(np.abs(runner(images)[:, 1] - _keras_scores(model, images))))
    if not difference <= TOLERANCE:  # also refuses NaN
        raise ExportError(f"The exported model disagrees with Keras: p(fake) differs by up to {difference:.2e} "
                          f"(allowed {TOLERANCE:.0e}) on {len(images)} test images from {root}.")
    return {"max_abs_diff_p_fake": difference, "tolerance": TOLERANCE,
            "verified_on": {"root": root, "split": "test", "images": len(images)}}


def verify_quantized(model, runner: TFLiteRunner, root: str, size: int) -> dict:
    """Check a quantized export's validation ROC-AUC against Keras: a drop under MAX_AUC_DROP, else ExportError."""
    from helpers import metrics

    images, labels = _images(root, "validation", QUANTIZED_VERIFY_PER_CLASS, size)
    keras_scores, scores = _keras_scores(model, images), runner(images)[:, 1]
    aucs = {"keras": metrics.summary(labels, keras_scores, 0.5)["roc_auc"],
            "exported": metrics.summary(labels, scores, 0.5)["roc_auc"]}
    if None in aucs.values():
        raise ExportError(f"The validation images of {root} hold one class only: no ROC-AUC to compare.")
    drop = aucs["keras"] - aucs["exported"]
    if not drop < MAX_AUC_DROP:
        raise ExportError(f"Quantization costs too much: validation ROC-AUC {aucs['keras']:.4f} -> "
                          f"{aucs['exported']:.4f} (a drop of {drop:.4f}, allowed {MAX_AUC_DROP}).")
    return {"max_abs_diff_p_fake": float(np.max(np.abs(scores - keras_scores))),
            "validation_roc_auc": aucs, "max_auc_drop": MAX_AUC_DROP,
            "verified_on": {"root": root, "split": "validation", "images": len(images)}}


def export_tflite(model_dir: str | os.PathLike, quantize: str | None = None,
                  data_root: str | os.PathLike | None = None, verbose: bool = True) -> Path:
    """Export a saved model folder to model.tflite beside it, verified against Keras on real images.

    The data root is `data_root`, else the one recorded in the sidecar. A float32 export must give
    p(fake) within TOLERANCE of Keras on test images (`verify_float`). `quantize` ("dynamic" or
    "int8") writes model-<quantize>.tflite instead, which must keep validation ROC-AUC within
    MAX_AUC_DROP (`verify_quantized`); the Detector never picks a quantized file by itself.
    A refused export is deleted and raises ExportError. Returns the path of the file.
    """
    directory = Path(model_dir)
    sidecar = read_sidecar(directory)
    sources = source_hashes(directory)
    model, metadata = saving.load_model(directory, verbose=verbose)
    root = _data_root(metadata, data_root)
    size = int(metadata["image_size"])
    representative = _images(root, "train", REPRESENTATIVE_PER_CLASS, size)[0] if quantize == "int8" else None
    path = export_path(directory, quantize)
    blob = to_tflite(model, quantize, representative)
    files.write_atomically(path, lambda temporary: Path(temporary).write_bytes(blob))
    try:
        verify = verify_float if quantize is None else verify_quantized
        verification = verify(model, TFLiteRunner(path), root, size)
    except ExportError as err:
        _remove_export(directory, sidecar, quantize)
        raise ExportError(f"{err} {path.name} was not kept.") from err
    except Exception:  # the runtime could not even load it
        _remove_export(directory, sidecar, quantize)
        raise
    sidecar[entry_key(quantize)] = {
        "file": path.name,
        "sha256": files.sha256_of(path),
        "source_sha256": sources,
        "quantization": quantize,
        "runtime": runtime_name(),
        "threads": os.cpu_count(),
        **verification,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    files.write_json(directory / saving.SIDECAR_FILE, sidecar)
    return path


def _remove_export(directory: Path, sidecar: dict, quantize: str | None) -> None:
    """Delete a refused export and any record of an earlier one (the file it described is gone)."""
    export_path(directory, quantize).unlink(missing_ok=True)
    if sidecar.pop(entry_key(quantize), None) is not None:
        files.write_json(directory / saving.SIDECAR_FILE, sidecar)


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (helpers.cli runs it)."""
    parser.add_argument("model_dir", help="a saved model folder (model.keras, model.weights.h5, model.json)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS,
                        help="write model-<quantize>.tflite, smaller; kept only if validation ROC-AUC holds")
    parser.add_argument("--data", help="data root to verify on (default: the one recorded in model.json)")


def run(args: argparse.Namespace) -> None:
    path = export_tflite(args.model_dir, args.quantize, args.data)
    entry = read_sidecar(path.parent)[entry_key(args.quantize)]
    print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB, quantization: {args.quantize or 'none'}).")
    print(f"Runtime: {entry['runtime']}, {entry['threads']} threads.")
    checked = entry["verified_on"]
    print(f"Agreement with Keras on {checked['images']} {checked['split']} images from {checked['root']}: "
          f"max |Δp(fake)| = {entry['max_abs_diff_p_fake']:.2e}" + (
              f" (allowed {entry['tolerance']:.0e})." if args.quantize is None else
              f", ROC-AUC {entry['validation_roc_auc']['keras']:.4f} (Keras) -> "
              f"{entry['validation_roc_auc']['exported']:.4f} (allowed drop {entry['max_auc_drop']})."))
