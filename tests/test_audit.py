"""The data audit: JPEG quality, duplicates, shortcuts, and whether it flags the right thing.

The small sets are built in tmp_path from real faces of the shared data. In the clean set every
image is a real face, saved the same way, and half of them are *labelled* fake: nothing but
chance separates the classes, so the audit must flag nothing. Each test then plants one problem.
"""
import dataclasses
import io
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import audit, config, data, file_properties, near_duplicates, planted_shortcuts
from helpers.errors import FolderExistsError
from helpers.images import load_resized

SIZE = 96  # small images keep the tests fast
PER_SPLIT = {"Train": 8, "Validation": 4, "Test": 4}  # per class: 16 real, 16 "fake"


@pytest.fixture(scope="module")
def faces(shared_data) -> list[np.ndarray]:
    """32 different real faces from the shared DFDC set, resized small."""
    paths = sorted((shared_data / "dfdc-faces" / "Train" / "Real").glob("*.jpg"))[:2 * sum(PER_SPLIT.values())]
    return [load_resized(path, SIZE) for path in paths]


@pytest.fixture
def clean_root(tmp_path, faces) -> Path:
    """A Train/Validation/Test x Real/Fake tree of real faces, every one saved at quality 90."""
    root = tmp_path / "clean"
    index = 0
    for split, count in PER_SPLIT.items():
        for class_folder in ("Real", "Fake"):
            for _ in range(count):
                target = root / split / class_folder / f"face_{index:03d}.jpg"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(faces[index]).save(target, quality=90)
                index += 1
    return root


def run_audit(root: Path, **kwargs) -> audit.AuditReport:
    return audit.audit_dataset(data.index_dataset(root), progress=False, **kwargs)


def problem_kinds(report: audit.AuditReport) -> set[str]:
    return {finding.kind for finding in report.problems}


# ----------------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95])
def test_jpeg_quality_is_recovered_from_the_quantization_tables(faces, quality):
    buffer = io.BytesIO()
    Image.fromarray(faces[0]).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as image:
        assert file_properties.estimate_jpeg_quality(image.quantization) == quality


def test_images_without_quantization_tables_count_as_lossless():
    assert file_properties.estimate_jpeg_quality(None) == 100
    assert file_properties.estimate_jpeg_quality({}) == 100


def test_region_statistics_see_a_bright_corner():
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[-8:, -8:] = 255
    stats = file_properties.region_statistics(pixels)
    assert stats["corner_bottom_right_mean"] == pytest.approx(255, abs=0.5)
    assert stats["corner_top_left_mean"] == 0 and stats["corner_top_left_std"] == 0
    assert stats["border_bottom_std"] > 0 and stats["border_top_std"] == 0
    assert stats["corner_bottom_right_edges"] == 0  # uniform inside the 8x8 patch: no steps
    assert stats["border_bottom_edges"] > 0 and stats["border_top_edges"] == 0


def test_near_pairs_compares_hamming_distances():
    hashes = pd.Series(["0000000000000000", "0000000000000007", "ffffffffffffffff"])  # 0, 3 and 64 bits set
    pairs = near_duplicates.near_pairs(hashes, max_bits=3, batch=1)
    assert pairs[["a", "b", "distance"]].values.tolist() == [[0, 1, 3]]


def all_pairs_within(hashes: list[int], max_bits: int) -> list[list[int]]:
    """The plain answer: every pair compared, (a, b, distance) sorted by a, then b."""
    bits = np.array([[(value >> bit) & 1 for bit in range(64)] for value in hashes])
    distances = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    a, b = np.nonzero(np.triu(distances <= max_bits, k=1))
    return np.stack([a, b, distances[a, b]], axis=1).tolist()


def planted_hashes(seed: int = 0) -> list[int]:
    """Random 64-bit hashes, each with a few copies 0-8 bits away, and a cluster that shares most bits."""
    rng = np.random.default_rng(seed)
    hashes = []
    for _ in range(250):
        value = int(rng.integers(0, 2**63)) | int(rng.integers(0, 2)) << 63
        hashes.append(value)
        for _ in range(int(rng.integers(0, 3))):
            flips = rng.choice(64, size=int(rng.integers(0, 9)), replace=False)
            hashes.append(value ^ sum(1 << int(bit) for bit in flips))
    hashes += [0xF0F0F0F000000000 | int(rng.integers(0, 2**12)) for _ in range(150)]  # large blocks in common
    return [int(value) for value in rng.permutation(np.array(hashes, dtype=np.uint64))]


@pytest.mark.parametrize("max_bits", [0, 1, 2, 4, 7, 10])
def test_near_pairs_by_blocks_finds_exactly_the_pairs_of_comparing_all(max_bits):
    hashes = planted_hashes()
    expected = all_pairs_within(hashes, max_bits)
    assert len(expected) > 20  # the planted copies are there to be found
    for batch in (7, 1 << 21):  # many small batches, and one
        found = near_duplicates.near_pairs(pd.Series([f"{value:016x}" for value in hashes]), max_bits, batch=batch)
        assert found.values.tolist() == expected


