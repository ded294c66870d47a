"""Training modes with self-blended images, and the cross-dataset table."""
import json

import numpy as np
import pandas as pd
import pytest

from helpers import config, data, generalisation, metrics, model_folders, train


@pytest.fixture(scope="module")
def smoke_frames(dfdc):
    return data.load_frames(dfdc, config.get_profile("smoke"), verbose=False)


def test_real_plus_sbi_keeps_no_real_fake(smoke_frames):
    frames = train.with_mode(smoke_frames, "real+sbi")
    for split in ("train", "validation"):
        fakes = frames[split][frames[split]["label"] == 1]
        assert (fakes["transform_seed"] >= 0).all(), "every fake is a pseudo-fake"
        assert fakes["relpath"].str.endswith("#sbi").all()
        assert data.counts(frames[split]).loc[split].tolist() == [24, 24]
    assert frames["test"] is smoke_frames["test"], "the test split is never changed"


def test_real_fake_sbi_adds_one_pseudo_fake_per_real(smoke_frames):
    frames = train.with_mode(smoke_frames, "real+fake+sbi")
    assert data.counts(frames["train"]).loc["train"].tolist() == [24, 48]
    assert train.with_mode(smoke_frames, "real+fake") is smoke_frames
    with pytest.raises(ValueError, match="real\\+sbi"):
        train.with_mode(smoke_frames, "sbi-only")


def test_sbi_rows_flow_through_the_pipeline(smoke_frames):
    frames = train.with_mode(smoke_frames, "real+sbi")
    images, labels = next(iter(train.dataset(frames["train"].tail(4), config.get_profile("smoke"))))
    assert images.shape == (4, 96, 96, 3) and labels.numpy().tolist() == [1, 1, 1, 1]


def test_model_dir_names_the_mode(dfdc):
    smoke = config.get_profile("smoke")
    assert model_folders.model_dir(dfdc, smoke).name == "smoke-dfdc-faces"
    assert model_folders.model_dir(dfdc, smoke, "real+sbi").name == "smoke-dfdc-faces-real-sbi"


def test_cross_dataset_table_and_its_reading(trained_model_dir, dfdc, ffhq):
    table = generalisation.cross_dataset_table(
        {"standard": ("dfdc", "real+fake", trained_model_dir)}, {"dfdc": dfdc, "ffhq": ffhq},
        profile=config.get_profile("smoke"))
    assert list(table["tested on"]) == ["dfdc", "ffhq"]
    assert list(table["in-domain"]) == [True, False]
    assert table["ROC-AUC"].between(0, 1).all() and (table["images"] == 48).all()
    assert (table["ROC-AUC low"] <= table["ROC-AUC"]).all() and (table["ROC-AUC"] <= table["ROC-AUC high"]).all()
    assert (table["ROC-AUC high"] - table["ROC-AUC low"] > 0.05).all(), "48 images leave a wide interval"
    assert generalisation.auc_matrix(table).shape == (1, 2)
    cell = generalisation.auc_matrix(table, intervals=True).loc[("dfdc", "real+fake"), "ffhq"]
    row = table.iloc[1]
    assert cell == f"{row['ROC-AUC']:.2f} [{row['ROC-AUC low']:.2f}, {row['ROC-AUC high']:.2f}]"
    sentence = generalisation.describe(table)
    assert "Trained on dfdc (real+fake)" in sentence and "on ffhq" in sentence


def _table(aucs: list[tuple[float, float, float]]) -> pd.DataFrame:
    """A made-up cross-dataset table: (ROC-AUC, low, high) for dfdc's two modes on dfdc, then ffhq."""
    auc, low, high = zip(*aucs)
    return pd.DataFrame({"trained on": ["dfdc"] * 4, "mode": ["real+fake"] * 2 + ["real+sbi"] * 2,
                         "tested on": ["dfdc", "ffhq"] * 2, "in-domain": [True, False] * 2,
                         "ROC-AUC": auc, "ROC-AUC low": low, "ROC-AUC high": high})


def test_reading_says_when_the_own_fakes_were_never_seen():
    table = _table([(0.84, 0.79, 0.88), (0.55, 0.47, 0.63), (0.54, 0.48, 0.60), (0.40, 0.31, 0.48)])
    standard, sbi_only = generalisation.describe(table).splitlines()
    assert "0.84 [0.79, 0.88] on its own test set" in standard and "never saw" not in standard
    assert "0.54 [0.48, 0.60] on dfdc's test set (fakes it never saw)" in sbi_only
    assert standard.endswith("indistinguishable from chance: its interval holds 0.5.")
    assert sbi_only.endswith("more real than the real faces.")


@pytest.mark.parametrize("other, expected", [
    ((0.44, 0.36, 0.52), "indistinguishable from chance"),  # the point is below 0.5, the interval is not
    ((0.40, 0.31, 0.49), "below chance"),
    ((0.70, 0.62, 0.77), "clearly below its own test set"),
    ((0.82, 0.76, 0.88), "not clearly different from its own test set"),
    ((0.95, 0.90, 0.99), "clearly better than on its own test set"),
])
def test_verdict_reads_the_interval_not_the_point(other, expected):
    own = {"ROC-AUC": 0.84, "ROC-AUC low": 0.79, "ROC-AUC high": 0.88}
    row = dict(zip(["ROC-AUC", "ROC-AUC low", "ROC-AUC high"], other))
    reading = generalisation.verdict(row, own)
    assert expected in reading
    assert ("below chance" in reading) == (other[2] < 0.5), "only an interval wholly under 0.5 is below chance"


