"""The original project's recipe, reproduced, then fixed one change at a time (lesson 04's ladder).

    rung 0  the capstone: Rescaling(1/255) before the backbone, flip + rotation 0.1 + zoom 0.1,
            stage 2 on "the top 30 layers" (BatchNorm trainable), decision by argmax (0.5)
    rung 1  without the double rescaling
    rung 2  whole blocks unfrozen (those the 30 layers reach into), BatchNorm frozen
    rung 3  the threshold chosen on validation data (rung 2's model: no training)
    rung 4  our recipe: the profile as it is (learning rates, blocks, augmentation)

Every rung trains in the same profile on the same split, from the same seeds. `benchmarks/bench_capstone.py`
runs it and writes JSON that `ladder_figure` draws. Its intervals are over test images; how much a
second training run of the same recipe moves the numbers is the other noise, measured by training
some rungs with several seeds (`benchmarks/bench_seeds.py`, read by `seed_table` and `seed_steps`);
`step_readings` reads each step of the ladder against both.
Where the test images come in groups (the real and the fake of one source video), every interval
resamples whole groups (`metrics.bootstrap_interval`); each result keeps its test images' relpaths
so the groups can be named later (`with_test_images`, `with_groups`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import backbones, config, data, files, metrics, train
from helpers import classifier

CAPSTONE_LAYERS = 30  # the original project unfroze "the top 30 layers"
CAPSTONE_AUGMENTATIONS = ("flip", "rotation", "zoom")
CAPSTONE_STAGE1_LR = 1e-3  # Adam's default; its README gives none for stage 1
# What the original project's README reports on its own test split (EfficientNetB0, the Kaggle set), at 0.5.
CAPSTONE_REPORTED = {"accuracy": 0.64, "recall_fake": 0.42}
ARGMAX = "argmax (0.5)"
UNFREEZE_RULES = {  # what stage 2 trains, by the Rung.unfreeze code
    "layers": f"the top {CAPSTONE_LAYERS} layers, BatchNorm trainable",
    "cut blocks": f"the whole blocks the top {CAPSTONE_LAYERS} layers reach into, BatchNorm frozen",
    "profile": "the profile's top blocks, BatchNorm frozen",
}
VALIDATION = "chosen on validation (equal recalls)"
RESULTS_DIR = config.REPO_ROOT / "benchmarks" / "ladder"  # the committed cpu results, one JSON per data set
SEEDS_DIR = RESULTS_DIR / "seeds"  # the same recipes trained with several seeds, one JSON per data set


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: a recipe, and what it changes from the rung below."""

    number: int
    change: str
    pixel_scale: float
    augmentations: tuple[str, ...]
    stage1_lr: float
    unfreeze: str  # a key of UNFREEZE_RULES
    threshold: str  # ARGMAX or VALIDATION
    same_model_as: int | None = None  # a rung that only changes the threshold reuses a model

    def recipe(self, profile: config.Profile) -> dict:
        """The settings this rung trains with, JSON-ready."""
        return {"pixel_scale": "1/255" if self.pixel_scale != 1 else "1", "augmentations": list(self.augmentations),
                "stage1_lr": self.stage1_lr, "stage2_lr": profile.stage2_lr, "unfreeze": UNFREEZE_RULES[self.unfreeze],
                "threshold": self.threshold, "epochs": [profile.stage1_epochs, profile.stage2_epochs]}


def rungs(profile: config.Profile) -> list[Rung]:
    """The five rungs for a profile; only rung 4 depends on it."""
    capstone = Rung(0, "the capstone's recipe", 1 / 255, CAPSTONE_AUGMENTATIONS, CAPSTONE_STAGE1_LR,
                    "layers", ARGMAX)
    no_rescaling = dataclasses.replace(capstone, number=1, change="no double rescaling", pixel_scale=1.0)
    blocks = dataclasses.replace(no_rescaling, number=2, change="whole blocks, BatchNorm frozen",
                                 unfreeze="cut blocks")
    threshold = dataclasses.replace(blocks, number=3, change="threshold chosen on validation",
                                    threshold=VALIDATION, same_model_as=2)
    ours = Rung(4, f"our {profile.name} recipe", 1.0, profile.augmentations, profile.stage1_lr, "profile", VALIDATION)
    return [capstone, no_rescaling, blocks, threshold, ours]


