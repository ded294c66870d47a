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
import dataclasses
import hashlib
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import backbones, config, data, metrics, saving
from helpers import model as detector
from helpers.errors import FolderExistsError

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainResult:
    """What `train` returns: the model, the joined history of both stages, and the saved sidecar."""

    model: object
    history: pd.DataFrame
    metadata: dict
    frames: dict = field(default_factory=dict)


MODES = ("real+fake", "real+sbi", "real+fake+sbi")  # what the detector learns "fake" from (lesson 07)


def dataset(frame: pd.DataFrame, profile: config.Profile, shuffle: bool = False, cache: bool = False):
    """The profile's tf.data pipeline for `frame`; synthetic rows (self-blended images) are made on the fly."""
    transform = None
    if "transform_seed" in frame and (frame["transform_seed"] >= 0).any():
        from helpers import sbi

        transform = sbi.pseudo_fake
    return data.make_dataset(frame, profile.image_size, profile.batch_size, shuffle=shuffle, cache=cache,
                             transform=transform)


def with_mode(frames: dict[str, pd.DataFrame], mode: str, seed: int = config.SEED) -> dict[str, pd.DataFrame]:
    """Training and validation frames for a mode; the test split is always left as it is.

    real+fake: the data as it is. real+sbi: real images and self-blended pseudo-fakes made from them,
    no real fake at all. real+fake+sbi: both kinds of fakes.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown training mode {mode!r}: choose one of {', '.join(MODES)}.")
    if mode == "real+fake":
        return frames
    from helpers import sbi

    result = dict(frames)
    for split in ("train", "validation"):
        frame = frames[split] if mode == "real+fake+sbi" else frames[split][frames[split]["label"] == 0]
        result[split] = sbi.add_pseudo_fakes(frame.reset_index(drop=True), seed=seed)
        result[split].attrs.update(frames[split].attrs)
    return result


def p_fake(model, frame: pd.DataFrame, profile: config.Profile) -> np.ndarray:
    """p(fake) for every image of `frame`, in order."""
    return model.predict(dataset(frame, profile), verbose=0)[:, 1]


def extractor_fingerprint(extractor) -> str:
    """A hash of a feature extractor's layers, their settings and their weights.

    Two extractors share it only if they compute the same features: another backbone, a rescaling
    layer in front, or other weights give another fingerprint.
    """
    digest = hashlib.sha256(extractor.to_json().encode())
    for weight in extractor.weights:
        if not weight.path.endswith("seed_generator_state"):  # random streams, not what the features are
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def _feature_cache_path(extractor, frame: pd.DataFrame, image_size: int) -> Path:
    key = f"{extractor_fingerprint(extractor)}|{image_size}|{data.fingerprint(frame)}"
    if "transform_seed" in frame:  # synthetic rows: their seeds and the code that makes them count too
        from helpers import sbi

        key += f"|{frame['transform_seed'].tolist()}|{hashlib.sha256(Path(sbi.__file__).read_bytes()).hexdigest()}"
    return config.CACHE_DIR / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"


def extract_features(model, frame: pd.DataFrame, profile: config.Profile) -> np.ndarray:
    """Pooled backbone features of every image, computed once and cached on disk (.cache/features)."""
    extractor = detector.feature_extractor(model)
    path = _feature_cache_path(extractor, frame, profile.image_size)
    if path.is_file():
        return np.load(path)
    features = extractor.predict(dataset(frame, profile), verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # two processes may compute the same features
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


def stage_history(history, stage: str) -> pd.DataFrame:
    """A stage's `fit` history as a frame: one row per epoch, with the stage name and epoch number."""
    frame = pd.DataFrame(history.history)
    frame.insert(0, "stage", stage)
    frame.insert(1, "epoch", np.asarray(history.epoch) + 1)
    return frame


