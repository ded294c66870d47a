"""The `full` profile's GPU settings, checked on a CPU at smoke size: mixed precision, two devices,
the time budget, resuming after an interruption, and the input pipeline's decoding.

The data is a tiny folder of random-noise JPEGs in the Kaggle layout: these tests check how training
runs (dtypes, devices, epochs, files), not what it learns.
"""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
import zlib

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import config, data, model_folders, pipeline, saving, train
from helpers import classifier
from helpers.images import load_resized
from tests.conftest import write_jpeg

SIZE = 32  # pixels: the smallest input the backbones take whole (five stride-2 steps down to 1x1)
BACKBONE = "efficientnet_lite0"  # its ImageNet weights ship with the package: no download


@pytest.fixture(scope="module")
def noise_root(tmp_path_factory):
    """Train/Validation/Test x Real/Fake, 8 random-noise JPEGs of SIZE px in each."""
    root = tmp_path_factory.mktemp("noise") / "root"
    for split in ("Train", "Validation", "Test"):
        for label in ("Real", "Fake"):
            for i in range(8):
                write_jpeg(root / split / label / f"{label}_{i}.jpg", seed=zlib.crc32(f"{split}{label}{i}".encode()),
                           size=SIZE)
    return root


def full_at_smoke_size(**changes) -> config.Profile:
    """The `full` profile's settings (stage 1 on images, augmentation, backups) on a few tiny images."""
    small = dict(image_size=SIZE, native_size=False, max_per_class=8, balance_classes=True, batch_size=4,
                 stage1_epochs=2, stage2_epochs=2, unfreeze_blocks=1)
    return dataclasses.replace(config.get_profile("full"), **{**small, **changes})


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


# ----------------------------------------------------------------------------- mixed precision
def test_mixed_precision_is_for_gpus_only():
    import tensorflow as tf

    assert config.get_profile("full").mixed_precision
    assert not config.get_profile("smoke").mixed_precision and not config.get_profile("cpu").mixed_precision
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert train.uses_mixed_precision(config.get_profile("full")) == has_gpu
    assert not train.uses_mixed_precision(config.get_profile("cpu"))


def test_a_mixed_precision_model_computes_in_float16_answers_in_float32_and_saves(tmp_path):
    model = classifier.build_classifier(BACKBONE, SIZE, weights=None, mixed_precision=True)
    assert keras.config.dtype_policy().name == "float32", "the global policy is put back after building"
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers[1:]}  # after the input
    assert policies.pop(classifier.OUTPUT_LAYER) == "float32"
    assert set(policies.values()) == {"mixed_float16"}
    conv = model.get_layer("top_conv")
    assert (conv.compute_dtype, conv.kernel.dtype) == ("float16", "float32")  # float32 weights, float16 maths
    assert model.get_layer(classifier.LAST_CONV_LAYER).output.dtype == "float16"
    assert model.output.dtype == "float32"

    classifier.unfreeze_top_blocks(model, 1)
    classifier.compile_model(model, 1e-3)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = model.get_layer("top_conv").kernel.numpy().copy()
    fitted = model.fit(random_images(8), np.arange(8) % 2, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(fitted.history["loss"]).all()
    assert not np.array_equal(before, model.get_layer("top_conv").kernel.numpy())
    images = random_images(4, seed=1)
    scores = model.predict(images, verbose=0)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)

    saving.save_model(model, tmp_path / "mixed", {"backbone": BACKBONE, "image_size": SIZE,
                                                 "class_names": list(data.CLASS_NAMES), "threshold": 0.5})
    loaded, _ = saving.load_model(tmp_path / "mixed", verbose=False)
    assert {layer.name: layer.dtype_policy.name for layer in loaded.layers[1:]} == {
        **policies, classifier.OUTPUT_LAYER: "float32"}
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), scores)
    classifier.compile_model(loaded, 1e-4)  # loaded, the model's own policy is float32: the layers decide
    assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"


def test_a_float32_copy_has_the_same_layers_and_weights_and_converts_back_exactly():
    mixed = classifier.build_classifier(BACKBONE, SIZE, weights=None, mixed_precision=True)
    classifier.unfreeze_top_blocks(mixed, 1)
    plain = classifier.with_dtype_policy(mixed, "float32")
    assert {layer.dtype_policy.name for layer in plain.layers} == {"float32"}
    assert [(layer.name, layer.trainable) for layer in plain.layers] == [(layer.name, layer.trainable)
                                                                       for layer in mixed.layers]
    assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), mixed.get_weights()))
    images = random_images(4, seed=2)
    scores = mixed.predict(images, verbose=0)
    np.testing.assert_allclose(plain.predict(images, verbose=0), scores, atol=5e-3)  # float16 rounding only
    again = classifier.with_dtype_policy(plain, classifier.MIXED_PRECISION)
    np.testing.assert_array_equal(again.predict(images, verbose=0), scores)


