"""The detector's graph, freezing rules, metric and the two training stages (tiny runs)."""
import os
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from helpers import cli, config, data, model_folders, saving, train
from helpers import classifier
from tests.conftest import write_jpeg


@pytest.fixture(scope="module")
def lite0():
    """An untrained Lite0 detector at 64 px: enough to check structure, fast to build."""
    return classifier.build_classifier("efficientnet_lite0", image_size=64, weights=None)


def test_graph_is_flat_with_stable_names(lite0):
    names = [layer.name for layer in lite0.layers]
    assert names[:4] == ["image", "augment_flip", "augment_rotation", "augment_zoom"]
    assert names[-4:] == ["top_activation", "head_pool", "head_dropout", "prediction"]
    assert not any(isinstance(layer, keras.Model) for layer in lite0.layers), "no nested backbone model"
    assert lite0.output.shape == (None, 2)


def test_input_is_raw_pixels_rescaled_once_inside_the_backbone(lite0):
    rescalers = [layer for layer in lite0.layers if isinstance(layer, keras.layers.Rescaling)]
    assert len(rescalers) == 1 and rescalers[0].name == "rescaling"
    assert rescalers[0].scale == pytest.approx(1 / 128)  # Lite0: (x - 127) / 128, on 0-255 input


def test_augmentation_acts_only_in_training(lite0):
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    features = classifier.feature_extractor(lite0)
    np.testing.assert_allclose(features(images, training=False), features(images, training=False))
    assert not np.allclose(features(images, training=True), features(images, training=False))


def test_stage1_trains_only_the_head(lite0):
    classifier.freeze_backbone(lite0)
    trainable = {layer.name for layer in lite0.layers if layer.trainable_weights}
    assert trainable == {"prediction"}


def test_stage2_unfreezes_whole_blocks_and_keeps_batchnorm_frozen(lite0):
    chosen = classifier.unfreeze_top_blocks(lite0, 2)
    assert chosen == ["top", "block7a", "block6d"]
    trainable = [layer for layer in lite0.layers if layer.trainable_weights]
    prefixes = {layer.name.split("_")[0] for layer in trainable}
    assert prefixes == {"top", "block7a", "block6d", "prediction"}
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    block6d = [layer for layer in lite0.layers if layer.name.startswith("block6d_") and layer.weights]
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in block6d)
    assert not lite0.get_layer("block6c_project_conv").trainable
    with pytest.raises(ValueError, match="between 0 and 16"):
        classifier.unfreeze_top_blocks(lite0, 17)
    classifier.freeze_backbone(lite0)


def test_the_capstones_top_layers_cut_a_block_and_free_batchnorm(lite0):
    chosen = classifier.unfreeze_top_layers(lite0, 30)
    assert len(chosen) == 30 and chosen[0] == "top_activation"
    trainable = [layer for layer in classifier.backbone_layers(lite0) if layer.trainable]
    assert [layer.name for layer in trainable][::-1] == chosen
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert lite0.get_layer("block6c_project_conv").trainable and not lite0.get_layer("block6c_expand_conv").trainable
    with pytest.raises(ValueError, match="n_layers must be between"):
        classifier.unfreeze_top_layers(lite0, 10_000)
    classifier.freeze_backbone(lite0)


def test_pixel_scale_adds_the_capstones_rescaling_before_the_backbone():
    model = classifier.build_classifier("efficientnet_lite0", image_size=64, weights=None, pixel_scale=1 / 255)
    names = [layer.name for layer in model.layers]
    assert names.index(classifier.INPUT_RESCALING_LAYER) == names.index("rescaling") - 1
    assert model.get_layer(classifier.INPUT_RESCALING_LAYER).scale == pytest.approx(1 / 255)