def test_near_pairs_refuses_other_hash_lengths_and_distances():
    with pytest.raises(ValueError, match="64 bits"):
        near_duplicates.near_pairs(pd.Series(["00ff"]))
    with pytest.raises(ValueError, match="between 0 and 63"):
        near_duplicates.near_pairs(pd.Series(["0" * 16]), max_bits=64)
    assert near_duplicates.near_pairs(pd.Series([], dtype=str)).empty


def test_a_second_audit_opens_no_file_and_finds_the_same(flat_root, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    opened = []
    describe = file_properties.describe_file
    monkeypatch.setattr(file_properties, "describe_file", lambda path: opened.append(path) or describe(path))
    frame = data.index_dataset(flat_root)
    first = run_audit(flat_root)
    second = run_audit(flat_root)
    assert len(opened) == len(frame)  # measured once
    pd.testing.assert_frame_equal(second.images, first.images)
    pd.testing.assert_frame_equal(second.images, audit.audit_dataset(frame, progress=False, cache=False).images)
    assert second.summary().equals(first.summary())


def test_duplicate_groups_join_chains_of_pairs():
    pairs = pd.DataFrame({"index_a": [0, 1, 4], "index_b": [1, 2, 5]})
    groups = near_duplicates.duplicate_groups(6, pairs)
    assert groups[0] == groups[1] == groups[2] and groups[4] == groups[5]
    assert len({groups[0], groups[3], groups[4]}) == 3


def test_the_metadata_classifier_sees_a_capped_seeded_sample_of_each_class():
    labels = np.array([0] * 30 + [1] * 8)
    rows = audit.classifier_rows(labels, max_per_class=10, seed=1)
    assert np.bincount(labels[rows]).tolist() == [10, 8] and (np.diff(rows) > 0).all()
    assert rows.tolist() == audit.classifier_rows(labels, max_per_class=10, seed=1).tolist()
    assert rows.tolist() != audit.classifier_rows(labels, max_per_class=10, seed=2).tolist()
    assert audit.classifier_rows(labels, max_per_class=30).tolist() == list(range(38))  # under the cap: all


def test_chance_margin_shrinks_with_more_images():
    assert audit.chance_margin([0] * 16 + [1] * 16) > 0.3 > 0.05 > audit.chance_margin([0] * 1000 + [1] * 1000)
    assert audit.severity_of(0.99, 0.05) == "critical"
    assert audit.severity_of(0.75, 0.05) == "warning"
    assert audit.severity_of(0.60, 0.05) == "info"
    assert audit.severity_of(0.75, 0.30) == "ok"


# ----------------------------------------------------------------------------- the audit
def test_clean_set_is_not_flagged(clean_root):
    report = run_audit(clean_root)
    assert report.problems == [], str(report)
    assert report.flagged_features == []
    assert report.duplicate_counts().to_numpy().sum() == 0
    assert {f.kind for f in report.findings} == {"unreadable", "exact_duplicate", "near_duplicate", "shortcut",
                                                "metadata_classifier"}
    assert set(report.classifier_aucs) == {audit.FILE_PROPERTIES, audit.WITH_REGIONS}


def test_real_and_fake_twins_are_not_mistaken_for_a_shortcut(tmp_path, faces):
    """Each "fake" is its real twin one grey level brighter, as in paired sets like DFDC.

    Twins split across cross-validation folds would push the classifier far below 0.5; grouping
    duplicates into one fold keeps it at chance, and within-split pairs are only information.
    """
    root = tmp_path / "paired"
    for index, face in enumerate(faces):
        split = "Train" if index < 16 else "Validation" if index < 24 else "Test"
        for class_folder, pixels in (("Real", face), ("Fake", np.clip(face.astype(int) + 1, 0, 255))):
            target = root / split / class_folder / f"face_{index:03d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(target, quality=90)
    report = run_audit(root)
    assert report.problems == [], str(report)
    assert (report.duplicates["kind"] == "near").sum() >= len(faces) - 2
    assert all(auc > 0.2 for auc in report.classifier_aucs.values())


def test_watermark_on_fakes_is_flagged_as_a_corner_shortcut(clean_root, tmp_path):
    planted = planted_shortcuts.plant_shortcuts(data.index_dataset(clean_root), tmp_path / "watermarked", watermark=True)
    report = run_audit(planted)
    shortcuts = [f for f in report.problems if f.kind == "shortcut"]
    assert len(shortcuts) == 1 and shortcuts[0].severity == "critical", str(report)
    assert shortcuts[0].features[0].startswith(("corner_bottom_right", "border_bottom", "border_right"))
    assert all(audit.is_region_feature(name) for name in report.flagged_features)
    assert "jpeg_quality" not in report.flagged_features
    # The watermark is pixels, not file metadata: only the classifier that sees corners catches it.
    verdicts = {f.message.split(" (not")[0]: f.severity for f in report.findings if f.kind == "metadata_classifier"}
    assert sorted(verdicts.values()) == ["critical", "ok"]


def test_planting_never_deletes_an_existing_folder(clean_root, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(FolderExistsError, match="taken already exists"):
        planted_shortcuts.plant_shortcuts(data.index_dataset(clean_root), tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    (tmp_path / "fresh").mkdir()  # an empty folder (say, from tempfile.mkdtemp) is fine
    planted = planted_shortcuts.plant_shortcuts(data.index_dataset(clean_root), tmp_path / "fresh")
    assert len(data.index_dataset(planted)) == len(data.index_dataset(clean_root))


def test_other_jpeg_quality_for_fakes_is_flagged(clean_root, tmp_path):
    planted = planted_shortcuts.plant_shortcuts(data.index_dataset(clean_root), tmp_path / "requality", watermark=False,
                                    fake_quality=60)
    report = run_audit(planted)
    assert report.images.groupby("class_name")["jpeg_quality"].unique().map(list).to_dict() == {
        "fake": [60.0], "real": [90.0]}
    quality = [f for f in report.problems if f.kind == "shortcut" and "jpeg_quality" in f.features]
    assert quality and quality[0].severity == "critical"
    assert not any(audit.is_region_feature(name) for name in report.flagged_features)
    assert report.metadata_auc > 0.9


def test_cross_split_duplicate_is_flagged(clean_root):
    source = clean_root / "Train" / "Real" / "face_000.jpg"
    shutil.copyfile(source, clean_root / "Test" / "Real" / "copy_of_face_000.jpg")
    report = run_audit(clean_root)
    exact = report.duplicates[report.duplicates["kind"] == "exact"]
    assert len(exact) == 1 and exact["across_splits"].all()
    assert report.duplicate_counts().loc["exact", "across splits"] == 1
    assert [f.severity for f in report.problems] == ["critical"]
    assert "two splits" in report.problems[0].message and "face_000.jpg" in report.problems[0].message


def test_resaved_copy_in_another_split_is_a_near_duplicate(clean_root):
    with Image.open(clean_root / "Train" / "Fake" / "face_010.jpg") as image:
        image.resize((SIZE - 8, SIZE - 8)).save(clean_root / "Validation" / "Fake" / "resaved.jpg", quality=70)
    report = run_audit(clean_root)
    near = report.duplicates[report.duplicates["kind"] == "near"]
    assert len(near) == 1 and near["across_splits"].all()
    assert [(f.kind, f.severity) for f in report.problems] == [("near_duplicate", "warning")]


def test_same_file_with_both_labels_is_a_label_conflict(clean_root):
    shutil.copyfile(clean_root / "Train" / "Real" / "face_001.jpg", clean_root / "Train" / "Fake" / "face_001.jpg")
    report = run_audit(clean_root)
    assert any(f.severity == "critical" and "both labels" in f.message for f in report.problems)


def test_unreadable_files_are_reported_and_left_out(clean_root):
    (clean_root / "Train" / "Real" / "empty.jpg").write_bytes(b"")
    (clean_root / "Test" / "Fake" / "page.jpg").write_text("<html>404</html>")
    report = run_audit(clean_root)
    assert sorted(report.unreadable["relpath"]) == ["Test/Fake/page.jpg", "Train/Real/empty.jpg"]
    assert problem_kinds(report) == {"unreadable"}
    assert len(report.images) == 2 * sum(PER_SPLIT.values())


def test_audit_takes_a_scan_report_and_a_profile(clean_root):
    profile = dataclasses.replace(config.get_profile("smoke"), max_per_class=3)
    report = audit.audit_dataset(data.scan(data.index_dataset(clean_root), progress=False), profile=profile,
                                 progress=False)
    assert len(report.images) == 3 * 2 * 3
    assert "smoke profile: 18 of 32 readable images" in str(report)


def test_report_reads_worst_first(clean_root):
    shutil.copyfile(clean_root / "Train" / "Real" / "face_000.jpg", clean_root / "Test" / "Real" / "copy.jpg")
    report = run_audit(clean_root)
    summary = report.summary()
    assert summary["severity"].iloc[0] == "critical" and summary["severity"].iloc[-1] == "ok"
    text = str(report)
    assert text.startswith(f"Audited {len(report.images)} images") and "1 problem(s)" in text


def test_watermark_is_stamped_in_the_bottom_right_corner(faces):
    stamped = planted_shortcuts.stamp_watermark(faces[0])
    changed = np.abs(stamped.astype(int) - faces[0]).sum(axis=-1) > 0
    rows, cols = np.nonzero(changed)
    assert changed.any() and rows.min() > SIZE // 2 and cols.min() > SIZE // 4


def test_the_audit_plots_return_figures(tmp_path):
    for index, seed in enumerate((7, 8)):
        pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{index}.png")
    pairs = pd.DataFrame({"path_a": [str(tmp_path / "0.png")], "path_b": [str(tmp_path / "1.png")],
                          "relpath_a": ["0.png"], "relpath_b": ["1.png"], "kind": ["near"], "distance": [2]})
    aucs = pd.DataFrame({"feature": ["jpeg_quality", "width"], "auc": [0.95, 0.5], "severity": ["critical", "ok"]})
    figures = [audit.plot_feature_aucs(aucs), near_duplicates.plot_pairs(pairs)]
    assert [len(figure.axes) for figure in figures] == [1, 2]
    plt.close("all")
