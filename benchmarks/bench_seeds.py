"""Train chosen rungs of lesson 04's ladder with several seeds: how far a second training run moves the numbers.

    python benchmarks/bench_seeds.py --data ROOT [--data ROOT2 ...] [--rungs 1 4] [--seeds 42 43 44]
    python benchmarks/bench_seeds.py --data ROOT --profile smoke --out DIR      # a quick check

The ladder's intervals are over test images: they say how much another test set would move a
number, not how much another training run of the same recipe would. Here each chosen rung is
trained once per seed (`helpers.ladder.train_and_score`: the data and its split unchanged, every
random draw of training from the seed), on the profile's subset of each data root, and scored on the
validation and test splits. Each run is added to <out>/<data folder>.json (default:
benchmarks/ladder/seeds/, committed), written whole after every run, with its test ROC-AUC, the
rung's threshold and the one chosen on validation, the per-image test scores and the seconds, and a
summary of the spread across seeds (`helpers.ladder.seed_summary`). A (rung, seed) already in the
file is skipped, so running the same command again resumes where an interrupted one stopped. The
models are trained in a temporary folder and not kept, unless --models names a folder for them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_model import machine_info  # same folder

from helpers import backbones, config, data, files, ladder, train

DEFAULT_RUNGS = (1, 4)
DEFAULT_SEEDS = (config.SEED, config.SEED + 1, config.SEED + 2)  # the first is the committed ladder's


class ResultMismatch(ValueError):
    """The file to resume was made on other data, in another profile or with another backbone."""


def _header(root: Path, profile: config.Profile, backbone: str, test) -> dict:
    labels = test["label"].to_numpy()
    return {"data": root.name, "profile": profile.name, "image_size": profile.image_size, "backbone": backbone,
            "test_counts": {"real": int((labels == 0).sum()), "fake": int((labels == 1).sum())},
            **ladder.test_images(test)}


def _resumable(path: Path, header: dict) -> dict:
    """The result in `path` to add runs to (a new one if there is none), refused if made on other images."""
    if not path.is_file():
        return {**header, "runs": []}
    result = json.loads(path.read_text())
    for key in ("data", "profile", "image_size", "backbone", "test_labels", "test_relpaths"):
        if result.get(key) != header[key]:
            raise ResultMismatch(f"{path} was made with another {key.replace('_', ' ')} than this run: "
                                 "give another --out to start a new file.")
    return result


def run_seeds(root: Path, profile: config.Profile, rung_numbers, seeds, out: Path, models: Path | None = None,
              verbose: int | str = 0) -> dict:
    """Train and score every (rung, seed) not yet in <out>/<root name>.json, writing the file after each."""
    root = config.data_root(root)
    frames = data.load_frames(root, profile, verbose=verbose != 0)
    profile = train.fit_to_data(profile, frames)
    backbone, _ = backbones.resolve_backbone(config.backbone_name())
    path = out / f"{root.name}.json"
    result = _resumable(path, _header(root, profile, backbone, frames["test"]))
    by_number = {rung.number: rung for rung in ladder.rungs(profile)}
    val_labels, test_labels = frames["validation"]["label"].to_numpy(), frames["test"]["label"].to_numpy()
    command = ["python", "benchmarks/bench_seeds.py", "--data", root.name, "--profile", profile.name,
               "--rungs", *map(str, rung_numbers), "--seeds", *map(str, seeds)]
    for number in rung_numbers:
        for seed in seeds:
            if any(run["rung"] == number and run["seed"] == seed for run in result["runs"]):
                print(f"{root.name}: rung {number}, seed {seed}: already in {path}, skipped")
                continue
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            with tempfile.TemporaryDirectory(prefix="seeds-") as scratch:
                folder = (models / root.name if models else Path(scratch)) / f"rung{number}-seed{seed}"
                trained = ladder.train_and_score(by_number[number], frames, profile, backbone, folder, verbose, seed)
            run = {**ladder.seed_run(by_number[number], trained, val_labels, test_labels, seed),
                   "load_average_1min_before": load}
            result["runs"] = sorted([*result["runs"], run], key=lambda found: (found["rung"], found["seed"]))
            result.update(summary=ladder.seed_summary(result["runs"]), command=" ".join(command),
                          machine={key: value for key, value in machine_info().items() if key != "host"})
            files.write_text(path, json.dumps(result, indent=1) + "\n")
            print(f"{root.name}: rung {number}, seed {seed}: test ROC-AUC {run['test_roc_auc']:.3f}, validation "
                  f"threshold {run['validation_threshold']:.3f}, {run['seconds']['total']:.0f} s; wrote {path}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="a data root; repeat for several")
    parser.add_argument("--profile", default="cpu", help="smoke, cpu or full (default: cpu)")
    parser.add_argument("--rungs", type=int, nargs="+", default=list(DEFAULT_RUNGS),
                        help=f"the rungs to train (default: {' '.join(map(str, DEFAULT_RUNGS))})")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                        help=f"the seeds (default: {' '.join(map(str, DEFAULT_SEEDS))})")
    parser.add_argument("--out", type=Path, default=ladder.SEEDS_DIR, help="folder for the JSON files")
    parser.add_argument("--models", type=Path, help="keep the models here (default: a temporary folder)")
    args = parser.parse_args(argv)
    profile = config.get_profile(args.profile)
    trainable = [rung.number for rung in ladder.rungs(profile) if rung.same_model_as is None]
    for number in args.rungs:
        if number not in trainable:
            parser.error(f"rung {number} trains no model of its own; choose from {trainable} (every run records "
                         "the threshold chosen on validation)")
    if len(set(args.seeds)) != len(args.seeds) or len(set(args.rungs)) != len(args.rungs):
        parser.error("give each rung and each seed once")
    for root in args.data:
        started = time.perf_counter()
        try:
            result = run_seeds(root, profile, args.rungs, args.seeds, args.out, args.models)
        except ResultMismatch as err:
            parser.error(str(err))
        print(f"{result['data']}: {time.perf_counter() - started:.0f} s")
        print(ladder.seed_table(result).to_string())
        print(ladder.seed_steps(result).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