def blocks_reached(model, n_layers: int = CAPSTONE_LAYERS) -> int:
    """How many whole blocks the top `n_layers` layers reach into (the head convolution not counted)."""
    return len([block for block in classifier.top_layers_cut(model, n_layers)["blocks touched"] if block != "top"])


def capstone_cut(model, n_layers: int = CAPSTONE_LAYERS) -> pd.DataFrame:
    """Layer by layer, in the blocks the top `n_layers` layers reach into: what rungs 0-1 and rung 2 train.

    One row per layer of those blocks (and the head convolution), in the model's order: its type,
    whether it has weights, whether it is among the top `n_layers`, and whether it trains under the
    capstone's rule (`unfreeze_top_layers`: rungs 0 and 1) and under whole blocks with BatchNorm frozen
    (`unfreeze_top_blocks`: rung 2). The model's trainable flags are put back as they were.
    """
    before = [layer.trainable for layer in model.layers]
    try:
        top = set(classifier.unfreeze_top_layers(model, n_layers))
        by_layers = {layer.name: layer.trainable for layer in model.layers}
        classifier.unfreeze_top_blocks(model, blocks_reached(model, n_layers))
        by_blocks = {layer.name: layer.trainable for layer in model.layers}
    finally:
        for layer, trainable in zip(model.layers, before):
            layer.trainable = trainable
    blocks = classifier.top_layers_cut(model, n_layers)["blocks touched"]
    rows = [{"block": layer.name.split("_")[0], "layer": layer.name, "type": type(layer).__name__,
             "weights": bool(layer.weights), f"in the top {n_layers}": layer.name in top,
             "trains in rungs 0-1": by_layers[layer.name] and bool(layer.weights),
             "trains in rung 2": by_blocks[layer.name] and bool(layer.weights)}
            for layer in classifier.backbone_layers(model) if layer.name.split("_")[0] in blocks]
    return pd.DataFrame(rows)


def describe_cut(table: pd.DataFrame) -> str:
    """What `capstone_cut`'s table shows: where the top layers cut a block, and what rung 2 changes from rungs 0-1."""
    top = next(column for column in table.columns if column.startswith("in the top "))
    left_out = table[~table[top]]
    blocks = list(dict.fromkeys(table["block"]))
    gained = table.loc[table["trains in rung 2"] & ~table["trains in rungs 0-1"], "layer"].tolist()
    lost = table.loc[~table["trains in rung 2"] & table["trains in rungs 0-1"], "type"].value_counts()
    return (f"The {top.removeprefix('in the ')} layers reach into {', '.join(blocks)}. They end inside "
            f"{', '.join(dict.fromkeys(left_out['block']))}, leaving out {len(left_out)} of its layers: "
            f"{', '.join(left_out['layer'])}.\n"
            f"Whole blocks with BatchNorm frozen (rung 2) train {', '.join(gained) or 'nothing'} besides, and freeze "
            f"{' and '.join(f'{count} {kind}' for kind, count in lost.items()) or 'nothing'} layers "
            f"that the top layers train (rungs 0-1).")


def _unfreezer(rung: Rung, profile: config.Profile):
    if rung.unfreeze == "layers":
        return lambda model: classifier.unfreeze_top_layers(model, CAPSTONE_LAYERS)
    if rung.unfreeze == "cut blocks":
        return lambda model: classifier.unfreeze_top_blocks(model, blocks_reached(model))
    return lambda model: classifier.unfreeze_top_blocks(model, profile.unfreeze_blocks)


