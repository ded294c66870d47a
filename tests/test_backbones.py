"""Tests for the Keras backbones (EfficientNet-Lite0 from the wheel, EfficientNetB0)."""

import hashlib
import shutil

import keras
import numpy as np
import pytest
from PIL import Image
from skimage import data

from helpers import backbones
from helpers.backbones import (
    BackboneUnavailable,
    block_names,
    build_backbone,
    efficientnet_b0,
    efficientnet_lite0,
    resolve_backbone,
)

LITE0_BLOCKS = ["block1a", "block2a", "block2b", "block3a", "block3b", "block4a", "block4b",
                "block4c", "block5a", "block5b", "block5c", "block6a", "block6b", "block6c",
                "block6d", "block7a"]
ESPRESSO = 967
DOMESTIC_CATS = range(281, 286)


@pytest.fixture(scope="session")
def lite0_home(tmp_path_factory):
    """A Keras home holding the converted Lite0 weights (converted once per session)."""
    home = tmp_path_factory.mktemp("keras_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(home))
        efficientnet_lite0(include_top=True, weights="imagenet")
    return home


@pytest.fixture
def keras_home(lite0_home, tmp_path, monkeypatch):
    """A fresh Keras home for one test, starting with the converted Lite0 cache."""
    home = tmp_path / "keras_home"
    shutil.copytree(lite0_home, home)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch):
    """Make every download fail at once, like a machine without internet."""
    def no_network(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] "
                        "Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", no_network)


def _photo(name):
    """A scikit-image sample photo as a raw 0-255 float 224x224 RGB array."""
    image = Image.fromarray(getattr(data, name)()).resize((224, 224), Image.BILINEAR)
    return np.asarray(image, dtype="float32")


def test_lite0_imagenet_weights_classify_photos(keras_home):
    model = efficientnet_lite0(include_top=True, weights="imagenet")
    coffee, cat = model.predict(np.stack([_photo("coffee"), _photo("chelsea")]), verbose=0)

    assert coffee.argmax() == ESPRESSO
    assert cat.argmax() in DOMESTIC_CATS


def test_lite0_architecture_and_names():
    model = efficientnet_lite0(include_top=False, weights=None)
    names = [layer.name for layer in model.layers]

    assert block_names(model) == LITE0_BLOCKS
    assert names[1] == "rescaling"
    for name in ("stem_conv", "stem_bn", "stem_activation",
                 "top_conv", "top_bn", "top_activation"):
        assert name in names
    assert model.get_layer("top_activation").output.shape[-1] == 1280
    # Lite0 drops squeeze-excite and uses ReLU6 instead of swish.
    assert not [name for name in names if "_se_" in name]
    activations = {layer.activation.__name__ for layer in model.layers
                   if isinstance(layer, keras.layers.Activation)}
    assert activations == {"relu6"}
    assert model.get_layer("block6d_drop").rate == pytest.approx(0.2 * 14 / 16)


def test_b0_and_lite0_share_the_layer_naming():
    b0 = build_backbone("efficientnet_b0", keras.Input((224, 224, 3)), weights=None)
    lite0 = build_backbone("efficientnet_lite0", keras.Input((224, 224, 3)), weights=None)

    assert block_names(b0) == block_names(lite0) == LITE0_BLOCKS
    for model in (b0, lite0):
        assert model.get_layer("top_activation").output.shape[1:] == (7, 7, 1280)


def test_b0_without_network_raises_backbone_unavailable(keras_home, offline):
    with pytest.raises(BackboneUnavailable) as caught:
        efficientnet_b0(include_top=False, weights="imagenet")

    message = str(caught.value)
    assert "could not be downloaded" in message
    assert str(keras_home / "models" / "efficientnetb0_notop.h5") in message
    assert "efficientnet_lite0" in message and "'auto'" in message
    assert isinstance(caught.value.__cause__, Exception)


def test_auto_falls_back_to_lite0_when_b0_is_unavailable(keras_home, offline):
    name, reason = resolve_backbone("auto")

    assert name == "efficientnet_lite0"
    assert "could not be downloaded" in reason


def test_auto_prefers_b0_when_its_weights_can_be_fetched(keras_home, monkeypatch):
    def fetched(fname, origin, **kwargs):
        return str(keras_home / "models" / fname)

    monkeypatch.setattr(keras.utils, "get_file", fetched)
    name, reason = resolve_backbone("auto")

    assert name == "efficientnet_b0"
    assert "downloaded to" in reason


def test_unknown_backbone_names_are_rejected():
    assert resolve_backbone("efficientnet_lite0")[0] == "efficientnet_lite0"
    with pytest.raises(ValueError, match="efficientnet_b0, efficientnet_lite0"):
        resolve_backbone("resnet50")
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("auto", keras.Input((32, 32, 3)))


def test_checksum_mismatch_triggers_reconversion(keras_home, monkeypatch):
    weights = keras_home / "models" / backbones.LITE0_CACHE_NAME
    checksum = weights.with_name(weights.name + ".sha256")
    checksum.write_text("0" * 64 + "  " + weights.name + "\n")

    with pytest.warns(UserWarning, match="checksum"):
        efficientnet_lite0(weights="imagenet")

    assert checksum.read_text().split()[0] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # With a matching checksum the cache is used as is: no second conversion.
    monkeypatch.setattr(backbones, "_convert_lite0_weights", pytest.fail)
    efficientnet_lite0(weights="imagenet")


def test_input_tensor_attaches_flat_and_loads_backbone_weights(keras_home):
    inputs = keras.Input((96, 96, 3))
    caller = keras.layers.Conv2D(3, 1, name="caller_conv")
    x = caller(inputs)
    caller_kernel = caller.get_weights()[0]
    backbone = build_backbone("efficientnet_lite0", x, weights="imagenet")
    outputs = keras.layers.GlobalAveragePooling2D()(backbone.output)
    model = keras.Model(inputs, outputs)

    assert backbone.inputs[0] is inputs
    assert not [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert {"caller_conv", "rescaling", "block1a_dwconv", "top_activation"} <= {
        layer.name for layer in model.layers}
    # Backbone layers got the ImageNet weights; the caller's layer kept its own.
    reference = efficientnet_lite0(include_top=True, weights="imagenet")
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0],
                                  reference.get_layer("stem_conv").get_weights()[0])
    np.testing.assert_array_equal(model.get_layer("caller_conv").get_weights()[0], caller_kernel)