def restart_randomness(model) -> None:
    """Reseed everything and restart the model's own random streams (dropout, augmentation layers).

    Then a training stage's result depends on the model's weights, the data and the profile only, not
    on what drew random numbers before it (lesson 03's timing and probe cells, an earlier run in the
    same notebook) nor on whether the model was just built or loaded from disk. Keras layers keep
    their random state in "seed_generator_state" variables, [seed, counter], which the global seed
    does not touch: each gets seed SEED + its position in the model, counter 0.
    """
    config.set_seeds()
    states = [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]
    for position, state in enumerate(states):
        state.assign([config.SEED + position, 0])


def train_stage1(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile, out_dir: Path,
                 use_feature_cache: bool | None = None, verbose: int | str = "auto") -> pd.DataFrame:
    """Stage 1: backbone frozen, head trained at profile.stage1_lr. Returns the epoch history.

    Like stage 2 it starts from fresh random streams (`restart_randomness`), so a lesson and
    `python -m helpers.train` train the same model.
    """
    restart_randomness(model)
    detector.freeze_backbone(model)
    use_feature_cache = profile.feature_cache if use_feature_cache is None else use_feature_cache
    weights = data.class_weights(train["label"])
    callbacks, best = _callbacks(out_dir, "stage1", patience=8 if use_feature_cache else 3,
                                 resumable=not use_feature_cache)
    if use_feature_cache:
        head = detector.compile_model(detector.head_model(model), profile.stage1_lr)
        x_train = extract_features(model, train, profile)
        x_val = extract_features(model, val, profile)
        history = head.fit(x_train, train["label"].to_numpy(), validation_data=(x_val, val["label"].to_numpy()),
                           epochs=profile.stage1_epochs, batch_size=profile.batch_size, class_weight=weights,
                           callbacks=callbacks, shuffle=True, verbose=verbose)
        head.load_weights(best)
    else:
        detector.compile_model(model, profile.stage1_lr)
        history = model.fit(dataset(train, profile, shuffle=True, cache=profile.cache_images),
                            validation_data=dataset(val, profile, cache=profile.cache_images),
                            epochs=profile.stage1_epochs, class_weight=weights, callbacks=callbacks,
                            shuffle=False, verbose=verbose)  # the dataset shuffles itself
        model.load_weights(best)
    return stage_history(history, "stage1")


def train_stage2(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile, out_dir: Path,
                 n_blocks: int | None = None, epochs: int | None = None, unfreeze=None,
                 verbose: int | str = "auto") -> pd.DataFrame:
    """Stage 2: unfreeze the top whole blocks (BatchNorm frozen), recompile at profile.stage2_lr, fine-tune.

    `unfreeze(model) -> names` replaces the block rule (lesson 04's ladder passes the original
    project's "top 30 layers").
    """
    restart_randomness(model)
    if unfreeze is None:
        blocks = detector.unfreeze_top_blocks(model, profile.unfreeze_blocks if n_blocks is None else n_blocks)
    else:
        blocks = unfreeze(model)
    detector.compile_model(model, profile.stage2_lr)
    callbacks, best = _callbacks(out_dir, "stage2", patience=4, resumable=True)
    history = model.fit(dataset(train, profile, shuffle=True, cache=profile.cache_images),
                        validation_data=dataset(val, profile, cache=profile.cache_images),
                        epochs=profile.stage2_epochs if epochs is None else epochs,
                        class_weight=data.class_weights(train["label"]), callbacks=callbacks,
                        shuffle=False, verbose=verbose)  # the dataset shuffles itself
    if best.is_file():
        model.load_weights(best)
    frame = stage_history(history, "stage2")
    frame.attrs["unfrozen_blocks"] = blocks
    return frame


def stage1_epoch_times(model, train: pd.DataFrame, profile: config.Profile) -> pd.DataFrame:
    """Measure the fast path: one stage-1 epoch on images vs extracting features once + one epoch on them.

    The model's weights are put back afterwards, so timing it does not change what stage 1 then learns.
    """
    detector.freeze_backbone(model)
    weights = model.get_weights()
    images = dataset(train, profile)
    started = time.perf_counter()
    features = detector.feature_extractor(model).predict(images, verbose=0)
    extract = time.perf_counter() - started
    head = detector.compile_model(detector.head_model(model), profile.stage1_lr)
    started = time.perf_counter()
    head.fit(features, train["label"].to_numpy(), epochs=1, batch_size=profile.batch_size, verbose=0)
    head_epoch = time.perf_counter() - started
    detector.compile_model(model, profile.stage1_lr)
    started = time.perf_counter()
    model.fit(images, epochs=1, shuffle=False, verbose=0)  # a timing run: the order does not matter
    image_epoch = time.perf_counter() - started
    model.set_weights(weights)
    return pd.DataFrame({"seconds": {"one epoch on images (backbone runs every time)": image_epoch,
                                     "extract features once": extract,
                                     "one epoch on cached features": head_epoch}}).round(2)


