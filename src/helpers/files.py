"""Files written whole or not at all, and their checksums: the one way every module writes and hashes.

`write_atomically` writes through a temporary file in the same folder and renames it into place in
one step, so a crash, a full disk or Ctrl-C never leaves half a file where a whole one was expected.

`check_new_file` decides whether a command may write an output file the user named: never over a
folder, and over an existing file only when asked to (--overwrite).

File names need not be valid UTF-8 (on Linux they are any bytes). Python holds the bytes that do not
decode as lone surrogates (see `os.fsdecode`), which `str.encode()` and `print` refuse. `text_bytes`
and NAME_ERRORS keep them in hashes and caches; `printable` shows them in what is printed or
exported. Valid text is left exactly as it was by all three. A name may also hold a newline or another
control character: `one_line` shows those escaped, so that a printed name never starts a line of its own.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from helpers.errors import OutputExistsError


def write_atomically(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call write(temporary_path), then move the result onto `path` in one step; returns `path`.

    The temporary file has the same suffixes (Keras and NumPy look at them) and ends up readable by
    everyone, like a file written directly (tempfile makes owner-only files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix="".join(path.suffixes))
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


NAME_ERRORS = "surrogatepass"  # the codec error handler that keeps every str, undecodable file names included


def text_bytes(text: str) -> bytes:
    """`text` in UTF-8, a file name that is not valid UTF-8 included: for hashes that must not depend on the machine.

    Valid text gives exactly `text.encode()`, so the hashes of ordinary names never change.
    """
    return text.encode("utf-8", NAME_ERRORS)


def printable(text: str) -> str:
    r"""`text` (a path, or lines naming paths) as it can be printed or written as UTF-8: valid text unchanged,
    each byte of a file name that is not valid UTF-8 shown as \xNN (b"bad\xff.jpg" prints as bad\xff.jpg).

    Only a name holding a backslash followed by x and two hex digits can look the same as another.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte (Windows allows them in names)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Control characters, Unicode's line and paragraph separators, and the marks that reverse the direction of
# text: in a name, each can make a printed line look like another (or like two).
HIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match) -> str:
    character = match.group()
    code = ord(character)
    return ESCAPES.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def one_line(text: str) -> str:
    r"""`printable(text)` that stays on one line: a newline, a tab or another control character (and the
    Unicode marks that break a line or reverse its direction) shown as \n, \t, \xNN or \uNNNN.

    For a file name inside a printed line, and for an error message: a name holding a newline cannot
    forge a line of its own. Text without such characters is left as `printable` leaves it.
    """
    return HIDDEN_CHARACTERS.sub(_escaped, printable(text))


def check_new_file(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse (OutputExistsError) to write the output file `path` where a folder is, or where a file
    already is unless `overwrite`; return `path`. Called before the work, so a refusal costs nothing."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(one_line(f"{path} is a folder: name a file to write (nothing was written)."))
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(one_line(f"{path} already exists: choose another name, or pass --overwrite to "
                                         "replace it (nothing was written)."))
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, data) -> Path:
    """Write JSON atomically (sidecars, metrics, benchmark results)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def read_results(folder: str | os.PathLike, command: str) -> list[dict]:
    """Every JSON file in `folder` (a benchmark's committed results), sorted by name.

    FileNotFoundError, naming `command` (what writes them), when the folder holds none.
    """
    found = sorted(Path(folder).glob("*.json"))
    if not found:
        raise FileNotFoundError(f"No results in {folder}: run `{command}` first.")
    return [json.loads(path.read_text(encoding="utf-8")) for path in found]


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in chunks (model files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
