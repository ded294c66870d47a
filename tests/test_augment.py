"""Training augmentation layers (helpers.augment): the recipe, the optional layers, what each keeps."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import augment, data, robustness, spectrum
from tests.conftest import textured_images

LAYER_NAMES = ["augment_flip", "augment_rotation", "augment_zoom", "augment_jpeg", "augment_blur"]


@pytest.fixture(scope="module")
def textures() -> np.ndarray:
    """Eight 48 px uint8 images with both smooth shading and fine detail (no symmetry to hide a flip)."""
    return textured_images(8, 48)


@pytest.fixture(scope="module")
def faces(dfdc) -> np.ndarray:
    """Four real and four fake test faces from the shared data, at 96 px."""
    frame = data.index_dataset(dfdc)
    return data.load_images(frame[frame["split"] == "test"].groupby("label").head(4), 96)


def layer_named(name: str, seed: int = 7) -> keras.layers.Layer:
    layers = {layer.name: layer for layer in augment.augmentation_layers(seed, extra=("jpeg", "blur"))}
    return layers[name]


# ----------------------------------------------------------------------------- training layers


def test_recipe_matches_the_original_project():
    flip, rotation, zoom = augment.augmentation_layers()
    assert augment.RECIPE == {"flip": "horizontal", "rotation": 0.1, "zoom": 0.1}
    assert (flip.name, rotation.name, zoom.name) == ("augment_flip", "augment_rotation", "augment_zoom")
    assert isinstance(flip, keras.layers.RandomFlip) and flip.mode == "horizontal"
    assert isinstance(rotation, keras.layers.RandomRotation) and rotation.factor == (-0.1, 0.1)
    assert isinstance(zoom, keras.layers.RandomZoom) and zoom.height_factor == 0.1


def test_extra_layers_are_added_in_order_and_unknown_ones_refused():
    layers = augment.augmentation_layers(extra=("jpeg", "blur"))
    assert [layer.name for layer in layers] == LAYER_NAMES
    assert isinstance(layers[3], augment.RandomJpeg) and isinstance(layers[4], augment.RandomBlur)
    with pytest.raises(ValueError, match="sharpen"):
        augment.augmentation_layers(extra=("sharpen",))


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_layer_is_identity_at_inference(name, textures):
    out = augment.apply_layers(textures, [layer_named(name)], training=False)
    np.testing.assert_array_equal(out, textures.astype(np.float32))


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_layer_changes_images_in_training_and_keeps_shape_dtype_range(name, textures):
    out = augment.apply_layers(textures, [layer_named(name)], training=True)
    assert out.shape == textures.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert np.abs(out - textures).max() > 1.0


def test_custom_layers_leave_images_alone_by_default(textures):
    for layer in (augment.RandomJpeg(probability=1.0), augment.RandomBlur(probability=1.0)):
        np.testing.assert_array_equal(layer(textures.astype(np.float32)).numpy(), textures)


def test_fresh_layers_with_the_same_seed_give_the_same_previews(textures):
    first = augment.augment_preview(textures[:2], augment.augmentation_layers(3), draws=3)
    again = augment.augment_preview(textures[:2], augment.augmentation_layers(3), draws=3)
    other = augment.augment_preview(textures[:2], augment.augmentation_layers(4), draws=3)
    assert first.shape == (2, 3, 48, 48, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[:, 0], first[:, 1])  # each draw is a new augmentation


def test_jpeg_layer_compresses_like_a_jpeg_encoder(faces):
    layer = augment.RandomJpeg(quality_range=(20, 20), probability=1.0)
    out = layer(faces.astype(np.float32), training=True).numpy()
    np.testing.assert_array_equal(out, np.round(out))  # decoded pixels are whole numbers
    reference = robustness.apply_perturbation(faces, "jpeg", 20)
    assert np.mean([robustness.psnr(a, b) for a, b in zip(reference, out)]) > 38  # same codec, same quality
    assert robustness.evidence_kept(faces, out)["hf_correlation"] < 0.6


def test_blur_layer_gives_each_image_its_own_sigma(textures):
    layer = augment.RandomBlur(max_sigma=2.0, probability=1.0, seed=1)
    out = layer(textures.astype(np.float32), training=True).numpy()
    kept = [spectrum.high_frequency_kept(a, b) for a, b in zip(textures, out)]
    assert max(kept) < 0.9 and max(kept) - min(kept) > 0.05
    untouched = augment.RandomBlur(probability=0.0)(textures.astype(np.float32), training=True).numpy()
    np.testing.assert_allclose(untouched, textures, atol=1e-3)


def test_model_with_extra_layers_trains_saves_and_loads(tmp_path, textures):
    inputs = keras.Input((48, 48, 3))
    features = inputs
    for layer in augment.augmentation_layers(extra=("jpeg", "blur")):
        features = layer(features)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.fit(textures.astype(np.float32), np.zeros(len(textures)), epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "tiny.keras")
    loaded = keras.models.load_model(tmp_path / "tiny.keras")
    for name in ("augment_jpeg", "augment_blur"):
        assert loaded.get_layer(name).get_config() == model.get_layer(name).get_config()
    np.testing.assert_allclose(loaded.predict(textures, verbose=0), model.predict(textures, verbose=0))


def test_layer_table_has_one_row_per_layer(textures):
    layers = augment.layer_table(textures[:2], augment.augmentation_layers())
    assert list(layers["layer"]) == LAYER_NAMES[:3]
    assert layers.set_index("layer").loc["augment_flip", "hf_energy_kept"] == pytest.approx(1.0)


def test_preview_gallery_puts_the_original_first_in_every_row(textures):
    gallery, titles = augment.preview_gallery(textures[:2], augment.augmentation_layers(), draws=3)
    assert len(gallery) == len(titles) == 8 and titles[:4] == ["original", "draw 1", "draw 2", "draw 3"]
    np.testing.assert_array_equal(gallery[4], textures[1])