def test_the_global_policy_comes_back_even_when_building_fails():
    with pytest.raises(ValueError):
        classifier.build_classifier("no_such_backbone", SIZE, weights=None, mixed_precision=True)
    assert keras.config.dtype_policy().name == "float32"
    plain = classifier.build_classifier(BACKBONE, SIZE, weights=None)
    assert not classifier.is_mixed_precision(plain)
    classifier.compile_model(plain, 1e-3)
    assert isinstance(plain.optimizer, keras.optimizers.Adam)


# ----------------------------------------------------------------------------- two devices
TWO_DEVICES = textwrap.dedent("""
    import dataclasses, json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]  # before TensorFlow sets up its devices
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from helpers import config, saving, train

    root, out = sys.argv[1:]
    profile = dataclasses.replace(config.get_profile("smoke"), image_size=32, max_per_class=8, batch_size=4)
    strategy = train.distribution_strategy("CPU")
    result = train.train(root, profile, out, backbone="efficientnet_lite0", verbose=0, strategy=strategy)
    loaded, metadata = saving.load_model(out, verbose=False)
    images = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    print(json.dumps({
        "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
        "variable": type(result.model.get_layer("prediction").kernel.value).__name__,
        "training": metadata["training"], "history_stages": result.history["stage"].tolist(),
        "same_weights": all(np.array_equal(a, b) for a, b in zip(result.model.get_weights(), loaded.get_weights())),
        "prediction_gap": float(np.abs(result.model.predict(images, verbose=0)
                                       - loaded.predict(images, verbose=0)).max()),
    }))
""")


def test_training_on_two_devices_mirrors_the_model_and_doubles_the_batch(noise_root, tmp_path):
    env = {**os.environ, config.STORAGE_ENV: str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(noise_root), str(out)], capture_output=True,
                         text=True, env=env, cwd=config.REPO_ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["strategy"] == "MirroredStrategy" and report["replicas"] == 2
    assert report["variable"] == "MirroredVariable"
    assert report["training"]["replicas"] == 2 and report["training"]["global_batch_size"] == 8
    assert report["history_stages"] == ["stage1", "stage2"]
    assert report["same_weights"] and report["prediction_gap"] < 1e-5
    assert (out / saving.SIDECAR_FILE).is_file() and not (tmp_path / f"model{model_folders.PARTIAL_SUFFIX}").exists()


def test_one_device_keeps_the_default_strategy_and_the_profiles_batch():
    import tensorflow as tf

    strategy = train.distribution_strategy("CPU")  # this process has one CPU device
    assert strategy is tf.distribute.get_strategy() and strategy.num_replicas_in_sync == 1
    assert train.global_batch_size(config.get_profile("full")) == config.get_profile("full").batch_size


# ----------------------------------------------------------------------------- resume and time budget
class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated disconnect after the first epoch")


def interrupting(stage: str):
    """A `train._callbacks` that also cuts `stage` off after its first epoch of this run."""
    original = train._callbacks

    def callbacks(out_dir, name, *args, **kwargs):
        chosen, best = original(out_dir, name, *args, **kwargs)
        return (chosen + [_InterruptAfterFirstEpoch()] if name == stage else chosen), best

    return callbacks