def train_rung(rung: Rung, frames: dict, profile: config.Profile, backbone: str, out_dir: Path,
               verbose: int | str = 0, seed: int = config.SEED) -> dict:
    """Train one rung's model (both stages) into `out_dir`; returns it with its timing and what stage 2 unfroze.

    `seed` sets every random draw of training (the head's initial weights, dropout, augmentation, the
    order of the batches); the data and its split stay the same.
    """
    recipe = dataclasses.replace(profile, augmentations=rung.augmentations, stage1_lr=rung.stage1_lr)
    config.set_seeds(seed)
    model = classifier.build_classifier(backbone, recipe.image_size, augmentations=recipe.augmentations,
                                      pixel_scale=rung.pixel_scale)
    started = time.perf_counter()
    stage1 = train.train_stage1(model, frames["train"], frames["validation"], recipe, out_dir, verbose=verbose,
                                seed=seed)
    stage1_seconds = time.perf_counter() - started
    stage2 = train.train_stage2(model, frames["train"], frames["validation"], recipe, out_dir,
                                unfreeze=_unfreezer(rung, profile), verbose=verbose, seed=seed)
    seconds = time.perf_counter() - started
    history = train.joined_history(stage1, stage2)
    train.save_trained(model, backbone, recipe, frames, history, out_dir, extra={"ladder_rung": rung.number})
    unfrozen = stage2.attrs["unfrozen_blocks"]
    return {"model": model, "seconds": {"stage1": round(stage1_seconds, 1), "total": round(seconds, 1)},
            "epochs": {"stage1": len(stage1), "stage2": len(stage2)},
            "unfrozen": unfrozen if rung.unfreeze != "layers" else f"{len(unfrozen)} layers: {unfrozen[-1]} ... {unfrozen[0]}",
            "trainable_weights": classifier.trainable_summary(model)["trainable"]}


def train_and_score(rung: Rung, frames: dict, profile: config.Profile, backbone: str, out_dir: Path,
                    verbose: int | str = 0, seed: int = config.SEED) -> dict:
    """`train_rung`, then p(fake) of every validation and test image ("val_scores", "test_scores"); no model kept."""
    trained = train_rung(rung, frames, profile, backbone, out_dir, verbose, seed)
    model = trained.pop("model")
    trained.update(val_scores=train.score_frame(model, frames["validation"], profile),
                   test_scores=train.score_frame(model, frames["test"], profile))
    return trained


def rung_threshold(rung: Rung, val_labels, val_scores) -> float:
    """The rung's decision threshold: 0.5, or the one chosen on validation (equal recalls)."""
    return 0.5 if rung.threshold == ARGMAX else metrics.balanced_threshold(val_labels, val_scores)


def test_images(test: pd.DataFrame) -> dict:
    """What a result keeps of its test split, in order: labels and relpaths, and groups when the frame has them."""
    found = {"test_labels": test["label"].astype(int).tolist(), "test_relpaths": test["relpath"].tolist()}
    groups = metrics.groups_of(test)
    if groups is not None:
        found["test_groups"] = [None if pd.isna(group) else group for group in groups]
    return found


def rung_metrics(labels, scores, threshold: float, groups=None) -> dict:
    """Test ROC-AUC, accuracy, balanced accuracy and both recalls, each with its 95% bootstrap interval.

    `groups` (one per test image) makes the intervals resample whole groups (`metrics.bootstrap_interval`).
    """
    statistics = {"roc_auc": metrics.roc_auc, **metrics.threshold_statistics(threshold)}
    intervals = metrics.confidence_intervals(labels, scores, threshold, groups=groups)
    return {name: {"value": statistic(np.asarray(labels), np.asarray(scores)), "ci95": intervals[name]}
            for name, statistic in statistics.items()}