def test_the_feature_cache_key_follows_the_backbones_weights_and_input_scaling():
    first, again = (classifier.build_classifier("efficientnet_lite0", 64) for _ in range(2))
    fingerprint = train.extractor_fingerprint(classifier.feature_extractor(first))
    assert train.extractor_fingerprint(classifier.feature_extractor(again)) == fingerprint
    again.get_layer("top_conv").kernel.assign(again.get_layer("top_conv").kernel * 1.01)
    assert train.extractor_fingerprint(classifier.feature_extractor(again)) != fingerprint
    scaled = classifier.build_classifier("efficientnet_lite0", 64, pixel_scale=1 / 255)
    assert train.extractor_fingerprint(classifier.feature_extractor(scaled)) != fingerprint


def test_fake_auc_matches_scikit_learn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    p_fake = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    metric = classifier.FakeAUC(num_thresholds=2000)
    metric.update_state(labels, np.stack([1 - p_fake, p_fake], axis=1))
    assert float(metric.result()) == pytest.approx(roc_auc_score(labels, p_fake), abs=2e-3)


def test_head_model_shares_the_detectors_weights(lite0):
    head = classifier.head_model(lite0)
    assert head.get_layer("prediction") is lite0.get_layer("prediction")


# ----------------------------------------------------------------------------- tiny training runs
@pytest.fixture(scope="module")
def smoke_frames(dfdc):
    frame = data.subset(data.index_dataset(dfdc), config.get_profile("smoke"))
    return {split: frame[frame["split"] == split].reset_index(drop=True) for split in data.SPLITS}


