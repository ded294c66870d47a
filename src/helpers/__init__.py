"""Helpers for the deepfake-lessons notebooks: one module per concept.

config (paths, profiles, seeds) -> data (find, scan, split, feed images) -> backbones -> model ->
train -> saved model folder -> predict / evaluate / gradcam / demo. See README.md for the map.

Importing the package keeps TensorFlow's start-up lines off stderr (helpers.tensorflow_logs;
$DEEPFAKE_TF_LOGS=1 shows them).
"""
from helpers import tensorflow_logs as _tensorflow_logs

__version__ = "0.1.0"

_tensorflow_logs.quiet_first_import()
