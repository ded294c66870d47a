"""Time the data steps at the capstone's scale: a generated Kaggle-layout root of up to 190,335 images.

    python benchmarks/bench_scale.py --fraction 0.01                       # a first check: a few minutes
    python benchmarks/bench_scale.py --fraction 1.0 --work DIR --keep      # generate into DIR, keep it
    python benchmarks/bench_scale.py --fraction 1.0 --root DIR/root        # reuse a root generated before

The root has the Kaggle "Deepfake and real images" layout and size (Train/Validation/Test x Real/Fake,
140,002 / 39,428 / 10,905 images at --fraction 1.0, 256x256 JPEG). Every file is a varied copy of a
face from the shared sets (--faces: the folder holding dfdc-faces/ and ffhq-stylegan2/): its own crop,
rotation, mirror, brightness and JPEG quality, so no two files are the same. Reals are made from real
faces, fakes from fakes, each in the split its face came from.

Each step (index, scan, subset, lesson 01's EDA, the audit, the tf.data pipeline, ...) runs in a fresh
process, so its peak memory is its own. Writes benchmarks/scale/<fraction>.json (see benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "scale"
SEED = 42
SIDE = 256
# The Kaggle set's images per split and class at --fraction 1.0: 140,002 / 39,428 / 10,905 in all.
KAGGLE_COUNTS = {("train", "real"): 70001, ("train", "fake"): 70001,
                 ("validation", "real"): 19787, ("validation", "fake"): 19641,
                 ("test", "real"): 5413, ("test", "fake"): 5492}
SHARED_SETS = ("dfdc-faces", "ffhq-stylegan2")
EDA_PER_CLASS = 300  # lesson 01's sample for the mean faces, histograms and spectra
PIPELINE_BATCHES = {"decode": 30, "augment": 30, "model": 8}  # batches timed after the first one
STEPS = ("index", "scan", "scan_again", "subset", "lesson_data_smoke", "lesson_data_cpu", "lesson_data_full",
         "eda", "audit", "audit_again", "audit_duplicates", "audit_classifier", "pipeline_decode", "pipeline",
         "pipeline_model")


# ----------------------------------------------------------------------------- the generated root
def variant(face, index_seed: tuple[int, ...]) -> bytes:
    """One varied 256x256 JPEG of `face` (a PIL RGB image): crop, rotation, mirror, brightness, quality.

    One affine resampling does the crop, rotation, mirror and resize together; every parameter is drawn
    from a generator seeded by the file's own numbers, so a file is the same on every run.
    """
    from PIL import Image

    rng = np.random.default_rng(index_seed)
    width, height = face.size
    side = min(width, height)
    crop = side * rng.uniform(0.72, 0.90)  # the crop's side, in source pixels
    angle = math.radians(rng.uniform(-6, 6))
    reach = crop / 2 * (abs(math.cos(angle)) + abs(math.sin(angle)))  # half the rotated crop's extent
    centre_x = width / 2 + rng.uniform(-1, 1) * max(0.0, width / 2 - reach)
    centre_y = height / 2 + rng.uniform(-1, 1) * max(0.0, height / 2 - reach)
    scale = crop / SIDE
    mirror = -1 if rng.random() < 0.5 else 1
    a, b = scale * math.cos(angle) * mirror, -scale * math.sin(angle)
    d, e = scale * math.sin(angle) * mirror, scale * math.cos(angle)
    half = SIDE / 2
    image = face.transform((SIDE, SIDE), Image.Transform.AFFINE,
                           (a, b, centre_x - half * (a + b), d, e, centre_y - half * (d + e)),
                           resample=Image.Resampling.BILINEAR)
    gain = rng.uniform(0.85, 1.15)
    image = image.point([min(255, round(v * gain)) for v in range(256)] * 3)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(70, 96)))
    return buffer.getvalue()


def _write_variants(task: tuple) -> tuple[int, int]:
    """Decode one source face and write its variants; return (files, bytes)."""
    from helpers.images import load_image
    from PIL import Image

    source, folder, class_name, split_number, label, indices = task
    face = Image.fromarray(load_image(source))
    written = 0
    for index in indices:
        payload = variant(face, (SEED, split_number, label, index))
        (Path(folder) / f"{class_name}_{index}.jpg").write_bytes(payload)
        written += len(payload)
    return len(indices), written


def source_faces(faces: Path) -> dict[tuple[str, str], list[str]]:
    """The shared sets' files by (split, class): dfdc-faces as split, ffhq-stylegan2 by the flat 70/15/15 rule."""
    from helpers import data

    pools: dict[tuple[str, str], list[str]] = {}
    for name in SHARED_SETS:
        frame = data.index_dataset(faces / name)
        for (split, class_name), group in frame.groupby(["split", "class_name"]):
            pools.setdefault((split, class_name), []).extend(group["path"])
    return pools


