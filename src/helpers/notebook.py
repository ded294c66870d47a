"""What the first code cell of every lesson calls: version checks, the profile, seeds, plot style,
where files are kept (Google Drive on Colab), whether the data is there, and Ctrl-C in one line."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from helpers import acquire, config, data, standin

MIN_VERSIONS = {"tensorflow": (2, 18), "keras": (3, 8)}
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = DRIVE_MOUNT / "MyDrive" / "deepfake-lessons"

LOST_WITHOUT_DRIVE = ("Without Google Drive, data/, models/ and figures/ live in this runtime only: they are "
                      "lost when it ends, and the next lesson (a runtime of its own) will not find the models "
                      "this one saves.")
KAGGLE_HELP = f"""To download the Kaggle dataset here, give Colab your Kaggle API token (kaggle.com > Settings > API):
  1. in Colab's Secrets panel (the key icon), add {config.KAGGLE_ENV[0]} and {config.KAGGLE_ENV[1]}, allow this
     notebook to read them, and run this cell again; or
  2. run `%env {config.KAGGLE_ENV[0]}=...` and `%env {config.KAGGLE_ENV[1]}=...` in a cell, then run this cell again."""


def in_colab() -> bool:
    return "google.colab" in sys.modules


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def check_versions() -> dict[str, str]:
    """Fail early, with a plain message, when Python or a key library is too old."""
    # TensorFlow's C++ INFO and WARNING lines stay out of the lesson (its start-up lines: helpers.tensorflow_logs).
    os.environ.setdefault(config.TF_LOG_LEVEL_ENV, "2")
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


def choose_profile(profile: str | None = None) -> tuple[config.Profile, str]:
    """The profile in force and where it came from. A profile passed here is exported, so later calls agree."""
    if profile:
        chosen = config.get_profile(profile)
        os.environ[config.PROFILE_ENV] = chosen.name
        return chosen, "passed to notebook.start()"
    if os.environ.get(config.PROFILE_ENV):
        return config.get_profile(), f"from ${config.PROFILE_ENV}"
    return config.get_profile(), (f"the default; choose with notebook.start(profile=...) or "
                                  f"%env {config.PROFILE_ENV}=smoke|cpu|full")


def keep_files_on_drive(use_drive: bool = True) -> Path | None:
    """On Colab, mount Google Drive and keep data, models and figures there, so every lesson finds them."""
    if not use_drive:
        print(LOST_WITHOUT_DRIVE)
        return None
    from google.colab import drive

    try:
        drive.mount(str(DRIVE_MOUNT))
    except Exception as err:  # declined or timed out: Colab raises several types, and each is reported
        print(f"Google Drive is not mounted ({type(err).__name__}: {err}). {LOST_WITHOUT_DRIVE}")
        return None
    folder = config.use_storage(DRIVE_FOLDER)
    print(f"Files are kept on Google Drive, in {folder} (data/, models/, figures/).")
    return folder


def kaggle_credentials() -> bool:
    """True when a Kaggle token is available; on Colab, read it from the notebook's secrets first."""
    if (Path.home() / ".kaggle" / "kaggle.json").is_file():
        return True
    if in_colab() and not all(os.environ.get(name) for name in config.KAGGLE_ENV):
        from google.colab import userdata

        try:
            for name in config.KAGGLE_ENV:
                os.environ[name] = userdata.get(name)
        except (userdata.SecretNotFoundError, userdata.NotebookAccessError):
            return False
    return all(os.environ.get(name) for name in config.KAGGLE_ENV)


def data_layout(root=None) -> tuple[str, Path] | None:
    """(layout, folder) of the data root, or None when it holds no data yet."""
    try:
        return data.find_layout(config.data_root(root))
    except data.DatasetLayoutError:
        return None


def download_if_missing() -> None:
    """On Colab, download the Kaggle dataset into data/ when no data is there and a token is set."""
    if data_layout() is not None or os.environ.get(config.DATA_ENV):
        return
    if not kaggle_credentials():
        print(f"No data in {config.data_root()} yet.\n{KAGGLE_HELP}")
        return
    print(f"Downloading {acquire.KAGGLE_HANDLE} from Kaggle (about 1.7 GB: a few minutes)...")
    print(f"Data is in {acquire.download_kaggle(config.DATA_DIR / acquire.KAGGLE_NAME)}")


def no_data_help(root: Path) -> str:
    """What to do when the data root holds no images: the three ways to get some."""
    return (f"No images in {root} yet. Three ways to go on:\n"
            "  1. download the Kaggle dataset (needs a Kaggle API token): deepfake-lessons download\n"
            "  2. import its zip, downloaded in a browser: deepfake-lessons import PATH/TO/archive.zip\n"
            "  3. for a first look only, a small stand-in set built from pictures that ship with "
            f"scikit-image:\n     deepfake-lessons standin data/stand-in, then set {config.DATA_ENV} to "
            "the Kaggle-layout folder it prints and restart the kernel\n"
            f"Or point ${config.DATA_ENV} at a folder you already have (either layout; see data/README.md).")


def report_data(root=None) -> tuple[str, Path] | None:
    """Print where the data is and in which layout, or how to get some. Never raises for missing data."""
    root = config.data_root(root)
    found = data_layout(root)
    if found is None:
        print(no_data_help(root))
        return None
    layout, folder = found
    print(f"Data: {folder} ({layout} layout)")
    if standin.is_standin(folder):
        print(f"NOTE: {standin.LABEL}")
    return found


def interrupts_in_one_line(shell=None) -> None:
    """In a Jupyter kernel, Ctrl-C (or the Stop button) ends a cell with one line instead of a traceback.

    The line is the KeyboardInterrupt's own message when it has one: `train.train` says there what it
    kept. The cell still counts as failed, so "Run All" stops at it.
    """
    shell = shell or getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is None:  # plain Python: Ctrl-C is left as it is
        return

    def one_line(shell, etype, value, tb, tb_offset=None):
        print(f"Interrupted: {str(value) or 'the cell stopped here; files that earlier cells saved are kept.'}",
              file=sys.stderr)

    shell.set_custom_exc((KeyboardInterrupt,), one_line)


def start(profile: str | None = None, use_drive: bool = True) -> config.Settings:
    """Check versions, choose the profile, seed everything, set the plot style, and say what this run uses.

    Ctrl-C then ends a cell with one line (`interrupts_in_one_line`).

    On Colab it also keeps files on Google Drive (unless `use_drive=False`) and downloads the data when
    it is missing and a Kaggle token is set. Returns the lesson's settings (`config.Settings`: the
    profile, the data roots, the backbone), resolved here once; the lesson's cells pass them on.
    """
    from helpers import plots

    versions = check_versions()
    if in_colab():
        from google.colab import output

        output.enable_custom_widget_manager()  # ipywidgets 8 in Colab
        keep_files_on_drive(use_drive)
    chosen, source = choose_profile(profile)
    config.set_seeds()
    plots.use_style()
    interrupts_in_one_line()
    print(" | ".join(f"{name} {version}" for name, version in versions.items()))
    if in_colab():
        download_if_missing()
    settings = config.resolve(chosen)
    print(f"{settings.describe()} | profile {source}")
    report_data(settings.data_root)
    return settings
