"""Evaluating a saved model: metrics, splits, both layouts, bad files, the CLI and the overlap warning."""
import json
import shutil
import warnings

import pytest

from helpers import cli, config, data, evaluate, metrics, saving
from tests.conftest import byte_names, undecodable, write_bad_files

SUMMARY_KEYS = {"n", "counts", "roc_auc", "average_precision", "eer", "at_threshold", "at_0.5", "ci95"}


@pytest.fixture
def small_root(dfdc, tmp_path):
    """Three real face images per split and class (copied bytes), and three bad files in Test/Fake."""
    for split in ("Train", "Validation", "Test"):
        for name in ("Real", "Fake"):
            target = tmp_path / "small" / split / name
            target.mkdir(parents=True)
            for path in sorted((dfdc / split / name).iterdir())[:3]:
                shutil.copy(path, target)
    sample = next((dfdc / "Test" / "Fake").iterdir()).read_bytes()
    write_bad_files(tmp_path / "small" / "Test" / "Fake", sample)
    return tmp_path / "small"


def test_test_split_metrics_and_scores(detector, dfdc):
    with warnings.catch_warnings():
        warnings.simplefilter("error", evaluate.OverlapWarning)  # the test split is not seen in training
        result = evaluate.evaluate(detector, dfdc, progress=False)
    assert SUMMARY_KEYS <= set(result.metrics) and result.overlap is None
    assert result.metrics["n"] == 300 and result.metrics["counts"] == {"real": 150, "fake": 150}
    assert result.metrics["at_threshold"]["threshold"] == detector.threshold
    assert result.metrics["at_0.5"]["threshold"] == 0.5
    assert result.metrics["data"]["layout"] == "splits" and result.skipped.empty
    scores = result.scores
    assert list(scores.columns) == ["path", "relpath", "split", "label", "class_name", "group", "p_fake", "predicted"]
    assert set(scores["split"]) == {"test"} and scores["p_fake"].between(0, 1).all()
    first = scores.iloc[0]
    assert first["p_fake"] == pytest.approx(detector.predict_image(first["path"]).p_fake, abs=1e-5)
    assert "ROC-AUC" in str(result) and "balanced accuracy" in str(result)
    low, high = result.metrics["ci95"]["roc_auc"]
    assert low <= result.metrics["roc_auc"] <= high and f"[{low:.3f}, {high:.3f}]" in str(result)


def test_flat_layout_and_every_image(detector, ffhq):
    result = evaluate.evaluate(detector, ffhq, split="all", progress=False)
    assert result.metrics["data"]["layout"] == "flat"
    assert result.metrics["counts"] == {"real": 600, "fake": 200}
    assert set(result.scores["split"]) == set(data.SPLITS)


def test_flat_layout_test_split_matches_the_index(detector, ffhq):
    result = evaluate.evaluate(detector, ffhq, progress=False)
    expected = data.counts(data.index_dataset(ffhq)).loc["test"].to_dict()
    assert result.metrics["counts"] == expected


def test_bad_files_are_skipped_and_reported(detector, small_root):
    result = evaluate.evaluate(detector, small_root, progress=False)
    assert result.metrics["counts"] == {"real": 3, "fake": 3}
    reasons = {item["relpath"]: item["error"] for item in result.metrics["skipped"]}
    assert set(reasons) == {"Test/Fake/empty.jpg", "Test/Fake/notes.jpg", "Test/Fake/truncated.jpg"}
    assert "empty" in reasons["Test/Fake/empty.jpg"] and "truncated" in reasons["Test/Fake/truncated.jpg"]
    assert len(result.skipped) == 3 and "skipped: Test/Fake/notes.jpg" in str(result)
    everything = evaluate.evaluate(detector, small_root, split="all", progress=False)
    assert everything.metrics["n"] == 18 and len(everything.skipped) == 3


def test_profile_subset(detector, dfdc):
    result = evaluate.evaluate(detector, dfdc, profile="smoke", progress=False)
    assert result.metrics["counts"] == {"real": 24, "fake": 24} and result.metrics["data"]["profile"] == "smoke"


def test_unknown_split_is_refused(detector, dfdc):
    with pytest.raises(ValueError, match="Unknown split"):
        evaluate.evaluate(detector, dfdc, split="holdout", progress=False)


def test_validation_split_needs_no_test_folder(detector, small_root):
    shutil.rmtree(small_root / "Test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", evaluate.OverlapWarning)  # dfdc's validation images: seen in training
        result = evaluate.evaluate(detector, small_root, split="validation", progress=False)
    assert result.metrics["counts"] == {"real": 3, "fake": 3}
    with pytest.raises(data.DatasetLayoutError, match="no test folder"):
        evaluate.evaluate(detector, small_root, progress=False)


def test_one_class_split_is_warned_about(detector, small_root):
    for path in (small_root / "Test" / "Fake").iterdir():
        if path.name not in ("empty.jpg", "notes.jpg", "truncated.jpg"):
            path.unlink()
    with pytest.warns(evaluate.OneClassWarning, match="holds real images only"):
        result = evaluate.evaluate(detector, small_root, progress=False)
    assert result.metrics["counts"] == {"real": 3, "fake": 0} and result.metrics["roc_auc"] is None


@pytest.mark.parametrize("content, message", [("{not json", "is not valid JSON"),
                                              ('["3f2a"]', "should map each split to a list")])