def test_stage1_with_feature_cache_learns_and_caches(smoke_frames, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    profile = config.get_profile("smoke")
    model = classifier.build_classifier("efficientnet_lite0", profile.image_size)
    before = model.get_layer("prediction").get_weights()[0].copy()
    history = train.train_stage1(model, smoke_frames["train"], smoke_frames["validation"], profile,
                                 tmp_path / "run", verbose=0)
    assert list(history["stage"]) == ["stage1"] and "val_auc" in history
    assert not np.allclose(before, model.get_layer("prediction").get_weights()[0])
    assert len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 2  # train and validation
    assert (tmp_path / "run" / "log_stage1.csv").is_file()


def _same_weights(first, second) -> bool:
    """Whether two lists of weight arrays are identical, bit for bit."""
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def test_timing_the_fast_path_leaves_the_model_as_it_was(smoke_frames):
    profile = config.get_profile("smoke")
    model = classifier.build_classifier("efficientnet_lite0", profile.image_size, weights=None)
    before = [w.copy() for w in model.get_weights()]
    times = train.stage1_epoch_times(model, smoke_frames["train"], profile)
    assert (times["seconds"] > 0).all()
    assert _same_weights(before, model.get_weights())


def test_the_heads_starting_weights_come_from_the_seed_alone():
    first = classifier.build_classifier("efficientnet_lite0", 64, weights=None).get_layer("prediction").get_weights()
    np.random.rand(3), keras.random.uniform((3,))  # e.g. a notebook cell that used randomness
    second = classifier.build_classifier("efficientnet_lite0", 64, weights=None).get_layer("prediction").get_weights()
    assert _same_weights(first, second)


def test_a_stage_trains_the_same_model_whatever_ran_before_and_after_reloading(smoke_frames, tmp_path):
    profile = config.get_profile("smoke")
    built = classifier.build_classifier("efficientnet_lite0", profile.image_size, weights=None)
    saving.save_model(built, tmp_path / "start", {"backbone": "efficientnet_lite0", "image_size": profile.image_size,
                                                 "class_names": list(data.CLASS_NAMES), "threshold": 0.5})
    reloaded, _ = saving.load_model(tmp_path / "start", verbose=False)
    start = [w.copy() for w in built.get_weights()]
    results = []
    for run, model in enumerate((built, reloaded)):
        np.random.rand(run), keras.random.uniform((run + 1,))  # randomness drawn before, differently each run
        model(np.zeros((2, profile.image_size, profile.image_size, 3)), training=True)  # advances dropout's stream
        train.train_stage2(model, smoke_frames["train"], smoke_frames["validation"], profile, tmp_path / str(run),
                           epochs=1, verbose=0)
        results.append(model.get_weights())
    assert not _same_weights(start, results[0])
    assert _same_weights(*results), "the same start must train the same weights"


def test_image_size_follows_the_data_when_it_can():
    cpu, smoke = config.get_profile("cpu"), config.get_profile("smoke")

    def frames(*sizes):
        return {"train": pd.DataFrame({"width": [w for w, _ in sizes], "height": [h for _, h in sizes]})}

    assert train.fit_to_data(cpu, frames((256, 256), (256, 256))).image_size == 256  # no resampling
    assert train.fit_to_data(cpu, frames((256, 256), (224, 224))).image_size == cpu.image_size  # mixed
    assert train.fit_to_data(cpu, frames((300, 200))).image_size == cpu.image_size  # not square
    assert train.fit_to_data(cpu, frames((1024, 1024))).image_size == cpu.image_size  # too costly
    assert train.fit_to_data(smoke, frames((256, 256))).image_size == 96  # smoke stays small


def _file_hashes(folder) -> dict:
    import hashlib

    return {path.relative_to(folder): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_training_never_replaces_a_model_unasked_nor_half_way(trained_model_dir, dfdc, tmp_path, monkeypatch, capsys):
    import shutil

    from helpers.errors import FolderExistsError

    out = tmp_path / "model"
    shutil.copytree(trained_model_dir, out)
    before = _file_hashes(out)
    with pytest.raises(FolderExistsError, match="--overwrite"):
        train.train(dfdc, "smoke", out, backbone="efficientnet_lite0", verbose=0)
    assert cli.main(["train", "--data", str(dfdc), "--profile", "smoke", "--out", str(out)]) == 2
    assert "already holds a trained model" in capsys.readouterr().err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_stage2", interrupted)
    with pytest.raises(KeyboardInterrupt, match=f"{out} is as it was; model{model_folders.PARTIAL_SUFFIX} keeps the epochs"):
        train.train(dfdc, "smoke", out, backbone="efficientnet_lite0", verbose=0, overwrite=True)
    assert _file_hashes(out) == before, "an interrupted run leaves the old model as it was"
    assert (tmp_path / f"model{model_folders.PARTIAL_SUFFIX}" / "stage1" / saving.SIDECAR_FILE).is_file()

    monkeypatch.undo()
    train.train(dfdc, "smoke", out, backbone="efficientnet_lite0", verbose=0, overwrite=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
    assert _file_hashes(out) != before and (out / saving.SIDECAR_FILE).is_file()


def test_ctrl_c_in_the_command_line_says_what_was_kept(dfdc, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_stage1", interrupted)
    out = tmp_path / "model"
    assert cli.main(["train", "--data", str(dfdc), "--profile", "smoke", "--out", str(out),
                                     "--backbone", "efficientnet_lite0"]) == 130
    message = capsys.readouterr().err
    assert message.strip() == f"interrupted: no model was saved in {out}."
    assert not out.exists()


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="file names must be Unicode there")
def test_the_command_line_trains_on_a_name_that_is_not_utf8_within_a_time_budget(flat_root, tmp_path, capsys):
    write_jpeg(Path(os.fsdecode(os.fsencode(flat_root / "fake") + b"/bad\xff.jpg")), seed=3)
    out = tmp_path / "model"
    arguments = ["--data", str(flat_root), "--profile", "smoke", "--out", str(out), "--backbone", "efficientnet_lite0"]
    with pytest.raises(SystemExit) as refused:  # argparse refuses it, before anything runs
        cli.main(["train", *arguments] + ["--time-budget", "0"])
    assert refused.value.code == 2
    assert "argument --time-budget: expected a finite number above 0, not '0'" in capsys.readouterr().err
    assert cli.main(["train", *arguments] + ["--time-budget", "0.001"]) == 0
    training = saving.read_metadata(out)["training"]
    assert training["stopped_by_time_budget"] == "stage1" and training["epochs"] == {"stage1": 1, "stage2": 0}
    assert "ran out in stage1" in capsys.readouterr().out
