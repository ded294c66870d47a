"""The first cell of every lesson: the profile it says is in force, the data it gets and reports, and
Colab's paths, simulated with stand-ins for `google.colab` (Drive, secrets, widgets) and for the downloads."""
import json
import os
import shutil
import sys
import types
from unittest import mock

import pytest

from helpers import acquire, config, data, lesson_sets, notebook
from helpers.errors import BadArgumentError
from tests.conftest import write_jpeg


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No profile, data, storage or Kaggle variables from the test run; files kept under tmp_path.

    Every environment variable a test sets (get_data sets the data roots) is undone afterwards: the
    test's own monkeypatch first, then the whole environment as it was (the other way round,
    monkeypatch would delete a $DEEPFAKE_DATA the test set where clean_env had taken it away).
    """
    with mock.patch.dict(os.environ):
        for name in (config.PROFILE_ENV, config.DATA_ENV, config.CROSS_DATA_ENV, config.STORAGE_ENV,
                     config.FLAG_DIR_ENV, *config.KAGGLE_ENV, "KAGGLE_API_TOKEN"):
            os.environ.pop(name, None)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kaggle/kaggle.json
        config.use_storage(tmp_path / "storage")  # data/, models/ and .cache/ of this test only
        yield
        monkeypatch.undo()
    config._set_storage(config.REPO_ROOT)  # undo any use_storage() a test made


@pytest.fixture
def downloads(monkeypatch):
    """Fake downloads: the Kaggle one and the lesson sets' record what they were asked and write a stand-in."""
    calls = {"kaggle": [], "lesson-sets": [], "fails": None}

    def download_kaggle(dest):
        calls["kaggle"].append(dest)
        if calls["fails"]:
            raise calls["fails"]
        write_jpeg(dest / "Dataset" / "Train" / "Real" / "a.jpg", seed=0)
        return dest

    def download(names, to, cache=None):
        calls["lesson-sets"].append((tuple(names), to, cache))
        for name in names:  # a provenance file is what tells a lesson set (helpers.lesson_sets.identify)
            write_jpeg(to / name / "real" / "a.jpg", seed=1)
            write_jpeg(to / name / "fake" / "b.jpg", seed=2)
            record = {"lesson_set": name, "files": 2, "of": 2, "repository": "owner/name", "commit": "0" * 40,
                      "identical_to_reference": True}
            (to / name / lesson_sets.PROVENANCE_FILE).write_text(json.dumps(record))
        return [to / name for name in names]

    monkeypatch.setattr(acquire, "download_kaggle", download_kaggle)
    monkeypatch.setattr(lesson_sets, "download", download)
    return calls


class SecretNotFoundError(Exception):
    pass


class NotebookAccessError(Exception):
    pass


