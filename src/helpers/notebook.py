"""What the first code cell of every lesson calls: version checks, seeds, plot style, and a summary."""
from __future__ import annotations

import os
import sys

from helpers import config

MIN_VERSIONS = {"tensorflow": (2, 18), "keras": (3, 8)}


def in_colab() -> bool:
    return "google.colab" in sys.modules


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def check_versions() -> dict[str, str]:
    """Fail early, with a plain message, when Python or a key library is too old."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the lesson
    import keras
    import tensorflow as tf

    if sys.version_info < (3, 10):
        raise RuntimeError(f"These lessons need Python 3.10 or newer; this is {sys.version.split()[0]}.")
    found = {"python": sys.version.split()[0], "tensorflow": tf.__version__, "keras": keras.__version__}
    for package, minimum in MIN_VERSIONS.items():
        if _version_tuple(found[package]) < minimum:
            raise RuntimeError(f"{package} {found[package]} is too old: these lessons need "
                               f"{'.'.join(map(str, minimum))} or newer (`pip install -U {package}`).")
    return found


def start(profile: str | None = None) -> config.Profile:
    """Check versions, seed everything, set the plot style, print what this run uses; return the profile."""
    from helpers import plots

    versions = check_versions()
    chosen = config.get_profile(profile)
    config.set_seeds()
    plots.use_style()
    if in_colab():
        from google.colab import output

        output.enable_custom_widget_manager()  # ipywidgets 8 in Colab
    print(" | ".join(f"{name} {version}" for name, version in versions.items()))
    print(config.describe(chosen))
    return chosen