def climb(root=None, profile: config.Profile | str | None = "cpu", out_dir=None, backbone: str | None = None,
          verbose: int | str = 0) -> dict:
    """Train and test every rung on one data root; JSON-ready results (the per-image test scores included)."""
    root, profile = config.data_root(root), config.get_profile(profile)
    out_dir = Path(out_dir or config.MODELS_DIR / f"ladder-{profile.name}-{root.name}")
    frames = data.load_frames(root, profile, verbose=verbose != 0)
    profile = train.fit_to_data(profile, frames)
    backbone, _ = backbones.resolve_backbone(config.backbone_name(backbone))
    labels, val_labels = frames["test"]["label"].to_numpy(), frames["validation"]["label"].to_numpy()
    images = test_images(frames["test"])
    results, models = [], {}
    for rung in rungs(profile):
        if rung.same_model_as is None:  # train it, and score validation and test once
            trained = train_and_score(rung, frames, profile, backbone, out_dir / f"rung{rung.number}", verbose)
            models[rung.number] = trained
            print(f"rung {rung.number} ({rung.change}): trained in {trained['seconds']['total']:.0f} s")
        trained = models[rung.number if rung.same_model_as is None else rung.same_model_as]
        val_scores, scores = trained["val_scores"], trained["test_scores"]
        threshold = rung_threshold(rung, val_labels, val_scores)
        results.append({
            "rung": rung.number, "change": rung.change, "recipe": rung.recipe(profile),
            "threshold": float(threshold), "validation_roc_auc": metrics.roc_auc(val_labels, val_scores),
            "test": rung_metrics(labels, scores, threshold, images.get("test_groups")),
            "trained": rung.same_model_as is None,
            **{key: trained[key] for key in ("seconds", "epochs", "unfrozen", "trainable_weights")},
            "test_scores": [float(value) for value in scores],
        })
    return {"data": root.name, "profile": profile.name, "image_size": profile.image_size, "backbone": backbone,
            "test_counts": {"real": int((labels == 0).sum()), "fake": int((labels == 1).sum())},
            **images, "rungs": results}


def with_test_images(result: dict, test: pd.DataFrame) -> dict:
    """`result` (a ladder or seeds JSON) with its test images' relpaths, and groups if `test` names them.

    `test` is the test split the result was scored on, in the same order: for the committed ladder,
    `data.load_frames(root, profile)["test"]` of the result's own profile. Refused (ValueError) unless
    it holds as many images as the result and the same label at every place; relpaths the result
    already records must match too. With groups, the stored intervals are recomputed (`with_groups`).
    """
    found = test_images(test)
    stored = result["test_labels"]
    if len(found["test_labels"]) != len(stored):
        raise ValueError(f"The test split holds {len(found['test_labels'])} images and the result "
                         f"{len(stored)}: not the split it was scored on.")
    if found["test_labels"] != list(stored):
        place = next(i for i, (a, b) in enumerate(zip(found["test_labels"], stored)) if a != b)
        raise ValueError(f"The test split's labels differ from the result's (first at place {place}, "
                         f"{found['test_relpaths'][place]}): not the split it was scored on, or not in its order.")
    if result.get("test_relpaths", found["test_relpaths"]) != found["test_relpaths"]:
        raise ValueError("The result already names other test images than this split.")
    updated = _next_to_labels(result, {"test_relpaths": found["test_relpaths"]})
    return with_groups(updated, found["test_groups"]) if "test_groups" in found else updated


def _next_to_labels(result: dict, extra: dict) -> dict:
    """`result` with the keys of `extra` set, placed right after "test_labels" (the JSON reads in that order)."""
    updated = {}
    for key, value in result.items():
        if key not in extra:
            updated[key] = value
        if key == "test_labels":
            updated.update(extra)
    return updated


