"""Hostile input to the commands (issue 26): each is refused in one line, and nothing that was there is lost.

Each case in CASES makes its files in a folder of its own, runs the command on them as a user does,
and asserts three things: the exit status (2), the one `error:` line, and that every file that
existed before is byte for byte the same after (`tree`: the sha256 of every file below the case's
folder, before and after; nothing may be added either). A case runs the real command, `python -m
helpers ...`, in a subprocess (about 1 s each). A few run the same `cli.main` in this process
instead (in_process=True): the further `train` cases, whose module imports TensorFlow (5-8 s a
process here; one `train` case runs in a subprocess), and second cases of a kind already run in one.

The argument, layout, archive, output-file and sidecar cases need no face data, so they run in a
fresh clone too; those that need a trained model (`trained_model_dir`) skip without it. The sidecar's
fields are also checked with hypothesis: any JSON value in any field is either refused, naming the
field and the file, or works everywhere the field is read. tests/test_predict.py runs `predict`'s
main paths (item 5) with the helpers here.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pandas as pd
import pytest
import skimage.data
from hypothesis import example, given, settings, strategies as st
from PIL import Image

import helpers
from helpers import acquire, cli, config, data, demo, evaluate, faces, files, litert, model_folders, predict, saving
from helpers.detector import Prediction
from tests.conftest import free_port, run_in_process, the_error_line, tree, write_jpeg

SOURCE_ROOT = Path(helpers.__file__).resolve().parents[1]  # the subprocesses import these helpers
KAGGLE_FILES = 190_335  # files in the Kaggle dataset, which `import` must accept


# ----------------------------------------------------------------------------- running a command
def run_command(args: list, home: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m helpers ARGS` in `home`/world, with its storage (caches, default folders) in `home`/storage."""
    env = {**os.environ, config.STORAGE_ENV: str(home / "storage"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "helpers", *map(str, args)], cwd=home / "world", env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


# ----------------------------------------------------------------------------- what the cases are made of
STYLE = {"scale": 1.05, "offset_x": 0.0, "offset_y": 0.05, "level_eyes": False, "tilt_p90": 8.0,
         "faces_found": 22, "images_sampled": 24}
REMOVE = object()  # a change that deletes the field


def sidecar(folder: Path) -> dict:
    """A sidecar as `train` writes one, for the stand-in model files in `folder`."""
    return {"backbone": "efficientnet_lite0", "image_size": 96, "class_names": ["real", "fake"], "threshold": 0.42,
            "profile": "smoke", "augmentations": ["flip", "rotation", "zoom"], "saved_at": "2026-01-01T00:00:00+00:00",
            "data": {"root": str(folder.parent / "faces"), "layout": "flat", "fingerprint": "0123456789abcdef"},
            "validation": {"roc_auc": 0.8}, "training": {"stage1_seconds": 1.0}, faces.STYLE_KEY: dict(STYLE),
            "files": {name: files.sha256_of(folder / name) for name in (saving.MODEL_FILE, saving.WEIGHTS_FILE)}}


def changed(metadata: dict, field: tuple, value) -> dict:
    """`metadata` with the field at `field` (a path of keys) set to `value`, or deleted for REMOVE."""
    holder = metadata
    for key in field[:-1]:
        holder = holder[key]
    if value is REMOVE:
        holder.pop(field[-1], None)
    else:
        holder[field[-1]] = value
    return metadata


def fake_model(folder: Path, field: tuple = (), value=None) -> Path:
    """A model folder whose sidecar reads as one `train` wrote, with one field changed; its model files are
    stand-ins (every case that uses it is refused before they would be loaded)."""
    folder.mkdir(parents=True)
    (folder / saving.MODEL_FILE).write_bytes(b"a stand-in for model.keras")
    (folder / saving.WEIGHTS_FILE).write_bytes(b"a stand-in for model.weights.h5")
    metadata = changed(sidecar(folder), field, value) if field else sidecar(folder)
    (folder / saving.SIDECAR_FILE).write_text(json.dumps(metadata))  # json writes nan and inf as NaN, Infinity
    return folder


def flat_data(root: Path, per_class: int = 3) -> Path:
    for label in config.CLASS_NAMES:
        for index in range(per_class):
            write_jpeg(root / label / f"{label}_{index}.jpg", seed=index + 10 * len(label))
    return root


def kaggle_data(root: Path) -> Path:
    for split in ("Train", "Validation", "Test"):
        for label in ("Real", "Fake"):
            write_jpeg(root / split / label / "a.jpg", seed=len(split) + len(label))
    return root


def zipped(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


@dataclass(frozen=True)
class Case:
    item: str  # the item
    setup: Callable[[Path], list]  # makes the files in a folder and returns the command's arguments
    error: str  # what the error line says (a regular expression)
    in_process: bool = False


CASES: dict[str, Case] = {}


def case(item: str, error: str, in_process: bool = False):
    """Register a function that sets a case up, under its name."""
    def register(setup):
        CASES[setup.__name__] = Case(item, setup, error, in_process)
        return setup
    return register


def train_args(world: Path, out) -> list:
    return ["train", "--data", flat_data(world / "faces"), "--profile", "smoke", "--out", out, "--overwrite"]


# ----------------------------------------------------------------------------- 1-3: train's --out
@case("1", r"faces holds fake, real: it is not a model folder, so training will not replace it, even with --overwrite")
def train_out_is_the_data_set(world):
    return train_args(world, world / "faces")


@case("1", r"notes\.txt is a file, not a model folder", in_process=True)
def train_out_is_a_file(world):
    (world / "notes.txt").write_text("my notes")
    return train_args(world, world / "notes.txt")


@case("1", r"models holds a, b: it is not a model folder", in_process=True)
def train_out_is_a_folder_of_models(world):
    fake_model(world / "models" / "a"), fake_model(world / "models" / "b")
    return train_args(world, world / "models")


@case("2", r"m holds notes\.txt: it is not a model folder", in_process=True)
def train_out_is_a_model_with_notes_beside_it(world):
    (fake_model(world / "m") / "notes.txt").write_text("what this model was for")
    return train_args(world, world / "m")


@case("2", r"m\.partial exists and was not made by a training run", in_process=True)
def train_beside_a_partial_folder_it_did_not_make(world):
    (world / "m.partial").mkdir()
    (world / "m.partial" / "mine.txt").write_text("not a training run's")
    return train_args(world, world / "m")


# ----------------------------------------------------------------------------- 4: output files
@case("4", r"photo\.jpg already exists: choose another name, or pass --overwrite to replace it")
def csv_over_the_photo_scored(world):
    photo = write_jpeg(world / "photo.jpg", seed=0)
    return ["predict", fake_model(world / "m"), photo, "--csv", photo]


@case("4", r"m/model\.json would be written inside the model folder .*/m: choose a file outside it")
def csv_over_the_models_sidecar(world):
    model = fake_model(world / "m")
    return ["predict", model, write_jpeg(world / "photo.jpg", seed=0), "--csv", model / "model.json", "--overwrite"]


@case("4", r"m/scores\.csv would be written inside the model folder")
def csv_into_a_model_folder(world):
    model = fake_model(world / "m")
    return ["predict", model, write_jpeg(world / "photo.jpg", seed=0), "--csv", model / "scores.csv"]


@case("4", r"m/checkpoints/scores\.csv would be written inside the model folder .*/m:")
def csv_into_a_model_folders_checkpoints(world):
    model = fake_model(world / "m")
    (model / model_folders.CHECKPOINT_DIR).mkdir()
    return ["predict", model, write_jpeg(world / "photo.jpg", seed=0), "--csv", model / "checkpoints" / "scores.csv"]


@case("4", r"results is a folder: name a file to write")
def csv_onto_a_folder(world):
    (world / "results").mkdir()
    (world / "results" / "old.csv").write_text("kept\n")
    return ["predict", fake_model(world / "m"), write_jpeg(world / "photo.jpg", seed=0), "--csv", world / "results",
            "--overwrite"]


@case("4", r"metrics\.json already exists: choose another name, or pass --overwrite", in_process=True)
def json_over_an_earlier_result(world):
    (world / "metrics.json").write_text('{"roc_auc": 0.9}\n')
    return ["evaluate", fake_model(world / "m"), flat_data(world / "faces"), "--json", world / "metrics.json"]


@case("4", r"m/model\.json would be written inside the model folder")
def json_over_the_models_sidecar(world):
    model = fake_model(world / "m")
    return ["evaluate", model, flat_data(world / "faces"), "--json", model / "model.json", "--overwrite"]


# ----------------------------------------------------------------------------- 6: the sidecar's fields
def sidecar_case(name: str, field: tuple, value, error: str, command: str = "predict") -> None:
    def setup(world):
        model = fake_model(world / "m", field, value)
        return [command, model] + ([write_jpeg(world / "photo.jpg", seed=0)] if command == "predict" else [])
    setup.__name__ = name
    case("6", rf"m/model\.json {error}" if error.startswith("lacks") else
         rf"m/model\.json: {error}.*the file is damaged or was edited\.$")(setup)


for _name, _value, _json in (("nan", math.nan, "NaN"), ("five", 5.0, "5.0"), ("minus_one", -1, "-1"),
                             ("text", "abc", '"abc"'), ("null", None, "null"), ("list", [0.5], r"\[0\.5\]")):
    sidecar_case(f"threshold_{_name}", ("threshold",), _value, rf"threshold must be a number from 0 to 1, not {_json};")
sidecar_case("threshold_nan_in_the_app", ("threshold",), math.nan, "threshold must be a number from 0 to 1, not NaN;",
             command="app")
sidecar_case("face_crop_a_string", (faces.STYLE_KEY,), "tight", 'face_crop must be null or an object of scale, .*not "tight"')
sidecar_case("face_crop_scale_negative_in_the_app", (faces.STYLE_KEY, "scale"), -1.0,
             r"face_crop\.scale must be a number above 0, at most 10, not -1\.0;", command="app")
sidecar_case("files_entry_a_string", ("files", saving.MODEL_FILE), "abc", r"files must be the sha256 \(64 hex digits\)")
sidecar_case("files_removed", ("files",), REMOVE, r"lacks files: it was not written by helpers\.saving \(without "
                                                  r"files, the sha256 of model\.keras and model\.weights\.h5, those "
                                                  r"files could not be checked\)")


# ----------------------------------------------------------------------------- 7: arguments
def predict_args(world):
    return ["predict", fake_model(world / "m"), write_jpeg(world / "photo.jpg", seed=0)]


@case("7", r"argument --batch-size: expected a whole number of 1 or more, not '0'")
def batch_size_zero(world):
    return predict_args(world) + ["--batch-size", "0"]


@case("7", r"argument --batch-size: expected a whole number of 1 or more, not '-5'")
def batch_size_negative(world):
    return predict_args(world) + ["--batch-size", "-5"]


@case("7", r"argument --batch-size: expected a whole number of 1 or more, not '0'", in_process=True)
def evaluate_batch_size_zero(world):
    return ["evaluate", fake_model(world / "m"), flat_data(world / "faces"), "--batch-size", "0"]


@case("7", r"argument --max-gb: expected a finite number above 0, not 'nan'")
def import_max_gb_nan(world):
    return ["import", zipped(world / "faces.zip", {"real/a.jpg": b"x"}), "--dest", world / "out", "--max-gb", "nan"]


@case("7", r"argument --max-gb: expected a finite number above 0, not 'inf'")
def import_max_gb_inf(world):
    return ["import", zipped(world / "faces.zip", {"real/a.jpg": b"x"}), "--dest", world / "out", "--max-gb", "inf"]


@case("7", r"argument --port: expected a port number from 1 to 65535, not '99999'")
def app_port_out_of_range(world):
    return ["app", fake_model(world / "m"), "--port", "99999"]


@case("7", r"argument --time-budget: expected a finite number above 0, not 'nan'", in_process=True)
def train_time_budget_nan(world):
    return ["train", "--data", flat_data(world / "faces"), "--profile", "smoke", "--out", world / "m",
            "--time-budget", "nan"]


# ----------------------------------------------------------------------------- 9: folder names that collide by case
@case("9", r"flat has two folders for the real class, Real and real: keep one")
def scan_real_and_Real(world):
    write_jpeg(flat_data(world / "flat") / "Real" / "more.jpg", seed=99)
    return ["scan", world / "flat"]


@case("9", r"kaggle has two folders for the train split, Train and train: keep one")
def scan_Train_and_train(world):
    kaggle_data(world / "kaggle")
    for seed, label in enumerate(("Real", "Fake")):
        write_jpeg(world / "kaggle" / "train" / label / "b.jpg", seed=seed)
    return ["scan", world / "kaggle"]


@case("9", r"both holds both layouts \(Test, Train, Validation, fake, real\)")
def scan_both_layouts_in_one_root(world):
    flat_data(kaggle_data(world / "both"))
    return ["scan", world / "both"]


@case("9", r"flat has two folders for the real class, Real and real")
def import_a_folder_with_real_and_Real(world):
    write_jpeg(flat_data(world / "flat") / "Real" / "more.jpg", seed=99)
    return ["import", world / "flat", "--dest", world / "imported"]


# ----------------------------------------------------------------------------- 10: zip bombs
@case("10", r"its 3 members would unpack to 12 MiB from [\d,]+ bytes, more than 100:1 \(a zip bomb\?\)")
def import_a_bomb_of_small_members(world):
    members = {f"real/{index}.jpg": b"\0" * (4 * 2**20) for index in range(3)}  # each under the 8 MiB of one member
    return ["import", zipped(world / "bomb.zip", members), "--dest", world / "out"]


@case("10", r"it holds 101 entries, more than 100 \(raise the limit with --max-files")
def import_too_many_entries(world):
    members = {f"real/{index}.jpg": b"" for index in range(101)}
    return ["import", zipped(world / "many.zip", members), "--dest", world / "out", "--max-files", "100"]


# ----------------------------------------------------------------------------- 11: smaller things
@case("11", r"faces\.tar\.gz is a tar archive, not a zip: unpack it yourself \(tar -xf faces\.tar\.gz\)")
def import_a_tar_gz(world):
    faces_root = flat_data(world / "faces")
    with tarfile.open(world / "faces.tar.gz", "w:gz") as archive:
        archive.add(faces_root, arcname="faces")
    return ["import", world / "faces.tar.gz", "--dest", world / "out"]


@case("11", r"cats holds neither split folders nor real/fake folders: expected ROOT/Train\|Validation\|Test/Real\|Fake")
def scan_a_folder_of_cats(world):
    write_jpeg(world / "cats" / "tabby" / "a.jpg", seed=0)
    write_jpeg(world / "cats" / "ginger" / "b.jpg", seed=1)
    return ["scan", world / "cats"]


@case("11", r"Data root .*nowhere does not exist or is not a folder: get data with `deepfake-lessons download`")
def scan_a_missing_root(world):
    return ["scan", world / "nowhere"]


@case("11", r"flat/Train has no fake folder: expected ROOT/Train")
def scan_a_split_without_fakes(world):
    write_jpeg(world / "flat" / "Train" / "Real" / "a.jpg", seed=0)
    return ["scan", world / "flat"]


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_refused_in_one_line_and_loses_nothing(name, tmp_path, capsys):
    case_ = CASES[name]
    world = tmp_path / "world"
    world.mkdir()
    args = case_.setup(world)
    before = tree(world)
    result = run_in_process(args, capsys) if case_.in_process else run_command(args, tmp_path)
    assert result.returncode == cli.USER_ERROR_STATUS, result.stdout + result.stderr
    line = the_error_line(result.stderr)
    assert re.search(case_.error, line), line
    assert tree(world) == before


# ----------------------------------------------------------------------------- 3: OUT.old is not touched
def test_replacing_a_model_touches_no_sibling_folder(tmp_path):
    target = fake_model(tmp_path / "m")
    (tmp_path / "m.old").mkdir()
    (tmp_path / "m.old" / "thesis.txt").write_text("years of work")
    new = fake_model(tmp_path / "m.partial", ("threshold",), 0.7)
    (new / model_folders.RUN_MARKER).write_text("{}")
    before = tree(tmp_path / "m.old")
    model_folders.replace_folder(new, target)
    assert saving.read_metadata(target)["threshold"] == 0.7 and not new.exists()
    assert tree(tmp_path / "m.old") == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m", "m.old"]  # nothing else made, nothing left


def test_a_target_that_changed_since_it_was_checked_is_not_replaced(tmp_path):
    target = fake_model(tmp_path / "m")
    new = fake_model(tmp_path / "m.partial", ("threshold",), 0.7)
    (target / "notes.txt").write_text("written while training ran")
    before = tree(tmp_path)
    with pytest.raises(model_folders.FolderExistsError, match="no longer holds only a model: not replaced"):
        model_folders.replace_folder(new, target)
    assert tree(tmp_path) == before


# ----------------------------------------------------------------------------- 6: any value in any field
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3),
                           max_leaves=6)
