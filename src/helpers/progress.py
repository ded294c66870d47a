"""Progress bars only where someone watches them: in a notebook, or in a terminal.

Sent to a log file or a pipe (CI, `nohup`, `> train.log`), a bar writes a new carriage-return frame
for every update, and the file fills with them. There `bar` shows nothing, and `train` logs one line
per epoch instead of Keras' bar (`watched` decides both).
"""
from __future__ import annotations

import sys


def watched(stream=None) -> bool:
    """True in a Jupyter or Colab kernel, or when `stream` (default: stderr, where bars go) is a terminal."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and type(shell).__name__ != "TerminalInteractiveShell":  # a notebook renders bars
        return True
    stream = sys.stderr if stream is None else stream
    return stream is not None and stream.isatty()


def bar(iterable=None, show: bool = True, **options):
    """tqdm's bar (its notebook widget in a notebook) when `show` and someone watches; else a silent one."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not (show and watched()), **options)
