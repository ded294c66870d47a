"""Helpers for the deepfake-lessons notebooks: one module per concept, in the order README's module table gives.

settings (config) -> data (find, scan, split, feed images) -> metrics -> looking before training (eda,
audit, augment) -> the model (backbones, classifier, saving, train) -> using it (detector, predict,
evaluate, gradcam, demo, ...) -> the ways in (notebook, cli).

Importing the package does one thing on purpose: it keeps TensorFlow's start-up lines off stderr
(helpers.tensorflow_logs; $DEEPFAKE_TF_LOGS=1 shows them). That filter must be in place before the
first `import tensorflow`, and any helpers module may be the first to import it (the lessons,
the tests, the command line and a learner's own script each import a different one first), so the
package's import is the one place that comes before all of them. It is inert until then, and
removes itself after that first import.
"""
from helpers import tensorflow_logs as _tensorflow_logs

__version__ = "0.1.0"

_tensorflow_logs.quiet_first_import()