FIELDS = [("backbone",), ("image_size",), ("class_names",), ("threshold",), ("files",), ("files", saving.MODEL_FILE),
          (faces.STYLE_KEY,), (faces.STYLE_KEY, "scale"), (faces.STYLE_KEY, "offset_y"),
          (faces.STYLE_KEY, "level_eyes"), (faces.STYLE_KEY, "faces_found"), ("data",), ("data", "root"),
          ("data", "fingerprint"), ("validation",), ("validation", "roc_auc"), ("profile",), ("augmentations",),
          ("training",), ("saved_at",), (litert.EXPORT_KEY,)]


def use_every_field(folder: Path, metadata: dict) -> None:
    """Read the sidecar's fields where the package reads them (all but Keras' own), as a loaded model would."""
    threshold, size = float(metadata["threshold"]), int(metadata["image_size"])
    assert 0 <= threshold <= 1 and size > 0
    style = faces.CropStyle.from_metadata(metadata)
    detector = SimpleNamespace(metadata=metadata, backbone=str(metadata["backbone"]), image_size=size,
                               threshold=threshold, crop_style=style, directory=folder)
    assert demo.describe_model(detector).startswith("The model is ")
    json.dumps(demo.model_record(detector))
    frame = pd.DataFrame(columns=["path", "relpath", "split", "label"])
    evaluate.overlap_warning(metadata.get("data", {}), str(folder), "test", frame)
    assert isinstance(litert.stale_reason(folder), str)  # no export here: a reason, whatever the sidecar says


