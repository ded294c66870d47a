"""The dataset layer: layouts, splits, the scan, subsets and pipelines."""
import os
import re
import shutil
import stat
import zipfile
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import acquire, cli, config, data, file_cache, images, pipeline
from helpers.errors import FolderExistsError
from tests.conftest import byte_names, undecodable, write_jpeg

# Linux file names are any bytes; macOS and Windows refuse names that are not valid UTF-8 (or UTF-16).


def _splits_root(base, split_names=("Train", "Validation", "Test"), class_names=("Real", "Fake"), n=3):
    for split in split_names:
        for label in class_names:
            for i in range(n):
                write_jpeg(base / split / label / f"{label}_{i}.jpg", seed=i)
    return base


@pytest.mark.parametrize("splits, classes", [
    (("Train", "Validation", "Test"), ("Real", "Fake")),
    (("train", "val", "test"), ("real", "fake")),
    (("TRAIN", "valid", "Test"), ("REAL", "fake")),
])
def test_kaggle_layout_in_any_capitalisation(tmp_path, splits, classes):
    frame = data.index_dataset(_splits_root(tmp_path, splits, classes))
    assert frame.attrs["layout"] == "splits"
    assert data.counts(frame).to_numpy().tolist() == [[3, 3]] * 3
    assert set(frame.loc[frame["class_name"] == "fake", "label"]) == {1}
    assert set(frame.loc[frame["class_name"] == "real", "label"]) == {0}


def test_wrapper_folder_is_looked_through(tmp_path):
    _splits_root(tmp_path / "Dataset")
    assert len(data.index_dataset(tmp_path)) == 18


def test_only_the_required_split_folders_must_exist(tmp_path):
    _splits_root(tmp_path, ("Train", "Validation"))
    with pytest.raises(data.DatasetLayoutError, match="no test folder"):
        data.index_dataset(tmp_path)
    frame = data.index_dataset(tmp_path, required=("validation",))
    assert data.counts(frame).to_numpy().tolist() == [[3, 3]] * 2 and set(frame["split"]) == {"train", "validation"}


def test_flat_layout_is_split_70_15_15_per_class(flat_root):
    frame = data.index_dataset(flat_root)
    assert frame.attrs["layout"] == "flat"
    assert data.counts(frame).to_dict() == {"real": {"train": 28, "validation": 6, "test": 6},
                                           "fake": {"train": 28, "validation": 6, "test": 6}}


def test_flat_split_is_stable_across_runs_and_copies(flat_root, tmp_path):
    first = data.index_dataset(flat_root)
    again = data.index_dataset(flat_root)
    copy = shutil.copytree(flat_root, tmp_path / "elsewhere" / "copy")
    copied = data.index_dataset(copy)
    for other in (again, copied):
        assert list(zip(first["relpath"], first["split"])) == list(zip(other["relpath"], other["split"]))


def test_flat_split_does_not_depend_on_file_order():
    names = [f"img_{i}.jpg" for i in range(100)]
    forward = dict(zip(names, data._flat_split(names, seed=1)))
    backward = dict(zip(names[::-1], data._flat_split(names[::-1], seed=1)))
    assert forward == backward
    assert forward != dict(zip(names, data._flat_split(names, seed=2)))  # the seed matters


def test_the_flat_split_of_ordinary_names_has_not_changed():
    names = [f"img_{i}.jpg" for i in range(12)] + ["café.jpg", "日本/顔.png", "a b,c.jpeg"]
    assert data._flat_split(names, seed=42) == [
        "test", "train", "validation", "train", "train", "validation", "test", "train", "train", "train", "train",
        "test", "train", "train", "train"]  # what every earlier version gave: the same data, the same split


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "cats").mkdir(parents=True), "neither split folders nor real/fake"),
    (lambda root: (root / "Train" / "Real").mkdir(parents=True), "no fake folder"),
    (lambda root: [(root / c).mkdir(parents=True) for c in ("real", "fake")], "no files"),
])
def test_wrong_layouts_explain_what_is_expected(tmp_path, make, message):
    root = tmp_path / "root"
    make(root)
    (root / "other").mkdir(exist_ok=True)
    with pytest.raises(data.DatasetLayoutError, match=message):
        data.index_dataset(root)


