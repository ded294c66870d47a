"""TensorFlow's start-up lines, kept out of every command's and lesson's output.

Importing TensorFlow 2.21 writes half a dozen lines to stderr before anything else happens: "All
log messages before absl::InitializeLog() is called...", the oneDNN notice, "Could not find cuda
drivers" and "failed call to cuInit" on a machine without a GPU (on one with a GPU: cuDNN, cuFFT
and cuBLAS factory registrations, "computation placer already registered"), and a CPU-instruction
notice. $TF_CPP_MIN_LOG_LEVEL silences only the last one: the others are written before TensorFlow
reads it, and no other variable reaches them.

So `import helpers` calls `quiet_first_import`: the first `import tensorflow` that follows, by any
module (Keras included), runs with file descriptor 2 sent to a temporary file. Afterwards every
captured line that is not one of the start-up lines above is written back to stderr, so a real
warning is never lost; if the import fails, everything is written back. Set $DEEPFAKE_TF_LOGS=1 to
see all the lines again.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

from helpers import config

START_UP_LINES = (  # a captured line holding one of these is dropped
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",  # oneDNN stays on: turning it off would change the numbers
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Could not find cuda drivers on your machine",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
)
NO_DRIVER = "Could not find cuda drivers on your machine"
NO_DRIVER_FOLLOW_UP = "failed call to cuInit"  # expected, and dropped, only when there is no driver at all


def without_start_up_lines(text: str) -> str:
    """`text` less TensorFlow's start-up lines; a failed cuInit is dropped only where no CUDA driver exists."""
    lines = text.splitlines(keepends=True)
    no_driver = any(NO_DRIVER in line for line in lines)
    return "".join(line for line in lines if not any(known in line for known in START_UP_LINES)
                   and not (no_driver and NO_DRIVER_FOLLOW_UP in line))


@contextlib.contextmanager
def stderr_filtered(keep=without_start_up_lines):
    """Send file descriptor 2 (where C++ libraries write) to a temporary file while the block runs.

    On leaving, `keep(captured text)` is written to stderr, or all of it when the block raised.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # a process without stderr (a windowless app): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            text = text if failed else keep(text)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run inside `stderr_filtered`; it hands the module back to that loader after."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_filtered():
            self.loader.exec_module(module)
            list_devices = getattr(getattr(module, "config", None), "list_physical_devices", None)
            if list_devices:
                list_devices()  # looks for GPUs now, so that "failed call to cuInit" is written in here
        module.__loader__ = module.__spec__.loader = self.loader


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it makes the first `import tensorflow` run through `_QuietLoader`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def show_logs() -> bool:
    """True when $DEEPFAKE_TF_LOGS asks for TensorFlow's start-up lines (any value but empty or 0)."""
    return os.environ.get(config.TF_LOGS_ENV, "").strip() not in ("", "0")


def quiet_first_import() -> bool:
    """Filter TensorFlow's start-up lines out of its first import; returns whether it will.

    Does nothing when TensorFlow is already imported or $DEEPFAKE_TF_LOGS is set. What TensorFlow
    writes later (warnings, errors) is left alone.
    """
    if show_logs() or "tensorflow" in sys.modules or any(isinstance(f, _QuietFirstImport) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _QuietFirstImport())
    return True