def with_groups(result: dict, groups: list) -> dict:
    """`result` with "test_groups" and every stored interval recomputed to resample those groups.

    A ladder result's rungs get new `rung_metrics`; a seeds result needs nothing recomputed, as its
    tables compute their intervals from the scores and "test_groups".
    """
    if len(groups) != len(result["test_labels"]):
        raise ValueError(f"Need one group per test image: got {len(groups)} for {len(result['test_labels'])}.")
    updated = _next_to_labels(result, {"test_groups": list(groups)})
    if "rungs" in result:
        updated["rungs"] = [{**rung, "test": rung_metrics(result["test_labels"], rung["test_scores"],
                                                          rung["threshold"], groups)} for rung in result["rungs"]]
    return updated


def _statistic(name: str, threshold: float):
    return metrics.roc_auc if name == "roc_auc" else metrics.threshold_statistics(threshold)[name]


def steps(labels, results: list[dict], groups=None) -> list[dict]:
    """What each change did on the test set: the paired difference to the rung below, with its interval.

    Two more rows sum up: rung 1 to the last (every fix after the rescaling) and rung 0 to the last
    (all of them). Computed from the per-image test scores, so the JSON needs nothing else; `groups`
    (one per test image) resamples whole groups.
    """
    labels = np.asarray(labels)
    pairs = [(below, above, above["change"]) for below, above in zip(results, results[1:])]
    pairs += [(results[1], results[-1], "every fix after the rescaling"), (results[0], results[-1], "all of it")]
    found = []
    for below, above, change in pairs:
        row = {"from": below["rung"], "to": above["rung"], "change": change}
        scores_above, scores_below = np.asarray(above["test_scores"]), np.asarray(below["test_scores"])
        for name in ("roc_auc", "balanced_accuracy"):
            read_above, read_below = _statistic(name, above["threshold"]), _statistic(name, below["threshold"])
            interval = metrics.paired_difference_interval(labels, scores_above, scores_below, read_above, read_below,
                                                          groups=groups)
            row[name] = {"difference": read_above(labels, scores_above) - read_below(labels, scores_below),
                         "ci95": list(interval)}
        found.append(row)
    return found



def load_results(folder=RESULTS_DIR) -> list[dict]:
    """Every ladder result in `folder` (benchmarks/ladder by default), sorted by data set."""
    return files.read_results(folder, "python benchmarks/bench_capstone.py")


def ladder_table(result: dict) -> pd.DataFrame:
    """One row per rung: the change, then each test metric as 'value [low, high]'."""
    rows = {}
    for rung in result["rungs"]:
        row = {"change": rung["change"], "threshold": round(rung["threshold"], 3)}
        for name, found in rung["test"].items():
            low, high = found["ci95"] or (np.nan, np.nan)
            row[name] = f"{found['value']:.3f} [{low:.3f}, {high:.3f}]"
        row["training s"] = rung["seconds"]["total"] if rung["trained"] else "(rung 2's model)"
        rows[rung["rung"]] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("rung")


def rung_zero_sentences(results: list[dict]) -> list[str]:
    """What the capstone reported (`CAPSTONE_REPORTED`), then what its recipe gave as rung 0 on each data set."""
    reported = CAPSTONE_REPORTED
    lines = [f"The capstone (its README; EfficientNetB0 on its own data): test accuracy {reported['accuracy']:.2f}, "
             f"fake recall {reported['recall_fake']:.2f}, at 0.5."]
    for result in results:
        test = result["rungs"][0]["test"]
        recall_real, recall_fake = test["recall_real"]["value"], test["recall_fake"]["value"]
        one_label = (" It calls every test face fake." if (recall_real, recall_fake) == (0, 1)
                     else " It calls every test face real." if (recall_real, recall_fake) == (1, 0) else "")
        auc, (low, high) = test["roc_auc"]["value"], test["roc_auc"]["ci95"]
        lines.append(f"Rung 0 on {result['data']} ({result['backbone']}, {result['profile']} profile): test accuracy "
                     f"{test['accuracy']['value']:.2f}, fake recall {recall_fake:.2f}, real recall {recall_real:.2f}, "
                     f"at 0.5.{one_label} ROC-AUC {auc:.3f} [{low:.3f}, {high:.3f}]: "
                     f"{metrics.read_roc_auc(auc, low, high)}.")
    return lines