@pytest.mark.parametrize("field", FIELDS, ids=".".join)
@settings(max_examples=25, derandomize=True, deadline=None)
@given(value=JSON_VALUES)
@example(value=math.nan)
@example(value=math.inf)
@example(value=-1)
@example(value=5.0)
@example(value="abc")
@example(value=None)
@example(value=[0.5])
@example(value=True)
@example(value=REMOVE)
def test_any_value_in_any_sidecar_field_is_refused_by_name_or_works(field, value, tmp_path_factory):
    model = tmp_path_factory.getbasetemp() / "sidecars" / ".".join(field) / "m"
    if not model.exists():
        fake_model(model)
    (model / saving.SIDECAR_FILE).write_text(json.dumps(changed(sidecar(model), field, value)))
    try:
        read = saving.read_metadata(model)
    except saving.ModelFileError as err:
        message = str(err)
        assert str(model / saving.SIDECAR_FILE) in message and field[0] in message and "\n" not in message
        return
    use_every_field(model, read)


def test_a_sidecar_as_train_writes_it_is_read_whole(tmp_path):
    metadata = sidecar(fake_model(tmp_path / "m"))
    assert saving.read_metadata(tmp_path / "m") == metadata
    use_every_field(tmp_path / "m", metadata)


# ----------------------------------------------------------------------------- 10: the guard's defaults
def test_the_archive_guard_accepts_the_kaggle_dataset_by_default_and_the_readmes_say_its_limits():
    assert acquire.MAX_FILES > KAGGLE_FILES and acquire.MAX_UNPACKED_GB > 1.7
    for readme in (config.REPO_ROOT / "README.md", config.REPO_ROOT / "data" / "README.md"):
        text = " ".join(readme.read_text(encoding="utf-8").split())
        assert f"more than {acquire.MAX_UNPACKED_GB:g} GB" in text and f"more than {acquire.MAX_FILES:,} entries" in text
        assert f"more than {acquire.MAX_COMPRESSION_RATIO} times its" in text