@pytest.fixture
def colab(monkeypatch, tmp_path, clean_env, downloads):
    """A fake `google.colab`: Drive mounts into tmp_path, secrets come from `state["secrets"]`."""
    state = {"secrets": {}, "mounted": [], "widgets": 0, "refuse_mount": False, "downloads": downloads}
    mount_point = tmp_path / "content" / "drive"

    def mount(path):
        if state["refuse_mount"]:
            raise ValueError("mount failed: the user declined")
        state["mounted"].append(path)
        (mount_point / "MyDrive").mkdir(parents=True, exist_ok=True)

    def get(name):
        if name not in state["secrets"]:
            raise SecretNotFoundError(name)
        return state["secrets"][name]

    def enable_custom_widget_manager():
        state["widgets"] += 1

    package = types.ModuleType("google.colab")
    package.drive = types.SimpleNamespace(mount=mount)
    package.userdata = types.SimpleNamespace(get=get, SecretNotFoundError=SecretNotFoundError,
                                             NotebookAccessError=NotebookAccessError)
    package.output = types.SimpleNamespace(enable_custom_widget_manager=enable_custom_widget_manager)
    import google  # the real namespace package (protobuf, which TensorFlow imports, lives in it)

    monkeypatch.setattr(google, "colab", package, raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setattr(notebook, "DRIVE_MOUNT", mount_point)
    monkeypatch.setattr(notebook, "DRIVE_FOLDER", mount_point / "MyDrive" / "deepfake-lessons")
    monkeypatch.setattr(notebook, "LOCAL_DATA", tmp_path / "content" / "data")
    monkeypatch.setattr(notebook, "LOCAL_CACHE", tmp_path / "content" / ".cache")
    return state


def test_profile_passed_to_start_is_said_and_exported(clean_env, monkeypatch):
    profile, source = notebook.choose_profile("FULL")
    assert profile.name == "full" and "passed to notebook.start()" in source
    assert config.get_profile().name == "full"  # later helper calls in this kernel agree

    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    assert notebook.choose_profile() == (config.PROFILES["smoke"], f"from ${config.PROFILE_ENV}")
    monkeypatch.delenv(config.PROFILE_ENV)
    profile, source = notebook.choose_profile()
    assert profile.name == config.DEFAULT_PROFILE and source.startswith("the default")
    with pytest.raises(ValueError, match="Unknown profile 'laptop'"):
        notebook.choose_profile("laptop")


def test_missing_data_prints_the_ways_to_get_it(clean_env, tmp_path, capsys):
    assert notebook.report_data(tmp_path / "nothing-here") is None
    out = capsys.readouterr().out
    for command in ("deepfake-lessons download", "deepfake-lessons download lesson-sets",
                    "deepfake-lessons import", "deepfake-lessons standin"):
        assert command in out


def test_data_report_names_the_layout(clean_env, flat_root, capsys):
    layout, folder = notebook.report_data(flat_root)
    assert (layout, folder) == ("flat", flat_root)
    assert f"Data: {flat_root} (flat layout)" in capsys.readouterr().out


def test_colab_keeps_models_on_drive_and_images_on_the_runtimes_disk(colab, capsys):
    folder = notebook.keep_files_on_drive()
    assert folder == notebook.DRIVE_FOLDER.resolve() and colab["mounted"] == [str(notebook.DRIVE_MOUNT)]
    assert config.MODELS_DIR == folder / "models" and config.FIGURES_DIR == folder / "figures"
    assert config.CACHE_DIR == folder / ".cache" and config.DATA_DIR == notebook.LOCAL_DATA
    assert os.environ[config.STORAGE_ENV] == str(folder)  # `!deepfake-lessons train` agrees
    assert os.environ[config.FLAG_DIR_ENV] == str(folder / "flagged")  # the learner's flagged uploads are kept
    assert "the images on this runtime's own disk" in capsys.readouterr().out


def test_colab_without_drive_says_what_is_lost(colab, capsys):
    assert notebook.keep_files_on_drive(use_drive=False) is None
    assert "lost when it ends" in capsys.readouterr().out
    colab["refuse_mount"] = True
    assert notebook.keep_files_on_drive() is None
    out = capsys.readouterr().out
    assert "Google Drive is not mounted (ValueError" in out and "lost when it ends" in out
    assert config.MODELS_DIR.parent == config.DATA_DIR.parent != notebook.DRIVE_FOLDER


def test_colab_downloads_the_kaggle_data_without_a_token(colab, capsys):
    notebook.keep_files_on_drive()
    root, cross = notebook.get_data("kaggle")
    assert colab["downloads"]["kaggle"] == [notebook.LOCAL_DATA / acquire.KAGGLE_NAME] == [root] and cross is None
    assert os.environ[config.DATA_ENV] == str(root)  # the kernel and `!deepfake-lessons ...` read it there
    assert "no account needed" in capsys.readouterr().out and colab["secrets"] == {}


def test_colab_gets_the_lesson_sets_again_in_the_next_runtime(colab, monkeypatch, capsys):
    notebook.keep_files_on_drive()
    dfdc, ffhq = notebook.get_data("lesson-sets")
    assert colab["downloads"]["lesson-sets"] == [
        (lesson_sets.NAMES, notebook.LOCAL_DATA, notebook.LOCAL_CACHE / lesson_sets.CACHE_NAME)]
    assert (os.environ[config.DATA_ENV], os.environ[config.CROSS_DATA_ENV]) == (str(dfdc), str(ffhq))
    assert dfdc.parent == notebook.LOCAL_DATA and notebook.remembered_choice() == "lesson-sets"
    assert (notebook.DRIVE_FOLDER / ".cache" / notebook.CHOICE_FILE).is_file()  # remembered on Drive

    notebook.get_data("lesson-sets")  # in the same runtime: there already, not fetched again
    assert len(colab["downloads"]["lesson-sets"]) == 1

    for name in (config.DATA_ENV, config.CROSS_DATA_ENV):  # the next lesson: a fresh runtime, its disk empty
        os.environ.pop(name)  # clean_env restores the whole environment (monkeypatch would restore these two after it)
    shutil.rmtree(notebook.LOCAL_DATA)
    notebook.start(profile="smoke")
    assert len(colab["downloads"]["lesson-sets"]) == 2 and colab["downloads"]["kaggle"] == []
    assert os.environ[config.CROSS_DATA_ENV] == str(notebook.LOCAL_DATA / "ffhq-stylegan2")
    out = capsys.readouterr().out
    assert "This is the lesson set dfdc-faces (rebuilt from owner/name" in out
    assert "Second data root (lessons 07 and 08)" in out


def test_a_failed_download_prints_its_line_and_the_ways_on(colab, capsys):
    colab["downloads"]["fails"] = acquire.DownloadError("Kaggle refused the download (Kaggle said: \"403\").")
    assert notebook.get_data("kaggle") is None  # no exception: the lesson goes on, and says how
    out = capsys.readouterr().out
    assert "Kaggle refused the download" in out and "deepfake-lessons standin" in out
    assert config.DATA_ENV not in os.environ and notebook.remembered_choice() is None


def test_colab_leaves_a_chosen_data_root_alone(colab, monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "mine"))
    assert notebook.get_data("kaggle") is None and notebook.get_data("lesson-sets") is None
    assert colab["downloads"]["kaggle"] == colab["downloads"]["lesson-sets"] == []


