"""Statistics behind the exploratory figures of lesson 01, and the small plots that show them.

Every statistic is a plain NumPy function of a uint8 image batch (N, H, W, 3), so it can be
tested on synthetic images; `per_class` applies one to each class of a labelled batch. The
Fourier statistics themselves live in `helpers.spectrum`; here they are compared between classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers import config, spectrum
from helpers.config import CLASS_NAMES

# A spectral dot or line this many robust standard deviations above its surroundings counts as a
# periodic trace. Two random halves of one class score 2.5 to 5.5 on the shared sets; dots get a
# higher bar because there are thousands of points to pick the largest from, lines only hundreds.
NOTABLE_PEAK_SCORES = {"dot": 8.0, "line": 7.0}
PROFILE_RINGS = 64  # frequency bands in the radial profile plot, a few pixels wide each: smooth curves


def sample_per_class(frame: pd.DataFrame, n: int, seed: int = config.SEED) -> pd.DataFrame:
    """At most `n` rows of each class, drawn with a seed, in a stable order."""
    parts = [group.sample(n=min(n, len(group)), random_state=seed) for _, group in frame.groupby("label")]
    return pd.concat(parts).sort_values(["label", "relpath"]).reset_index(drop=True)


def per_class(statistic: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels) -> dict[str, np.ndarray]:
    """`statistic` of each class's images, keyed by class name ("real", "fake")."""
    labels = np.asarray(labels)
    return {name: statistic(images[labels == label]) for label, name in enumerate(CLASS_NAMES)
            if (labels == label).any()}


def mean_image(images: np.ndarray) -> np.ndarray:
    """The pixel-wise mean (H, W, 3), 0-255 floats: the "mean face" when the faces are aligned."""
    return images.astype(np.float64).mean(axis=0).astype(np.float32)


def channel_histograms(images: np.ndarray, bins: int = 64) -> np.ndarray:
    """Share of pixels in each of `bins` equal intensity bins, per channel R, G, B: shape (3, bins)."""
    edges = np.linspace(0, 256, bins + 1)
    counts = np.stack([np.histogram(images[..., c], bins=edges)[0] for c in range(3)]).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def clipped_share(images: np.ndarray) -> float:
    """Share of pixels with a channel at 0 or 255: burnt-out highlights and crushed shadows.

    Camera photographs clip often; a generator's smooth output rarely reaches either end exactly.
    """
    return float(((images == 0) | (images == 255)).any(axis=-1).mean())


@dataclass(frozen=True)
class EnergyChange:
    """Relative difference in high-frequency energy, fake versus real (+0.10 = 10 % more in fakes)."""

    change: float
    low: float  # 95 % bootstrap interval
    high: float

    @property
    def clear(self) -> bool:
        """The interval excludes zero: more than the luck of which images were drawn."""
        return self.low > 0 or self.high < 0


