"""Two-stage transfer learning: train the head on a frozen backbone, then fine-tune the top blocks.

    deepfake-lessons train --data DATA_ROOT --profile cpu --out MODEL_DIR    (or python -m helpers train ...)

Stage 1 has a fast path: with the backbone frozen, its pooled features never change, so we compute
them once (and keep them in .cache/features) and train the head on those vectors — seconds instead of
minutes per epoch. What it gives up: augmentation during stage 1, because each image is seen through
one fixed feature vector. Use it when stage 1 is just a warm-up for fine-tuning (the `smoke` and `cpu`
profiles); the `full` profile on a GPU trains stage 1 on images, with augmentation.

On a GPU the `full` profile computes in mixed precision (float16 on the tensor cores, weights and the
output layer in float32). With several GPUs, `train` runs under `tf.distribute.MirroredStrategy`:
one copy of the model per GPU, each global batch split between them, gradients averaged. A profile's
`time_budget_s` ends the run cleanly after the epoch that crosses it, keeping the best epoch's weights.
The model is saved in float32 all the same. A run that is cut off (a Colab disconnect, Ctrl-C)
resumes from its last finished epoch when the same command runs again: a finished stage 1 is loaded
back, an unfinished stage from its backup.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from helpers import backbones, config, data, faces, files, metrics, model_folders, pipeline, progress, saving
from helpers import classifier
from helpers.errors import BadArgumentError

@dataclass
class TrainResult:
    """What `train` returns: the model, the joined history of both stages, and the saved sidecar."""

    model: object
    history: pd.DataFrame
    metadata: dict
    frames: dict = field(default_factory=dict)


MODES = ("real+fake", "real+sbi", "real+fake+sbi")  # what the detector learns "fake" from (lesson 08)


def distribution_strategy(device_type: str = "GPU"):
    """MirroredStrategy over the visible devices of `device_type` when there are several, else the default.

    Build, compile and train a model inside `strategy.scope()`. The learning rates stay as the profile
    sets them whatever the number of devices, while the global batch grows with it (`global_batch_size`).
    We do not scale them linearly: that rule (Goyal et al., 2017) was found for SGD with momentum and
    needs a warm-up; Adam's step size hardly depends on the gradient's scale, and our rates are small on
    purpose, to fine-tune pretrained weights without wrecking them. So two GPUs take steps of the same
    size as one, half as many per epoch, each on a gradient averaged over twice the images.
    """
    import tensorflow as tf

    devices = tf.config.list_logical_devices(device_type)
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def global_batch_size(profile: config.Profile) -> int:
    """The images one training step sees: the profile's batch on each device of the current strategy."""
    import tensorflow as tf

    return profile.batch_size * tf.distribute.get_strategy().num_replicas_in_sync


def uses_mixed_precision(profile: config.Profile) -> bool:
    """Whether `train` builds the model in mixed precision: the profile asks for it and a GPU is visible.

    float16 runs on a GPU's tensor cores (a Colab T4's peak is 65 TFLOPS in float16, 8 in float32) and
    halves the memory of activations; a CPU emulates it, slower than float32, so it stays off there.
    """
    import tensorflow as tf

    return profile.mixed_precision and bool(tf.config.list_physical_devices("GPU"))


def dataset(frame: pd.DataFrame, profile: config.Profile, shuffle: bool = False, cache: bool = False):
    """The profile's tf.data pipeline for `frame`; synthetic rows (self-blended images) are made on the fly.

    Batches hold `global_batch_size(profile)` images: the profile's batch on one device, more on several.
    """
    transform = None
    if "transform_seed" in frame and (frame["transform_seed"] >= 0).any():
        from helpers import sbi

        transform = sbi.pseudo_fake
    return pipeline.make_dataset(frame, profile.image_size, global_batch_size(profile), shuffle=shuffle, cache=cache,
                             transform=transform)


