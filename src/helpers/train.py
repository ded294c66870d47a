"""Two-stage transfer learning: train the head on a frozen backbone, then fine-tune the top blocks.

    python -m helpers.train --data DATA_ROOT --profile cpu --out MODEL_DIR

Stage 1 has a fast path: with the backbone frozen, its pooled features never change, so we compute
them once (and keep them in .cache/features) and train the head on those vectors — seconds instead of
minutes per epoch. What it gives up: augmentation during stage 1, because each image is seen through
one fixed feature vector. Use it when stage 1 is just a warm-up for fine-tuning (the `smoke` and `cpu`
profiles); the `full` profile on a GPU trains stage 1 on images, with augmentation.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import backbones, config, data, metrics, saving
from helpers import model as detector

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainResult:
    """What `train` returns: the model, the joined history of both stages, and the saved sidecar."""

    model: object
    history: pd.DataFrame
    metadata: dict
    frames: dict = field(default_factory=dict)


def p_fake(model, frame: pd.DataFrame, image_size: int, batch_size: int) -> np.ndarray:
    """p(fake) for every image of `frame`, in order."""
    dataset = data.make_dataset(frame, image_size, batch_size, cache=False)
    return model.predict(dataset, verbose=0)[:, 1]


def _feature_cache_path(model, frame: pd.DataFrame, image_size: int) -> Path:
    key = f"{model.name}|{image_size}|{data.fingerprint(frame)}|{model.count_params()}"
    return config.CACHE_DIR / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"


def extract_features(model, frame: pd.DataFrame, image_size: int, batch_size: int) -> np.ndarray:
    """Pooled backbone features of every image, computed once and cached on disk."""
    path = _feature_cache_path(model, frame, image_size)
    if path.is_file():
        return np.load(path)
    dataset = data.make_dataset(frame, image_size, batch_size, cache=False)
    features = detector.feature_extractor(model).predict(dataset, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, features)
    tmp.replace(path)
    return features


def _callbacks(out_dir: Path, stage: str, patience: int, resumable: bool):
    """Best checkpoint on validation ROC-AUC, early stopping, a CSV log, and (optionally) resume."""
    import keras

    checkpoints = out_dir / CHECKPOINT_DIR
    checkpoints.mkdir(parents=True, exist_ok=True)
    best = checkpoints / f"{stage}_best.weights.h5"
    callbacks = [
        keras.callbacks.ModelCheckpoint(best, monitor="val_auc", mode="max", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience),
        keras.callbacks.CSVLogger(out_dir / f"log_{stage}.csv", append=resumable),
    ]
    if resumable:  # after an interruption, the next run of the same command resumes at the last epoch
        callbacks.append(keras.callbacks.BackupAndRestore(checkpoints / f"{stage}_backup"))
    return callbacks, best


def _history(history, stage: str) -> pd.DataFrame:
    frame = pd.DataFrame(history.history)
    frame.insert(0, "stage", stage)
    frame.insert(1, "epoch", np.asarray(history.epoch) + 1)
    return frame


def train_stage1(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile, out_dir: Path,
                 use_feature_cache: bool | None = None, verbose: int | str = "auto") -> pd.DataFrame:
    """Stage 1: backbone frozen, head trained at profile.stage1_lr. Returns the epoch history."""
    detector.freeze_backbone(model)
    use_feature_cache = profile.feature_cache if use_feature_cache is None else use_feature_cache
    weights = data.class_weights(train["label"])
    callbacks, best = _callbacks(out_dir, "stage1", patience=8 if use_feature_cache else 3,
                                 resumable=not use_feature_cache)
    if use_feature_cache:
        head = detector.compile_model(detector.head_model(model), profile.stage1_lr)
        x_train = extract_features(model, train, profile.image_size, profile.batch_size)
        x_val = extract_features(model, val, profile.image_size, profile.batch_size)
        history = head.fit(x_train, train["label"].to_numpy(), validation_data=(x_val, val["label"].to_numpy()),
                           epochs=profile.stage1_epochs, batch_size=profile.batch_size, class_weight=weights,
                           callbacks=callbacks, shuffle=True, verbose=verbose)
        head.load_weights(best)
    else:
        detector.compile_model(model, profile.stage1_lr)
        history = model.fit(data.make_dataset(train, profile.image_size, profile.batch_size, shuffle=True,
                                              cache=profile.cache_images),
                            validation_data=data.make_dataset(val, profile.image_size, profile.batch_size,
                                                              cache=profile.cache_images),
                            epochs=profile.stage1_epochs, class_weight=weights, callbacks=callbacks,
                            shuffle=False, verbose=verbose)  # the dataset shuffles itself
        model.load_weights(best)
    return _history(history, "stage1")


def train_stage2(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile, out_dir: Path,
                 n_blocks: int | None = None, epochs: int | None = None,
                 verbose: int | str = "auto") -> pd.DataFrame:
    """Stage 2: unfreeze the top whole blocks (BatchNorm frozen), recompile at profile.stage2_lr, fine-tune."""
    blocks = detector.unfreeze_top_blocks(model, profile.unfreeze_blocks if n_blocks is None else n_blocks)
    detector.compile_model(model, profile.stage2_lr)
    callbacks, best = _callbacks(out_dir, "stage2", patience=3, resumable=True)
    history = model.fit(data.make_dataset(train, profile.image_size, profile.batch_size, shuffle=True,
                                          cache=profile.cache_images),
                        validation_data=data.make_dataset(val, profile.image_size, profile.batch_size,
                                                          cache=profile.cache_images),
                        epochs=profile.stage2_epochs if epochs is None else epochs,
                        class_weight=data.class_weights(train["label"]), callbacks=callbacks,
                        shuffle=False, verbose=verbose)  # the dataset shuffles itself
    if best.is_file():
        model.load_weights(best)
    frame = _history(history, "stage2")
    frame.attrs["unfrozen_blocks"] = blocks
    return frame


def joined_history(*stages: pd.DataFrame) -> pd.DataFrame:
    """Both stages' epoch logs in one frame, with a running epoch number for plotting."""
    history = pd.concat(stages, ignore_index=True)
    history.insert(2, "global_epoch", np.arange(1, len(history) + 1))
    return history


