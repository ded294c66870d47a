"""Time the model layer on this machine: inference speed, and one stage-1 epoch with and without the feature cache.

    python benchmarks/bench_model.py --quick                      # under 2 minutes: a first look
    python benchmarks/bench_model.py --profile cpu --data ROOT    # the numbers worth quoting

Writes benchmarks/results/<name>.json (not tracked by git). See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from helpers import config, data, files, predict, train
from helpers import classifier
from helpers.detector import Detector

RESULTS_DIR = Path(__file__).resolve().parent / "results"
INFERENCE_SIZE = 224
INFERENCE_BACKBONE = "efficientnet_lite0"


def machine_info() -> dict:
    """What the numbers depend on: CPU, cores this process may use, load from other work, versions, GPUs."""
    import keras
    import tensorflow as tf

    cpu = platform.processor()
    if Path("/proc/cpuinfo").is_file():  # platform.processor() is often empty on Linux
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "host": socket.gethostname(), "platform": platform.platform(), "cpu": cpu,
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
    }


def write_result(result: dict, name: str, started: float) -> None:
    """Add the closing load and total time, then write benchmarks/results/<name>.json."""
    result["machine"]["load_average_1min_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    path = RESULTS_DIR / f"{name}.json"
    files.write_json(path, result)
    print(f"Wrote {path} ({result['total_seconds']} s)")


def images_per_second(call, images_per_call: int, repeats: int) -> float:
    """Throughput of `call` after one warm-up call (tracing and memory allocation are not steady state)."""
    call()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return round(images_per_call * repeats / (time.perf_counter() - started), 2)


def bench_inference(files: list[str], quick: bool) -> dict:
    """Lite0 detector at 224 px: Keras `predict` against the Detector's compiled call, at batch 1 and 32."""
    model = classifier.build_classifier(INFERENCE_BACKBONE, INFERENCE_SIZE, weights=None)  # speed only
    detector = Detector(model, {"image_size": INFERENCE_SIZE, "threshold": 0.5, "backbone": INFERENCE_BACKBONE})
    batch = np.random.default_rng(config.SEED).uniform(0, 255, (32, INFERENCE_SIZE, INFERENCE_SIZE, 3))
    batch = batch.astype(np.float32)
    repeats = {1: 10, 32: 2} if quick else {1: 50, 32: 10}
    result = {"backbone": INFERENCE_BACKBONE, "image_size": INFERENCE_SIZE}
    for size, count in repeats.items():
        images = batch[:size]
        result[f"keras_predict_batch{size}"] = images_per_second(
            lambda: model.predict(images, batch_size=size, verbose=0), size, count)
        result[f"detector_batch{size}"] = images_per_second(lambda: detector.p_fake(images, batch_size=size),
                                                            size, count)
    # From JPEG files to scores: decoding and resizing included, as `deepfake-lessons predict` runs.
    result["detector_files_batch32"] = images_per_second(
        lambda: predict.predict_files(detector, files, batch_size=32, progress=False), len(files), 1)
    result["files_timed"] = len(files)
    return result


def bench_stage1(root, profile: config.Profile) -> dict:
    """One stage-1 epoch on the profile's subset: on cached features (cold and warm) and on images."""
    frame, _ = data.load_split(root, profile, progress=False)
    train_frame = frame[frame["split"] == "train"].reset_index(drop=True)
    val_frame = frame[frame["split"] == "validation"].reset_index(drop=True)
    one_epoch = dataclasses.replace(profile, stage1_epochs=1)
    model = classifier.build_classifier(INFERENCE_BACKBONE, profile.image_size)
    result = {"profile": profile.name, "image_size": profile.image_size, "backbone": INFERENCE_BACKBONE,
              "train_images": len(train_frame), "validation_images": len(val_frame)}
    with tempfile.TemporaryDirectory() as scratch:
        config.CACHE_DIR = Path(scratch) / "cache"  # a cold feature cache, and the repository's left alone
        runs = {"feature_cache_cold_s": True, "feature_cache_warm_s": True, "images_no_cache_s": False}
        for key, use_cache in runs.items():
            started = time.perf_counter()
            train.train_stage1(model, train_frame, val_frame, one_epoch, Path(scratch) / key,
                               use_feature_cache=use_cache, verbose=0)
            result[key] = round(time.perf_counter() - started, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats and the smoke profile: under 2 minutes")
    parser.add_argument("--profile", help="profile for the stage-1 epoch (default: smoke with --quick, else cpu)")
    parser.add_argument("--data", help=f"data root (default: ${config.DATA_ENV} or data/)")
    parser.add_argument("--name", help="result file name (default: <host>-<quick|profile>)")
    args = parser.parse_args(argv)
    profile = config.get_profile(args.profile or ("smoke" if args.quick else "cpu"))
    name = args.name or f"{socket.gethostname()}-{'quick' if args.quick else profile.name}"

    config.set_seeds()
    started = time.perf_counter()
    result = {"name": name, "quick": args.quick, "machine": machine_info()}
    files = data.index_dataset(args.data)["path"].head(64 if args.quick else 320).tolist()
    result["inference_images_per_second"] = bench_inference(files, args.quick)
    print(f"inference (images/s): {result['inference_images_per_second']}")
    result["stage1_epoch"] = bench_stage1(args.data, profile)
    print(f"stage-1 epoch: {result['stage1_epoch']}")
    write_result(result, name, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
