"""Lesson 08's cross-dataset table, kept: each training mode on each data root, scored on every root's test split.

    python benchmarks/bench_generalisation.py --data ROOT_A --data ROOT_B [--modes real+fake real+sbi real+fake+sbi]
    python benchmarks/bench_generalisation.py --data ROOT_A --data ROOT_B --profile smoke --out DIR   # a quick check

For each data root and each mode (`helpers.train.train`: real+fake, real+sbi, real+fake+sbi), trains
a model in the profile, then scores it (`helpers.evaluate.evaluate`) on the test split of every root
given, and keeps every image's p(fake). Writes <out>/<training root>.json (default:
benchmarks/generalisation/, committed) after each model: per mode, the training seconds, the
threshold and the per-image test scores on each test set; per test set, its labels, relpaths and
groups (where the data names them) in the order scored. `helpers.generalisation.results_table`
reads them into the README's table, with bootstrap intervals.

Models go to <models>/<training root>-<mode> (default: models/generalisation-<profile>/). A mode
already scored on every root given is skipped; a model folder that already holds a finished model
trained on the same root in the same profile and mode is scored without training again; an
interrupted training resumes (helpers.train). So the same command, run again, picks up where it
stopped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from bench_model import machine_info  # same folder

from helpers import config, files, generalisation, ladder, saving, train
from helpers.evaluate import OverlapWarning, evaluate

DEFAULT_MODES = train.MODES


class ResultMismatch(ValueError):
    """A file or model folder to resume was made on other data or in another profile."""


def _model(root: Path, profile: config.Profile, mode: str, folder: Path) -> dict:
    """The sidecar of a model for (root, profile, mode) in `folder`: trained now, or the one already there."""
    if (folder / saving.SIDECAR_FILE).is_file():
        metadata = saving.read_metadata(folder)
        found = (metadata.get("data", {}).get("root"), metadata.get("profile"), metadata.get("mode"))
        if not found[0] or Path(found[0]).resolve() != root.resolve() or found[1:] != (profile.name, mode):
            raise ResultMismatch(f"{folder} holds a model trained on {found[0]} ({found[1]} profile, {found[2]}), "
                                 f"not {root} ({profile.name}, {mode}): give another --models folder.")
        print(f"{root.name}, {mode}: using the model already trained in {folder}")
        return metadata
    return train.train(root, profile, folder, mode=mode, verbose=0).metadata


def run_root(root: Path, roots: list[Path], profile: config.Profile, modes, out: Path, models: Path) -> dict:
    """Train and score every mode on `root` not yet scored on every one of `roots`; write after each model."""
    path = out / f"{root.name}.json"
    result = json.loads(path.read_text()) if path.is_file() else {"data": root.name, "profile": profile.name,
                                                                   "models": [], "test_sets": {}}
    if (result["data"], result["profile"]) != (root.name, profile.name):
        raise ResultMismatch(f"{path} holds results for {result['data']} in the {result['profile']} profile.")
    for mode in modes:
        done = next((model for model in result["models"] if model["mode"] == mode), None)
        if done and all(other.name in done["tested"] for other in roots):
            print(f"{root.name}, {mode}: already scored on {', '.join(other.name for other in roots)}, skipped")
            continue
        folder = models / f"{root.name}-{mode.replace('+', '-')}"
        metadata = _model(root, profile, mode, folder)
        started = time.perf_counter()
        tested = {}
        for other in roots:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OverlapWarning)  # test splits never overlap; evaluate checks it
                scored = evaluate(folder, other, "test", profile, progress=False)
            images = ladder.test_images(scored.scores)  # labels, relpaths and groups, in the order scored
            if result["test_sets"].setdefault(other.name, images) != images:
                raise ResultMismatch(f"{path} holds other test images of {other.name} than this run scored: "
                                     "give another --out to start a new file.")
            tested[other.name] = {"roc_auc": scored.metrics["roc_auc"],
                                  "test_scores": [float(value) for value in scored.scores["p_fake"]]}
        training = metadata.get("training", {})
        model = {"mode": mode, "backbone": metadata["backbone"], "image_size": metadata["image_size"],
                 "threshold": metadata["threshold"], "validation_roc_auc": metadata["validation"]["roc_auc"],
                 "training_seconds": training.get("total_seconds"), "epochs": training.get("epochs"),
                 "scoring_seconds": round(time.perf_counter() - started, 1), "tested": tested}
        result["models"] = [found for found in result["models"] if found["mode"] != mode] + [model]
        result["models"].sort(key=lambda found: DEFAULT_MODES.index(found["mode"]))
        result.update(command=f"python benchmarks/bench_generalisation.py --profile {profile.name} "
                              + " ".join(f"--data {other.name}" for other in roots),
                      machine={key: value for key, value in machine_info().items() if key != "host"})
        files.write_text(path, json.dumps(result, indent=1) + "\n")
        aucs = ", ".join(f"{name} {found['roc_auc']:.3f}" for name, found in tested.items())
        print(f"{root.name}, {mode}: trained in {(model['training_seconds'] or 0) / 60:.1f} min; test ROC-AUC {aucs}; "
              f"wrote {path}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="a data root: trained on, and every root's test split scored; repeat for several")
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), choices=DEFAULT_MODES,
                        help="the training modes (default: all three)")
    parser.add_argument("--profile", default="cpu", help="smoke, cpu or full (default: cpu)")
    parser.add_argument("--out", type=Path, default=generalisation.RESULTS_DIR, help="folder for the JSON files")
    parser.add_argument("--models", type=Path, help="folder for the models (default: models/generalisation-PROFILE)")
    args = parser.parse_args(argv)
    profile = config.get_profile(args.profile)
    roots = [config.data_root(root) for root in args.data]
    if len({root.name for root in roots}) != len(roots):
        parser.error("give data roots with different folder names: the results are named after them")
    models = args.models or config.MODELS_DIR / f"generalisation-{profile.name}"
    results = []
    for root in roots:
        try:
            results.append(run_root(root, roots, profile, args.modes, args.out, models))
        except ResultMismatch as err:
            parser.error(str(err))
    table = generalisation.results_table(results)
    print(generalisation.auc_matrix(table, intervals=True).to_string())
    print(generalisation.describe(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
