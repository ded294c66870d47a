"""Climb lesson 04's ladder: the capstone's recipe, then one fix at a time (helpers.ladder).

    python benchmarks/bench_capstone.py --data ROOT [--data ROOT2 ...]           # cpu profile: the committed results
    python benchmarks/bench_capstone.py --data ROOT --profile smoke --out DIR    # a quick rerun
    python benchmarks/bench_capstone.py --data ROOT --attach-relpaths            # name the test images of a result

Writes <out>/<data folder>.json (default: benchmarks/ladder/, which is committed) with the command,
the versions and the machine, and draws figures/04_capstone_ladder.png from every JSON there.

`--attach-relpaths` trains nothing: it adds to the existing <out>/<data folder>.json the relpath of
each test image (and its group, where the data names groups, recomputing the intervals), taken from
ROOT's test split in the result's own profile, after checking that the split holds as many images
with the same labels in the same order as the result was scored on.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench_model import machine_info  # same folder

from helpers import config, data, files, ladder, plots


def attach_relpaths(root: Path, path: Path) -> bool:
    """Add the test images' relpaths (and groups) to the result in `path`; False when it already had them."""
    result = json.loads(path.read_text())
    test = data.load_frames(root, config.get_profile(result["profile"]), verbose=False)["test"]
    updated = ladder.with_test_images(result, test)
    if updated == result:
        return False
    files.write_text(path, json.dumps(updated, indent=1) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a data root; repeat for several")
    parser.add_argument("--profile", default="cpu", help="smoke, cpu or full (default: cpu)")
    parser.add_argument("--out", type=Path, default=ladder.RESULTS_DIR, help="folder for the JSON files")
    parser.add_argument("--models", type=Path, help="where the rungs' models go (default: models/ladder-...)")
    parser.add_argument("--attach-relpaths", action="store_true",
                        help="train nothing: add the test images' relpaths to the existing results in --out")
    args = parser.parse_args(argv)
    if args.attach_relpaths:
        for root in map(Path, args.data):
            path = args.out / f"{root.name}.json"
            if not path.is_file():
                parser.error(f"no result to attach relpaths to: {path}")
            print(f"{path}: " + ("added the test images' relpaths" if attach_relpaths(root, path)
                                 else "already names its test images"))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for root in args.data:
        started = time.perf_counter()
        models = args.models / Path(root).name if args.models else None
        result = ladder.climb(root, args.profile, models, verbose=0)
        result.update(command=" ".join(["python", "benchmarks/bench_capstone.py", "--data", Path(root).name,
                                        "--profile", args.profile]),
                      seconds=round(time.perf_counter() - started, 1),
                      machine={key: value for key, value in machine_info().items() if key != "host"})
        path = args.out / f"{Path(root).name}.json"
        files.write_text(path, json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
        print(ladder.ladder_table(result).to_string())
    fig = ladder.ladder_figure(ladder.load_results(args.out))
    name = "04_capstone_ladder" if args.out == ladder.RESULTS_DIR else f"04_capstone_ladder_{args.profile}"
    plots.save_figure(fig, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