def training_metadata(backbone: str, profile: config.Profile, frames: dict, val_scores: np.ndarray,
                      extra: dict | None = None) -> dict:
    """The sidecar: everything needed to rebuild and use the model, and how it scored on validation."""
    val_labels = frames["validation"]["label"].to_numpy()
    threshold = metrics.balanced_threshold(val_labels, val_scores)
    return {
        "backbone": backbone,
        "image_size": profile.image_size,
        "class_names": list(data.CLASS_NAMES),
        "threshold": threshold,
        "threshold_rule": "equal recall of real and fake on the validation split",
        "profile": profile.name,
        "data": {"root": frames["train"].attrs.get("root"), "layout": frames["train"].attrs.get("layout"),
                 "fingerprint": data.fingerprint(frames["train"]),
                 "counts": {split: data.counts(frame).loc[split].to_dict() for split, frame in frames.items()}},
        "validation": metrics.summary(val_labels, val_scores, threshold),
        **(extra or {}),
    }


def train(root=None, profile: config.Profile | str | None = None, out_dir=None, backbone: str | None = None,
          n_blocks: int | None = None, verbose: int | str = "auto") -> TrainResult:
    """Both stages on a data root, then choose the threshold on validation and save the model folder."""
    profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    out_dir = Path(out_dir or config.MODELS_DIR / f"{profile.name}-{config.data_root(root).name}")
    config.set_seeds()
    frame, report = data.load_split(root, profile, progress=verbose != 0)
    frames = {split: frame[frame["split"] == split].reset_index(drop=True) for split in data.SPLITS}
    for part in frames.values():
        part.attrs.update(frame.attrs)
    name, reason = backbones.resolve_backbone(config.backbone_name(backbone))
    print(f"Backbone: {name} ({reason}); profile {profile.name}; {len(frame)} images; "
          f"{len(report.bad)} unreadable files left out.")
    model = detector.build_classifier(name, profile.image_size)

    started = time.perf_counter()
    stage1 = train_stage1(model, frames["train"], frames["validation"], profile, out_dir, verbose=verbose)
    stage1_seconds = time.perf_counter() - started
    stage2 = train_stage2(model, frames["train"], frames["validation"], profile, out_dir, n_blocks=n_blocks,
                          verbose=verbose)
    seconds = time.perf_counter() - started

    val_scores = p_fake(model, frames["validation"], profile.image_size, profile.batch_size)
    history = joined_history(stage1, stage2)
    history.to_csv(out_dir / "history.csv", index=False)
    metadata = training_metadata(name, profile, frames, val_scores, extra={
        "training": {"stage1_seconds": round(stage1_seconds, 1), "total_seconds": round(seconds, 1),
                     "stage1_feature_cache": profile.feature_cache,
                     "unfrozen_blocks": stage2.attrs["unfrozen_blocks"],
                     "epochs": {"stage1": len(stage1), "stage2": len(stage2)}},
    })
    saving.save_model(model, out_dir, metadata)
    print(f"Saved {out_dir}: validation ROC-AUC {metadata['validation']['roc_auc']:.3f}, "
          f"threshold {metadata['threshold']:.3f}, {seconds / 60:.1f} min.")
    return TrainResult(model, history, metadata, frames)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help=f"data root (default: ${config.DATA_ENV} or data/)")
    parser.add_argument("--profile", help=f"smoke, cpu or full (default: ${config.PROFILE_ENV} or cpu)")
    parser.add_argument("--out", help="model folder to write (default: models/<profile>-<data folder>)")
    parser.add_argument("--backbone", help="auto, efficientnet_b0 or efficientnet_lite0 (default: auto)")
    parser.add_argument("--unfreeze-blocks", type=int, help="whole blocks fine-tuned in stage 2")
    args = parser.parse_args(argv)
    try:
        train(args.data, args.profile, args.out, args.backbone, n_blocks=args.unfreeze_blocks)
    except (ValueError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
