"""Run an exported model: the LiteRT (TensorFlow Lite) interpreter, and whether a folder's export is fresh.

`helpers.export` writes `model.tflite` beside a saved model and records it in `model.json`; this
module loads it. The exported file is *fresh* while that record matches both the file and the Keras
files it was made from. Anything else (stale, truncated, unloadable) makes `detector.Detector` fall
back to Keras with a warning.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from helpers import files, saving
from helpers.errors import UserError

EXPORT_FILE = "model.tflite"
EXPORT_KEY = "export"  # the sidecar entry
# Images the interpreter runs per invocation. Measured at 224 px on 2 cores (benchmarks/bench_export.py):
# 32 images one at a time ran 5-30% faster than one resized batch of 32 in every run (the small
# activations stay in cache), and a single image never makes the interpreter re-plan its memory.
RUN_BATCH = 1


class ExportError(UserError, ValueError):
    """An export could not be made, verified or used."""


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the maintained runtime is not installed: TensorFlow's own (deprecated) copy
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def runtime_name() -> str:
    """Which interpreter runs exported models here: 'ai-edge-litert <version>' or 'tf.lite <version>'."""
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter  # noqa: F401  the import that can fail

        return f"ai-edge-litert {ai_edge_litert.__version__}"
    except ImportError:
        import tensorflow as tf

        return f"tf.lite {tf.__version__}"


class TFLiteRunner:
    """One .tflite model in a LiteRT interpreter: float32 (N, S, S, 3) images in 0-255, its first output out.

    Any N works: images are run `batch_size` at a time (the input tensor is resized when that changes).
    """

    def __init__(self, model: str | os.PathLike | bytes, num_threads: int | None = None,
                 batch_size: int = RUN_BATCH):
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        self._interpreter = _interpreter_class()(**source, num_threads=num_threads or os.cpu_count())
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        free_batch = self._input["shape_signature"][0] == -1
        self.batch_size = batch_size if free_batch else self._batch
        self.input_shape = tuple(int(n) for n in self._input["shape"][1:])
        self.output_shape = tuple(int(n) for n in self._output["shape"][1:])

    def __call__(self, images) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != self.input_shape:
            raise ValueError(f"Expected images of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {images.shape}.")
        outputs = [self._run(images[i:i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, *self.output_shape), np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], batch.shape, strict=True)
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input["index"], batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])

    def op_names(self) -> set[str]:
        """The kernels in the graph (CONV_2D, ...): what was exported."""
        return {op["op_name"] for op in self._interpreter._get_ops_details()}

    def tensor_names(self) -> list[str]:
        return [tensor["name"] for tensor in self._interpreter.get_tensor_details()]


def export_path(directory: Path, quantize: str | None) -> Path:
    return directory / (EXPORT_FILE if quantize is None else f"model-{quantize}.tflite")


def source_hashes(directory: Path) -> dict[str, str]:
    """Content hashes of the Keras files an export is made from (whichever exist)."""
    return {name: files.sha256_of(directory / name) for name in (saving.MODEL_FILE, saving.WEIGHTS_FILE)
            if (directory / name).is_file()}


def read_sidecar(directory: Path) -> dict:
    saving.read_metadata(directory)  # the checks and plain errors for a missing or damaged sidecar
    return json.loads((directory / saving.SIDECAR_FILE).read_text())


def entry_key(quantize: str | None) -> str:
    return EXPORT_KEY if quantize is None else f"{EXPORT_KEY}_{quantize}"


def is_exported(model_dir: str | os.PathLike, quantize: str | None = None) -> bool:
    """Whether the folder holds an exported file or a record of one (fresh or not)."""
    directory = Path(model_dir)
    try:
        recorded = entry_key(quantize) in read_sidecar(directory)
    except saving.ModelFileError:
        recorded = False
    return recorded or export_path(directory, quantize).exists()


def stale_reason(model_dir: str | os.PathLike, quantize: str | None = None) -> str | None:
    """None when the exported file is fresh; otherwise why it must not be used."""
    directory = Path(model_dir)
    path = export_path(directory, quantize)
    try:
        entry = read_sidecar(directory).get(entry_key(quantize))
    except saving.ModelFileError as err:
        return str(err)
    if entry is not None and not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                                  and isinstance(entry.get("source_sha256"), dict)):
        return f"the record of {path.name} in {saving.SIDECAR_FILE} is damaged (no sha256 of it and of its sources)"
    if entry is None:
        if path.exists():
            return f"{path.name} is not recorded in {saving.SIDECAR_FILE} (the model was saved again after exporting)"
        return f"no {path.name} (make one with `deepfake-lessons export MODEL_DIR`)"
    if not path.is_file():
        return f"{path.name} is recorded in {saving.SIDECAR_FILE} but missing"
    if files.sha256_of(path) != entry.get("sha256"):
        return f"{path.name} does not match its checksum in {saving.SIDECAR_FILE} (truncated or changed)"
    if source_hashes(directory) != entry.get("source_sha256"):
        return f"{path.name} is stale: the model's weights changed after it was exported"
    return None


def load_runner(model_dir: str | os.PathLike, quantize: str | None = None) -> TFLiteRunner:
    """The fresh exported model of a folder, loaded; ExportError says why not otherwise."""
    reason = stale_reason(model_dir, quantize)
    if reason:
        raise ExportError(reason)
    path = export_path(Path(model_dir), quantize)
    try:
        return TFLiteRunner(path)
    except Exception as err:  # the interpreter raises RuntimeError or ValueError for files it cannot run
        raise ExportError(f"{path.name} could not be loaded by {runtime_name()} ({type(err).__name__}: {err})") from err
