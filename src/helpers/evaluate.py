"""Score a saved model on a data folder: ROC-AUC, AP, and the metrics at its threshold and at 0.5.

    deepfake-lessons evaluate MODEL_DIR DATA_ROOT [--split test|validation|train|all] [--json OUT]
    (or python -m helpers evaluate ...)

ROC-AUC, accuracy and the recalls come with 95% bootstrap intervals; the JSON file also holds every
image's p(fake), so anyone can recompute them. When the data names each image's group (a `group`
column: images that are not independent, such as the real and the fake from one source video), the
intervals resample whole groups (`metrics.bootstrap_interval`). Unreadable files are skipped and listed. If the images
evaluated are the ones the model was trained or tuned on, the result says so loudly: those numbers
measure memory, not detection.
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers import config, data, files, metrics, predict, saving
from helpers.detector import RUNTIMES, Detector, as_detector
from helpers.errors import BadArgumentError, NoImagesError

SPLIT_CHOICES = ("test", "validation", "train", "all")  # "all": every image, for a folder the model never saw
_SEEN_SPLITS = {
    "train": "the model was trained on these images, so the scores measure memory, not detection",
    "validation": "the threshold and the best epoch were chosen on these images, so the scores are optimistic",
    "all": "this includes the images the model was trained and tuned on, so the scores are optimistic",
}
SKIPPED_COLUMNS = ["path", "relpath", "split", "label", "error"]


class OverlapWarning(UserWarning):
    """The evaluated images include the ones the model was trained or tuned on."""


class OneClassWarning(UserWarning):
    """The evaluated images hold one class only: ROC-AUC, average precision and EER are undefined."""


@dataclass
class Evaluation:
    """What `evaluate` returns.

    metrics: JSON-ready dict (metrics.summary with its "ci95" intervals, plus model, data, skipped files
        and any overlap warning).
    scores: one row per scored image: path, relpath, split, label, class_name, p_fake, predicted (and
        group, when the data names one).
    skipped: the files left out: path, relpath, split, label, error.
    overlap: the overlap warning, or None.
    """

    metrics: dict
    scores: pd.DataFrame
    skipped: pd.DataFrame
    overlap: str | None

    def __str__(self) -> str:
        return format_summary(self.metrics)

    def as_json(self) -> dict:
        """The metrics plus "per_image": relpath, split, label, p_fake (and group, if known) of every scored image."""
        group = [metrics.GROUP_COLUMN] if metrics.GROUP_COLUMN in self.scores else []
        columns = ["relpath", "split", "label", "p_fake", *group]
        return {**self.metrics, "per_image": self.scores[columns].to_dict("records")}


def select_split(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one split, or every row for "all"."""
    if split not in SPLIT_CHOICES:
        raise BadArgumentError(f"Unknown split {split!r}: choose one of {', '.join(SPLIT_CHOICES)}.")
    chosen = frame if split == "all" else frame[frame["split"] == split]
    chosen = chosen.reset_index(drop=True)
    chosen.attrs.update(frame.attrs)
    return chosen


def seen_hashes(directory) -> set[str]:
    """Content hashes of the images a saved model learnt from (training_files.json), if it has them."""
    path = Path(directory or "") / saving.TRAINING_FILES
    if not directory or not path.is_file():
        return set()
    try:
        splits = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise saving.ModelFileError(f"{path} is not valid JSON ({err}); the file is damaged.") from err
    if not (isinstance(splits, dict) and all(isinstance(hashes, list) and all(isinstance(h, str) for h in hashes)
                                             for hashes in splits.values())):
        raise saving.ModelFileError(f"{path} should map each split to a list of content hashes; "
                                    "it was not written by helpers.train.")
    return {digest for hashes in splits.values() for digest in hashes}


def overlap_warning(training: dict, root: str, split: str, frame: pd.DataFrame,
                    seen: set[str] = frozenset()) -> str | None:
    """Why the images in `frame` (from `root`, `split`) overlap the training data in the sidecar, or None.

    Three checks: the same root and a split the model has seen; the same files (by relative path
    and size) as the training frame, wherever they now live; and images byte-identical to ones the
    model trained or was validated on, under any name.
    """
    reasons = []
    if training.get("root") and Path(training["root"]).resolve() == Path(root).resolve() and split in _SEEN_SPLITS:
        reasons.append(f"split '{split}' of the training data root {root}: {_SEEN_SPLITS[split]}")
    fingerprints = {data.fingerprint(frame), data.fingerprint(frame[frame["split"] == "train"])}
    if training.get("fingerprint") in fingerprints:
        reasons.append("the same files (names and sizes) as the model's training images")
    if seen:
        repeated = sum(digest in seen for digest in data.content_hashes(frame))
        if repeated:
            reasons.append(f"{repeated} of {len(frame)} images are byte-identical to training or validation images")
    if not reasons:
        return None
    return "These images overlap the model's training data: " + "; ".join(reasons) + "."


