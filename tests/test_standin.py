"""The stand-in face set: the layouts the data layer reads, real manipulations, the same bytes every time."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from helpers import cli, config, data, standin
from helpers.images import load_image


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    return standin.write_standin_sets(tmp_path_factory.mktemp("standin") / "sets")


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def pairs(frame):
    """(real row, fake row) for every file name, matched by split and name."""
    frame = frame.assign(name=[Path(p).name for p in frame["relpath"]])
    real, fake = (frame[frame["class_name"] == c].set_index(["split", "name"]) for c in data.CLASS_NAMES)
    assert set(real.index) == set(fake.index)  # every real has its fake, in the same split
    return [(real.loc[key], fake.loc[key]) for key in real.index]


def test_this_test_session_has_a_data_root():
    """conftest.py points the run at the shared face sets, a stand-in set or your own data: never at nothing."""
    layout, _ = data.find_layout(config.data_root())
    assert layout in ("splits", "flat")


def test_both_roots_are_in_the_layouts_the_data_layer_reads(roots):
    assert data.find_layout(roots[config.DATA_ENV]) == ("splits", roots[config.DATA_ENV])
    assert data.find_layout(roots[config.CROSS_DATA_ENV]) == ("flat", roots[config.CROSS_DATA_ENV])


def test_the_kaggle_layout_has_the_smoke_profiles_count_per_class_and_split(roots):
    report = data.scan(data.index_dataset(roots[config.DATA_ENV]), progress=False)
    smoke = config.get_profile("smoke").max_per_class
    assert report.bad.empty
    assert (report.counts() == smoke).all().all()
    assert list(report.counts().index) == list(data.SPLITS)
    assert set(zip(report.good["width"], report.good["height"], report.good["mode"])) == {(128, 128, "RGB")}


def test_the_flat_layout_is_balanced_and_every_file_reads(roots):
    report = data.scan(data.index_dataset(roots[config.CROSS_DATA_ENV]), progress=False)
    assert report.bad.empty
    assert report.counts().sum().to_dict() == {"real": 28, "fake": 28}
    assert report.counts().to_numpy().min() >= 4  # enough for a threshold on the validation split


def test_the_marker_file_is_never_indexed(roots):
    for root in roots.values():
        frame = data.index_dataset(root)
        assert (root / standin.MARKER_FILE).is_file()
        assert not frame["relpath"].str.contains(standin.MARKER_FILE).any()
        assert len(frame) == sum(1 for _ in root.rglob("*.jpg"))


def test_no_face_is_used_in_two_splits_or_both_roots(roots):
    names = {}
    for root in roots.values():
        frame = data.index_dataset(root)
        for split, group in frame.groupby("split"):
            names[(root.name, split)] = {Path(p).name for p in group["relpath"]}
    for key, members in names.items():
        for other, other_members in names.items():
            if key != other:
                assert not members & other_members, (key, other)


def test_each_swap_donor_comes_from_the_split_of_its_base(roots):
    frame = data.index_dataset(roots[config.CROSS_DATA_ENV])
    split_of = {Path(p).name: s for p, s in zip(frame["relpath"], frame["split"])}
    _, flat_faces = standin.assign_faces()
    donors = standin.swap_donors(flat_faces)
    assert sorted(donors) == flat_faces
    for base, donor in donors.items():
        assert donor != base
        assert split_of[standin.face_name(donor)] == split_of[standin.face_name(base)]


@pytest.mark.parametrize("variable", [config.DATA_ENV, config.CROSS_DATA_ENV])
def test_each_fake_changes_the_inner_face_of_its_real(roots, variable):
    for real, fake in pairs(data.index_dataset(roots[variable])):
        difference = np.abs(load_image(real["path"]).astype(int) - load_image(fake["path"])).mean(axis=2)
        centre, border = difference[40:88, 40:88].mean(), difference[:8].mean()
        assert centre > 1 and border < centre / 4, real["relpath"]  # the edge of the crop stays as it was


def test_is_standin_knows_its_own_folders_only(roots, flat_root, tmp_path):
    assert all(standin.is_standin(root) for root in roots.values())
    assert standin.LABEL in (roots[config.DATA_ENV] / standin.MARKER_FILE).read_text()
    assert not standin.is_standin(flat_root)
    assert not standin.is_standin(tmp_path / "missing")


def test_the_command_line_writes_the_same_bytes_again(roots, tmp_path, capsys):
    out_dir = tmp_path / "again"
    out_dir.mkdir()  # an empty folder is fine
    assert cli.main(["standin", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    for variable, root in roots.items():
        assert f"{variable}={out_dir.resolve() / root.name}" in printed
        assert file_hashes(out_dir / root.name) == file_hashes(root)


def test_the_command_line_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert cli.main(["standin", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and error.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