def high_frequency_change(images: np.ndarray, labels, cutoff: float = spectrum.HIGH_FREQUENCY_CUTOFF,
                          resamples: int = 1000, seed: int = config.SEED) -> EnergyChange:
    """How much more (or less) of their energy fakes keep at high frequencies than reals, with an interval.

    Shares vary tenfold from one image to the next (a textured background, a blurry frame), so
    classes are compared by their geometric means, and images are resampled to see how much of
    the difference is luck.
    """
    logs = per_class(lambda batch: np.log(spectrum.high_frequency_shares(batch, cutoff) + 1e-12), images, labels)
    rng = np.random.default_rng(seed)

    def change(real: np.ndarray, fake: np.ndarray) -> float:
        return float(np.exp(fake.mean() - real.mean()) - 1)

    draws = [change(rng.choice(logs["real"], len(logs["real"])), rng.choice(logs["fake"], len(logs["fake"])))
             for _ in range(resamples)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return EnergyChange(change(logs["real"], logs["fake"]), float(low), float(high))


@dataclass(frozen=True)
class Peak:
    """The strongest periodic trace in a spectrum difference: one bright dot, or a line of them."""

    kind: str  # "dot" or "line"
    score: float  # robust standard deviations above its surroundings
    x_frequency: float | None  # horizontal frequency as a fraction of Nyquist; None along a line's length
    y_frequency: float | None

    @property
    def notable(self) -> bool:
        return self.score >= NOTABLE_PEAK_SCORES[self.kind]

    @property
    def period(self) -> float:
        """Pixels after which the pattern behind the trace repeats (Nyquist = every 2 pixels)."""
        return 2 / max(np.hypot(self.x_frequency or 0, self.y_frequency or 0), 1e-12)

    def where(self) -> str:
        if self.kind == "dot":
            return (f"a bright dot at horizontal frequency {self.x_frequency:.2f}, vertical {self.y_frequency:.2f} "
                    "x Nyquist")
        if self.y_frequency is None:
            return f"a vertical line at horizontal frequency {self.x_frequency:.2f} x Nyquist"
        return f"a horizontal line at vertical frequency {self.y_frequency:.2f} x Nyquist"


def _robust_z(values: np.ndarray) -> np.ndarray:
    spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return (values - np.median(values)) / max(spread, 1e-12)


def _strongest_dot(difference: np.ndarray, exclude: int) -> Peak:
    """Each point against the median of its ring of equal frequency: what is left is dots."""
    rows, cols = np.indices(difference.shape)
    dy, dx = rows - difference.shape[0] // 2, cols - difference.shape[1] // 2
    ring = np.rint(np.hypot(dy, dx)).astype(int)
    medians = np.zeros(ring.max() + 1)
    for radius in np.unique(ring):
        medians[radius] = np.median(difference[ring == radius])
    outside = ring > exclude
    z = _robust_z((difference - medians[ring])[outside])
    best = int(z.argmax())
    return Peak("dot", float(z[best]), abs(dx[outside][best]) / (difference.shape[1] / 2),
                abs(dy[outside][best]) / (difference.shape[0] / 2))


def _strongest_line(difference: np.ndarray, exclude: int) -> Peak:
    """The difference averaged along each axis: a line of weak dots becomes one clear peak."""
    from scipy.ndimage import median_filter

    best = Peak("line", -np.inf, None, None)
    for axis in (0, 1):  # axis 0 averages over rows: peaks at horizontal frequencies (vertical lines)
        profile = difference.mean(axis=axis)
        offsets = np.arange(len(profile)) - len(profile) // 2
        keep = np.abs(offsets) > exclude
        z = _robust_z((profile - median_filter(profile, size=9, mode="reflect"))[keep])
        if z.max() > best.score:
            frequency = abs(float(offsets[keep][z.argmax()])) / (len(profile) / 2)
            best = Peak("line", float(z.max()), *((frequency, None) if axis == 0 else (None, frequency)))
    return best


def periodic_peak(difference: np.ndarray, exclude: int = 3) -> Peak:
    """The strongest periodic trace in a (fake - real) log spectrum, notable or not.

    Upsampling in a generator repeats a pattern every few pixels, which puts energy at fixed
    frequencies: bright dots (a checkerboard gives them at half Nyquist and Nyquist) or lines of
    them. Both are looked for; a notable one is preferred, else the one closer to notable. The
    lowest frequencies (`exclude` bins around zero) hold what every photograph has and are left out.
    """
    candidates = [_strongest_dot(difference, exclude), _strongest_line(difference, exclude)]
    return max(candidates, key=lambda peak: peak.score / NOTABLE_PEAK_SCORES[peak.kind])


def describe_spectrum(energy: EnergyChange, peak: Peak) -> str:
    """A few honest sentences about the fake-minus-real spectrum, phrased from the numbers."""
    interval = f"95 % interval {energy.low:+.0%} to {energy.high:+.0%}"
    if not energy.clear:
        first = (f"The high-frequency energy of fakes and reals cannot be told apart on these images "
                 f"({energy.change:+.0%}, {interval}, which includes zero).")
    else:
        more = energy.change > 0
        first = (f"Fakes keep {abs(energy.change):.0%} {'more' if more else 'less'} of their energy at high "
                 f"frequencies than reals ({interval}): "
                 + ("extra fine detail or noise, as upsampling artefacts add." if more else
                    "they are smoother, as blending, generator smoothing or softer source footage make them."))
    threshold = NOTABLE_PEAK_SCORES[peak.kind]
    if peak.notable:
        second = (f" A periodic trace stands out in the difference (score {peak.score:.1f}, above {threshold:g}): "
                  f"{peak.where()}, from a pattern that repeats about every {peak.period:.0f} pixels. A generator's "
                  "upsampling leaves such traces; so can any processing applied to one class only.")
    else:
        second = (f" No periodic dots or lines stand out (the strongest, {peak.where()}, scores {peak.score:.1f}; "
                  f"{threshold:g} would count).")
    quiet = not energy.clear and not peak.notable
    return first + second + (" There is little to see: on these images the frequency view alone would not "
                             "give the fakes away." if quiet else "")


# ----------------------------------------------------------------------------- plots
def plot_counts(table: pd.DataFrame, title: str) -> plt.Figure:
    """Bars of images per split (or any row label) and class."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    table.plot.bar(ax=ax, rot=0)
    ax.set(title=title, xlabel="", ylabel="images")
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    return fig


def plot_mean_faces(means: dict[str, np.ndarray]) -> plt.Figure:
    """The mean image of each class, and how the fake mean differs from the real one."""
    difference = means["fake"].astype(np.float32) - means["real"]
    limit = max(float(np.abs(difference).max()), 1e-6)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, name in zip(axes, ("real", "fake")):
        ax.imshow(np.clip(means[name], 0, 255).astype(np.uint8))
        ax.set_title(f"mean {name}")
    image = axes[2].imshow(difference.mean(axis=-1), cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[2].set_title("fake − real (grey levels)")
    fig.colorbar(image, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_channel_histograms(histograms: dict[str, np.ndarray]) -> plt.Figure:
    """Per-channel intensity distributions, one panel per channel, one line per class."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for channel, (ax, colour) in enumerate(zip(axes, ("red", "green", "blue"))):
        for name, style in zip(CLASS_NAMES, ("-", "--")):
            if name in histograms:
                values = histograms[name][channel]
                ax.plot(np.linspace(0, 255, len(values)), values, style, color=colour, label=name)
        ax.set(title=colour, xlabel="intensity")
        ax.legend()
    axes[0].set_ylabel("share of pixels")
    fig.tight_layout()
    return fig


def plot_spectra(spectra: dict[str, np.ndarray]) -> plt.Figure:
    """Mean log spectrum of each class and their difference (fake − real), zero frequency centred."""
    difference = spectra["fake"] - spectra["real"]
    limit = max(float(np.percentile(np.abs(difference), 99.5)), 1e-6)
    low, high = np.percentile(np.concatenate([spectra["real"].ravel(), spectra["fake"].ravel()]), [1, 99.9])
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, name in zip(axes, ("real", "fake")):
        ax.imshow(spectra[name], cmap="magma", vmin=low, vmax=high)
        ax.set_title(f"{name}: mean log |FFT|")
    image = axes[2].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[2].set_title("fake − real")
    fig.colorbar(image, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_radial_profiles(spectra: dict[str, np.ndarray]) -> plt.Figure:
    """Each class's spectrum averaged over rings: energy against frequency."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, style in zip(CLASS_NAMES, ("-", "--")):
        frequency, level = spectrum.radial_profile(spectra[name], PROFILE_RINGS)
        ax.plot(frequency / spectrum.NYQUIST, level, style, label=name)
    ax.axvline(spectrum.HIGH_FREQUENCY_CUTOFF / spectrum.NYQUIST, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="frequency (fraction of Nyquist)", ylabel="mean log |FFT|", title="Spectrum by frequency")
    ax.legend()
    return fig
