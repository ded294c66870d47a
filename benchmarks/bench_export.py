"""Time the LiteRT export against Keras on this machine: raw inference, evaluation, quantization.

    python benchmarks/bench_export.py --data ../shared/data                          # speed (random head)
    python benchmarks/bench_export.py --data ../shared/data --model models/cpu-dfdc-faces  # + quantization AUCs

What it measures, in one process on one machine. Other work on the machine comes and goes, so the
methods compared are timed in turn, round after round, and each gets its best and median round; the
load average before and after is recorded too.

- inference: a Lite0 detector at 224 px (random weights: speed only) through Keras
  `predict`, the Detector's `tf.function`, and the LiteRT runner (one image per invocation, `run1`, or
  the input resized to the batch, `run32`), at batch 1 and 32.
- evaluate_dfdc_test: wall time of `helpers.evaluate` on dfdc-faces Test with each Detector runtime.
- quantization (with --model): size, speed, max |Δp(fake)| and test ROC-AUC of float32, dynamic-range
  and int8 exports against Keras, on dfdc-faces Test and the ffhq-stylegan2 test part.

Writes benchmarks/results/<name>.json (not tracked by git).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_model import machine_info, write_result
from helpers import config, data, evaluate, export, litert, metrics, saving
from helpers import classifier
from helpers.detector import Detector

BACKBONE = "efficientnet_lite0"
SIZE = 224


TRIALS = 5  # rounds: other work on the machine comes and goes, so every method runs once per round


def _timed(call) -> tuple[object, float]:
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def interleaved_rates(calls: dict[str, tuple], trials: int = TRIALS) -> dict[str, dict[str, float]]:
    """Images/s of each (call, images per call) in `calls`, timed in turn, round after round.

    Each method sees the same mix of background load; the best round approximates the quiet machine,
    the median what a user gets meanwhile. `per_cpu_second` divides by this process's CPU time instead
    of wall time, which other processes hardly change: times the cores it is the quiet-machine ceiling.
    """
    for call, _ in calls.values():
        call()  # warm-up: tracing, memory allocation, interpreter planning
    wall, cpu = ({name: [] for name in calls} for _ in range(2))
    for _ in range(trials):
        for name, (call, images) in calls.items():
            cpu_started = time.process_time()
            wall[name].append(images / _timed(call)[1])
            cpu[name].append(images / (time.process_time() - cpu_started))
    return {name: {"best": round(max(wall[name]), 1), "median": round(float(np.median(wall[name])), 1),
                   "per_cpu_second": round(float(np.median(cpu[name])), 1)} for name in calls}


def bench_inference(model) -> dict:
    """Images/s of Keras predict, the tf.function Detector and the LiteRT runner, at batch 1 and 32.

    LiteRT runs one image per invocation (`litert_run1`) or the input resized to the batch (`litert_run32`).
    """
    blob, convert_s = _timed(lambda: export.to_tflite(model))
    keras_detector = Detector(model, {"image_size": SIZE, "threshold": 0.5, "backbone": BACKBONE})
    run1, run32 = (litert.TFLiteRunner(blob, batch_size=n) for n in (1, 32))
    batch = np.random.default_rng(config.SEED).uniform(0, 255, (32, SIZE, SIZE, 3)).astype(np.float32)
    single = batch[:1]
    # Batch-1 calls are repeated 16 times, so that each timing covers as many images as one batch of 32.
    calls = {
        "keras_predict_batch1": (lambda: [model.predict(single, verbose=0) for _ in range(16)], 16),
        "tf_function_batch1": (lambda: [keras_detector.p_fake(single) for _ in range(16)], 16),
        "litert_batch1": (lambda: [run1(single) for _ in range(16)], 16),
        "keras_predict_batch32": (lambda: model.predict(batch, batch_size=32, verbose=0), 32),
        "tf_function_batch32": (lambda: keras_detector.p_fake(batch), 32),
        "litert_run1_batch32": (lambda: run1(batch), 32),
        "litert_run32_batch32": (lambda: run32(batch), 32),
    }
    return {"convert_s": round(convert_s, 2), "threads": os.cpu_count(), "images_per_second": interleaved_rates(calls)}


def _random_head_folder(directory: Path, root: Path) -> Path:
    """A 224 px Lite0 detector (ImageNet backbone, untrained head) saved as a model folder."""
    model = classifier.build_classifier(BACKBONE, SIZE)
    metadata = {"backbone": BACKBONE, "image_size": SIZE, "class_names": ["real", "fake"], "threshold": 0.5,
                "profile": "cpu", "data": {"root": str(root)}, "note": "untrained head: for timing only"}
    return saving.save_model(model, directory, metadata)


def bench_evaluate(model_dir: Path, root: Path) -> dict:
    """Wall time of helpers.evaluate on the test split with each runtime (decoding included)."""
    _, export_s = _timed(lambda: export.export_tflite(model_dir, verbose=False))
    result = {"export_s": round(export_s, 2), "data": str(root)}
    detectors = {runtime: Detector.load(model_dir, verbose=False, runtime=runtime)
                 for runtime in ("keras", "litert")}
    scores = {runtime: evaluate.evaluate(detector, root, "test", progress=False).scores["p_fake"].to_numpy()
              for runtime, detector in detectors.items()}
    calls = {f"{runtime}": (lambda detector=detector: evaluate.evaluate(detector, root, "test", progress=False),
                            len(scores[runtime])) for runtime, detector in detectors.items()}
    rates = interleaved_rates(calls, trials=3)
    result.update({"images": len(scores["keras"]), "images_per_second": rates,
                   "best_seconds": {runtime: round(len(scores[runtime]) / rate["best"], 2)
                                    for runtime, rate in rates.items()},
                   "max_abs_diff_p_fake": float(np.abs(scores["keras"] - scores["litert"]).max())})
    return result


def _test_images(root: Path, size: int):
    frame = data.index_dataset(root)
    frame = frame[frame["split"] == "test"].reset_index(drop=True)
    return data.load_images(frame, size).astype(np.float32), frame["label"].to_numpy()


def bench_quantization(model_dir: Path, data_root: Path) -> dict:
    """Speed, agreement and ROC-AUC of float32, dynamic-range and int8 exports of a trained model."""
    model, metadata = saving.load_model(model_dir, verbose=False)
    size = int(metadata["image_size"])
    train_root = metadata["data"]["root"]
    representative = export._images(train_root, "train", export.REPRESENTATIVE_PER_CLASS, size)[0]
    test_sets = {name: _test_images(data_root / name, size) for name in ("dfdc-faces", "ffhq-stylegan2")}
    keras_detector = Detector(model, metadata, runtime="keras")
    keras_scores = {name: keras_detector.p_fake(images) for name, (images, _) in test_sets.items()}
    result = {"model": str(model_dir), "trained_on": train_root,
              "test_images": {name: len(labels) for name, (_, labels) in test_sets.items()},
              "keras_auc": {name: round(metrics.summary(labels, keras_scores[name], 0.5)["roc_auc"], 4)
                            for name, (_, labels) in test_sets.items()}}
    runners = {}
    for quantize in (None, "dynamic", "int8"):
        blob, convert_s = _timed(lambda: export.to_tflite(model, quantize, representative))
        runners[quantize or "float32"] = runner = litert.TFLiteRunner(blob)
        entry = {"size_mb": round(len(blob) / 1e6, 2), "convert_s": round(convert_s, 2)}
        for name, (images, labels) in test_sets.items():
            scores = runner(images)[:, 1]
            auc = metrics.summary(labels, scores, 0.5)["roc_auc"]
            entry[name] = {"roc_auc": round(auc, 4), "auc_change": round(auc - result["keras_auc"][name], 4),
                           "max_abs_diff_p_fake": float(np.abs(scores - keras_scores[name]).max())}
        result[quantize or "float32"] = entry
    sample = representative[:32]
    speeds = interleaved_rates({name: (lambda runner=runner: runner(sample), len(sample))
                                for name, runner in runners.items()})
    for name, speed in speeds.items():
        result[name]["images_per_second"] = speed
        print(f"  {name}: {result[name]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=config.REPO_ROOT.parent / "shared" / "data",
                        help="folder holding dfdc-faces/ and ffhq-stylegan2/ (default: ../shared/data)")
    parser.add_argument("--model", type=Path, help="a trained model folder: also compare quantizations")
    parser.add_argument("--quick", action="store_true", help="raw inference only, no evaluation")
    parser.add_argument("--name", help="result file name (default: <host>-export[-quick])")
    args = parser.parse_args(argv)
    name = args.name or f"{socket.gethostname()}-export{'-quick' if args.quick else ''}"
    dfdc = args.data / "dfdc-faces"

    config.set_seeds()
    started = time.perf_counter()
    result = {"name": name, "runtime": litert.runtime_name(), "machine": machine_info()}
    model = classifier.build_classifier(BACKBONE, SIZE, weights=None)  # speed only
    result["inference"] = bench_inference(model)
    print(f"inference: {result['inference']}")
    if not args.quick:
        with tempfile.TemporaryDirectory() as scratch:
            folder = _random_head_folder(Path(scratch) / "model", dfdc)
            result["evaluate_dfdc_test"] = bench_evaluate(folder, dfdc)
        print(f"evaluate: {result['evaluate_dfdc_test']}")
    if args.model:
        result["quantization"] = bench_quantization(args.model, args.data)
    write_result(result, name, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