def test_missing_root_says_how_to_get_data(tmp_path):
    with pytest.raises(data.DatasetLayoutError, match="deepfake-lessons download"):
        data.index_dataset(tmp_path / "nowhere")


def test_scan_reports_bad_files_and_never_touches_them(flat_root):
    bad = {
        "empty.jpg": b"",
        "notes.txt": b"just some text",
        "page.jpg": b"<html>404 not found</html>",
    }
    for name, content in bad.items():
        (flat_root / "fake" / name).write_bytes(content)
    good = (flat_root / "real" / "real_000.jpg").read_bytes()
    (flat_root / "real" / "cut.jpg").write_bytes(good[: len(good) // 2])
    before = {p: p.read_bytes() for p in flat_root.rglob("*") if p.is_file()}

    report = data.scan(data.index_dataset(flat_root), progress=False)

    assert sorted(report.bad["relpath"]) == ["fake/empty.jpg", "fake/notes.txt", "fake/page.jpg", "real/cut.jpg"]
    assert report.bad.set_index("relpath").loc["fake/empty.jpg", "error"].startswith("the file is empty")
    assert "truncated" in report.bad.set_index("relpath").loc["real/cut.jpg", "error"]
    assert len(report.good) == 80 and report.good["ok"].all()
    assert "4 left out" in str(report)
    assert before == {p: p.read_bytes() for p in flat_root.rglob("*") if p.is_file()}


def test_real_sets_scan_clean(dfdc, ffhq):
    for root, shape in ((dfdc, (3, 2)), (ffhq, (3, 2))):
        report = data.scan(data.index_dataset(root), progress=False)
        assert report.bad.empty and report.counts().shape == shape
    assert data.counts(data.index_dataset(dfdc)).loc["train"].tolist() == [700, 700]


def test_smoke_subset_is_balanced_seeded_and_capped(ffhq):
    frame = data.index_dataset(ffhq)
    smoke = config.get_profile("smoke")
    first, second = data.subset(frame, smoke), data.subset(frame, smoke)
    assert (data.counts(first).to_numpy() == smoke.max_per_class).all()
    assert first["path"].tolist() == second["path"].tolist()
    assert data.subset(frame, smoke, seed=3)["path"].tolist() != first["path"].tolist()
    cpu = data.subset(frame, config.get_profile("cpu"))
    assert data.counts(cpu).loc["train"].tolist() == [420, 140]  # the cpu profile keeps the 3:1 ratio


def test_pipeline_yields_raw_pixels_and_labels(dfdc):
    frame = data.subset(data.index_dataset(dfdc), config.get_profile("smoke"))
    frame = frame[frame["split"] == "validation"]
    images, labels = next(iter(pipeline.make_dataset(frame, image_size=64, batch_size=8)))
    assert images.shape == (8, 64, 64, 3) and images.dtype.name == "float32"
    assert 1.0 < float(images.numpy().max()) <= 255.0  # 0-255, not rescaled to 0-1
    assert labels.numpy().tolist() == frame["label"].head(8).tolist()


def test_class_weights_balance_the_loss():
    weights = data.class_weights([0, 0, 0, 1])
    assert weights[0] * 3 == pytest.approx(weights[1] * 1)
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)} and all(type(w) is float for w in weights.values())
    with pytest.raises(ValueError, match="Both classes"):
        data.class_weights([0, 0])


def test_fingerprint_changes_with_the_files(flat_root):
    frame = data.index_dataset(flat_root)
    assert data.fingerprint(frame) == data.fingerprint(frame.sample(frac=1, random_state=0))
    assert data.fingerprint(frame) != data.fingerprint(frame.iloc[1:])


# ----------------------------------------------------------------------------- the scan cache
@pytest.fixture
def scan_cache(tmp_path, monkeypatch):
    """.cache in tmp_path, and a count of the files the scan really opens."""
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    opened = []
    inspect = data._inspect
    monkeypatch.setattr(data, "_inspect", lambda path: opened.append(path) or inspect(path))
    return opened