def ladder_figure(results: list[dict]):
    """Test ROC-AUC and balanced accuracy per rung with 95% intervals, one panel per data set."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.2), squeeze=False, sharey=True)
    for ax, result in zip(axes[0], results):
        numbers = [rung["rung"] for rung in result["rungs"]]
        for offset, (name, label) in zip((-0.12, 0.12), (("roc_auc", "ROC-AUC"), ("balanced_accuracy", "balanced accuracy"))):
            values = np.array([rung["test"][name]["value"] for rung in result["rungs"]])
            bounds = np.array([rung["test"][name]["ci95"] for rung in result["rungs"]], dtype=float)
            ax.errorbar(np.array(numbers) + offset, values, yerr=[values - bounds[:, 0], bounds[:, 1] - values],
                        fmt="o-", capsize=4, label=label)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xticks(numbers, [f"{rung['rung']}\n{rung['change']}".replace(", ", ",\n") for rung in result["rungs"]],
                      fontsize=7.5)
        ax.set_title(f"{result['data']} ({result['profile']}, {result['test_counts']['real']} real + "
                     f"{result['test_counts']['fake']} fake test images)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("on the test split (95% bootstrap interval)")
    axes[0][0].legend(loc="lower right")
    fig.tight_layout()
    return fig


def result_steps(result: dict) -> list[dict]:
    """`steps` of a ladder result: by group where it names its test images' groups."""
    return steps(result["test_labels"], result["rungs"], result.get("test_groups"))


def steps_table(result: dict, found: list[dict] | None = None) -> pd.DataFrame:
    """One row per change: its paired difference in test ROC-AUC and balanced accuracy, and a reading.

    The reading comes from the 95% interval alone: "helped" or "hurt" when it excludes 0, else
    "no clear difference" on this test set. `found`: the result's `result_steps`, if already computed.
    """
    rows = {}
    for step in found or result_steps(result):
        row = {"change": step["change"]}
        for name in ("roc_auc", "balanced_accuracy"):
            low, high = step[name]["ci95"]
            row[f"Δ {name}"] = f"{step[name]['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"
            row[f"{name} reading"] = "helped" if low > 0 else "hurt" if high < 0 else "no clear difference"
        rows[f"{step['from']} → {step['to']}"] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("rungs")


# ----------------------------------------------------------------------------- the noise of training itself


def seed_run(rung: Rung, trained: dict, val_labels, test_labels, seed: int) -> dict:
    """One (rung, seed) of the seeds benchmark, JSON-ready, from `train_and_score`'s output.

    "threshold" follows the rung's rule (0.5 for the capstone's rungs); "validation_threshold" is the
    one chosen on validation for every rung, the number whose spread across seeds is worth knowing.
    """
    val_labels, test_labels = np.asarray(val_labels), np.asarray(test_labels)
    val_scores, scores = np.asarray(trained["val_scores"]), np.asarray(trained["test_scores"])
    threshold = rung_threshold(rung, val_labels, val_scores)
    return {"rung": rung.number, "change": rung.change, "seed": int(seed), "threshold": float(threshold),
            "validation_threshold": metrics.balanced_threshold(val_labels, val_scores),
            "validation_roc_auc": metrics.roc_auc(val_labels, val_scores),
            "test_roc_auc": metrics.roc_auc(test_labels, scores),
            "test_balanced_accuracy": metrics.threshold_statistics(threshold)["balanced_accuracy"](test_labels, scores),
            "seconds": trained["seconds"], "epochs": trained["epochs"],
            "test_scores": [float(value) for value in scores]}


SPREAD_OF = ("test_roc_auc", "validation_threshold", "threshold", "test_balanced_accuracy")