def _scored_and_skipped(detector: Detector, frame: pd.DataFrame, batch_size: int,
                        progress: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every file of `frame`; split the rows into scored and (failed to decode) skipped."""
    predictions = predict.predict_files(detector, frame["path"].tolist(), batch_size=batch_size, progress=progress)
    frame = frame.assign(p_fake=[p.p_fake for p in predictions], error=[p.error for p in predictions])
    failed = frame["error"].notna()
    scored = frame[~failed].drop(columns="error").reset_index(drop=True)
    scored["predicted"] = [detector.label(p) for p in scored["p_fake"]]
    return scored, frame.loc[failed, SKIPPED_COLUMNS].reset_index(drop=True)


def evaluate(model_dir_or_detector: Detector | str | os.PathLike, data_root: str | os.PathLike | None = None,
             split: str = "test", profile: config.Profile | str | None = None, batch_size: int = 32,
             progress: bool = True) -> Evaluation:
    """Score a model on one split of a data root (either layout), skipping unreadable files.

    `profile` (optional) evaluates only its subset of the split, e.g. the `smoke` profile's few dozen images.
    """
    detector = as_detector(model_dir_or_detector)
    profile = None if profile is None else config.get_profile(profile)
    frame = select_split(data.index_dataset(config.data_root(data_root), required=() if split == "all" else (split,)),
                         split)
    root, layout = frame.attrs["root"], frame.attrs["layout"]
    report = data.scan(frame, progress=progress)
    good = report.good[list(frame.columns)]  # the scan's own columns (size, mode, ...) are not needed here
    if profile is not None:
        good = data.subset(good, profile)
    scored, failed = _scored_and_skipped(detector, good, batch_size, progress)
    skipped = pd.concat([report.bad[SKIPPED_COLUMNS], failed], ignore_index=True)
    if scored.empty:
        raise NoImagesError(f"No readable images in split '{split}' of {root} ({len(skipped)} files skipped).")
    if scored["label"].nunique() < 2:
        warnings.warn(f"Split '{split}' of {root} holds {scored['class_name'].iloc[0]} images only: ROC-AUC, "
                      "average precision and EER need both classes, so they are n/a.", OneClassWarning, stacklevel=2)

    overlap = overlap_warning(detector.metadata.get("data", {}), root, split, scored, seen_hashes(detector.directory))
    if overlap:
        warnings.warn(overlap, OverlapWarning, stacklevel=2)
    result = {
        "model": {"directory": str(detector.directory) if detector.directory else None,
                  "backbone": detector.backbone, "image_size": detector.image_size,
                  "threshold": detector.threshold},
        "data": {"root": root, "layout": layout, "split": split,
                 "profile": getattr(profile, "name", None), "fingerprint": data.fingerprint(scored)},
        "overlap_warning": overlap,
        "skipped": [{"relpath": row.relpath, "error": row.error} for row in skipped.itertuples()],
        **metrics.summary(scored["label"], scored["p_fake"], detector.threshold, intervals=True,
                          groups=metrics.groups_of(scored)),
    }
    return Evaluation(result, scored, skipped, overlap)


def _number(value, interval=None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def format_summary(result: dict) -> str:
    """A few lines for the terminal or a notebook: what was scored, the ranking metrics, both thresholds.

    Brackets hold 95% bootstrap intervals (at the model's threshold; none are computed at 0.5); a line
    says when they resample groups of images rather than single images.
    """
    counts = ", ".join(f"{n} {name}" for name, n in result["counts"].items())
    ci = result["ci95"]
    lines = [f"{result['model']['backbone']} ({result['model']['image_size']} px) on {result['data']['root']}, "
             f"split {result['data']['split']}: {result['n']} images ({counts}), {len(result['skipped'])} skipped.",
             f"ROC-AUC {_number(result['roc_auc'], ci['roc_auc'])} | "
             f"average precision {_number(result['average_precision'])} | EER {_number(result['eer'])}"]
    for key, bounds in (("at_threshold", ci), ("at_0.5", {})):
        part = result[key]
        recall = ", ".join(f"{name} {_number(value, bounds.get(f'recall_{name}'))}"
                           for name, value in part["recall"].items())
        lines.append(f"at threshold {part['threshold']:.3f}: "
                     f"accuracy {_number(part['accuracy'], bounds.get('accuracy'))}, "
                     f"balanced accuracy {_number(part['balanced_accuracy'], bounds.get('balanced_accuracy'))}, "
                     f"recall {recall}")
    if result.get("ci95_groups", result["n"]) < result["n"]:
        lines.append(f"intervals: resampled by group ({result['ci95_groups']} groups of images, "
                     "such as source videos), not image by image")
    lines += [f"skipped: {files.one_line(item['relpath'])}: {files.one_line(item['error'])}"
              for item in result["skipped"]]
    if result["overlap_warning"]:
        lines.append(f"WARNING: {result['overlap_warning']}")
    return files.printable("\n".join(lines))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (helpers.cli runs it)."""
    from helpers import arguments

    parser.add_argument("model_dir", help="a saved model folder (model.keras, model.weights.h5, model.json)")
    parser.add_argument("data_root", help="a data folder in either layout (see helpers.data)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="test",
                        help="which images to score (default: test; 'all' for a folder the model never saw)")
    parser.add_argument("--profile", help="score only this profile's subset of the split (e.g. smoke)")
    parser.add_argument("--json", type=Path, help="write the metrics, their intervals and every image's p(fake) here")
    parser.add_argument("--overwrite", action="store_true", help="replace the --json file if it exists")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=32)
    parser.add_argument("--runtime", choices=RUNTIMES,
                        help=f"auto: the model's fresh model.tflite, else Keras "
                             f"(default: ${config.RUNTIME_ENV} or auto)")


def run(args: argparse.Namespace) -> None:
    from helpers import model_folders

    if args.json:  # before anything is scored (never in a model folder; never over a file unless --overwrite)
        model_folders.check_result_file(args.json, args.overwrite)
    detector = as_detector(args.model_dir, runtime=args.runtime)
    evaluation = evaluate(detector, args.data_root, args.split, args.profile, args.batch_size)
    print(evaluation)
    if args.json:
        model_folders.check_result_file(args.json, args.overwrite)  # again: a file may have appeared meanwhile
        files.write_json(args.json, evaluation.as_json())
        print(files.printable(f"Wrote {args.json}"))
