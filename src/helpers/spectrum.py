"""The Fourier view of images: windowed power spectra, radial profiles, high-frequency energy.

A 2-D Fourier transform describes an image's brightness as a sum of waves. Frequencies here are
in cycles per pixel: 0 is the overall brightness, 0.5 (the Nyquist frequency) a pattern that
flips from one pixel to the next, the finest a pixel grid can hold. Spectra are centred, zero
frequency in the middle, as they are shown.

Lesson 01 compares the spectra of real and fake faces; lesson 02 measures how much fine detail a
perturbation leaves. Both use these functions, so "high frequency" means the same in every lesson.
Images are uint8 RGB, one (H, W, 3) or a batch (N, H, W, 3).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

NYQUIST = 0.5  # cycles per pixel
# "High" = beyond half the Nyquist frequency, where sensor noise, JPEG's 8x8 block traces and the
# upsampling fingerprints many generators leave live.
HIGH_FREQUENCY_CUTOFF = 0.25
CHUNK = 64  # spectra computed at once: a few hundred full-size ones would fill the memory
_LUMA = np.array([0.299, 0.587, 0.114])


def grey(images: np.ndarray) -> np.ndarray:
    """Brightness (luma) of RGB images: (..., H, W, 3) -> float64 (..., H, W)."""
    return np.asarray(images, np.float64)[..., :3] @ _LUMA


def windowed_grey(images: np.ndarray) -> np.ndarray:
    """Brightness, mean removed, faded to zero at the borders by a Hann window: (..., H, W).

    The Fourier transform treats an image as a tile that repeats; without the fade, the jump from
    one edge to the opposite one would count as strong fine detail and draw a bright cross through
    every spectrum, whatever made the image.
    """
    brightness = grey(images)
    window = np.outer(np.hanning(brightness.shape[-2]), np.hanning(brightness.shape[-1]))
    return (brightness - brightness.mean(axis=(-2, -1), keepdims=True)) * window


def fourier_transform(images: np.ndarray) -> np.ndarray:
    """Centred 2-D Fourier transform of each image's windowed brightness: complex (..., H, W)."""
    return np.fft.fftshift(np.fft.fft2(windowed_grey(images)), axes=(-2, -1))


def power_spectrum(images: np.ndarray) -> np.ndarray:
    """Energy at each frequency, |FFT|^2 of the windowed brightness, zero frequency centred: (..., H, W)."""
    return np.abs(fourier_transform(images)) ** 2


def _power_in_chunks(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(images), CHUNK):
        yield power_spectrum(images[start:start + CHUNK])


def frequency_radius(shape: tuple[int, int]) -> np.ndarray:
    """Each point's distance from zero frequency in a centred spectrum of `shape`, in cycles per pixel."""
    rows = (np.arange(shape[0]) - shape[0] // 2) / shape[0]
    columns = (np.arange(shape[1]) - shape[1] // 2) / shape[1]
    return np.hypot(rows[:, None], columns[None, :])


def high_frequencies(shape: tuple[int, int], cutoff: float = HIGH_FREQUENCY_CUTOFF) -> np.ndarray:
    """True where a centred spectrum of `shape` holds a frequency above `cutoff` cycles per pixel."""
    return frequency_radius(shape) > cutoff


def mean_log_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean log-magnitude spectrum of a batch (H, W): the log evens out the huge range of energies."""
    total = np.zeros(images.shape[1:3])
    for power in _power_in_chunks(images):
        total += (0.5 * np.log(power + 1e-8)).sum(axis=0)
    return total / len(images)


def radial_profile(spectrum: np.ndarray, rings: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A centred spectrum (H, W) averaged over rings of equal frequency: (ring centres, means).

    Ring centres are in cycles per pixel; `rings` defaults to one per frequency step of the shorter
    side. The corners beyond the Nyquist frequency, along the diagonals, are left out.
    """
    rings = rings or min(spectrum.shape) // 2
    edges = np.linspace(0, NYQUIST, rings + 1)
    ring = np.digitize(frequency_radius(spectrum.shape), edges) - 1
    inside = ring < rings
    sums = np.bincount(ring[inside], weights=spectrum[inside], minlength=rings)
    counts = np.bincount(ring[inside], minlength=rings)
    return (edges[:-1] + edges[1:]) / 2, sums / np.maximum(counts, 1)


def mean_radial_profile(images: np.ndarray, rings: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Energy at each frequency, averaged over directions and over a batch: (frequencies, mean power)."""
    total = sum(power.sum(axis=0) for power in _power_in_chunks(images))
    return radial_profile(total / len(images), rings)


def high_frequency_energy(power: np.ndarray, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> np.ndarray:
    """Energy above `cutoff` cycles per pixel of centred power spectra (..., H, W): one value per spectrum."""
    return power[..., high_frequencies(power.shape[-2:], cutoff)].sum(axis=-1)


def high_frequency_shares(images: np.ndarray, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> np.ndarray:
    """Each image's share of its spectral energy above `cutoff` cycles per pixel (0..1), shape (N,)."""
    shares = [high_frequency_energy(power, cutoff) / np.maximum(power.sum(axis=(1, 2)), 1e-12)
              for power in _power_in_chunks(images)]
    return np.concatenate(shares)


def high_frequency_kept(original: np.ndarray, changed: np.ndarray, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> float:
    """High-frequency energy of `changed` as a share of the original's (1.0 = as much fine detail)."""
    before, after = (high_frequency_energy(power_spectrum(image), cutoff) for image in (original, changed))
    return float(after / before)


def high_pass(image: np.ndarray, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> np.ndarray:
    """The part of an image's windowed brightness that varies faster than `cutoff` cycles per pixel: (H, W)."""
    transform = fourier_transform(image)
    kept = transform * high_frequencies(transform.shape[-2:], cutoff)
    return np.real(np.fft.ifft2(np.fft.ifftshift(kept, axes=(-2, -1))))


def high_frequency_correlation(original: np.ndarray, changed: np.ndarray,
                               cutoff: float = HIGH_FREQUENCY_CUTOFF) -> float:
    """Correlation of the two images' fine detail: 1.0 when the original's traces survive intact.

    Energy alone misleads for noise, which adds fine detail of its own; correlation asks whether
    the detail that is there is still the original's.
    """
    first, second = high_pass(original, cutoff).ravel(), high_pass(changed, cutoff).ravel()
    return float(np.corrcoef(first, second)[0, 1])
