"""The kinds of number a command takes, as argparse types: a bad value is argparse's own `error:` line, exit 2.

    parser.add_argument("--batch-size", type=arguments.positive_int, default=32)

Each function takes the text typed and returns the number, or raises argparse.ArgumentTypeError,
which argparse reports with the argument's name before anything runs.
"""
from __future__ import annotations

import argparse
import math

MAX_PORT = 65535


def _number(text: str, convert, accept, expected: str):
    """`convert(text)` when it works and `accept`s the value; else argparse's error, saying what was expected."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more (a batch size, a count)."""
    return _number(text, int, lambda value: value >= 1, "a whole number of 1 or more")


def positive_float(text: str) -> float:
    """A finite number above 0 (seconds, gigabytes): not 0, not negative, not nan or inf."""
    return _number(text, float, lambda value: math.isfinite(value) and value > 0, "a finite number above 0")


def port(text: str) -> int:
    """A TCP port number, 1 to 65535."""
    return _number(text, int, lambda value: 1 <= value <= MAX_PORT, f"a port number from 1 to {MAX_PORT}")