def joined_history(*stages: pd.DataFrame) -> pd.DataFrame:
    """Both stages' epoch logs in one frame, with a running epoch number for plotting."""
    history = pd.concat(stages, ignore_index=True)
    history.insert(2, "global_epoch", np.arange(1, len(history) + 1))
    return history


def model_dir(root=None, profile: config.Profile | None = None, mode: str = "real+fake") -> Path:
    """Where the lessons keep a model: models/<profile>-<data folder>, plus -<mode> for the SBI modes."""
    profile = profile or config.get_profile()
    suffix = "" if mode == "real+fake" else "-" + mode.replace("+", "-")
    return config.MODELS_DIR / f"{profile.name}-{config.data_root(root).name}{suffix}"


def load_frames(root=None, profile: config.Profile | None = None, verbose: bool = True) -> dict[str, pd.DataFrame]:
    """Index, scan and subset a data root; return its usable images by split."""
    frame, report = data.load_split(root, profile, progress=verbose)
    if verbose:
        print(f"{len(frame)} images in the {(profile or config.get_profile()).name} profile; "
              f"{len(report.bad)} unreadable files left out.")
    return data.by_split(frame)


def fit_to_data(profile: config.Profile, frames: dict[str, pd.DataFrame]) -> config.Profile:
    """The profile with its image size settled for this data.

    With `native_size`, when every scanned image has the same square size (up to MAX_NATIVE_SIZE),
    the model sees them at that size: resizing blurs away fine detail that can be the evidence
    (lesson 02), e.g. 256 px StyleGAN2 faces squeezed to 224. Otherwise the profile's size is used.
    """
    frame = pd.concat(frames.values())
    if not profile.native_size or "width" not in frame:
        return profile
    sizes = set(zip(frame["width"], frame["height"]))
    if len(sizes) != 1:
        return profile
    width, height = sizes.pop()
    if width != height or width > config.MAX_NATIVE_SIZE:
        return profile
    return dataclasses.replace(profile, image_size=int(width))


def save_trained(model, backbone: str, profile: config.Profile, frames: dict, history: pd.DataFrame,
                 out_dir: Path, extra: dict | None = None) -> dict:
    """Choose the threshold on validation data, then save the model folder with its sidecar and history."""
    val = frames["validation"]
    val_scores = p_fake(model, val, profile)
    threshold = metrics.balanced_threshold(val["label"], val_scores)
    metadata = {
        "backbone": backbone,
        "image_size": profile.image_size,
        "class_names": list(data.CLASS_NAMES),
        "threshold": threshold,
        "threshold_rule": "equal recall of real and fake on the validation split",
        "profile": profile.name,
        "augmentations": [layer.name.removeprefix("augment_") for layer in model.layers
                          if layer.name.startswith("augment_")],
        "data": {"root": val.attrs.get("root"), "layout": val.attrs.get("layout"),
                 "fingerprint": data.fingerprint(frames["train"]),
                 "counts": {split: data.counts(frame).loc[split].to_dict() for split, frame in frames.items()}},
        "validation": metrics.summary(val["label"], val_scores, threshold),
        **(extra or {}),
    }
    saving.save_model(model, out_dir, metadata)
    history.to_csv(Path(out_dir) / "history.csv", index=False)
    saving.write_json(Path(out_dir) / saving.TRAINING_FILES, {split: data.content_hashes(frames[split])
                                                       for split in ("train", "validation")})
    return metadata


