"""Lesson 03's probe on whole data sets: what the /255 bug costs a linear probe on frozen features.

    python benchmarks/bench_probe.py --data ROOT [--data ROOT2 ...] [--profile cpu]

For each data root, lesson 03's experiment in the given profile (default `cpu`): the detector is built
with its backbone frozen (ImageNet weights, the backbone `auto` resolves to here), and
`probe.scaling_experiment` fits the same logistic regression on the pooled features of the training
images twice, once from raw 0-255 pixels and once from pixels divided by 255 first (the original
project's bug), and scores each on the validation images. Writes <out>/<data folder>.json (default
benchmarks/probe/, committed), with both validation ROC-AUCs, the features' spread, the image counts,
the backbone, the command, versions, machine and seconds. Lesson 03 prints it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench_eda import code_version  # same folder
from bench_model import machine_info

from helpers import backbones, classifier, config, data, files, lesson_sets, probe, train

OUT_DIR = Path(__file__).parent / "probe"
KEYS = {"raw 0-255 pixels (correct)": "correct", "pixels / 255 first (the original bug)": "divided_by_255"}


def measure(root: Path, profile: config.Profile) -> dict:
    started = time.perf_counter()
    frames = data.load_frames(root, profile, verbose=False)
    profile = train.fit_to_data(profile, frames)
    backbone, _ = backbones.resolve_backbone(config.backbone_name())
    model = classifier.build_classifier(backbone, profile.image_size, augmentations=profile.augmentations)
    table = probe.scaling_experiment(model, frames["train"], frames["validation"], profile)
    result = {"data": root.name, "lesson_set": lesson_sets.identify(root), "profile": profile.name,
              "backbone": backbone, "image_size": profile.image_size,
              "images": {split: {"real": int((frame["label"] == 0).sum()), "fake": int((frame["label"] == 1).sum())}
                         for split, frame in frames.items() if split in ("train", "validation")}}
    for row, key in KEYS.items():
        result[key] = {"validation_roc_auc": round(float(table.loc[row, "validation ROC-AUC"]), 4),
                       "feature_spread": round(float(table.loc[row, "feature spread across images"]), 6)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="a data root; repeat for several")
    parser.add_argument("--profile", default="cpu", help="smoke, cpu or full (default: cpu)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the JSON files")
    args = parser.parse_args(argv)
    profile = config.get_profile(args.profile)
    args.out.mkdir(parents=True, exist_ok=True)
    for root in args.data:
        config.set_seeds()
        result = measure(config.data_root(root), profile)
        result.update(command=f"python benchmarks/bench_probe.py --data {result['data']} --profile {profile.name}",
                      code=code_version(),
                      machine={key: value for key, value in machine_info().items() if key != "host"})
        path = args.out / f"{result['data']}.json"
        files.write_text(path, json.dumps(result, indent=1) + "\n")
        print(f"{result['data']}: probe ROC-AUC {result['correct']['validation_roc_auc']:.3f} correct, "
              f"{result['divided_by_255']['validation_roc_auc']:.3f} with the bug ({result['seconds']} s); "
              f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
