"""Atomic writes and checksums (helpers.files): a failed write leaves the old file whole, and no litter."""
import hashlib
import json
import os

import pytest

from helpers import files


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = files.write_json(tmp_path / "new" / "result.json", {"auc": 0.5})
    assert json.loads(path.read_text()) == {"auc": 0.5}
    assert os.listdir(path.parent) == ["result.json"] and path.stat().st_mode & 0o777 == 0o644


def test_a_failing_write_keeps_the_old_file(tmp_path):
    path = files.write_text(tmp_path / "model.json", "old")

    def half_then_fail(temporary):
        open(temporary, "w").write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(path, half_then_fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["model.json"]


def test_the_temporary_keeps_the_suffixes(tmp_path):
    seen = []
    files.write_atomically(tmp_path / "model.weights.h5", lambda temporary: (seen.append(temporary),
                                                                               open(temporary, "wb").close()))
    assert seen[0].endswith(".weights.h5")


def test_sha256_of_a_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))  # over several read chunks
    assert files.sha256_of(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_names_that_are_not_utf8_are_hashed_and_printed_and_ordinary_text_is_left_alone():
    undecodable = "bad\udcff.jpg"  # b"bad\xff.jpg" as os.fsdecode gives it on a UTF-8 system
    assert files.printable(undecodable) == "bad\\xff.jpg"
    assert files.printable(f"left out: /in/{undecodable}: empty") == "left out: /in/bad\\xff.jpg: empty"
    assert files.printable("x\ud800") == "x\\ud800"  # a lone surrogate that stands for no byte
    assert files.text_bytes(undecodable) != files.text_bytes("bad\udcfe.jpg")
    for ordinary in ("café.jpg", "日本/顔.png", "C:\\photos\\a b.jpg", ""):
        assert files.printable(ordinary) == ordinary and files.text_bytes(ordinary) == ordinary.encode()