def _with_bad_files(root):
    (root / "fake" / "empty.jpg").write_bytes(b"")
    (root / "fake" / "notes, with a comma.txt").write_bytes(b"just some text")
    good = (root / "real" / "real_000.jpg").read_bytes()
    (root / "real" / "cut.jpg").write_bytes(good[: len(good) // 2])
    return root


def test_a_second_scan_opens_no_file_and_reports_the_same(flat_root, scan_cache):
    frame = data.index_dataset(_with_bad_files(flat_root))
    uncached = data.scan(frame, progress=False, cache=False)
    assert len(scan_cache) == len(frame)
    first = data.scan(frame, progress=False)
    second = data.scan(frame, progress=False)
    assert len(scan_cache) == 2 * len(frame)  # the second scan opened nothing
    pd.testing.assert_frame_equal(first.files, uncached.files)
    pd.testing.assert_frame_equal(second.files, uncached.files)
    assert len(second.bad) == 3 and "truncated" in second.bad.set_index("relpath").loc["real/cut.jpg", "error"]
    assert list((config.CACHE_DIR / "scan").glob("*.csv"))


def test_a_changed_file_is_scanned_again(flat_root, scan_cache):
    frame = data.index_dataset(flat_root)
    data.scan(frame, progress=False)
    scan_cache.clear()
    shrunk, touched = flat_root / "real" / "real_001.jpg", flat_root / "fake" / "fake_002.jpg"
    shrunk.write_bytes(shrunk.read_bytes()[:300])  # another size
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))  # same size, newer
    report = data.scan(frame, progress=False)
    assert sorted(scan_cache) == sorted([str(shrunk), str(touched)])
    assert report.bad["relpath"].tolist() == ["real/real_001.jpg"]
    pd.testing.assert_frame_equal(report.files, data.scan(frame, progress=False, cache=False).files)