def target_counts(fraction: float) -> dict[tuple[str, str], int]:
    return {key: max(1, round(count * fraction)) for key, count in KAGGLE_COUNTS.items()}


def generate(root: Path, faces: Path, fraction: float, workers: int) -> dict:
    """Write the root: file i of a split and class is a variant of source face i mod (that pool's size)."""
    from helpers import data

    pools = source_faces(faces)
    tasks = []
    for (split, class_name), count in target_counts(fraction).items():
        folder = root / split.title() / class_name.title()
        folder.mkdir(parents=True, exist_ok=True)
        pool = pools[(split, class_name)]
        for number, source in enumerate(pool):
            indices = list(range(number, count, len(pool)))
            if indices:
                tasks.append((source, str(folder), class_name, data.SPLITS.index(split),
                              data.CLASS_NAMES.index(class_name), indices))
    started = time.perf_counter()
    with Pool(workers) as pool:
        done = list(pool.imap_unordered(_write_variants, tasks, chunksize=4))
    seconds = time.perf_counter() - started
    files = sum(n for n, _ in done)
    return {"seconds": round(seconds, 1), "images_per_second": round(files / seconds, 1), "workers": workers,
            "images": files, "megabytes": round(sum(b for _, b in done) / 1e6, 1),
            "source_faces": sum(len(pool) for pool in pools.values())}


def check_root(root: Path, fraction: float) -> None:
    """Refuse a reused root whose counts do not match the fraction (a half-written or other one)."""
    for (split, class_name), count in target_counts(fraction).items():
        folder = root / split.title() / class_name.title()
        found = sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
        if found != count:
            raise SystemExit(f"{folder} holds {found} files, not the {count} of --fraction {fraction}: "
                             "generate a new root (--work) or pass the matching fraction.")


