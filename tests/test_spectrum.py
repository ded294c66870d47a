"""The Fourier view of images (helpers.spectrum), checked on synthetic images whose answer is known.

The image makers here are shared with test_eda, test_augment and test_robustness.
"""
import numpy as np
import pytest
from PIL import Image, ImageFilter

from helpers import spectrum
from tests.conftest import NOISE_SIZE, blurred, noise, textured_images


@pytest.fixture(scope="module")
def textures() -> np.ndarray:
    return textured_images()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=sigma)))


def test_frequency_radius_is_zero_in_the_middle_and_nyquist_at_the_edges():
    radius = spectrum.frequency_radius((8, 6))
    assert radius.shape == (8, 6) and radius[4, 3] == 0
    assert radius[0, 3] == radius[4, 0] == spectrum.NYQUIST


def test_one_image_and_a_batch_give_the_same_spectrum():
    images = noise(3, seed=11)
    np.testing.assert_allclose(spectrum.power_spectrum(images)[1], spectrum.power_spectrum(images[1]))


def test_log_spectrum_is_centred_and_symmetric():
    log_spectrum = spectrum.mean_log_spectrum(noise(3, seed=0))
    assert log_spectrum.shape == (NOISE_SIZE, NOISE_SIZE)
    # A real image's spectrum is point-symmetric about the centre (the first row and column have no mirror).
    inner = log_spectrum[1:, 1:]
    np.testing.assert_allclose(inner, inner[::-1, ::-1], rtol=1e-4)


def test_radial_profile_falls_for_smooth_images():
    frequency, level = spectrum.radial_profile(spectrum.mean_log_spectrum(blurred(noise(4, seed=1))), rings=16)
    assert frequency[0] < frequency[-1] <= spectrum.NYQUIST
    assert level[1] > level[-1]


def test_radial_profile_shows_blur_removing_fine_detail(textures):
    frequencies, power = spectrum.radial_profile(spectrum.power_spectrum(textures[0]))
    _, blurred_power = spectrum.radial_profile(spectrum.power_spectrum(gaussian_blur(textures[0], 2.0)))
    assert frequencies.shape == power.shape and 0 < frequencies[0] < frequencies[-1] < 0.5
    assert blurred_power[-5:].sum() < 0.01 * power[-5:].sum()


def test_mean_radial_profile_averages_the_images_profiles(textures):
    frequencies, mean_power = spectrum.mean_radial_profile(textures[:3])
    profiles = [spectrum.radial_profile(spectrum.power_spectrum(image)) for image in textures[:3]]
    np.testing.assert_allclose(frequencies, profiles[0][0])
    np.testing.assert_allclose(mean_power, np.mean([power for _, power in profiles], axis=0))
    assert len(frequencies) == 48 // 2  # one ring per frequency step


def test_high_frequency_shares_fall_with_blur():
    images = noise(5, seed=12)
    sharp, smooth = spectrum.high_frequency_shares(images), spectrum.high_frequency_shares(blurred(images))
    assert sharp.shape == (5,) and np.all((0 < smooth) & (smooth < sharp) & (sharp < 1))


def test_high_frequency_energy_is_the_energy_of_the_high_pass(textures):
    # Parseval: the energy of the high-passed image is the spectral energy above the cutoff (/ pixels).
    image = textures[0]
    energy = spectrum.high_frequency_energy(spectrum.power_spectrum(image))
    assert energy == pytest.approx(np.sum(spectrum.high_pass(image) ** 2) * image.shape[0] * image.shape[1])


def test_measurements_on_unchanged_and_flat_images(textures):
    image = textures[0]
    assert spectrum.high_frequency_kept(image, image) == pytest.approx(1.0)
    assert spectrum.high_frequency_correlation(image, image) == pytest.approx(1.0)
    np.testing.assert_allclose(spectrum.high_pass(np.full((32, 32, 3), 128, np.uint8)), 0, atol=1e-9)


def test_blur_keeps_less_fine_detail_than_the_original(textures):
    image = textures[0]
    assert spectrum.high_frequency_kept(image, gaussian_blur(image, 1.0)) < 0.5
    assert spectrum.high_frequency_correlation(image, gaussian_blur(image, 0.5)) > 0
