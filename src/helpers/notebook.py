"""What the first code cell of every lesson calls: version checks, the profile, seeds, plot style,
where files are kept (Google Drive on Colab), which data this run uses (downloading it when asked),
and Ctrl-C in one line.

The data: `get_data("kaggle")` (the capstone's Kaggle dataset) or `get_data("lesson-sets")` (the two
small sets the course's numbers were measured on) uses that data when data/ holds it, and
downloads it there when not; neither needs an account. The choice is remembered (in .cache/, on
Drive on Colab), so each later lesson, a Colab runtime of its own, gets the same data. A data root
you set yourself ($DEEPFAKE_DATA) is always left as it is.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from helpers import acquire, config, data, files, lesson_sets, standin
from helpers.errors import BadArgumentError, UserError

MIN_VERSIONS = {"tensorflow": (2, 18), "keras": (3, 8)}
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = DRIVE_MOUNT / "MyDrive" / "deepfake-lessons"

LOCAL_DATA = Path("/content/data")  # on Colab: the runtime's own disk, where thousands of images read fast
LOCAL_CACHE = Path("/content/.cache")  # and where the lesson sets' sources are kept while they are prepared
DATA_CHOICES = ("kaggle", "lesson-sets")
CHOICE_FILE = "data-choice.txt"  # in config.CACHE_DIR: the data chosen last, for the lessons (and runtimes) after

LOST_WITHOUT_DRIVE = ("Without Google Drive, data/, models/ and figures/ live in this runtime only: they are "
                      "lost when it ends, and the next lesson (a runtime of its own) will not find the models "
                      "this one saves.")


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
    """On Colab, mount Google Drive and keep models, figures and caches there, so every lesson finds them.

    The images stay on the runtime's own disk (LOCAL_DATA), fetched once per runtime by `get_data`:
    reading thousands of small files through Drive is slow, and a data set would fill a free Drive.
    Uploads flagged in the web demo go to Drive, beside the models.
    """
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
    config.DATA_DIR = LOCAL_DATA
    os.environ.setdefault(config.FLAG_DIR_ENV, str(folder / "flagged"))
    print(f"Models, figures and caches are kept on Google Drive, in {folder}; the images on this "
          f"runtime's own disk, in {LOCAL_DATA}, fetched again by each runtime.")
    return folder


def data_layout(root: Path) -> tuple[str, Path] | None:
    """(layout, folder) of a data root, or None when it holds no data yet.

    A root that holds data in two ways at once (`data.AmbiguousLayoutError`) is not "no data": its
    one-line error stops the lesson, naming both folders.
    """
    try:
        return data.find_layout(root)
    except data.AmbiguousLayoutError:
        raise
    except data.DatasetLayoutError:
        return None


def remembered_choice() -> str | None:
    """The data `get_data` was last asked for with this storage (Drive on Colab), or None."""
    try:
        choice = (config.CACHE_DIR / CHOICE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return choice if choice in DATA_CHOICES else None


def local_data(choice: str) -> tuple[Path, Path | None] | None:
    """(data root, second data root or None) of `choice` when data/ holds it already, else None."""
    if choice == "lesson-sets":
        roots = [config.DATA_DIR / name for name in lesson_sets.NAMES]
        whole = all(lesson_sets.identify(root) == name for root, name in zip(roots, lesson_sets.NAMES))
        return (roots[0], roots[1]) if whole else None
    folder = config.DATA_DIR / acquire.KAGGLE_NAME
    return (folder, None) if data_layout(folder) else None


def use_data(root: Path, cross: Path | None = None) -> None:
    """Make `root` (and `cross`, the second root of lessons 07 and 08) the data of this kernel and of the
    commands it starts (`!deepfake-lessons ...`), through $DEEPFAKE_DATA and $DEEPFAKE_CROSS_DATA."""
    os.environ[config.DATA_ENV] = str(root)
    if cross is not None:
        os.environ[config.CROSS_DATA_ENV] = str(cross)


def _download(choice: str) -> tuple[Path, Path | None]:
    if choice == "kaggle":
        print(f"Downloading {acquire.KAGGLE_HANDLE} from Kaggle (about 1.7 GB; no account needed)...")
        return acquire.download_kaggle(config.DATA_DIR / acquire.KAGGLE_NAME), None
    cache = LOCAL_CACHE / lesson_sets.CACHE_NAME if in_colab() else None  # the sources stay off Drive
    dfdc, ffhq = lesson_sets.download(lesson_sets.NAMES, config.DATA_DIR, cache=cache)
    return dfdc, ffhq


def get_data(choice: str | None = None, download: bool = True) -> tuple[Path, Path | None] | None:
    """Use the data `choice` names (else the one chosen last), downloading it into data/ first when it is
    not there and `download` is true; return (data root, second root or None), or None.

    kaggle: the Kaggle "Deepfake and real images" dataset the capstone used (about 190,000 images),
    downloaded only when data/ holds no images at all.
    lesson-sets: `dfdc-faces` and `ffhq-stylegan2` (helpers.lesson_sets), the sets every number of
    the course was measured on; `ffhq-stylegan2` becomes the second data root (lessons 07 and 08).
    With no choice made yet, lesson sets already in data/ are used. A data root you chose
    ($DEEPFAKE_DATA) wins over all of this. A failed download prints its one line and the ways on.
    """
    if choice is not None and choice not in DATA_CHOICES:
        raise BadArgumentError(f"Unknown data {choice!r}: choose {' or '.join(DATA_CHOICES)}.")
    if os.environ.get(config.DATA_ENV):
        return None
    chosen = choice or remembered_choice()
    if chosen is None:  # nothing asked for: data/ itself, else lesson sets a command downloaded there
        found = None if data_layout(config.DATA_DIR) else local_data("lesson-sets")
    else:
        found = local_data(chosen)
        if found is None and chosen == "kaggle" and data_layout(config.DATA_DIR):
            return None  # data/ holds images already: they are used, and 1.7 GB are not fetched beside them
        if found is None and download:
            try:
                found = _download(chosen)
            except UserError as err:  # offline, a source gone, Kaggle refusing: one line, then the ways on
                print(f"{err}\n{no_data_help(config.data_root())}")
                return None
    if found is None:
        return None
    use_data(*found)
    if choice is not None:
        files.write_text(config.CACHE_DIR / CHOICE_FILE, f"{choice}\n")
    return found


def no_data_help(root: Path) -> str:
    """What to do when the data root holds no images: the ways to get some."""
    return (f"No images in {root} yet. Ways to go on:\n"
            "  1. download the Kaggle dataset the capstone used (no account needed): deepfake-lessons download\n"
            "  2. download the two lesson sets every number of the course was measured on: "
            'deepfake-lessons download lesson-sets (in a lesson: notebook.get_data("lesson-sets"))\n'
            "  3. import the Kaggle zip, downloaded in a browser: deepfake-lessons import PATH/TO/archive.zip\n"
            "  4. with no internet, for a first look only, a small stand-in set built from pictures that ship with "
            f"scikit-image:\n     deepfake-lessons standin data/stand-in, then set {config.DATA_ENV} to "
            "the Kaggle-layout folder it prints and restart the kernel\n"
            f"Or point ${config.DATA_ENV} at a folder you already have (either layout; see data/README.md).")


def report_data(root: Path, cross_root: Path | None = None) -> tuple[str, Path] | None:
    """Print where the data is and in which layout (and which lesson set it is), or how to get some.
    Never raises for missing data."""
    found = data_layout(root)
    if found is None:
        print(no_data_help(root))
        return None
    layout, folder = found
    print(f"Data: {folder} ({layout} layout)")
    if standin.is_standin(folder):
        print(f"NOTE: {standin.LABEL}")
    elif (lesson := lesson_sets.describe(folder)) is not None:
        print(f"This is {lesson}.")
    if cross_root is not None:
        print(f"Second data root (lessons 07 and 08): {cross_root}")
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


def start(profile: str | None = None, use_drive: bool = True, data: str | None = None) -> config.Settings:
    """Check versions, choose the profile, seed everything, set the plot style, and say what this run uses.

    Ctrl-C then ends a cell with one line (`interrupts_in_one_line`). `data` ("kaggle" or
    "lesson-sets") is downloaded when it is not there yet (`get_data`); without it, the data chosen
    last is used when data/ holds it.

    On Colab it also keeps models and figures on Google Drive (unless `use_drive=False`), and gets the
    data into this runtime: the data chosen last, else the Kaggle dataset. Returns the lesson's settings
    (`config.Settings`: the profile, the data roots, the backbone), resolved here once, after the data is
    in place; the lesson's cells pass them on.
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
        data = data or remembered_choice() or "kaggle"
    get_data(data, download=data is not None)
    settings = config.resolve(chosen)
    print(f"{settings.describe()} | profile {source}")
    report_data(settings.data_root, settings.cross_data_root)
    return settings
