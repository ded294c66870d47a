"""The `deepfake-lessons` command (or `python -m helpers`): every step of the course from a shell, with one error policy.

    deepfake-lessons scan [DATA_ROOT]                    count and check every image
    deepfake-lessons download | import archive.zip       get the Kaggle dataset
    deepfake-lessons standin OUT_DIR                     a small stand-in face set, for a first run
    deepfake-lessons train --data DATA_ROOT --profile cpu --out models/dfdc
    deepfake-lessons predict models/dfdc face.jpg photos/ --csv scores.csv
    deepfake-lessons evaluate models/dfdc DATA_ROOT --split test --json metrics.json
    deepfake-lessons export models/dfdc
    deepfake-lessons app models/dfdc                     the web demo at 127.0.0.1:7860

`python -m helpers COMMAND ...` runs the same commands without the console script (`helpers/__main__.py`).
Each module named in COMMANDS defines its command's arguments (`add_arguments(parser)`) and runs it
(`run(args)`); this module parses and runs them, and reports what goes wrong in one way:

- a user's mistake (a `helpers.errors.UserError`) or a file-system condition (an OSError, which
  names its path) prints one line, `error: ...`, on stderr and exits with status 2, without a traceback
  (a newline in a file name it quotes is shown as \\n: `files.one_line`); a bad number argparse
  refuses (`helpers.arguments`) is argparse's own `error:` line after the usage, also status 2;
- anything else is a bug: Python shows its traceback, as always;
- Ctrl-C prints one line and exits with status 130.

A module is imported only when its command runs, so `deepfake-lessons --help` answers at once; the
COMMANDS table names it, which is how tests/test_import_layers.py sees these imports.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from helpers.errors import UserError
from helpers.files import one_line

PROG = "deepfake-lessons"
USER_ERROR_STATUS = 2  # what argparse exits with for bad arguments, too
INTERRUPTED_STATUS = 130  # 128 + SIGINT: what a shell reports after Ctrl-C
DESCRIPTION = "The steps of the deepfake-lessons course, one command each (COMMAND --help for its arguments)."


@dataclass(frozen=True)
class Command:
    module: str  # helpers.<module> defines the command
    help: str
    add_arguments: str = "add_arguments"  # that module's function adding the arguments to a parser
    run: str = "run"  # and its function running the command on the parsed arguments


COMMANDS = {  # in the order of the course
    "scan": Command("data", "index and open every image; print counts and the files left out"),
    "download": Command("acquire", "fetch the Kaggle dataset (no account needed) or the lesson sets into data/",
                        "add_download_arguments", "run_download"),
    "import": Command("acquire", "unpack a downloaded zip (or copy a folder) into data/",
                      "add_import_arguments", "run_import"),
    "standin": Command("standin", "write a small stand-in face set built from pictures scikit-image ships"),
    "train": Command("train", "train a detector in both stages and save its model folder"),
    "predict": Command("predict", "score image files and folders with a saved model"),
    "evaluate": Command("evaluate", "score a data split: metrics with confidence intervals"),
    "export": Command("export", "write the model as LiteRT (model.tflite), checked against Keras"),
    "app": Command("web_app", "start the web demo: upload photos in a browser, flag wrong verdicts"),
}


def _command_function(command: Command, attribute: str):
    return getattr(importlib.import_module(f"helpers.{command.module}"), getattr(command, attribute))


def run_guarded(function, *args) -> int:
    """Call `function(*args)` under the error policy (see the module docstring); return the exit status."""
    try:
        function(*args)
    except KeyboardInterrupt as interrupt:  # its message, when it has one, says what was kept
        print("\ninterrupted" + (f": {one_line(str(interrupt))}" if str(interrupt) else "."), file=sys.stderr)
        return INTERRUPTED_STATUS
    except (UserError, OSError) as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return USER_ERROR_STATUS
    return 0


def parser_for(prog: str = PROG, argv: list[str] = ()) -> argparse.ArgumentParser:
    """A parser with every subcommand; only the command named in `argv` gets its arguments (and imports its module)."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name in COMMANDS:
        subparser = commands.add_parser(name, help=COMMANDS[name].help, description=COMMANDS[name].help)
        if name == chosen:
            _command_function(COMMANDS[name], "add_arguments")(subparser)
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """The console script: `deepfake-lessons COMMAND ...`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)

    def parse_and_run():
        args = parser_for(prog, argv).parse_args(argv)
        _command_function(COMMANDS[args.command], "run")(args)

    return run_guarded(parse_and_run)
