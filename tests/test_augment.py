"""Training augmentation layers and robustness perturbations (helpers.augment)."""
from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import augment, data, spectrum
from tests.test_spectrum import textured_images

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
    reference = augment.apply_perturbation(faces, "jpeg", 20)
    assert np.mean([augment.psnr(a, b) for a, b in zip(reference, out)]) > 38  # same codec, same quality
    assert augment.evidence_kept(faces, out)["hf_correlation"] < 0.6


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


# ----------------------------------------------------------------------------- perturbations


def evidence(images, name, level) -> dict[str, float]:
    return augment.evidence_kept(images, augment.apply_perturbation(images, name, level))


@pytest.mark.parametrize("name", list(augment.PERTURBATIONS))
def test_perturbation_keeps_shape_dtype_and_repeats(name, faces):
    for level in augment.PERTURBATIONS[name][1]:
        out = augment.apply_perturbation(faces, name, level)
        assert out.shape == faces.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, augment.apply_perturbation(faces, name, level))


@pytest.mark.parametrize("name", list(augment.PERTURBATIONS))
def test_harsher_levels_move_further_from_the_original(name, faces):
    levels = augment.PERTURBATIONS[name][1]
    scores = [evidence(faces, name, level) for level in levels]
    psnrs = [score["psnr_db"] for score in scores]
    correlations = [score["hf_correlation"] for score in scores]
    assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs
    # Once the fine detail is gone the correlation sits near 0 and wobbles, hence the small tolerance.
    assert all(b < a + 0.05 for a, b in zip(correlations, correlations[1:])), correlations
    assert correlations[0] - correlations[-1] > 0.4, correlations


def test_lower_jpeg_quality_loses_more_fine_detail(faces):
    correlation = {quality: evidence(faces, "jpeg", quality)["hf_correlation"] for quality in (95, 50, 10)}
    assert correlation[95] > correlation[50] > correlation[10]


@pytest.mark.parametrize("name", ["blur", "downscale"])
def test_blur_and_downscaling_remove_high_frequency_energy(name, faces):
    mild, *_, harsh = augment.PERTURBATIONS[name][1]
    kept_mild = evidence(faces, name, mild)["hf_energy_kept"]
    kept_harsh = evidence(faces, name, harsh)["hf_energy_kept"]
    assert 1.0 > kept_mild > kept_harsh and kept_harsh < 0.1


def test_noise_is_seeded_by_the_image_unless_given_a_seed(textures):
    first, second = textures[0], textures[1]
    np.testing.assert_array_equal(augment.noise(first, 8), augment.noise(first, 8))
    added_to_first = augment.noise(first, 8).astype(int) - first
    added_to_second = augment.noise(second, 8).astype(int) - second
    assert not np.array_equal(added_to_first, added_to_second)
    assert not np.array_equal(augment.noise(first, 8, seed=1), augment.noise(first, 8, seed=2))


def test_apply_perturbation_handles_edge_cases(textures):
    with pytest.raises(ValueError, match="choose from"):
        augment.apply_perturbation(textures, "sharpen", 1)
    assert augment.apply_perturbation(textures[:0], "jpeg", 50).shape == (0, 48, 48, 3)


# ----------------------------------------------------------------------------- measurements


def test_psnr_of_an_unchanged_image_is_infinite(textures):
    assert augment.psnr(textures[0], textures[0]) == float("inf")


def test_psnr_follows_its_definition(textures):
    brighter = textures[0].astype(int) + 3  # every pixel off by 3: mean squared error 9
    assert augment.psnr(textures[0], brighter) == pytest.approx(10 * np.log10(255**2 / 9))


def test_tables_cover_every_level_and_layer(textures):
    table = augment.perturbation_table(textures[:2])
    assert len(table) == sum(len(levels) for _, levels in augment.PERTURBATIONS.values())
    assert list(table.columns) == ["perturbation", "step", "level", "psnr_db", "hf_energy_kept",
                                   "hf_correlation"]
    layers = augment.layer_table(textures[:2], augment.augmentation_layers())
    assert list(layers["layer"]) == LAYER_NAMES[:3]
    assert layers.set_index("layer").loc["augment_flip", "hf_energy_kept"] == pytest.approx(1.0)


def test_perturbation_spectra_put_the_original_first(textures):
    profiles = augment.perturbation_spectra(textures[:2], {"blur 2": ("blur", 2.0), "noise 16": ("noise", 16)})
    assert list(profiles) == ["original", "blur 2", "noise 16"]
    frequencies, original = profiles["original"]
    np.testing.assert_allclose(original, spectrum.mean_radial_profile(textures[:2])[1])
    np.testing.assert_allclose(profiles["blur 2"][0], frequencies)
    assert profiles["blur 2"][1][-5:].sum() < original[-5:].sum() < profiles["noise 16"][1][-5:].sum()


def test_plots_return_figures(textures):
    table = augment.perturbation_table(textures[:1])
    profiles = augment.perturbation_spectra(textures[:1], {"jpeg 30": ("jpeg", 30)})
    figures = [augment.plot_evidence_kept(table), augment.plot_perturbation_spectra(profiles)]
    assert all(isinstance(fig, plt.Figure) for fig in figures)
    plt.close("all")


def test_galleries_put_the_original_first_in_every_row(textures):
    gallery, titles = augment.preview_gallery(textures[:2], augment.augmentation_layers(), draws=3)
    assert len(gallery) == len(titles) == 8 and titles[:4] == ["original", "draw 1", "draw 2", "draw 3"]
    np.testing.assert_array_equal(gallery[4], textures[1])
    gallery, titles = augment.perturbation_gallery(textures[0])
    row = 1 + len(augment.PERTURBATIONS["jpeg"][1])
    assert len(gallery) == row * len(augment.PERTURBATIONS) and titles[:2] == ["original", "jpeg 95"]
    np.testing.assert_array_equal(gallery[row], textures[0])


def test_crop_stays_inside_the_image(textures):
    assert augment.crop(textures[0], fraction=0.5).shape == (24, 24, 3)
    np.testing.assert_array_equal(augment.crop(textures[0], center=(1.0, 1.0), fraction=0.25),
                                  textures[0][-12:, -12:])