def test_the_kaggle_data_is_not_fetched_beside_images_already_there(clean_env, downloads, flat_root):
    for path in flat_root.rglob("*.jpg"):
        target = config.DATA_DIR / path.relative_to(flat_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert notebook.get_data("kaggle") is None and downloads["kaggle"] == []
    assert notebook.data_layout(config.DATA_DIR) == ("flat", config.DATA_DIR)  # data/ itself is used, as before


def test_lesson_sets_a_command_downloaded_are_used_without_a_choice(clean_env, downloads):
    lesson_sets.download(lesson_sets.NAMES, config.DATA_DIR)  # as `deepfake-lessons download lesson-sets` does
    assert notebook.get_data(download=False) == (config.DATA_DIR / "dfdc-faces", config.DATA_DIR / "ffhq-stylegan2")
    assert len(downloads["lesson-sets"]) == 1 and notebook.remembered_choice() is None
    with pytest.raises(BadArgumentError, match="Unknown data 'faces'"):
        notebook.get_data("faces")


def test_start_on_colab_runs_every_step(colab, flat_root, monkeypatch, capsys):
    monkeypatch.setenv(config.DATA_ENV, str(flat_root))
    settings = notebook.start(profile="smoke")
    out = capsys.readouterr().out
    assert settings.profile.name == "smoke" and settings.data_root == flat_root.resolve()
    assert colab["widgets"] == 1 and colab["mounted"]
    assert "profile passed to notebook.start()" in out and "kept on Google Drive" in out
    assert f"Data: {flat_root} (flat layout)" in out
    assert colab["downloads"]["kaggle"] == []


def test_lesson_00_without_data_says_what_to_do(monkeypatch, tmp_path):
    """A fresh clone with no data: lesson 00 runs to the end and lists the ways to get data."""
    import nbformat
    from nbclient import NotebookClient

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(config.DATA_ENV, str(empty))
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    lesson = nbformat.read(config.REPO_ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    NotebookClient(lesson, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for cell in lesson.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert f"No images in {empty} yet" in printed and "deepfake-lessons standin" in printed
    assert "Nothing to scan yet" in printed and "Skipped: this check copies" in printed


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_ctrl_c_in_a_lesson_ends_the_cell_with_one_line(shell, capsys):
    shell.run_cell("raise KeyboardInterrupt")
    assert "Traceback" in capsys.readouterr().out  # what IPython shows by itself

    notebook.interrupts_in_one_line(shell)
    result = shell.run_cell("raise KeyboardInterrupt('models/x is as it was.')")
    shown = capsys.readouterr()
    assert shown.err == "Interrupted: models/x is as it was.\n" and "Traceback" not in shown.out
    assert isinstance(result.error_in_exec, KeyboardInterrupt), "the cell still fails, so Run All stops there"
    shell.run_cell("raise KeyboardInterrupt")
    assert capsys.readouterr().err.startswith("Interrupted: the cell stopped here")
    shell.run_cell("1 / 0")
    assert "ZeroDivisionError" in capsys.readouterr().out, "other errors keep their traceback"


def test_a_root_with_two_real_folders_stops_the_lesson_instead_of_reading_as_empty(clean_env, tmp_path):
    for name in ("real", "Real", "fake"):
        write_jpeg(tmp_path / "faces" / name / "a.jpg", seed=1)
    with pytest.raises(data.AmbiguousLayoutError, match="two folders for the real class"):
        notebook.report_data(tmp_path / "faces")