@pytest.mark.parametrize("damage", [b"", b"\x00\xff\xfe garbage \x01", b"a,b\n1,2\n", "truncate", "bad number"])
def test_a_damaged_scan_cache_is_reported_and_rebuilt(flat_root, scan_cache, damage):
    frame = data.index_dataset(_with_bad_files(flat_root))
    expected = data.scan(frame, progress=False).files
    (cache_file,) = (config.CACHE_DIR / "scan").glob("*.csv")
    text = cache_file.read_bytes()
    if damage == "truncate":  # half a file: a row cut off in the middle
        damage = text[: len(text) // 2]
    elif damage == "bad number":
        header, first, rest = text.split(b"\n", 2)
        fields = first.split(b",")
        damage = b"\n".join([header, b",".join([fields[0], b"twelve", *fields[2:]]), rest])
    cache_file.write_bytes(damage)
    scan_cache.clear()
    with pytest.warns(file_cache.CacheWarning, match="damaged"):
        report = data.scan(frame, progress=False)
    assert len(scan_cache) == len(frame)  # every file decoded again
    pd.testing.assert_frame_equal(report.files, expected)
    scan_cache.clear()
    pd.testing.assert_frame_equal(data.scan(frame, progress=False).files, expected)
    assert scan_cache == []  # the rebuilt cache serves the next scan


def test_the_cache_of_a_deleted_root_is_forgotten(tmp_path, scan_cache):
    kept, gone = _splits_root(tmp_path / "kept"), _splits_root(tmp_path / "gone")
    data.scan(data.index_dataset(gone), progress=False)
    data.scan(data.index_dataset(kept), progress=False)
    assert len(list((config.CACHE_DIR / "scan").glob("*.csv"))) == 2
    shutil.rmtree(gone)
    write_jpeg(kept / "Train" / "Real" / "new.jpg", seed=99)
    data.scan(data.index_dataset(kept), progress=False)
    (remaining,) = (config.CACHE_DIR / "scan").glob("*.csv")
    assert remaining.name.startswith("kept-")


# ----------------------------------------------------------------------------- file names that are not UTF-8
@byte_names
@pytest.mark.parametrize("layout", ["flat", "splits"])
def test_a_file_name_that_is_not_utf8_is_split_scanned_cached_and_printed(flat_root, tmp_path, scan_cache, capsys,
                                                                         layout):
    root = flat_root if layout == "flat" else _splits_root(tmp_path / "splits")
    folders = ("fake", "real") if layout == "flat" else ("Test/Fake", "Train/Real")
    image = write_jpeg(undecodable(root / folders[0]), seed=7)
    undecodable(root / folders[1], b"notes\xfe.jpg").write_bytes(b"just some text")
    frame = data.index_dataset(root)
    assert {f"{folders[0]}/bad\udcff.jpg", f"{folders[1]}/notes\udcfe.jpg"} <= set(frame["relpath"])
    first = data.scan(frame, progress=False)
    assert str(image) in first.good["path"].tolist()
    assert first.bad["relpath"].tolist() == [f"{folders[1]}/notes\udcfe.jpg"]
    pd.testing.assert_frame_equal(data.scan(frame, progress=False).files, first.files)  # read back from the cache
    assert len(scan_cache) == len(frame)  # the second scan opened none
    assert data.fingerprint(frame) != data.fingerprint(frame[frame["path"] != str(image)])
    assert cli.main(["scan", str(root)]) == 0
    assert f"left out: {folders[1]}/notes\\xfe.jpg: not an image file" in capsys.readouterr().out


@byte_names
def test_the_pipeline_reads_a_file_name_that_is_not_utf8(tmp_path):
    jpeg = write_jpeg(undecodable(tmp_path), seed=1)  # 32 px: decoded by TensorFlow
    png = undecodable(tmp_path, b"bad\xfe.png")  # decoded by load_image
    Image.fromarray(np.full((20, 30, 3), 99, np.uint8)).save(png, format="PNG")
    frame = pd.DataFrame({"path": [str(jpeg), str(png)], "label": [0, 1]})
    pixels, labels = next(iter(pipeline.make_dataset(frame, image_size=32, batch_size=2)))
    expected = np.stack([images.load_image(jpeg), images.load_resized(png, 32)])
    np.testing.assert_array_equal(pixels.numpy(), expected)
    assert labels.numpy().tolist() == [0, 1]


# ----------------------------------------------------------------------------- import and download
def _zip(path, members: dict):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def test_import_unpacks_a_zip_in_the_kaggle_layout(tmp_path):
    jpeg = write_jpeg(tmp_path / "x.jpg", seed=0).read_bytes()
    members = {f"Dataset/{s}/{c}/{i}.jpg": jpeg for s in ("Train", "Validation", "Test")
               for c in ("Real", "Fake") for i in range(2)}
    target = acquire.import_data(_zip(tmp_path / "kaggle.zip", members), tmp_path / "data" / "kaggle")
    assert len(data.index_dataset(target)) == 12


def test_import_refuses_path_traversal_and_leaves_nothing(tmp_path):
    archive = _zip(tmp_path / "evil.zip", {"real/a.jpg": b"x", "../../escaped.txt": b"gotcha"})
    with pytest.raises(ValueError, match="outside"):
        acquire.import_data(archive, tmp_path / "data" / "evil")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    assert list((tmp_path / "data").iterdir()) == []  # no half-unpacked folder left behind


def test_import_refuses_archives_too_big_when_unpacked(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"real/a.jpg": b"\0" * 10_000, "fake/b.jpg": b"\0" * 10_000})
    with pytest.raises(ValueError, match="more than"):
        acquire.import_data(archive, tmp_path / "out", max_bytes=15_000)


def test_import_explains_a_truncated_download(tmp_path):
    whole = _zip(tmp_path / "whole.zip", {"real/a.jpg": b"x" * 1000, "fake/b.jpg": b"y" * 1000}).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="cut short"):
        acquire.import_data(tmp_path / "cut.zip", tmp_path / "out")


def test_import_never_overwrites(tmp_path, flat_root):
    (tmp_path / "taken").mkdir()
    with pytest.raises(FolderExistsError, match="already exists"):
        acquire.import_data(flat_root, tmp_path / "taken")


