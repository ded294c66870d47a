"""The `deepfake-lessons` command: every subcommand answers --help, and errors follow one policy."""
import importlib
import importlib.metadata
import subprocess
import sys
import tomllib

import pytest

from helpers import acquire, cli, config, standin


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    return lines[0]


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: deepfake-lessons")
    for name in cli.COMMANDS:
        assert f"    {name} " in out


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_command_answers_help(name, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main([name, "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deepfake-lessons {name}")
    assert cli.COMMANDS[name].help in out.replace("\n", " ")


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path, capsys):
    (tmp_path / "taken" / "file.txt").parent.mkdir()
    (tmp_path / "taken" / "file.txt").write_text("keep me")
    assert cli.main(["standin", str(tmp_path / "taken")]) == cli.USER_ERROR_STATUS
    err = capsys.readouterr().err
    assert _one_line(err).startswith("error: ") and "already exists" in err and "Traceback" not in err
    assert (tmp_path / "taken" / "file.txt").read_text() == "keep me"

    assert cli.main(["import", str(tmp_path / "nowhere.zip")]) == cli.USER_ERROR_STATUS
    assert _one_line(capsys.readouterr().err) == f"error: {tmp_path / 'nowhere.zip'} does not exist."


def test_a_file_system_error_names_its_path(tmp_path, monkeypatch, capsys):
    def unreadable(source, dest, **limits):
        raise PermissionError(13, "Permission denied", str(source))

    monkeypatch.setattr(acquire, "import_data", unreadable)
    assert cli.main(["import", str(tmp_path / "archive.zip")]) == cli.USER_ERROR_STATUS
    assert str(tmp_path / "archive.zip") in _one_line(capsys.readouterr().err)


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(out_dir):
        return 1 / 0

    monkeypatch.setattr(standin, "write_standin_sets", broken)
    with pytest.raises(ZeroDivisionError):  # not caught: Python prints its traceback
        cli.main(["standin", str(tmp_path / "new")])


def test_ctrl_c_is_one_line_and_exit_status_130(tmp_path, monkeypatch, capsys):
    def interrupted(out_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(standin, "write_standin_sets", interrupted)
    assert cli.main(["standin", str(tmp_path / "new")]) == cli.INTERRUPTED_STATUS
    assert _one_line(capsys.readouterr().err) == "interrupted."


def test_python_dash_m_runs_the_same_command_under_the_same_policy(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("keep me")
    done = subprocess.run([sys.executable, "-m", "helpers", "standin", str(tmp_path / "taken")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == cli.USER_ERROR_STATUS
    assert _one_line(done.stderr).startswith("error: ") and "already exists" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_console_script_is_declared_and_resolves_to_main():
    scripts = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["deepfake-lessons"].partition(":")
    assert getattr(importlib.import_module(module), function) is cli.main
    installed = importlib.metadata.entry_points(group="console_scripts", name="deepfake-lessons")
    if not installed:
        pytest.skip("the package is not installed (pip install -e .): no console script to compare")
    assert next(iter(installed)).value == scripts["deepfake-lessons"]


def test_training_prints_one_line_per_epoch_unless_a_terminal_or_notebook_shows_a_bar(monkeypatch):
    import io
    import types

    from helpers import train

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a log file or a pipe
    assert train.fit_verbosity() == 2
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert train.fit_verbosity() == 1

    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})  # Jupyter's kernel: not a terminal, renders the bar
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=ZMQInteractiveShell))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert train.fit_verbosity() == 1
