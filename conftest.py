"""Settings for every test run, the notebooks under nbval included (their kernels inherit them).

The suite runs in the `smoke` profile on the real face images in `../shared/data` (or wherever
$DEEPFAKE_TEST_DATA points). Without them, as in a fresh clone, every notebook runs on a stand-in
set (`helpers.standin`) built once per session in a temporary folder, and the unit tests that need
real faces are skipped. Variables you set yourself ($DEEPFAKE_PROFILE, $DEEPFAKE_DATA, ...) win.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

TEST_DATA = Path(os.environ.get("DEEPFAKE_TEST_DATA") or Path(__file__).parent.parent / "shared" / "data").resolve()
SHARED_SETS_FOUND = (TEST_DATA / "dfdc-faces").is_dir()
if SHARED_SETS_FOUND or os.environ.get("DEEPFAKE_TEST_DATA"):  # unset means "none here": tests/conftest.py skips
    os.environ["DEEPFAKE_TEST_DATA"] = str(TEST_DATA)  # tests/conftest.py reads it back

os.environ.setdefault("DEEPFAKE_PROFILE", "smoke")
if SHARED_SETS_FOUND:
    os.environ.setdefault("DEEPFAKE_DATA", str(TEST_DATA / "dfdc-faces"))
if (TEST_DATA / "ffhq-stylegan2").is_dir():  # the second root of the cross-dataset checks (lessons 07, 08)
    os.environ.setdefault("DEEPFAKE_CROSS_DATA", str(TEST_DATA / "ffhq-stylegan2"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

FIRST_LESSON_WITH_MODELS = "03"  # lessons 03-09 train or read models/ (lesson 03 saves the first)
STANDIN_DIR: Path | None = None  # the temporary folder of this session's stand-in set, if it has one
MODELS_BEFORE: set[Path] = set()


def standin_model_folders() -> set[Path]:
    """Model folders the lessons name after the stand-in roots (models/<profile>-lfw-standin-...)."""
    from helpers import config, standin

    return {folder for name in (standin.SPLITS_ROOT, standin.FLAT_ROOT)
            for folder in config.MODELS_DIR.glob(f"*-{name}*")}


def pytest_configure():
    """Without a data root, build the stand-in set in a temporary folder and point the lessons at it."""
    global STANDIN_DIR, MODELS_BEFORE
    if os.environ.get("DEEPFAKE_DATA"):
        return
    from helpers import standin

    STANDIN_DIR = Path(tempfile.mkdtemp(prefix="deepfake-standin-"))
    for variable, root in standin.write_standin_sets(STANDIN_DIR).items():
        os.environ.setdefault(variable, str(root))
    MODELS_BEFORE = standin_model_folders()


def pytest_unconfigure():
    """Remove the stand-in set, and the models this session trained on it: nothing of it outlives the run."""
    if STANDIN_DIR is None:
        return
    for folder in standin_model_folders() - MODELS_BEFORE:
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(STANDIN_DIR, ignore_errors=True)


def pytest_report_header() -> str:
    """One line: which face data this run uses."""
    roots = ", ".join(f"{name}={os.environ[name]}" for name in ("DEEPFAKE_DATA", "DEEPFAKE_CROSS_DATA")
                      if os.environ.get(name))
    if STANDIN_DIR is not None:
        from helpers import standin

        return f"face data: {standin.LABEL} ({roots}); the tests that need the shared face sets are skipped"
    shared = f"the shared face sets in {TEST_DATA}" if SHARED_SETS_FOUND else "no shared face sets (their tests skip)"
    return f"face data: {roots}; {shared}"



@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist (`-n 2`): each test module and each notebook goes whole to one worker.

    nbval runs a notebook's cells as separate tests in one kernel, so a notebook must not be split.
    From lesson 03 on, lessons read the models earlier ones save: those run on one worker, in order.
    """
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksInOrder(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            if path.endswith(".ipynb") and Path(path).name >= FIRST_LESSON_WITH_MODELS:
                return "lessons with models"
            return super()._split_scope(nodeid)

    return NotebooksInOrder(config, log)