# ----------------------------------------------------------------------------- the steps (child processes)
def _peak_rss_mb() -> float:
    """This process's peak resident memory since it started (Linux: VmHWM; ru_maxrss would include
    the parent's memory at the fork)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load(state: Path, name: str):
    with open(state / f"{name}.pkl", "rb") as handle:
        return pickle.load(handle)


def _save(state: Path, name: str, value) -> None:
    with open(state / f"{name}.pkl", "wb") as handle:
        pickle.dump(value, handle)


def _scanned(state: Path):
    """The scan report the `scan` step saved, with its root and layout."""
    from helpers import data

    files = _load(state, "scan")
    files.attrs.update(_load(state, "attrs"))
    return data.ScanReport(files)


def _profile_frames(state: Path, name: str):
    from helpers import config, data, train

    report = _scanned(state)
    good = report.good
    good.attrs.update(report.files.attrs)
    profile = config.get_profile(name)
    frames = data.by_split(data.subset(good, profile))
    return train.fit_to_data(profile, frames), frames


def step_index(root: Path, state: Path) -> dict:
    from helpers import data

    started = time.perf_counter()
    frame = data.index_dataset(root)
    seconds = time.perf_counter() - started
    _save(state, "index", frame)
    _save(state, "attrs", dict(frame.attrs))
    return {"seconds": seconds, "files": len(frame)}


def _timed_scan(state: Path, save: bool) -> dict:
    from helpers import data

    frame = _load(state, "index")
    frame.attrs.update(_load(state, "attrs"))
    started = time.perf_counter()
    report = data.scan(frame, progress=False)
    seconds = time.perf_counter() - started
    if save:
        _save(state, "scan", report.files)
    return {"seconds": seconds, "files": len(report.files), "usable": len(report.good),
            "files_per_second": round(len(frame) / seconds, 1)}


def step_scan(root: Path, state: Path) -> dict:
    return _timed_scan(state, save=True)


def step_scan_again(root: Path, state: Path) -> dict:
    return _timed_scan(state, save=False)


def step_subset(root: Path, state: Path) -> dict:
    from helpers import config, data

    report = _scanned(state)
    good = report.good
    good.attrs.update(report.files.attrs)
    result, total = {}, 0.0
    for name, profile in config.PROFILES.items():
        started = time.perf_counter()
        rows = len(data.subset(good, profile))
        seconds = time.perf_counter() - started
        total += seconds
        result[name] = {"seconds": round(seconds, 3), "images": rows}
    return {"seconds": total, "profiles": result}


def _lesson_data(root: Path, name: str) -> dict:
    """What lessons 01-05 do first: index, scan, keep the usable images, take the profile's subset, split."""
    from helpers import config, data, train

    profile = config.get_profile(name)
    started = time.perf_counter()
    frames = data.load_frames(root, profile, verbose=False)
    profile = train.fit_to_data(profile, frames)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "images": sum(len(f) for f in frames.values()), "image_size": profile.image_size}


def step_eda(root: Path, state: Path) -> dict:
    """Lesson 01's exploration cells at the full profile (figures drawn, not saved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from helpers import data, eda, plots, spectrum

    report = _scanned(state)
    started = time.perf_counter()
    frame = report.good  # the full profile keeps every usable image
    frame.attrs.update(report.files.attrs)
    str(report)
    figures = [eda.plot_counts(report.counts(), "Usable images per split and class")]
    files = report.good
    files.groupby(["class_name", "width", "height", "mode", "format"]).size()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.histplot(data=files, x="bytes", hue="class_name", stat="density", common_norm=False, element="step", ax=ax)
    figures.append(fig)
    examples = eda.sample_per_class(frame, 6)
    figures.append(plots.image_grid(data.load_images(examples, 128), titles=list(examples["class_name"]), columns=6))
    size = int(frame["width"].mode()[0])
    sample = eda.sample_per_class(frame, EDA_PER_CLASS)
    images, labels = data.load_images(sample, size), sample["label"].to_numpy()
    figures.append(eda.plot_mean_faces(eda.per_class(eda.mean_image, images, labels)))
    figures.append(eda.plot_channel_histograms(eda.per_class(eda.channel_histograms, images, labels)))
    eda.per_class(eda.clipped_share, images, labels)
    spectra = eda.per_class(spectrum.mean_log_spectrum, images, labels)
    figures += [eda.plot_spectra(spectra), eda.plot_radial_profiles(spectra)]
    energy = eda.high_frequency_change(images, labels)
    eda.describe_spectrum(energy, eda.periodic_peak(spectra["fake"] - spectra["real"]))
    seconds = time.perf_counter() - started
    for fig in figures:
        plt.close(fig)
    return {"seconds": seconds, "images": len(frame), "sampled": len(sample)}


def _timed_audit(state: Path, save: bool) -> dict:
    from helpers import audit, config

    report = _scanned(state)
    started = time.perf_counter()
    result = audit.audit_dataset(report, profile=config.get_profile("full"), progress=False)
    seconds = time.perf_counter() - started
    if save:
        _save(state, "audit_images", result.images)
    pairs = result.duplicates
    return {"seconds": seconds, "images": len(result.images),
            "exact_pairs": int((pairs["kind"] == "exact").sum()),
            "identical_hash_pairs": int((pairs["distance"] == 0).sum()),
            "near_pairs": int((pairs["kind"] == "near").sum()),
            "pairs_across_splits": int(pairs["across_splits"].sum()),
            "metadata_auc": result.classifier_aucs}


def step_audit_duplicates(root: Path, state: Path) -> dict:
    """The audit's duplicate search alone, on the hashes the first audit computed."""
    from helpers import near_duplicates

    images = _load(state, "audit_images")
    started = time.perf_counter()
    pairs = near_duplicates.find_duplicates(images)
    seconds = time.perf_counter() - started
    _save(state, "duplicates", pairs)
    return {"seconds": seconds, "images": len(images), "pairs": len(pairs)}