# ----------------------------------------------------------------------------- 11: names, links, counts
def test_a_newline_in_a_file_name_cannot_forge_a_line(tmp_path):
    root = flat_data(tmp_path / "world" / "flat")
    (root / "fake" / "x.jpg\nleft out: forged.jpg: a forged line").write_bytes(b"not an image")
    before = tree(tmp_path / "world")
    result = run_command(["scan", root], tmp_path)
    assert result.returncode == 0, result.stderr
    left_out = [line for line in result.stdout.splitlines() if line.startswith("left out:")]
    assert left_out == ["left out: fake/x.jpg\\nleft out: forged.jpg: a forged line: not an image file PIL can read."]
    assert tree(tmp_path / "world") == before


def test_scan_follows_no_link_out_of_the_data_root(tmp_path):
    root = flat_data(tmp_path / "world" / "flat")
    secret = write_jpeg(tmp_path / "world" / "private" / "secret.jpg", seed=5)
    (root / "real" / "link.jpg").symlink_to(secret)
    (root / "real" / "inside.jpg").symlink_to(root / "real" / "real_0.jpg")  # inside the root: followed
    before = tree(tmp_path / "world")
    result = run_command(["scan", root], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "8 files scanned" in result.stdout and "7 usable, 1 left out." in result.stdout
    assert f"left out: real/link.jpg: {data.OUTSIDE_ROOT}" in result.stdout.splitlines()
    assert tree(tmp_path / "world") == before
    cached = "".join(path.read_text() for path in (tmp_path / "storage" / ".cache" / "scan").glob("*.csv"))
    assert "link.jpg" not in cached  # never opened, so never measured


def test_folder_walks_list_images_they_cannot_decode(tmp_path):
    write_jpeg(tmp_path / "photos" / "a.jpg", seed=0)
    (tmp_path / "photos" / "b.heic").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    (tmp_path / "photos" / "c.avif").write_bytes(b"\0\0\0\x1cftypavif" + b"\0" * 64)
    (tmp_path / "photos" / "notes.txt").write_text("not an image by its name: not walked")
    walked, skipped = predict.expand_paths([tmp_path / "photos"])
    assert [path.name for path in walked] == ["a.jpg", "b.heic", "c.avif"] and skipped == {}
    image, reason = predict._load(tmp_path / "photos" / "b.heic", "off", 32)
    assert image is None and "pillow-heif" in reason


def test_the_count_says_which_rows_are_faces_and_which_whole_images():
    def row(source, **face):
        return Prediction(source, "real", 0.2, 0.5, "b", **face)

    rows = [row("two.png", faces_found=2, face=1, box=(0, 0, 9, 9)), row("two.png", faces_found=2, face=2, box=(9, 0, 9, 9)),
            row("coffee.png", faces_found=0), Prediction("cut.png", None, None, 0.5, "b", "truncated")]
    printed = predict.report(rows).splitlines()
    assert printed[-2] == "2 images scored (2 faces; 1 image with no face found, scored whole), 1 left out."
    assert printed[3].split() == ["coffee.png", "whole", "0.200", "real"]
    assert predict.report([row("a.png"), row("b.png")]).splitlines()[-1] == "2 images scored, 0 left out."


# ----------------------------------------------------------------------------- 5: no row with a face
def test_a_photo_without_a_face_is_scored_whole_as_a_user_runs_it(trained_model_dir, tmp_path):
    """The path that crashed with KeyError: 'face' once no row had a face (tests/test_predict.py runs them all)."""
    world = tmp_path / "world"
    model = shutil.copytree(trained_model_dir, world / "m")
    Image.fromarray(skimage.data.coffee()).save(world / "coffee.png")
    before = tree(world)
    result = run_command(["predict", model, world / "coffee.png", "--csv", world / "scores.csv"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "1 image scored (1 image with no face found, scored whole), 0 left out.", f"Wrote {world / 'scores.csv'}"]
    table = pd.read_csv(world / "scores.csv")
    assert len(table) == 1 and table["faces_found"].tolist() == [0] and table["face"].isna().all()
    assert tree(world) == {**before, "scores.csv": files.sha256_of(world / "scores.csv")}


# ----------------------------------------------------------------------------- 8: app and Ctrl-C
def test_ctrl_c_stops_the_app_with_status_130(trained_model_dir, tmp_path):
    (tmp_path / "world").mkdir()
    model = shutil.copytree(trained_model_dir, tmp_path / "world" / "m")
    before = tree(tmp_path / "world")
    port = free_port()
    # As from a user's shell: a plain environment, and Ctrl-C neither ignored nor blocked (whatever the
    # test worker's earlier tests left in its own signal state); faulthandler says where a hang is.
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TF_CPP_MIN_LOG_LEVEL") if name in os.environ}
    env.update({config.STORAGE_ENV: str(tmp_path / "storage"), "PYTHONFAULTHANDLER": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")]))})

    def as_from_a_shell():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    app = subprocess.Popen([sys.executable, "-m", "helpers", "app", str(model), "--port", str(port)],
                           cwd=tmp_path / "world", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, encoding="utf-8", preexec_fn=as_from_a_shell, start_new_session=True)
    printed = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda name, stream: printed[name].extend(stream), args=item, daemon=True)
               for item in (("out", app.stdout), ("err", app.stderr))]
    for reader in readers:
        reader.start()
    try:  # Ctrl-C once the app says where it is, as a user would press it
        deadline = time.monotonic() + 120
        while not any("The demo is at" in line for line in printed["out"]):
            if app.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start: {printed}")
            time.sleep(0.1)
        app.send_signal(signal.SIGINT)
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to stderr
            app.wait(timeout=30)
    finally:
        if app.poll() is None:
            app.kill()
    for reader in readers:
        reader.join(timeout=10)
    err = "".join(printed["err"])
    assert app.returncode == cli.INTERRUPTED_STATUS, err
    assert err.strip().splitlines()[-1] == "interrupted." and "Traceback" not in err
    assert tree(tmp_path / "world") == before