def with_mode(frames: dict[str, pd.DataFrame], mode: str, seed: int = config.SEED) -> dict[str, pd.DataFrame]:
    """Training and validation frames for a mode; the test split is always left as it is.

    real+fake: the data as it is. real+sbi: real images and self-blended pseudo-fakes made from them,
    no real fake at all. real+fake+sbi: both kinds of fakes.
    """
    if mode not in MODES:
        raise BadArgumentError(f"Unknown training mode {mode!r}: choose one of {', '.join(MODES)}.")
    if mode == "real+fake":
        return frames
    from helpers import sbi

    result = dict(frames)
    for split in ("train", "validation"):
        frame = frames[split] if mode == "real+fake+sbi" else frames[split][frames[split]["label"] == 0]
        result[split] = sbi.add_pseudo_fakes(frame.reset_index(drop=True), seed=seed)
        result[split].attrs.update(frames[split].attrs)
    return result


def score_frame(model, frame: pd.DataFrame, profile: config.Profile) -> np.ndarray:
    """p(fake) for every image of `frame`, in order, through the training input pipeline (a Keras model).

    `detector.Detector.p_fake` does the same for a saved model and images already in memory.
    """
    return _outputs(model, frame, profile)[:, 1]


def _outputs(model, frame: pd.DataFrame, profile: config.Profile) -> np.ndarray:
    """`model`'s outputs for every image of `frame`, in order (`classifier.inference_function`, not `predict`)."""
    forward = classifier.inference_function(model)
    batches = [forward(images).numpy() for images, _ in dataset(frame, profile)]
    return np.concatenate(batches) if batches else np.zeros((0, *model.output_shape[1:]), np.float32)


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