def step_audit_classifier(root: Path, state: Path) -> dict:
    """The audit's shortcut checks alone: per-property AUCs, duplicate groups, the metadata classifier."""
    from helpers import audit, near_duplicates

    images, pairs = _load(state, "audit_images"), _load(state, "duplicates")
    started = time.perf_counter()
    features = audit.metadata_features(images)
    audit.feature_aucs(features, images["label"])
    groups = near_duplicates.duplicate_groups(len(images), pairs)
    # The classifier's own sample, where the helpers cap it (before issue 18 they did not).
    rows = audit.classifier_rows(images["label"]) if hasattr(audit, "classifier_rows") else np.arange(len(images))
    aucs = audit.classifier_aucs(features.iloc[rows].reset_index(drop=True), images["label"].to_numpy()[rows],
                                 groups[rows])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "images": len(images), "classifier_images": len(rows),
            "features": features.shape[1], "aucs": aucs}


def _pipeline(state: Path, mode: str) -> dict:
    """The full profile's training input (decode, resize, shuffle, batch) in images/s: alone ("decode"),
    with its augmentation ("augment"), or with the lite0 detector's forward pass in training mode,
    augmentation included ("model").
    """
    import tensorflow as tf

    from helpers import augment, classifier, train

    profile, frames = _profile_frames(state, "full")
    if mode == "model":
        network = classifier.build_classifier("efficientnet_lite0", profile.image_size,
                                              augmentations=profile.augmentations)
        work = tf.function(lambda images: network(images, training=True))
    else:
        layers = augment.augmentation_layers(recipe=profile.augmentations) if mode == "augment" else []

        def augmented(images):
            for layer in layers:
                images = layer(images, training=True)
            return images
        work = tf.function(augmented)
    batches = PIPELINE_BATCHES[mode]
    started = time.perf_counter()
    batches_of = iter(train.dataset(frames["train"], profile, shuffle=True, cache=profile.cache_images).repeat())
    images, _ = next(batches_of)
    work(images).numpy()
    first = time.perf_counter() - started
    started = time.perf_counter()
    count = 0
    for _ in range(batches):
        images, _ = next(batches_of)
        work(images).numpy()
        count += int(images.shape[0])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "first_batch_seconds": round(first, 2), "images": count,
            "images_per_second": round(count / seconds, 1), "batch_size": profile.batch_size,
            "image_size": profile.image_size, "train_images": len(frames["train"])}


# Steps that are one measurement at one setting; every other step is the function step_<name>.
SETTING_STEPS = {
    "lesson_data_smoke": lambda root, state: _lesson_data(root, "smoke"),
    "lesson_data_cpu": lambda root, state: _lesson_data(root, "cpu"),
    "lesson_data_full": lambda root, state: _lesson_data(root, "full"),
    "audit": lambda root, state: _timed_audit(state, save=True),
    "audit_again": lambda root, state: _timed_audit(state, save=False),
    "pipeline_decode": lambda root, state: _pipeline(state, "decode"),
    "pipeline": lambda root, state: _pipeline(state, "augment"),
    "pipeline_model": lambda root, state: _pipeline(state, "model"),
}


