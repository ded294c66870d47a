"""Lesson 04's ladder: each rung changes one thing, and the committed results agree with their own scores."""
import dataclasses

import numpy as np
import pytest

import pandas as pd

from helpers import config, data, ladder, metrics
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
    # The stored intervals are today's bootstrap of the stored scores, draw for draw (by group, once groups are named).
    groups = result.get("test_groups")
    for rung in result["rungs"][:2]:
        interval = metrics.bootstrap_interval(labels, rung["test_scores"], metrics.roc_auc, groups=groups)
        assert rung["test"]["roc_auc"]["ci95"] == pytest.approx(list(interval), abs=1e-12)


@pytest.mark.parametrize("name", SHARED_SETS)
def test_the_committed_ladder_names_its_test_images(name, shared_data):
    """The relpaths stored next to the scores are the test split of the cpu profile, in the order scored."""
    result = next(found for found in ladder.load_results() if found["data"] == name)
    test = data.load_frames(shared_data / name, config.get_profile(result["profile"]), verbose=False)["test"]
    assert result["test_relpaths"] == test["relpath"].tolist()
    assert ladder.with_test_images(result, test.drop(columns="group", errors="ignore")) == result


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


def _test_frame(labels, groups=None) -> pd.DataFrame:
    frame = pd.DataFrame({"relpath": [f"{'rf'[label]}_{i:03d}.jpg" for i, label in enumerate(labels)],
                          "label": labels})
    return frame if groups is None else frame.assign(group=groups)


def test_with_test_images_adds_relpaths_only_to_the_split_it_was_scored_on():
    result = _fake_result()
    labels = result["test_labels"]
    named = ladder.with_test_images(result, _test_frame(labels))
    assert list(named)[list(named).index("test_labels") + 1] == "test_relpaths"  # next to the labels
    assert named["test_relpaths"][0] == "r_000.jpg" and named["rungs"] == result["rungs"] and "test_groups" not in named
    assert ladder.with_test_images(named, _test_frame(labels)) == named  # a second time changes nothing
    with pytest.raises(ValueError, match="holds 59 images and the result 60"):
        ladder.with_test_images(result, _test_frame(labels[:-1]))
    with pytest.raises(ValueError, match="first at place 0"):
        ladder.with_test_images(result, _test_frame(labels[::-1]))
    renamed = _test_frame(labels).assign(relpath=lambda frame: "other/" + frame["relpath"])
    with pytest.raises(ValueError, match="other test images"):
        ladder.with_test_images(named, renamed)


def test_named_groups_recompute_every_stored_interval():
    result = _fake_result()
    labels = np.asarray(result["test_labels"])
    pairs = np.r_[np.arange(30), np.arange(30)]  # the i-th real and the i-th fake: one source video
    grouped = ladder.with_test_images(result, _test_frame(labels, pairs))
    assert grouped["test_groups"] == pairs.tolist()
    for before, after in zip(result["rungs"], grouped["rungs"]):
        assert after["test"]["roc_auc"]["value"] == before["test"]["roc_auc"]["value"]
        assert after["test"] == ladder.rung_metrics(labels, after["test_scores"], after["threshold"], pairs)
        assert after["test"]["roc_auc"]["ci95"] != before["test"]["roc_auc"]["ci95"]
    grouped_steps = ladder.steps(labels, grouped["rungs"], pairs)
    assert ladder.steps_table(grouped)["Δ roc_auc"].tolist() == [
        f"{step['roc_auc']['difference']:+.3f} [{step['roc_auc']['ci95'][0]:+.3f}, {step['roc_auc']['ci95'][1]:+.3f}]"
        for step in grouped_steps]
    assert grouped_steps != ladder.steps(labels, result["rungs"])
    with pytest.raises(ValueError, match="one group per test image"):
        ladder.with_groups(result, pairs[:-1].tolist())