def test_a_damaged_training_files_json_names_the_file(tmp_path, content, message):
    (tmp_path / saving.TRAINING_FILES).write_text(content)
    with pytest.raises(saving.ModelFileError, match=f"training_files.json {message}"):
        evaluate.seen_hashes(tmp_path)


def test_command_line_writes_json(trained_model_dir, small_root, tmp_path, capsys):
    out = tmp_path / "reports" / "metrics.json"
    assert cli.main(["evaluate", str(trained_model_dir), str(small_root), "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert SUMMARY_KEYS <= set(written) and written["data"]["split"] == "test" and len(written["skipped"]) == 3
    per_image = written["per_image"]  # enough to recompute every number, intervals included
    assert len(per_image) == written["n"] and set(per_image[0]) == {"relpath", "split", "label", "p_fake"}
    labels, scores = [row["label"] for row in per_image], [row["p_fake"] for row in per_image]
    assert metrics.confidence_intervals(labels, scores, written["model"]["threshold"]) == written["ci95"]
    printed = capsys.readouterr().out
    for words in ("ROC-AUC", "average precision", "at threshold 0.500", "recall real", "skipped: "):
        assert words in printed


@byte_names
def test_a_file_name_that_is_not_utf8_is_scored_and_reported(trained_model_dir, small_root, tmp_path, capsys):
    real = small_root / "Test" / "Real"
    shutil.copy(sorted(real.iterdir())[0], undecodable(real))
    undecodable(small_root / "Test" / "Fake", b"notes\xfe.jpg").write_bytes(b"shopping list\n")
    out = tmp_path / "metrics.json"
    assert cli.main(["evaluate", str(trained_model_dir), str(small_root), "--json", str(out)]) == 0
    written = json.loads(out.read_text())  # JSON escapes the undecodable byte (\udcff) and gives it back
    assert written["counts"] == {"real": 4, "fake": 3}
    assert "Test/Real/bad\udcff.jpg" in [row["relpath"] for row in written["per_image"]]
    assert "Test/Fake/notes\udcfe.jpg" in [item["relpath"] for item in written["skipped"]]
    assert "skipped: Test/Fake/notes\\xfe.jpg: not an image" in capsys.readouterr().out


def test_command_line_fails_plainly_on_a_bad_root(trained_model_dir, tmp_path, capsys):
    assert cli.main(["evaluate", str(trained_model_dir), str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_overlap_warning_on_seen_images_even_when_copied(detector, dfdc, tmp_path):
    with pytest.warns(evaluate.OverlapWarning, match="trained on these images"):
        result = evaluate.evaluate(detector, dfdc, split="train", profile="smoke", progress=False)
    assert "same files" in result.overlap and result.metrics["overlap_warning"] == result.overlap
    with pytest.warns(evaluate.OverlapWarning, match="chosen on these images"):
        evaluate.evaluate(detector, dfdc, split="validation", profile="smoke", progress=False)

    for row in result.scores.itertuples():  # the very training images, moved to a folder of their own
        (tmp_path / "copy" / row.relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(row.path, tmp_path / "copy" / row.relpath)
    for split in ("Validation", "Test"):
        for name in ("Real", "Fake"):
            (tmp_path / "copy" / split / name).mkdir(parents=True)
    with pytest.warns(evaluate.OverlapWarning, match="same files"):
        evaluate.evaluate(detector, tmp_path / "copy", split="all", progress=False)


def _by_source_video(frame):
    """dfdc-faces: real_NNNNN and fake_NNNNN come from one source video (its manifest says so)."""
    return frame.assign(group=frame["relpath"].str.extract(r"_(\d+)\.", expand=False))


def test_intervals_resample_the_groups_the_data_names(detector, dfdc, monkeypatch, tmp_path):
    """When the frame has a `group` column, every interval is the grouped one, and the JSON keeps the groups."""
    index = data.index_dataset
    monkeypatch.setattr(data, "index_dataset",
                        lambda *args, **kwargs: index(*args, **kwargs).drop(columns=config.GROUP_COLUMN))
    plain = evaluate.evaluate(detector, dfdc, profile="smoke", progress=False)
    monkeypatch.undo()
    grouped = evaluate.evaluate(detector, dfdc, profile="smoke", progress=False)  # the index names the videos
    scores = grouped.scores
    numbers = _by_source_video(scores)["group"]  # the same pairs as the file numbers, named by video
    assert scores.groupby("group")[[]].ngroups == numbers.nunique()
    assert (numbers.groupby(scores["group"]).nunique() == 1).all()
    assert scores["relpath"].tolist() == plain.scores["relpath"].tolist()
    assert scores["group"].nunique() < len(scores), "the smoke subset holds some matched pairs"
    assert grouped.metrics["ci95_groups"] == scores["group"].nunique() and plain.metrics["ci95_groups"] == len(scores)
    labels, p_fake = scores["label"], scores["p_fake"]
    threshold = detector.threshold
    assert grouped.metrics["ci95"] == metrics.confidence_intervals(labels, p_fake, threshold, groups=scores["group"])
    assert grouped.metrics["ci95"] != plain.metrics["ci95"]
    assert plain.metrics["ci95"] == metrics.confidence_intervals(labels, p_fake, threshold)
    assert "resampled by group" in str(grouped) and "resampled by group" not in str(plain)
    per_image = grouped.as_json()["per_image"]
    assert set(per_image[0]) == {"relpath", "split", "label", "p_fake", "group"}
    assert [row["group"] for row in per_image] == scores["group"].tolist()