def test_data_roots_add_the_cross_root_only_when_set(monkeypatch, dfdc, ffhq):
    monkeypatch.setenv(config.DATA_ENV, str(dfdc))
    monkeypatch.delenv(config.CROSS_DATA_ENV, raising=False)
    assert generalisation.data_roots(config.resolve()) == {"dfdc-faces": dfdc.resolve()}
    monkeypatch.setenv(config.CROSS_DATA_ENV, str(ffhq))
    assert generalisation.data_roots(config.resolve()) == {"dfdc-faces": dfdc.resolve(),
                                                           "ffhq-stylegan2": ffhq.resolve()}


def _stored(trained_on: str, sets: dict, rng) -> dict:
    """A made-up bench_generalisation result: two modes of one training set, scored on every set of `sets`."""
    models = []
    for mode, strength in (("real+fake", 2.0), ("real+sbi", 0.3)):
        tested = {}
        for name, labels in sets.items():
            gain = strength if name == trained_on else 0.0
            tested[name] = {"test_scores": (1 / (1 + np.exp(-(rng.normal(size=len(labels)) + gain * labels)))).tolist()}
        models.append({"mode": mode, "threshold": 0.5, "tested": tested})
    return {"data": trained_on, "models": models,
            "test_sets": {name: {"test_labels": labels.tolist()} for name, labels in sets.items()}}


def test_results_table_reads_stored_scores_like_the_live_table():
    rng = np.random.default_rng(1)
    sets = {"dfdc": np.r_[np.zeros(40, int), np.ones(40, int)], "ffhq": np.r_[np.zeros(45, int), np.ones(15, int)]}
    results = [_stored("dfdc", sets, rng), _stored("ffhq", sets, rng)]
    table = generalisation.results_table(results)
    assert len(table) == 8 and table["in-domain"].sum() == 4 and set(table["images"]) == {80, 60}
    row = table[(table["trained on"] == "dfdc") & (table["mode"] == "real+fake") & (table["tested on"] == "ffhq")].iloc[0]
    scores = results[0]["models"][0]["tested"]["ffhq"]["test_scores"]
    assert row["ROC-AUC"] == metrics.roc_auc(sets["ffhq"], scores)
    assert (row["ROC-AUC low"], row["ROC-AUC high"]) == metrics.bootstrap_interval(sets["ffhq"], scores, metrics.roc_auc)
    assert row["fake recall"] == metrics.threshold_statistics(0.5)["recall_fake"](sets["ffhq"], np.asarray(scores))
    assert generalisation.auc_matrix(table, intervals=True).shape == (4, 2)
    assert "Trained on dfdc (real+sbi)" in generalisation.describe(table)
    # Where a test set names its groups (one source video per real-and-fake pair), the intervals resample them.
    pairs = np.r_[np.arange(40), np.arange(40)].tolist()
    grouped = generalisation.results_table([generalisation.with_groups(results[0], "dfdc", pairs), results[1]])
    assert "test_groups" not in results[0]["test_sets"]["dfdc"], "the result given is left as it was"
    assert (grouped["ROC-AUC"] == table["ROC-AUC"]).all()
    changed = (grouped["ROC-AUC low"] != table["ROC-AUC low"])
    assert changed.tolist() == [tested == "dfdc" and trained == "dfdc"
                                for trained, tested in zip(table["trained on"], table["tested on"])]


def test_with_groups_needs_one_per_image():
    result = {"test_sets": {"dfdc": {"test_labels": [0, 1, 0, 1]}}}
    assert generalisation.with_groups(result, "dfdc", ["a", "a", "b", "b"])["test_sets"]["dfdc"]["test_groups"] == \
        ["a", "a", "b", "b"]
    with pytest.raises(ValueError, match="one group per test image of dfdc"):
        generalisation.with_groups(result, "dfdc", ["a", "a"])


def test_load_results_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench_generalisation.py"):
        generalisation.load_results(tmp_path)
    (tmp_path / "x.json").write_text(json.dumps({"data": "x"}))
    assert generalisation.load_results(tmp_path) == [{"data": "x"}]


def test_mode_differences_pair_each_model_with_the_standard_one_on_the_same_images():
    rng = np.random.default_rng(2)
    sets = {"dfdc": np.r_[np.zeros(40, int), np.ones(40, int)], "ffhq": np.r_[np.zeros(45, int), np.ones(15, int)]}
    pairs = np.r_[np.arange(40), np.arange(40)].tolist()
    results = [generalisation.with_groups(_stored("dfdc", sets, rng), "dfdc", pairs), _stored("ffhq", sets, rng)]
    table = generalisation.mode_differences(results)
    assert list(zip(table["trained on"], table["mode"], table["tested on"])) == [
        ("dfdc", "real+sbi", "dfdc"), ("dfdc", "real+sbi", "ffhq"), ("ffhq", "real+sbi", "dfdc"), ("ffhq", "real+sbi", "ffhq")]
    row = table.iloc[0]  # real+sbi against real+fake, both trained on dfdc, on dfdc's test images: by source video
    labels, models = sets["dfdc"], results[0]["models"]
    sbi_scores, standard = (np.asarray(model["tested"]["dfdc"]["test_scores"]) for model in models[::-1])
    assert row["Δ ROC-AUC vs real+fake"] == pytest.approx(metrics.roc_auc(labels, sbi_scores) - metrics.roc_auc(labels, standard))
    assert (row["low"], row["high"]) == metrics.paired_difference_interval(labels, sbi_scores, standard, metrics.roc_auc,
                                                                            groups=pairs)
    assert row["high"] < 0 and row["reading"] == "worse on these test images", "a weak model against a strong one"
    assert table["in-domain"].tolist() == [True, False, False, True]
    assert generalisation.mode_differences(results, baseline="real+fake+sbi").empty