def _seed_runs() -> dict:
    """Rungs 1 and 4 trained with three seeds each, on a made-up test set of 60 images."""
    rng = np.random.default_rng(7)
    labels = np.r_[np.zeros(30, int), np.ones(30, int)]
    val_labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    rungs = {rung.number: rung for rung in ladder.rungs(config.get_profile("cpu"))}
    runs = []
    for number, strength in ((1, 1.0), (4, 2.5)):
        for seed in (42, 43, 44):
            trained = {"val_scores": 1 / (1 + np.exp(-(rng.normal(size=40) + strength * (val_labels - 0.5)))),
                       "test_scores": 1 / (1 + np.exp(-(rng.normal(size=60) + strength * (labels - 0.5)))),
                       "seconds": {"stage1": 1.0, "total": 60.0 * number}, "epochs": {"stage1": 2, "stage2": 1}}
            runs.append(ladder.seed_run(rungs[number], trained, val_labels, labels, seed))
    return {"data": "fake-set", "test_labels": labels.tolist(), "runs": runs}


def test_a_seed_run_reads_its_rung_and_keeps_the_validation_choice():
    runs = _seed_runs()["runs"]
    assert [(run["rung"], run["seed"]) for run in runs] == [(1, 42), (1, 43), (1, 44), (4, 42), (4, 43), (4, 44)]
    assert all(run["threshold"] == 0.5 for run in runs[:3]), "rung 1 decides at 0.5, as the capstone did"
    assert all(run["threshold"] == run["validation_threshold"] != 0.5 for run in runs[3:])
    assert len({run["validation_threshold"] for run in runs[:3]}) == 3, "every seed chooses its own"
    assert all(len(run["test_scores"]) == 60 and 0 <= run["test_roc_auc"] <= 1 for run in runs)


def test_seed_summary_and_tables_give_the_spread_across_seeds():
    result = _seed_runs()
    summary = ladder.seed_summary(result["runs"])
    aucs = [run["test_roc_auc"] for run in result["runs"][3:]]
    assert summary["4"]["seeds"] == [42, 43, 44] and summary["4"]["seconds"]["mean"] == 240.0
    assert summary["4"]["test_roc_auc"] == {"mean": pytest.approx(np.mean(aucs)), "sd": pytest.approx(np.std(aucs, ddof=1)),
                                            "min": min(aucs), "max": max(aucs)}
    assert ladder.seed_summary(result["runs"][:1])["1"]["test_roc_auc"]["sd"] is None  # one seed has no spread
    table = ladder.seed_table(result)
    assert list(table.index) == [1, 4] and table.loc[4, "seeds"] == 3 and table.loc[4, "training min (mean)"] == 4.0
    assert table.loc[4, "sd across seeds"] == round(np.std(aucs, ddof=1), 3)
    assert 0.01 < table.loc[4, "sd over test images"] < 0.15
    balanced = [run["test_balanced_accuracy"] for run in result["runs"][3:]]
    assert table.loc[4, "balanced accuracy min-max"] == f"{min(balanced):.3f}-{max(balanced):.3f}"
    grouped = ladder.seed_table({**result, "test_groups": np.r_[np.arange(30), np.arange(30)].tolist()})
    assert grouped.loc[4, "sd over test images"] != table.loc[4, "sd over test images"]
    steps = ladder.seed_steps(result)
    below = [run["test_roc_auc"] for run in result["runs"][:3]]
    assert list(steps.index) == ["1 → 4"] and steps.loc["1 → 4", "pairings"] == 9
    assert steps.loc["1 → 4", "smallest"] == round(min(aucs) - max(below), 3)
    assert steps.loc["1 → 4", "Δ ROC-AUC, difference of means"] == round(np.mean(aucs) - np.mean(below), 3)


def test_the_capstones_cut_layer_by_layer_and_what_rung_2_changes():
    model = classifier.build_classifier("efficientnet_lite0", image_size=64, weights=None)
    flags = [layer.trainable for layer in model.layers]
    cut = ladder.capstone_cut(model)
    assert [layer.trainable for layer in model.layers] == flags, "the model's flags are put back"
    assert cut["in the top 30"].sum() == ladder.CAPSTONE_LAYERS and set(cut["block"]) == {"block6c", "block6d", "block7a", "top"}
    assert cut.loc[~cut["in the top 30"], "layer"].tolist() == ["block6c_expand_conv"]
    gained = cut[cut["trains in rung 2"] & ~cut["trains in rungs 0-1"]]
    lost = cut[~cut["trains in rung 2"] & cut["trains in rungs 0-1"]]
    assert gained["layer"].tolist() == ["block6c_expand_conv"]
    assert (lost["type"] == "BatchNormalization").all() and len(lost) == 10
    assert not cut.loc[~cut["weights"], ["trains in rungs 0-1", "trains in rung 2"]].any().any()
    sentences = ladder.describe_cut(cut)
    assert "leaving out 1 of its layers: block6c_expand_conv" in sentences
    assert "train block6c_expand_conv besides, and freeze 10 BatchNormalization layers" in sentences