def _spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if values.size > 1 else None,
            "min": float(values.min()), "max": float(values.max())}


def seed_summary(runs: list[dict]) -> dict:
    """Per rung: the seeds run, and the mean, sd (n - 1), min and max across them of each number in SPREAD_OF
    and of the training seconds."""
    summary = {}
    for number in sorted({run["rung"] for run in runs}):
        chosen = [run for run in runs if run["rung"] == number]
        summary[str(number)] = {"seeds": [run["seed"] for run in chosen],
                                **{name: _spread([run[name] for run in chosen]) for name in SPREAD_OF},
                                "seconds": _spread([run["seconds"]["total"] for run in chosen])}
    return summary


def load_seeds(folder=SEEDS_DIR) -> list[dict]:
    """Every seeds result in `folder` (benchmarks/ladder/seeds by default), sorted by data set."""
    return files.read_results(folder, "python benchmarks/bench_seeds.py")


def seed_table(result: dict) -> pd.DataFrame:
    """One row per rung of a seeds result: how far retraining the same recipe moves it, next to the test-image noise.

    Both kinds of noise as standard deviations of test ROC-AUC: across the seeds (training runs), and
    over resampled test images (the 95% bootstrap interval's width / 3.92, the mean over the seeds;
    by group where the result names them). Then the range across seeds of ROC-AUC, of the threshold
    chosen on validation, and of test balanced accuracy at the rung's threshold; and the training time.
    """
    labels, groups = np.asarray(result["test_labels"]), result.get("test_groups")
    rows = {}
    for number, spread in seed_summary(result["runs"]).items():
        runs = [run for run in result["runs"] if run["rung"] == int(number)]
        widths = [np.subtract(*metrics.bootstrap_interval(labels, run["test_scores"], metrics.roc_auc,
                                                          groups=groups)[::-1]) for run in runs]
        auc, chosen = spread["test_roc_auc"], spread["validation_threshold"]
        balanced = spread["test_balanced_accuracy"]
        rows[int(number)] = {
            "change": runs[0]["change"], "seeds": len(runs),
            "test ROC-AUC mean": round(auc["mean"], 3),
            "sd across seeds": round(auc["sd"], 3) if auc["sd"] is not None else np.nan,
            "sd over test images": round(float(np.mean(widths)) / 3.92, 3),
            "ROC-AUC min-max": f"{auc['min']:.3f}-{auc['max']:.3f}",
            "validation threshold min-max": f"{chosen['min']:.3f}-{chosen['max']:.3f}",
            "balanced accuracy min-max": f"{balanced['min']:.3f}-{balanced['max']:.3f}",
            "training min (mean)": round(spread["seconds"]["mean"] / 60, 1)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("rung")


def seed_steps(result: dict) -> pd.DataFrame:
    """From each rung of a seeds result to the next: the change in test ROC-AUC over every pairing of their seeds.

    "difference of means" with its standard error across training runs (sqrt(sd_a^2/n_a + sd_b^2/n_b)),
    and the smallest and largest difference over all pairings: a step whose every pairing has the
    same sign held up against retraining.
    """
    by_rung = {}
    for run in result["runs"]:
        by_rung.setdefault(run["rung"], []).append(run["test_roc_auc"])
    numbers, rows = sorted(by_rung), {}
    for below, above in zip(numbers, numbers[1:]):
        a, b = np.asarray(by_rung[above]), np.asarray(by_rung[below])
        pairings = np.subtract.outer(a, b).ravel()
        error = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size) if min(a.size, b.size) > 1 else np.nan
        rows[f"{below} → {above}"] = {"pairings": pairings.size,
                                      "Δ ROC-AUC, difference of means": round(a.mean() - b.mean(), 3),
                                      "its sd across seeds": round(float(error), 3),
                                      "smallest": round(pairings.min(), 3), "largest": round(pairings.max(), 3)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("rungs")


def seeds_for(result: dict, seeds: list[dict]) -> dict | None:
    """The seeds result scored on the same test images as a ladder result (same data, profile and relpaths), or None."""
    return next((found for found in seeds
                 if (found["data"], found["profile"]) == (result["data"], result["profile"])
                 and found.get("test_relpaths") == result.get("test_relpaths")), None)


def seed_pairings(seeds: dict, below: int, above: int, metric: str = "roc_auc") -> np.ndarray | None:
    """The test `metric` of rung `above` minus rung `below`, for every pairing of their seeds; None unless both
    rungs were trained with at least two seeds."""
    by_rung = {number: [run[f"test_{metric}"] for run in seeds["runs"] if run["rung"] == number]
               for number in (below, above)}
    if min(len(values) for values in by_rung.values()) < 2:
        return None
    return np.subtract.outer(np.asarray(by_rung[above]), np.asarray(by_rung[below])).ravel()


def read_step(interval, pairings=None, unmeasured: str = "each rung was trained once") -> str:
    """What one step of the ladder shows against both sources of noise, in words.

    `interval`: the step's paired 95% interval over test images (`steps`). `pairings`: the step's
    difference for every pairing of a seed of the upper rung with a seed of the lower (`seed_pairings`),
    or None where the two rungs were not trained with several seeds (`unmeasured` says why). A source
    of noise is excluded when the interval, or every pairing, lies on one side of 0; a step is clear
    only when both are, on the same side.
    """
    low, high = interval
    images = "helped" if low > 0 else "hurt" if high < 0 else None
    if pairings is None:
        found = f"{images} on these test images" if images else "no clear difference on these test images"
        return f"{found}; retraining not measured ({unmeasured})"
    pairings = np.asarray(pairings)
    runs = "helped" if pairings.min() > 0 else "hurt" if pairings.max() < 0 else None
    if images and runs == images:
        return f"{images}, beyond both sources of noise"
    if images is None and runs is None:
        return "no clear difference, on the test images or across training runs"
    on_images = f"{images} on these test images" if images else "no clear difference on these test images"
    across = f"every pairing of seeds {runs}" if runs else "retraining alone moves it across 0"
    return f"{on_images}, but {across}" if images else f"{on_images}, though {across}"


def step_readings(result: dict, seeds: dict | None = None, metric: str = "roc_auc",
                  found: list[dict] | None = None) -> pd.DataFrame:
    """Each step of a ladder result read against the test images and, where measured, the training runs.

    `seeds` is a seeds result on the same test images (`seeds_for`), or None. One row per step of
    `steps`: the change in the test `metric` with its paired 95% interval (by group where the result
    names groups), its range over every pairing of the two rungs' seeds where both were trained with
    several, and `read_step`'s reading. `found`: the result's `result_steps`, if already computed.
    """
    counts = pd.Series([run["rung"] for run in seeds["runs"]], dtype=int).value_counts() if seeds else None
    rows = {}
    for step in found or result_steps(result):
        change, (low, high) = step[metric], step[metric]["ci95"]
        pairings = seed_pairings(seeds, step["from"], step["to"], metric) if seeds else None
        once = [str(number) for number in (step["from"], step["to"])
                if counts is None or counts.get(number, 0) < 2]
        unmeasured = ("no seeds result for these test images" if seeds is None
                      else f"rung {once[0]} has one training run" if len(once) == 1
                      else f"rungs {' and '.join(once)} have one training run each")
        rows[f"{step['from']} → {step['to']}"] = {
            "change": step["change"],
            f"Δ {metric} [paired 95%]": f"{change['difference']:+.3f} [{low:+.3f}, {high:+.3f}]",
            "Δ over seed pairings": (f"{pairings.min():+.3f} to {pairings.max():+.3f} ({pairings.size})"
                                     if pairings is not None else "not measured"),
            "reading": read_step((low, high), pairings, unmeasured)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("rungs")
