"""Files written whole or not at all, and their checksums: the one way every module writes and hashes.

`write_atomically` writes through a temporary file in the same folder and renames it into place in
one step, so a crash, a full disk or Ctrl-C never leaves half a file where a whole one was expected.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, data) -> Path:
    """Write JSON atomically (sidecars, metrics, benchmark results)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in chunks (model files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