def test_rung_zero_beside_what_the_capstone_reported():
    labels = np.r_[np.zeros(30, int), np.ones(30, int)]
    scores = np.random.default_rng(0).random(60)

    def result(rung0_scores) -> dict:
        return {"data": "fake-set", "backbone": "efficientnet_lite0", "profile": "smoke",
                "rungs": [{"test": ladder.rung_metrics(labels, rung0_scores, 0.5)}]}

    first, rung0 = ladder.rung_zero_sentences([result(np.full(60, 0.7))])  # every face "fake" at 0.5
    assert "accuracy 0.64, fake recall 0.42" in first
    assert "accuracy 0.50, fake recall 1.00, real recall 0.00" in rung0 and "It calls every test face fake." in rung0
    assert rung0.endswith("indistinguishable from chance: its interval holds 0.5.")
    assert "every test face" not in ladder.rung_zero_sentences([result(scores)])[1]


@pytest.mark.parametrize("interval, pairings, expected", [
    ((0.02, 0.10), None, "helped on these test images; retraining not measured (each rung was trained once)"),
    ((-0.01, 0.05), None, "no clear difference on these test images; retraining not measured"),
    ((0.02, 0.10), [0.01, 0.03, 0.05, 0.02], "helped, beyond both sources of noise"),
    ((-0.10, -0.02), [-0.01, -0.03], "hurt, beyond both sources of noise"),
    ((0.02, 0.10), [0.03, -0.01, 0.05, 0.02], "helped on these test images, but retraining alone moves it across 0"),
    ((0.02, 0.10), [-0.03, -0.01], "helped on these test images, but every pairing of seeds hurt"),
    ((-0.01, 0.05), [0.01, 0.02], "no clear difference on these test images, though every pairing of seeds helped"),
    ((-0.01, 0.05), [-0.01, 0.02], "no clear difference, on the test images or across training runs"),
])
def test_a_step_is_read_against_both_sources_of_noise(interval, pairings, expected):
    assert ladder.read_step(interval, pairings).startswith(expected)


def test_step_readings_pair_the_seeds_of_rungs_trained_several_times():
    result = {**_fake_result(), "test_relpaths": [f"img_{i}.jpg" for i in range(60)]}
    seeds = {**_seed_runs(), "profile": "smoke", "test_relpaths": result["test_relpaths"]}
    assert ladder.seeds_for(result, [seeds]) is seeds
    assert ladder.seeds_for(result, [{**seeds, "profile": "cpu"}]) is None
    assert ladder.seeds_for(result, [{**seeds, "test_relpaths": result["test_relpaths"][::-1]}]) is None
    found = ladder.result_steps(result)
    table = ladder.step_readings(result, seeds, found=found)
    assert list(table.index) == ["0 → 1", "1 → 2", "2 → 3", "3 → 4", "1 → 4", "0 → 4"]
    pairings = ladder.seed_pairings(seeds, 1, 4)
    aucs = {number: [run["test_roc_auc"] for run in seeds["runs"] if run["rung"] == number] for number in (1, 4)}
    assert pairings.size == 9 and pairings.min() == pytest.approx(min(aucs[4]) - max(aucs[1]))
    assert table.loc["1 → 4", "Δ over seed pairings"] == f"{pairings.min():+.3f} to {pairings.max():+.3f} (9)"
    step = next(step for step in found if (step["from"], step["to"]) == (1, 4))
    assert table.loc["1 → 4", "reading"] == ladder.read_step(step["roc_auc"]["ci95"], pairings)
    assert table.loc["0 → 1", "reading"].endswith("retraining not measured (rung 0 has one training run)")
    assert table.loc["2 → 3", "reading"].endswith("(rungs 2 and 3 have one training run each)")
    alone = ladder.step_readings(result)
    assert alone["reading"].str.endswith("(no seeds result for these test images)").all()
    assert alone["Δ roc_auc [paired 95%]"].tolist() == table["Δ roc_auc [paired 95%]"].tolist()
