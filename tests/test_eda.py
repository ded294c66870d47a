"""Statistics behind the EDA figures, checked on synthetic images whose answer is known."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from helpers import eda, spectrum
from tests.conftest import NOISE_SIZE, blurred, noise


def striped(images: np.ndarray, period: int) -> np.ndarray:
    """Add horizontal stripes that repeat every `period` rows."""
    rows = 40 * np.sin(2 * np.pi * np.arange(NOISE_SIZE) / period)
    return np.clip(images.astype(np.float32) + rows[None, :, None, None], 0, 255).astype(np.uint8)


def test_sample_per_class_is_capped_and_repeatable():
    frame = pd.DataFrame({"label": [0] * 10 + [1] * 3, "relpath": [f"f{i:02d}" for i in range(13)]})
    first, second = eda.sample_per_class(frame, 5, seed=1), eda.sample_per_class(frame, 5, seed=1)
    assert first["label"].value_counts().to_dict() == {0: 5, 1: 3}
    assert first.equals(second)


def test_per_class_keys_results_by_class_name():
    images = np.stack([np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 200, np.uint8)])
    means = eda.per_class(eda.mean_image, images, [0, 1])
    assert set(means) == {"real", "fake"}
    assert means["real"].shape == (4, 4, 3) and means["fake"].mean() == pytest.approx(200)


def test_channel_histograms_are_shares_per_channel():
    red = np.zeros((2, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    histograms = eda.channel_histograms(red, bins=16)
    assert histograms.shape == (3, 16)
    np.testing.assert_allclose(histograms.sum(axis=1), 1)
    assert histograms[0, -1] == 1 and histograms[1, 0] == 1 and histograms[2, 0] == 1


def test_clipped_share_counts_pixels_at_either_end():
    images = np.full((1, 2, 2, 3), 100, np.uint8)
    images[0, 0, 0, 1], images[0, 1, 1] = 255, 0
    assert eda.clipped_share(images) == 0.5


def test_blurred_fakes_lose_high_frequency_energy():
    reals = noise(12, seed=2)
    change = eda.high_frequency_change(np.concatenate([reals, blurred(reals)]), [0] * 12 + [1] * 12)
    assert change.change < -0.5 and change.clear


def test_identical_classes_show_no_change():
    images = noise(8, seed=3)
    change = eda.high_frequency_change(np.concatenate([images, images]), [0] * 8 + [1] * 8)
    assert change.change == pytest.approx(0, abs=1e-6) and not change.clear


def test_stripes_are_found_as_a_dot_at_their_frequency():
    reals, fakes = noise(8, seed=4), striped(noise(8, seed=5), period=8)
    spectra = eda.per_class(spectrum.mean_log_spectrum, np.concatenate([reals, fakes]), [0] * 8 + [1] * 8)
    peak = eda.periodic_peak(spectra["fake"] - spectra["real"])
    assert peak.notable and peak.kind == "dot"
    assert (peak.x_frequency, peak.y_frequency) == (0, pytest.approx(2 / 8))  # Nyquist = one cycle per 2 px
    assert peak.period == pytest.approx(8)


def test_a_pattern_repeating_across_every_row_is_found_as_a_line():
    rng = np.random.default_rng(8)
    phases = rng.uniform(0, 2 * np.pi, (8, NOISE_SIZE, 1, 1))  # each row its own phase: energy at every vertical frequency
    wave = 30 * np.sin(2 * np.pi * np.arange(NOISE_SIZE)[None, None, :, None] / 4 + phases)
    fakes = np.clip(noise(8, seed=9) + wave, 0, 255).astype(np.uint8)
    spectra = eda.per_class(spectrum.mean_log_spectrum, np.concatenate([noise(8, seed=10), fakes]), [0] * 8 + [1] * 8)
    peak = eda.periodic_peak(spectra["fake"] - spectra["real"])
    assert peak.notable and peak.kind == "line"
    assert (peak.x_frequency, peak.y_frequency) == (pytest.approx(0.5), None)
    assert "vertical line" in peak.where()


def test_no_peak_between_two_halves_of_noise():
    spectra = eda.per_class(spectrum.mean_log_spectrum, noise(16, seed=6), [0, 1] * 8)
    assert not eda.periodic_peak(spectra["fake"] - spectra["real"]).notable


def test_description_follows_the_numbers():
    quiet = eda.describe_spectrum(eda.EnergyChange(0.02, -0.1, 0.15), eda.Peak("line", 3.0, 0.3, None))
    assert "little to see" in quiet and "cannot be told apart" in quiet
    loud = eda.describe_spectrum(eda.EnergyChange(-0.2, -0.3, -0.1), eda.Peak("dot", 9.0, 0.25, 0.0))
    assert "20% less" in loud and "periodic trace" in loud and "every 8 pixels" in loud
    assert "little to see" not in loud


def test_plots_show_what_their_titles_say():
    images, labels = noise(4, seed=7), [0, 0, 1, 1]
    spectra = eda.per_class(spectrum.mean_log_spectrum, images, labels)

    counts = eda.plot_counts(pd.DataFrame({"real": [3, 1], "fake": [2, 1]}, index=["train", "test"]), "counts")
    (ax,) = counts.axes
    assert ax.get_title() == "counts" and ax.get_ylabel() == "images"
    assert [text.get_text() for text in ax.get_xticklabels()] == ["train", "test"]
    assert sorted(round(bar.get_height()) for bar in ax.patches) == [1, 1, 2, 3]  # one bar per split and class
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["real", "fake"]

    means = eda.plot_mean_faces(eda.per_class(eda.mean_image, images, labels))
    assert [ax.get_title() for ax in means.axes[:3]] == ["mean real", "mean fake", "fake − real (grey levels)"]

    histograms = eda.plot_channel_histograms(eda.per_class(eda.channel_histograms, images, labels))
    assert [ax.get_title() for ax in histograms.axes] == ["red", "green", "blue"]
    assert all(len(ax.get_lines()) == 2 for ax in histograms.axes), "one line per class in each channel"

    shown = eda.plot_spectra(spectra)
    np.testing.assert_allclose(shown.axes[2].images[0].get_array(), spectra["fake"] - spectra["real"])

    profiles = eda.plot_radial_profiles(spectra)
    (ax,) = profiles.axes
    assert ax.get_xlabel() == "frequency (fraction of Nyquist)"
    assert [line.get_label() for line in ax.get_lines()[:2]] == ["real", "fake"]
    assert ax.get_lines()[0].get_xdata().max() <= 1.0
    plt.close("all")
