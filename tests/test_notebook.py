"""The first cell of every lesson: the profile it says is in force, the data report, and Colab's paths,
simulated with stand-ins for `google.colab` (Drive, secrets, widgets)."""
import os
import sys
import types

import pytest

from helpers import acquire, config, notebook


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No profile, data, storage or Kaggle variables from the test run; files kept under tmp_path."""
    for name in (config.PROFILE_ENV, config.DATA_ENV, config.STORAGE_ENV, *config.KAGGLE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kaggle/kaggle.json
    yield
    config._set_storage(config.REPO_ROOT)  # undo any use_storage() a test made


class SecretNotFoundError(Exception):
    pass


class NotebookAccessError(Exception):
    pass


@pytest.fixture
def colab(monkeypatch, tmp_path, clean_env):
    """A fake `google.colab`: Drive mounts into tmp_path, secrets come from `state["secrets"]`."""
    state = {"secrets": {}, "mounted": [], "widgets": 0, "refuse_mount": False}
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
    downloads = []
    monkeypatch.setattr(acquire, "download_kaggle", lambda dest: downloads.append(dest) or dest)
    state["downloads"] = downloads
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
    for command in ("deepfake-lessons download", "deepfake-lessons import",
                    "deepfake-lessons standin"):
        assert command in out


def test_data_report_names_the_layout(clean_env, flat_root, capsys):
    layout, folder = notebook.report_data(flat_root)
    assert (layout, folder) == ("flat", flat_root)
    assert f"Data: {flat_root} (flat layout)" in capsys.readouterr().out


def test_colab_keeps_files_on_drive(colab, capsys):
    folder = notebook.keep_files_on_drive()
    assert folder == notebook.DRIVE_FOLDER.resolve() and colab["mounted"] == [str(notebook.DRIVE_MOUNT)]
    assert config.MODELS_DIR == folder / "models" and config.DATA_DIR == folder / "data"
    assert config.FIGURES_DIR == folder / "figures"
    assert os.environ[config.STORAGE_ENV] == str(folder)  # `!deepfake-lessons train` agrees


def test_colab_without_drive_says_what_is_lost(colab, capsys):
    assert notebook.keep_files_on_drive(use_drive=False) is None
    assert "lost when it ends" in capsys.readouterr().out
    colab["refuse_mount"] = True
    assert notebook.keep_files_on_drive() is None
    out = capsys.readouterr().out
    assert "Google Drive is not mounted (ValueError" in out and "lost when it ends" in out
    assert config.MODELS_DIR == config.REPO_ROOT / "models"


def test_colab_downloads_the_data_when_secrets_are_set(colab, capsys):
    notebook.keep_files_on_drive()
    colab["secrets"] = {"KAGGLE_USERNAME": "learner", "KAGGLE_KEY": "0123"}
    notebook.download_if_missing()
    assert colab["downloads"] == [config.DATA_DIR / acquire.KAGGLE_NAME]
    assert str(config.DATA_DIR).startswith(str(notebook.DRIVE_FOLDER.resolve()))


def test_colab_without_secrets_explains_both_ways(colab, capsys):
    notebook.download_if_missing()
    out = capsys.readouterr().out
    assert colab["downloads"] == [] and "Secrets panel" in out and "%env KAGGLE_USERNAME" in out
    colab["secrets"] = {"KAGGLE_USERNAME": "learner"}  # half a token is no token
    assert not notebook.kaggle_credentials()


def test_colab_leaves_a_chosen_data_root_alone(colab, monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "mine"))
    colab["secrets"] = {"KAGGLE_USERNAME": "learner", "KAGGLE_KEY": "0123"}
    notebook.download_if_missing()
    assert colab["downloads"] == []


def test_start_on_colab_runs_every_step(colab, flat_root, monkeypatch, capsys):
    monkeypatch.setenv(config.DATA_ENV, str(flat_root))
    profile = notebook.start(profile="smoke")
    out = capsys.readouterr().out
    assert profile.name == "smoke" and colab["widgets"] == 1 and colab["mounted"]
    assert "profile passed to notebook.start()" in out and "Files are kept on Google Drive" in out
    assert f"Data: {flat_root} (flat layout)" in out


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