def test_full_settings_resume_each_stage_after_a_disconnect(noise_root, tmp_path, monkeypatch):
    profile = full_at_smoke_size()
    out = tmp_path / "model"
    partial = tmp_path / f"model{model_folders.PARTIAL_SUFFIX}"

    def run():
        return train.train(noise_root, profile, out, backbone=BACKBONE, verbose=0, mixed_precision=True)

    monkeypatch.setattr(train, "_callbacks", interrupting("stage1"))
    with pytest.raises(KeyboardInterrupt):
        run()
    assert (partial / model_folders.CHECKPOINT_DIR / "stage1_backup").is_dir() and not out.exists()

    monkeypatch.setattr(train, "_callbacks", interrupting("stage2"))
    with pytest.raises(KeyboardInterrupt):
        run()  # stage 1 resumes at its second epoch and finishes; stage 2 is cut off after its first
    assert list(pd.read_csv(partial / "log_stage1.csv")["epoch"]) == [0, 1], "stage 1 went on from epoch 2"
    assert list(pd.read_csv(partial / "log_stage2.csv")["epoch"]) == [0], "stage 2 began at its first epoch"
    settings = saving.read_metadata(partial / "stage1")["training"]["settings"]
    assert settings["dtype_policy"] == "mixed_float16" and settings["batch_size"] == profile.batch_size
    assert model_folders.finished_stage1(partial / "stage1", {**settings, "stage1_lr": 0.5}) is None, "other settings"

    monkeypatch.undo()
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    stage2, fine_tuned = train.train_stage2, []

    def recording_stage2(model, *args, **kwargs):
        frame = stage2(model, *args, **kwargs)
        fine_tuned.append((classifier.is_mixed_precision(model), type(model.optimizer).__name__))
        return frame

    monkeypatch.setattr(train, "train_stage2", recording_stage2)
    result = run()  # stage 1 is loaded, stage 2 resumes at its second epoch
    assert fine_tuned == [(True, "LossScaleOptimizer")], "the loaded stage 1 fine-tunes in mixed precision"
    assert list(pd.read_csv(out / "log_stage1.csv")["epoch"]) == [0, 1], "stage 1 did not train again"
    assert list(pd.read_csv(out / "log_stage2.csv")["epoch"]) == [0, 1]
    assert result.history.query("stage == 'stage2'")["epoch"].tolist() == [2]
    training = result.metadata["training"]
    assert training["stage1_loaded_from_an_earlier_run"] and training["dtype_policy"] == "mixed_float16"
    assert not partial.exists() and not (out / model_folders.CHECKPOINT_DIR / "stage2_backup").exists()
    loaded, _ = saving.load_model(out, verbose=False)
    assert not classifier.is_mixed_precision(loaded) and not classifier.is_mixed_precision(result.model)
    images = random_images(4)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), result.model.predict(images, verbose=0))
    assert keras.config.dtype_policy().name == "float32"


def test_the_time_budget_stops_after_the_epoch_that_crosses_it(noise_root, tmp_path):
    profile = dataclasses.replace(config.get_profile("smoke"), image_size=SIZE, max_per_class=8, batch_size=4,
                                  stage1_epochs=5, time_budget_s=0.0)
    result = train.train(noise_root, profile, tmp_path / "model", backbone=BACKBONE, verbose=0)
    training = result.metadata["training"]
    assert training["stopped_by_time_budget"] == "stage1" and training["time_budget_s"] == 0.0
    assert training["epochs"] == {"stage1": 1, "stage2": 0}, "one epoch, then no fine-tuning"
    assert result.history["stage"].tolist() == ["stage1"]
    sidecar = json.loads((tmp_path / "model" / saving.SIDECAR_FILE).read_text())
    assert sidecar["training"]["stopped_by_time_budget"] == "stage1"
    saving.load_model(tmp_path / "model", verbose=False)


def test_the_time_budget_callback_stops_only_once_the_deadline_has_passed():
    def epochs_run(deadline: float) -> tuple[int, bool]:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        budget = train.TimeBudget(deadline)
        history = model.fit(np.ones((4, 3)), np.ones(4), epochs=3, verbose=0, callbacks=[budget])
        return len(history.epoch), budget.stopped

    assert epochs_run(time.monotonic()) == (1, True), "the epoch under way ends, then training stops"
    assert epochs_run(time.monotonic() + 3600) == (3, False)


# ----------------------------------------------------------------------------- the input pipeline
def test_the_pipeline_decodes_every_kind_of_file_as_load_image_does(tmp_path):
    face = Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    rotated = Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90 degrees to show it upright
    files = {"plain.jpg": dict(img=face), "progressive.jpg": dict(img=face, progressive=True),
             "grey.jpg": dict(img=face.convert("L")), "cmyk.jpg": dict(img=face.convert("CMYK")),
             "rotated.jpg": dict(img=face, exif=rotated.tobytes()), "png.png": dict(img=face),
             "larger.jpg": dict(img=face.resize((64, 64)))}
    for name, options in files.items():
        options.pop("img").save(tmp_path / name, **({"quality": 90} if name.endswith(".jpg") else {}), **options)
    frame = pd.DataFrame({"path": [str(tmp_path / name) for name in files], "label": 0})
    images, _ = next(iter(pipeline.make_dataset(frame, 48, batch_size=len(files), cache=False)))
    for name, image in zip(files, images.numpy()):
        np.testing.assert_array_equal(image, load_resized(tmp_path / name, 48), err_msg=name)