PARTIAL_SUFFIX = ".partial"  # a run trains here, next to OUT, and becomes OUT only once it is complete


def train(root=None, profile: config.Profile | str | None = None, out_dir=None, backbone: str | None = None,
          n_blocks: int | None = None, mode: str = "real+fake", verbose: int | str = "auto",
          overwrite: bool = False) -> TrainResult:
    """Both stages on a data root; saves the stage-1 model in OUT/stage1 and the final model in OUT.

    The run trains in OUT.partial and only then takes OUT's place, so OUT always holds a whole model:
    an interrupted run leaves the old one as it was, and running the same command again resumes in
    OUT.partial from its last finished epoch. A model already in OUT is refused (FolderExistsError)
    unless `overwrite`; it is replaced only after the new one is complete.
    """
    profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    out_dir = Path(out_dir or model_dir(root, profile, mode))
    if (out_dir / saving.SIDECAR_FILE).is_file() and not overwrite:
        raise FolderExistsError(f"{out_dir} already holds a trained model: choose another --out, or pass "
                                "--overwrite to replace it once the new one is trained.")
    final_dir, out_dir = out_dir, out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    config.set_seeds()
    frames = with_mode(load_frames(root, profile, verbose=verbose != 0), mode)
    data.require_both_classes(frames)
    profile = fit_to_data(profile, frames)
    name, reason = backbones.resolve_backbone(config.backbone_name(backbone))
    print(f"Backbone: {name} ({reason}).")
    model = detector.build_classifier(name, profile.image_size, augmentations=profile.augmentations)

    started = time.perf_counter()
    stage1 = train_stage1(model, frames["train"], frames["validation"], profile, out_dir, verbose=verbose)
    stage1_seconds = time.perf_counter() - started
    save_trained(model, name, profile, frames, joined_history(stage1), out_dir / "stage1", extra={"mode": mode})
    stage2 = train_stage2(model, frames["train"], frames["validation"], profile, out_dir, n_blocks=n_blocks,
                          verbose=verbose)
    seconds = time.perf_counter() - started
    history = joined_history(stage1, stage2)
    metadata = save_trained(model, name, profile, frames, history, out_dir, extra={
        "mode": mode,
        "training": {"stage1_seconds": round(stage1_seconds, 1), "total_seconds": round(seconds, 1),
                     "stage1_feature_cache": profile.feature_cache,
                     "unfrozen_blocks": stage2.attrs["unfrozen_blocks"],
                     "epochs": {"stage1": len(stage1), "stage2": len(stage2)}},
    })
    replace_folder(out_dir, final_dir)
    print(f"Saved {final_dir}: validation ROC-AUC {metadata['validation']['roc_auc']:.3f}, "
          f"threshold {metadata['threshold']:.3f}, {seconds / 60:.1f} min.")
    return TrainResult(model, history, metadata, frames)


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder `new` in `target`'s place; an old `target` is removed only once `new` is there."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help=f"data root (default: ${config.DATA_ENV} or data/)")
    parser.add_argument("--profile", help=f"smoke, cpu or full (default: ${config.PROFILE_ENV} or cpu)")
    parser.add_argument("--out", help="model folder to write (default: models/<profile>-<data folder>)")
    parser.add_argument("--backbone", help="auto, efficientnet_b0 or efficientnet_lite0 (default: auto)")
    parser.add_argument("--unfreeze-blocks", type=int, help="whole blocks fine-tuned in stage 2")
    parser.add_argument("--mode", default="real+fake", choices=MODES,
                        help="what the model learns 'fake' from: real fakes, self-blended images, or both")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model already in --out, once the new one is trained")
    args = parser.parse_args(argv)
    try:
        train(args.data, args.profile, args.out, args.backbone, n_blocks=args.unfreeze_blocks, mode=args.mode,
              overwrite=args.overwrite)
    except (ValueError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        out = Path(args.out) if args.out else model_dir(args.data, config.get_profile(args.profile), args.mode)
        print(f"\ninterrupted: {out} is as it was; {out.name}{PARTIAL_SUFFIX} keeps the epochs finished so far, "
              "and the same command resumes from there.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(_main())