def run_child(step: str, root: Path, state: Path) -> None:
    """Inside the fresh process: run one step, add its peak memory, write state/<step>.json."""
    result = (SETTING_STEPS.get(step) or globals()[f"step_{step}"])(root, state)
    result.update(seconds=round(result["seconds"], 3), peak_rss_mb=_peak_rss_mb())
    (state / f"{step}.json").write_text(json.dumps(result))


def _rss_mb(pid: int) -> float:
    """Resident memory of a running process, from /proc (0 where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_step(step: str, root: Path, state: Path, storage: Path, max_rss_mb: float) -> dict:
    """Run a step in a fresh process; stop it (and say so) if its memory passes `max_rss_mb`."""
    env = dict(os.environ, DEEPFAKE_STORAGE=str(storage), TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, __file__, "--child", step, "--root", str(root), "--state", str(state)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    highest = 0.0
    while child.poll() is None:
        highest = max(highest, _rss_mb(child.pid))
        if highest > max_rss_mb:
            child.kill()
            child.wait()
            return {"stopped": f"over the {max_rss_mb:.0f} MB memory limit after "
                               f"{time.perf_counter() - started:.0f} s", "peak_rss_mb": round(highest, 1)}
        time.sleep(0.2)
    if child.returncode != 0:
        return {"failed": f"exit status {child.returncode}"}
    return json.loads((state / f"{step}.json").read_text())


# ----------------------------------------------------------------------------- results
def growth(result: dict, folder: Path, suffix: str) -> dict:
    """Each step against the same step at every smaller fraction already measured (same label).

    `exponent` is log(seconds ratio) / log(images ratio): 1 grows linearly, 2 quadratically. Steps
    under 0.2 s at the smaller size are left out of it: their times are mostly noise.
    """
    table = {}
    for path in sorted(folder.glob(f"*{suffix}.json")):
        other = json.loads(path.read_text())
        if other.get("label") != result["label"] or other["fraction"] >= result["fraction"]:
            continue
        images_ratio = result["images"]["total"] / other["images"]["total"]
        rows = {}
        for step, now in result["steps"].items():
            then = other["steps"].get(step, {})
            if "seconds" in now and "seconds" in then and then["seconds"] > 0:
                ratio = now["seconds"] / then["seconds"]
                rows[step] = {"seconds_ratio": round(ratio, 2)}
                if then["seconds"] >= 0.2:
                    rows[step]["exponent"] = round(math.log(ratio) / math.log(images_ratio), 2)
        table[f"vs {other['fraction']}"] = {"images_ratio": round(images_ratio, 2), "steps": rows}
    return table


def merged(earlier: dict, now: dict) -> dict:
    """`earlier` with its failed or missing steps taken from `now`; the run that filled them is recorded."""
    filled = [step for step, value in now["steps"].items() if "seconds" not in earlier["steps"].get(step, {})]
    for step in filled:
        earlier["steps"][step] = now["steps"][step]
    earlier["steps"] = {step: earlier["steps"][step] for step in STEPS if step in earlier["steps"]}
    earlier.setdefault("filled_later", []).append(
        {"steps": filled, "measured_again": {step: value for step, value in now["steps"].items() if step not in filled},
         "load_average": now["load_average"], "cores_shared": now["cores_shared"],
         "code": now["code"], "command": now["command"] + " --steps " + ",".join(now["steps"]) + " --merge"})
    return earlier


def code_state() -> dict:
    """The commit, and which helper files differ from it (a benchmark of uncommitted code says so)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.rstrip()

    import helpers

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "modified": git("status", "--porcelain", "--", "src/helpers").splitlines(),
            "helpers_from": "this checkout" if Path(helpers.__file__).resolve().is_relative_to(REPO)
            else "another copy (PYTHONPATH)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="of the Kaggle set's size (default 1.0)")
    parser.add_argument("--faces", type=Path, help="folder with dfdc-faces/ and ffhq-stylegan2/ "
                        "(default: $DEEPFAKE_TEST_DATA, else ../shared/data beside the checkout)")
    parser.add_argument("--work", type=Path, help="an empty or new folder to generate into (default: a temporary one)")
    parser.add_argument("--root", type=Path, help="reuse a root generated before at the same fraction")
    parser.add_argument("--keep", action="store_true", help="keep the generated images (else they are deleted)")
    parser.add_argument("--steps", help=f"comma-separated subset of: {','.join(STEPS)}")
    parser.add_argument("--label", default="", help="added to the file name: <fraction>-<label>.json")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="generation processes")
    parser.add_argument("--max-rss-gb", type=float, default=8.0, help="stop a step whose memory passes this")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    parser.add_argument("--merge", action="store_true", help="fill the steps that failed or are missing in the "
                        "existing JSON with this run's (with --steps; the steps they need run again too)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.root, args.state)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_model import machine_info

    steps = args.steps.split(",") if args.steps else list(STEPS)
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    load_start = os.getloadavg()
    started = time.perf_counter()
    if args.root:
        check_root(args.root, args.fraction)
        root, work, generated = args.root.resolve(), Path(tempfile.mkdtemp(prefix="bench-scale-")), None
    else:
        if args.work and args.work.exists() and any(args.work.iterdir()):
            parser.error(f"{args.work} is not empty: give a new or empty folder (nothing was deleted)")
        work = args.work or Path(tempfile.mkdtemp(prefix="bench-scale-"))
        root = work / "root"
        faces = args.faces or Path(os.environ.get("DEEPFAKE_TEST_DATA") or REPO.parent / "shared" / "data")
        missing = [name for name in SHARED_SETS if not (faces / name).is_dir()]
        if missing:
            parser.error(f"{faces} lacks {', '.join(missing)}: pass --faces or set DEEPFAKE_TEST_DATA")
        print(f"generating {sum(target_counts(args.fraction).values())} images in {root} ...", flush=True)
        generated = generate(root, faces, args.fraction, args.workers)
        print(f"generated: {generated}", flush=True)
    state, storage = work / "state", work / "storage"
    state.mkdir(parents=True, exist_ok=True)
    counts = {split: sum(n for (s, _), n in target_counts(args.fraction).items() if s == split)
              for split in ("train", "validation", "test")}
    result = {"fraction": args.fraction, "label": args.label,
              "images": {**counts, "total": sum(counts.values())}, "generate": generated,
              "command": " ".join(["python", "benchmarks/bench_scale.py", "--fraction", str(args.fraction),
                                   *(["--label", args.label] if args.label else [])]),
              "code": code_state(), "machine": {k: v for k, v in machine_info().items() if k != "host"},
              "steps": {}}
    try:
        for step in steps:
            load = round(os.getloadavg()[0], 2)  # other work on the machine slows a step down
            result["steps"][step] = {**run_step(step, root, state, storage, args.max_rss_gb * 1024),
                                     "load_1min_at_start": load}
            print(f"{step}: {result['steps'][step]}", flush=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(storage, ignore_errors=True)
        if generated is not None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        if args.root or (not args.keep and args.work is None):
            shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()
    result["load_average"] = {"start_1_5_15min": [round(v, 2) for v in load_start],
                              "end_1_5_15min": [round(v, 2) for v in load_end]}
    result["cores_shared"] = load_start[0] > 0.5  # other work was running when this began
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    suffix = f"-{args.label}" if args.label else ""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.fraction}{suffix}.json"
    if args.merge and path.is_file():
        result = merged(json.loads(path.read_text()), result)
    result["growth"] = growth(result, args.out, suffix)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path} ({result['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