def extract_features(extractor, frame: pd.DataFrame, profile: config.Profile) -> np.ndarray:
    """Pooled backbone features of every image, computed once and cached on disk (.cache/features).

    `extractor` is `classifier.feature_extractor(model)`, made once for all the splits: every new Keras
    model traces its own predict function, and TensorFlow warns about retracing after a few of them.
    """
    path = _feature_cache_path(extractor, frame, profile.image_size)
    if path.is_file():
        return np.load(path)
    features = _outputs(extractor, frame, profile)
    files.write_atomically(path, lambda temporary: np.save(temporary, features))  # two processes may race here
    return features


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends past `deadline` (a `time.monotonic()` value).

    The epoch under way is finished, not cut off, so the checkpoint of the best epoch stays valid.
    """

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() >= self.deadline:
            self.model.stop_training = True
            self.stopped = True


def _callbacks(out_dir: Path, stage: str, patience: int, resumable: bool, deadline: float | None = None):
    """Best checkpoint on validation ROC-AUC, early stopping, a CSV log, (optionally) resume and a time budget."""
    checkpoints = out_dir / model_folders.CHECKPOINT_DIR
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
    if deadline is not None:
        callbacks.append(TimeBudget(deadline))
    return callbacks, best


def stage_history(history, stage: str, callbacks=()) -> pd.DataFrame:
    """A stage's `fit` history as a frame: one row per epoch, with the stage name and epoch number.

    `attrs["stopped_by_time_budget"]` says whether a TimeBudget among `callbacks` ended the stage.
    """
    frame = pd.DataFrame(history.history)
    frame.insert(0, "stage", stage)
    frame.insert(1, "epoch", np.asarray(history.epoch) + 1)
    frame.attrs["stopped_by_time_budget"] = any(isinstance(c, TimeBudget) and c.stopped for c in callbacks)
    return frame


def restart_randomness(model, seed: int = config.SEED) -> None:
    """Reseed everything with `seed` and restart the model's own random streams (dropout, augmentation layers).

    Then a training stage's result depends on the model's weights, the data and the profile only, not
    on what drew random numbers before it (lesson 03's timing and probe cells, an earlier run in the
    same notebook) nor on whether the model was just built or loaded from disk. Keras layers keep
    their random state in "seed_generator_state" variables, [seed, counter], which the global seed
    does not touch: each gets seed `seed` + its position in the model, counter 0.
    """
    config.set_seeds(seed)
    states = [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]
    for position, state in enumerate(states):
        state.assign([seed + position, 0])


def forget_resumed_epoch(model) -> None:
    """Let the model's next `fit` start at epoch 1 again.

    When Keras' BackupAndRestore resumes a fit it sets `model._initial_epoch` (Keras 3.15) and never
    clears it, so the same model's next fit, e.g. stage 2 after a resumed stage 1, would start late
    and skip that many epochs. A backup of the new fit, if any, sets it again.
    """
    model._initial_epoch = None


def train_stage1(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile, out_dir: Path,
                 use_feature_cache: bool | None = None, verbose: int | str = "auto",
                 deadline: float | None = None, seed: int = config.SEED) -> pd.DataFrame:
    """Stage 1: backbone frozen, head trained at profile.stage1_lr. Returns the epoch history.

    Like stage 2 it starts from fresh random streams (`restart_randomness`), so a lesson and
    `deepfake-lessons train` train the same model. Past `deadline` (time.monotonic()), the stage
    ends after its current epoch. Under a distribution strategy, call it inside its scope. Another
    `seed` trains the same recipe again with other random draws (lesson 04 measures that spread).
    """
    restart_randomness(model, seed)
    forget_resumed_epoch(model)
    classifier.freeze_backbone(model)
    use_feature_cache = profile.feature_cache if use_feature_cache is None else use_feature_cache
    weights = data.class_weights(train["label"])
    callbacks, best = _callbacks(out_dir, "stage1", patience=8 if use_feature_cache else 3,
                                 resumable=not use_feature_cache, deadline=deadline)
    if use_feature_cache:
        head = classifier.compile_model(classifier.head_model(model), profile.stage1_lr)
        extractor = classifier.feature_extractor(model)
        x_train = extract_features(extractor, train, profile)
        x_val = extract_features(extractor, val, profile)
        history = head.fit(x_train, train["label"].to_numpy(), validation_data=(x_val, val["label"].to_numpy()),
                           epochs=profile.stage1_epochs, batch_size=global_batch_size(profile), class_weight=weights,
                           callbacks=callbacks, shuffle=True, verbose=verbose)
        head.load_weights(best)
    else:
        classifier.compile_model(model, profile.stage1_lr)
        history = model.fit(dataset(train, profile, shuffle=True, cache=profile.cache_images),
                            validation_data=dataset(val, profile, cache=profile.cache_images),
                            epochs=profile.stage1_epochs, class_weight=weights, callbacks=callbacks,
                            shuffle=False, verbose=verbose)  # the dataset shuffles itself
        model.load_weights(best)
    return stage_history(history, "stage1", callbacks)


def train_stage2(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile, out_dir: Path,
                 n_blocks: int | None = None, epochs: int | None = None, unfreeze=None,
                 verbose: int | str = "auto", deadline: float | None = None,
                 seed: int = config.SEED) -> pd.DataFrame:
    """Stage 2: unfreeze the top whole blocks (BatchNorm frozen), recompile at profile.stage2_lr, fine-tune.

    `unfreeze(model) -> names` replaces the block rule (lesson 04's ladder passes the original
    project's "top 30 layers"). `deadline` and `seed` work as in `train_stage1`.
    """
    restart_randomness(model, seed)
    if unfreeze is None:
        blocks = classifier.unfreeze_top_blocks(model, profile.unfreeze_blocks if n_blocks is None else n_blocks)
    else:
        blocks = unfreeze(model)
    classifier.compile_model(model, profile.stage2_lr)
    forget_resumed_epoch(model)
    callbacks, best = _callbacks(out_dir, "stage2", patience=4, resumable=True, deadline=deadline)
    history = model.fit(dataset(train, profile, shuffle=True, cache=profile.cache_images),
                        validation_data=dataset(val, profile, cache=profile.cache_images),
                        epochs=profile.stage2_epochs if epochs is None else epochs,
                        class_weight=data.class_weights(train["label"]), callbacks=callbacks,
                        shuffle=False, verbose=verbose)  # the dataset shuffles itself
    if best.is_file():
        model.load_weights(best)
    frame = stage_history(history, "stage2", callbacks)
    frame.attrs["unfrozen_blocks"] = blocks
    return frame


def stage1_epoch_times(model, train: pd.DataFrame, profile: config.Profile) -> pd.DataFrame:
    """Measure the fast path: one stage-1 epoch on images vs extracting features once + one epoch on them.

    The model's weights are put back afterwards, so timing it does not change what stage 1 then learns.
    """
    classifier.freeze_backbone(model)
    weights = model.get_weights()
    images = dataset(train, profile)
    started = time.perf_counter()
    features = classifier.feature_extractor(model).predict(images, verbose=0)
    extract = time.perf_counter() - started
    head = classifier.compile_model(classifier.head_model(model), profile.stage1_lr)
    started = time.perf_counter()
    head.fit(features, train["label"].to_numpy(), epochs=1, batch_size=profile.batch_size, verbose=0)
    head_epoch = time.perf_counter() - started
    classifier.compile_model(model, profile.stage1_lr)
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


def crop_style(train: pd.DataFrame) -> dict | None:
    """How the training images frame their faces (helpers.faces), for cropping new photos the same way.

    None, with a line saying why, when too few of them show a face the detector finds.
    """
    try:
        return faces.crop_style_of(train["path"]).as_dict()
    except faces.TooFewFacesError as err:
        print(f"{err} Predictions on photos will score whole images.")
        return None


def save_trained(model, backbone: str, profile: config.Profile, frames: dict, history: pd.DataFrame,
                 out_dir: Path, extra: dict | None = None) -> dict:
    """Choose the threshold on validation data, then save the model folder with its sidecar and history.

    A mixed-precision model is saved as its float32 copy (`classifier.with_dtype_policy`).
    """
    if classifier.is_mixed_precision(model):
        model = classifier.with_dtype_policy(model, "float32")
    val = frames["validation"]
    val_scores = score_frame(model, val, profile)
    threshold = metrics.balanced_threshold(val["label"], val_scores)
    metadata = {
        "backbone": backbone,
        "image_size": profile.image_size,
        "class_names": list(config.CLASS_NAMES),
        "threshold": threshold,
        "threshold_rule": "equal recall of real and fake on the validation split",
        "profile": profile.name,
        "augmentations": [layer.name.removeprefix("augment_") for layer in model.layers
                          if layer.name.startswith("augment_")],
        "data": {"root": val.attrs.get("root"), "layout": val.attrs.get("layout"),
                 "fingerprint": data.fingerprint(frames["train"]),
                 "counts": {split: data.counts(frame).loc[split].to_dict() for split, frame in frames.items()}},
        "validation": metrics.summary(val["label"], val_scores, threshold),
        faces.STYLE_KEY: crop_style(frames["train"]),
        **(extra or {}),
    }
    saving.save_model(model, out_dir, metadata)
    history.to_csv(Path(out_dir) / model_folders.HISTORY_FILE, index=False)
    files.write_json(Path(out_dir) / saving.TRAINING_FILES, {split: data.content_hashes(frames[split])
                                                       for split in ("train", "validation")})
    return metadata


def _stage1_settings(profile: config.Profile, backbone: str, mode: str, frames: dict, mixed: bool) -> dict:
    """What stage 1's result depends on, as JSON keeps it: a finished stage 1 is reused only if all agree."""
    settings = {key: value for key, value in profile.as_dict().items() if key not in ("time_budget_s", "description")}
    settings.update(backbone=backbone, mode=mode, data=data.fingerprint(frames["train"]),
                    dtype_policy=classifier.MIXED_PRECISION if mixed else "float32")
    return json.loads(json.dumps(settings))


def fit_verbosity() -> int:
    """Keras fit's `verbose` for "auto": a progress bar (1) in a notebook or a terminal, else one line per epoch (2).

    A log file would otherwise fill with the bar's carriage-return updates.
    """
    return 1 if progress.watched(sys.stdout) else 2


def train(root=None, profile: config.Profile | str | None = None, out_dir=None, backbone: str | None = None,
          n_blocks: int | None = None, mode: str = "real+fake", verbose: int | str = "auto",
          overwrite: bool = False, mixed_precision: bool | None = None, strategy=None,
          stop_after: str | None = None) -> TrainResult:
    """Both stages on a data root; saves the stage-1 model in OUT/stage1 and the final model in OUT.

    The run trains in OUT.partial and only then takes OUT's place (`helpers.model_folders`), so OUT
    always holds a whole model: an interrupted run leaves the old one as it was, and running the same
    command again resumes in OUT.partial: a finished stage 1 is loaded back, an unfinished stage
    continues after its last finished epoch. A model already in OUT is replaced only with `overwrite`,
    once the new one is complete; anything else in OUT is refused (FolderExistsError), before training.
    `stop_after="stage1"` saves the stage-1 model as OUT itself and stops there (lesson 04 starts from it).

    `root`, `profile` and `backbone` default to the environment's settings (`helpers.config`), read
    here once. `mixed_precision=None` follows the profile on a GPU (`uses_mixed_precision`); True or
    False forces it. `strategy` defaults to `distribution_strategy()`: every GPU. The profile's
    `time_budget_s` counts from this call: once spent, training stops after the epoch under way (stage
    2 does not start if stage 1 spent it), and the sidecar's `training.stopped_by_time_budget` names the stage.
    """
    if stop_after not in (None, "stage1"):
        raise BadArgumentError(f"stop_after must be None or 'stage1', not {stop_after!r}.")
    root, profile = config.data_root(root), config.get_profile(profile)
    backbone = config.backbone_name(backbone)
    verbose = fit_verbosity() if verbose == "auto" else verbose
    deadline = None if profile.time_budget_s is None else time.monotonic() + profile.time_budget_s
    final_dir = Path(out_dir) if out_dir else model_folders.model_dir(root, profile, mode)
    model_folders.check_output(final_dir, overwrite)
    with model_folders.kept_on_interrupt(final_dir):
        config.set_seeds()
        frames = with_mode(data.load_frames(root, profile, verbose=verbose != 0), mode)
        data.require_both_classes(frames)
        profile = fit_to_data(profile, frames)
        name, reason = backbones.resolve_backbone(backbone)
        print(f"Backbone: {name} ({reason}).")
        mixed = uses_mixed_precision(profile) if mixed_precision is None else mixed_precision
        settings = _stage1_settings(profile, name, mode, frames, mixed)
        out_dir = model_folders.start_partial(final_dir, settings)
        stage1_dir = out_dir if stop_after == "stage1" else out_dir / model_folders.STAGE1_DIR
        strategy = strategy or distribution_strategy()
        with strategy.scope():  # every variable (model, optimizer, metrics) is made on every device
            if mixed or strategy.num_replicas_in_sync > 1:
                print(f"Training in {settings['dtype_policy']} on {strategy.num_replicas_in_sync} device(s), "
                      f"{global_batch_size(profile)} images per step.")
            started = time.perf_counter()
            resumed = model_folders.finished_stage1(stage1_dir, settings)
            if resumed:
                model, stage1, stage1_seconds = resumed
                print(f"Stage 1 was finished by an earlier run: loaded it from {stage1_dir}.")
            else:
                model = classifier.build_classifier(name, profile.image_size, augmentations=profile.augmentations,
                                                  mixed_precision=mixed)
                stage1 = train_stage1(model, frames["train"], frames["validation"], profile, out_dir, verbose=verbose,
                                      deadline=deadline)
                stage1_seconds = time.perf_counter() - started
                metadata = save_trained(model, name, profile, frames, joined_history(stage1), stage1_dir, extra={
                    "mode": mode, "training": {"stage1_seconds": round(stage1_seconds, 1), "settings": settings,
                                               "stopped_by_time_budget": stage1.attrs["stopped_by_time_budget"]}})
            stage2 = None  # not started when stage 1 spent the time budget, or when asked to stop after it
            if stop_after is None and (deadline is None or time.monotonic() < deadline):
                stage2 = train_stage2(model, frames["train"], frames["validation"], profile, out_dir, n_blocks=n_blocks,
                                      verbose=verbose, deadline=deadline)
            stages = [stage1] if stage2 is None else [stage1, stage2]
            seconds = time.perf_counter() - started + (stage1_seconds if resumed else 0.0)  # with the earlier stage 1
            stopped = next((frame["stage"].iloc[0] for frame in stages if frame.attrs["stopped_by_time_budget"]),
                           None)
            if stopped:
                print(f"The time budget of {profile.time_budget_s:g} s ran out in {stopped}: training stopped "
                      f"after that epoch{', before fine-tuning' if stage2 is None else ''}; the best epoch's "
                      "weights are kept.")
            history = joined_history(*stages)
            if mixed:  # what `train` returns is the model it saves
                model = classifier.with_dtype_policy(model, "float32")
            if stop_after is None:
                metadata = save_trained(model, name, profile, frames, history, out_dir, extra={
                    "mode": mode,
                    "training": {"stage1_seconds": round(stage1_seconds, 1), "total_seconds": round(seconds, 1),
                                 "stage1_feature_cache": profile.feature_cache,
                                 "unfrozen_blocks": [] if stage2 is None else stage2.attrs["unfrozen_blocks"],
                                 "epochs": {"stage1": len(stage1), "stage2": 0 if stage2 is None else len(stage2)},
                                 "dtype_policy": settings["dtype_policy"], "replicas": strategy.num_replicas_in_sync,
                                 "global_batch_size": global_batch_size(profile),
                                 "time_budget_s": profile.time_budget_s, "stopped_by_time_budget": stopped,
                                 "stage1_loaded_from_an_earlier_run": bool(resumed)},
                })
            elif resumed:
                metadata = saving.read_metadata(stage1_dir)
        model_folders.replace_folder(out_dir, final_dir)
    print(f"Saved {files.printable(str(final_dir))}: validation ROC-AUC {metadata['validation']['roc_auc']:.3f}, "
          f"threshold {metadata['threshold']:.3f}, {seconds / 60:.1f} min.")
    return TrainResult(model, history, metadata, frames)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (helpers.cli runs it)."""
    from helpers import arguments

    parser.add_argument("--data", help=f"data root (default: ${config.DATA_ENV} or data/)")
    parser.add_argument("--profile", help=f"smoke, cpu or full (default: ${config.PROFILE_ENV} or cpu)")
    parser.add_argument("--out", help="model folder to write (default: models/<profile>-<data folder>)")
    parser.add_argument("--backbone", help="auto, efficientnet_b0 or efficientnet_lite0 (default: auto)")
    parser.add_argument("--unfreeze-blocks", type=int, help="whole blocks fine-tuned in stage 2")
    parser.add_argument("--mode", default="real+fake", choices=MODES,
                        help="what the model learns 'fake' from: real fakes, self-blended images, or both")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model already in --out, once the new one is trained")
    parser.add_argument("--time-budget", type=arguments.positive_float, metavar="SECONDS",
                        help="stop after the epoch that ends past this many seconds (default: the profile's, "
                             "none for smoke, cpu and full)")


def run(args: argparse.Namespace) -> None:
    profile = config.get_profile(args.profile)
    if args.time_budget is not None:  # a finite number above 0: argparse checked it
        profile = dataclasses.replace(profile, time_budget_s=args.time_budget)
    train(args.data, profile, args.out, args.backbone, n_blocks=args.unfreeze_blocks, mode=args.mode,
          overwrite=args.overwrite)
