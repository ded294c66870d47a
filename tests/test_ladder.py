"""Lesson 04's ladder: each rung changes one thing, and the committed results agree with their own scores."""
import dataclasses

import numpy as np
import pytest

from helpers import config, ladder, metrics
from helpers import classifier

SHARED_SETS = ("dfdc-faces", "ffhq-stylegan2")


def _differences(a: ladder.Rung, b: ladder.Rung) -> set[str]:
    ignored = {"number", "change", "same_model_as"}
    return {field.name for field in dataclasses.fields(a)
            if field.name not in ignored and getattr(a, field.name) != getattr(b, field.name)}


def test_each_rung_changes_one_thing_from_the_one_below():
    rungs = ladder.rungs(config.get_profile("cpu"))
    assert [rung.number for rung in rungs] == [0, 1, 2, 3, 4]
    capstone = rungs[0]
    assert capstone.pixel_scale == pytest.approx(1 / 255) and capstone.unfreeze == "layers"
    assert capstone.augmentations == ("flip", "rotation", "zoom") and capstone.threshold == ladder.ARGMAX
    assert _differences(rungs[1], rungs[0]) == {"pixel_scale"}
    assert _differences(rungs[2], rungs[1]) == {"unfreeze"}
    assert _differences(rungs[3], rungs[2]) == {"threshold"} and rungs[3].same_model_as == 2


def test_the_last_rung_is_the_profile_as_it_is():
    profile = config.get_profile("cpu")
    ours = ladder.rungs(profile)[-1]
    assert ours.pixel_scale == 1 and ours.augmentations == profile.augmentations
    assert ours.stage1_lr == profile.stage1_lr and ours.unfreeze == "profile" and ours.threshold == ladder.VALIDATION


def test_the_capstones_thirty_layers_reach_into_three_blocks_of_lite0():
    model = classifier.build_classifier("efficientnet_lite0", image_size=64, weights=None)
    assert ladder.blocks_reached(model) == 3
    assert classifier.top_layers_cut(model, ladder.CAPSTONE_LAYERS)["blocks cut in half"] == ["block6c"]


def _fake_result(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(30, int), np.ones(30, int)]
    rungs = []
    for number, strength in enumerate((0.0, 0.5, 1.0, 1.0, 2.0)):
        scores = 1 / (1 + np.exp(-(rng.normal(size=60) + strength * (labels - 0.5))))
        threshold = 0.5 if number < 3 else float(metrics.balanced_threshold(labels, scores))
        rungs.append({"rung": number, "change": f"change {number}", "threshold": threshold, "trained": number != 3,
                      "seconds": {"total": 1.0}, "test": ladder.rung_metrics(labels, scores, threshold),
                      "test_scores": scores.tolist()})
    return {"data": "fake-set", "profile": "smoke", "test_counts": {"real": 30, "fake": 30},
            "test_labels": labels.tolist(), "rungs": rungs}


def test_steps_give_paired_differences_that_hold_their_point_estimate():
    result = _fake_result()
    found = ladder.steps(result["test_labels"], result["rungs"])
    assert [(step["from"], step["to"]) for step in found] == [(0, 1), (1, 2), (2, 3), (3, 4), (1, 4), (0, 4)]
    for step in found:
        for name in ("roc_auc", "balanced_accuracy"):
            low, high = step[name]["ci95"]
            assert low <= step[name]["difference"] <= high


def test_table_and_figure_draw_from_a_result():
    result = _fake_result()
    table = ladder.ladder_table(result)
    assert list(table.index) == [0, 1, 2, 3, 4] and table.loc[3, "training s"] == "(rung 2's model)"
    fig = ladder.ladder_figure([result, _fake_result(1)])
    assert len(fig.axes) == 2


@pytest.mark.parametrize("name", SHARED_SETS)
def test_the_committed_ladder_agrees_with_its_own_scores(name):
    """The committed cpu results: every number recomputed from the per-image scores they store."""
    result = next((found for found in ladder.load_results() if found["data"] == name), None)
    assert result is not None, f"benchmarks/ladder/{name}.json is missing"
    assert result["profile"] == "cpu" and [rung["rung"] for rung in result["rungs"]] == [0, 1, 2, 3, 4]
    labels = np.asarray(result["test_labels"])
    for rung in result["rungs"]:
        scores = np.asarray(rung["test_scores"])
        assert scores.size == labels.size
        assert rung["test"]["roc_auc"]["value"] == pytest.approx(metrics.roc_auc(labels, scores), abs=1e-6)
        recall = metrics.threshold_statistics(rung["threshold"])["recall_fake"](labels, scores)
        assert rung["test"]["recall_fake"]["value"] == pytest.approx(recall, abs=1e-6)
        low, high = rung["test"]["roc_auc"]["ci95"]
        assert low <= rung["test"]["roc_auc"]["value"] <= high
    assert result["rungs"][0]["threshold"] == 0.5 and result["rungs"][3]["test_scores"] == result["rungs"][2]["test_scores"]


def test_steps_table_reads_each_change_by_its_interval():
    result = _fake_result()
    labels = np.asarray(result["test_labels"])
    rungs = result["rungs"]
    rungs[1]["test_scores"] = (labels * 0.9 + 0.05).tolist()  # perfect ranking: better than rung 0
    rungs[2]["test_scores"] = (0.5 + 0.01 * np.arange(labels.size) % 0.3).tolist()  # ranking unrelated to labels
    rungs[3]["test_scores"] = rungs[2]["test_scores"]
    table = ladder.steps_table(result)
    assert table["roc_auc reading"].tolist()[:3] == ["helped", "hurt", "no clear difference"]
    assert table["Δ roc_auc"].iloc[2].startswith("+0.000")