def test_import_rejects_a_folder_in_the_wrong_layout(tmp_path):
    write_jpeg(tmp_path / "photos" / "cats" / "a.jpg", seed=0)
    with pytest.raises(data.DatasetLayoutError):
        acquire.import_data(tmp_path / "photos", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_layout_errors_name_the_source_given(tmp_path):
    archive = _zip(tmp_path / "photos.zip", {"cats/a.jpg": b"x", "dogs/b.jpg": b"y"})
    with pytest.raises(data.DatasetLayoutError, match=f"^{re.escape(str(tmp_path / 'photos.zip'))} holds neither") as caught:
        acquire.import_data(archive, tmp_path / "out")
    assert ".importing-" not in str(caught.value)
    write_jpeg(tmp_path / "folder" / "cats" / "a.jpg", seed=0)
    write_jpeg(tmp_path / "folder" / "dogs" / "b.jpg", seed=1)
    with pytest.raises(data.DatasetLayoutError, match=f"^{re.escape(str(tmp_path / 'folder'))} holds neither"):
        acquire.import_data(tmp_path / "folder", tmp_path / "out")


def test_imported_folder_gets_the_usual_permissions(tmp_path, flat_root):
    umask = os.umask(0o022)
    try:
        target = acquire.import_data(flat_root, tmp_path / "data" / "flat")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # not mkdtemp's 0700


def test_import_refuses_symbolic_links_in_a_folder_as_in_a_zip(tmp_path, flat_root):
    (flat_root / "real" / "elsewhere.jpg").symlink_to(write_jpeg(tmp_path / "outside" / "secret.jpg", seed=0))
    with pytest.raises(ValueError, match="elsewhere.jpg is a symbolic link"):
        acquire.import_data(flat_root, tmp_path / "data" / "flat")
    assert list((tmp_path / "data").iterdir()) == []


def test_import_refuses_a_zip_bomb(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("real/a.jpg", b"\0" * (acquire.RATIO_CHECK_BYTES + 1))  # about 1000:1
        archive.writestr("fake/b.jpg", b"x")
    with pytest.raises(ValueError, match="real/a.jpg.*more than 100:1"):
        acquire.import_data(tmp_path / "bomb.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_download_without_internet_says_what_to_do(tmp_path, monkeypatch):
    import kagglehub

    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(RuntimeError, match="deepfake-lessons import"):
        acquire.download_kaggle(tmp_path / "kaggle")


def test_command_line_scan_prints_counts(dfdc, capsys):
    assert cli.main(["scan", str(dfdc)]) == 0
    assert "2000 usable" in capsys.readouterr().out
    assert cli.main(["scan", str(dfdc / "Train" / "Real")]) == 2


def test_a_split_with_one_class_is_refused_before_training(tmp_path, capsys):
    for split, classes in (("Train", ("Real", "Fake")), ("Validation", ("Real",)), ("Test", ("Real", "Fake"))):
        for name in classes:
            for i in range(3):
                write_jpeg(tmp_path / "root" / split / name / f"{name}_{i}.jpg", seed=zlib.crc32(f"{split}{name}{i}".encode()))
    (tmp_path / "root" / "Validation" / "Fake").mkdir()  # the layout is right; the folder is empty
    frames = data.load_frames(tmp_path / "root", config.get_profile("smoke"), verbose=False)
    with pytest.raises(data.DatasetLayoutError, match="validation split .* has no fake images"):
        data.require_both_classes(frames)
    data.require_both_classes(frames, splits=("train", "test"))  # those have both
    out = tmp_path / "model"
    assert cli.main(["train", "--data", str(tmp_path / "root"), "--profile", "smoke",
                                     "--out", str(out)]) == 2
    assert "has no fake images" in capsys.readouterr().err and not out.exists()


def test_the_index_names_each_dfdc_images_source_video_and_nothing_for_other_data(dfdc, ffhq, tmp_path):
    frame = data.index_dataset(dfdc)
    labels_per_video = frame.groupby(config.GROUP_COLUMN)["label"].apply(lambda labels: tuple(sorted(labels)))
    assert len(labels_per_video) == len(frame) // 2 and (labels_per_video == (0, 1)).all()
    pair = frame[frame["relpath"].isin(["Train/Real/real_00000.jpg", "Train/Fake/fake_00000.jpg"])]
    assert pair[config.GROUP_COLUMN].nunique() == 1, "a real and the fake made from its video share a group"
    assert config.GROUP_COLUMN not in data.index_dataset(ffhq).columns, "every StyleGAN2 face stands alone"
    copy = tmp_path / "copy"
    shutil.copytree(dfdc / "Test", copy / "Test")
    for split in ("Train", "Validation"):
        shutil.copytree(dfdc / split / "Real", copy / split / "Real")
        shutil.copytree(dfdc / split / "Fake", copy / split / "Fake")
    changed = next((copy / "Test" / "Real").iterdir())
    changed.write_bytes(changed.read_bytes()[:-1] + b"\0")
    assert config.GROUP_COLUMN not in data.index_dataset(copy).columns, "changed files are not the lesson set"
