"""Images degraded the way the internet degrades them, what of their fine detail survives, and a detector on them.

Three jobs, for lessons 02 and 06:

* Perturbations: plain NumPy / PIL functions that re-compress as JPEG, downscale, blur or add noise
  to a uint8 image, deterministically (`PERTURBATIONS`, `apply_perturbation`).
* What survives: how much of an image's fine detail, where a fake's traces live, each one leaves,
  measured with `helpers.spectrum` (`evidence_kept`, `perturbation_table`, `perturbation_spectra`).
* A detector on them: ROC-AUC and balanced accuracy per perturbation and level (`robustness_table`),
  each with its 95% bootstrap interval (`metrics.bootstrap_interval`), and its change from the clean
  images with the paired interval of that change (`metrics.paired_difference_interval`): clean and
  perturbed scores come from the same images, so the fair question is the paired one, and two
  overlapping intervals side by side do not say that nothing changed.

`robustness_table` decodes each image once at its own resolution, applies every perturbation there,
and only then resizes the image to the model's input size: a re-uploaded photo is compressed, shrunk
or blurred at the size it was posted, and the detector sees the result. Perturbing the model-size
copy instead would blur 96 px thumbnails in the smoke profile, a different (and harsher) experiment.

Nothing here needs TensorFlow; the training-time JPEG and blur are Keras layers in `helpers.augment`.
"""
from __future__ import annotations

import io
import zlib
from concurrent.futures import ThreadPoolExecutor

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio

from helpers import config, metrics, spectrum
from helpers.images import load_image, resize
from helpers.detector import Detector

MEASURES = ("roc_auc", "balanced_accuracy")
COLUMNS = ["perturbation", "step", "level"] + [
    f"{measure}{part}" for measure in MEASURES
    for part in ("", "_low", "_high", "_change", "_change_low", "_change_high")]

# ----------------------------------------------------------------------------- perturbations


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Re-compress as JPEG at `quality` (1..95; lower is harsher), as a photo shared online would be."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("RGB"))


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by `factor` (> 1 is harsher) and scale back up: the detail lost on the way stays lost."""
    height, width = image.shape[:2]
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    reduced = Image.fromarray(image).resize(small, Image.BICUBIC, reducing_gap=None)
    return np.asarray(reduced.resize((width, height), Image.BICUBIC))


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` pixels."""
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=float(sigma))))


def noise(image: np.ndarray, std: float, seed: int | None = None) -> np.ndarray:
    """Add Gaussian noise of standard deviation `std` (in 0..255 units), rounded and clipped.

    Without a seed the noise is seeded by the image's own pixels: the same image always gets the
    same noise, and different images get different noise.
    """
    seed = zlib.crc32(np.ascontiguousarray(image).tobytes()) if seed is None else seed
    rng = np.random.default_rng([config.SEED, seed])
    noisy = image.astype(np.float64) + rng.normal(0.0, std, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


# name -> (function, levels from mild to harsh)
PERTURBATIONS = {
    "jpeg": (jpeg, [95, 75, 50, 30, 10]),
    "downscale": (downscale, [1.5, 2, 3, 4, 6]),
    "blur": (blur, [0.5, 1.0, 1.5, 2.0, 3.0]),
    "noise": (noise, [2, 4, 8, 16, 32]),
}


def _perturbation(name: str) -> tuple:
    """PERTURBATIONS[name]: its function and its levels."""
    if name not in PERTURBATIONS:
        raise ValueError(f"Unknown perturbation {name!r}: choose from {list(PERTURBATIONS)}.")
    return PERTURBATIONS[name]


def apply_perturbation(images, name: str, level) -> np.ndarray:
    """Apply one perturbation at one level to every image of a uint8 (N, H, W, 3) batch."""
    function = _perturbation(name)[0]
    images = np.asarray(images, dtype=np.uint8)
    return np.stack([function(image, level) for image in images]) if len(images) else images.copy()


def perturbation_gallery(image: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """For each perturbation a row: the original, then every level from mild to harsh, with titles."""
    gallery, titles = [], []
    for name, (function, levels) in PERTURBATIONS.items():
        gallery += [image] + [function(image, level) for level in levels]
        titles += ["original"] + [f"{name} {level}" for level in levels]
    return gallery, titles


def crop(image: np.ndarray, center=(0.45, 0.5), fraction: float = 0.35) -> np.ndarray:
    """A square cut of `fraction` of the image's side around `center` (row, column as fractions)."""
    height, width = image.shape[:2]
    side = max(1, round(min(height, width) * fraction))
    top = min(max(0, round(center[0] * height - side / 2)), height - side)
    left = min(max(0, round(center[1] * width - side / 2)), width - side)
    return image[top:top + side, left:left + side]


# ----------------------------------------------------------------------------- measuring what survives


def psnr(original: np.ndarray, changed: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for 0-255 images (higher is closer; infinite when identical)."""
    with np.errstate(divide="ignore"):  # identical images: a zero error gives inf, as it should
        return float(peak_signal_noise_ratio(np.asarray(original), np.asarray(changed), data_range=255))


def evidence_kept(originals, changed, cutoff: float = spectrum.HIGH_FREQUENCY_CUTOFF) -> dict[str, float]:
    """Mean PSNR, high-frequency energy kept and high-frequency correlation over a batch."""
    pairs = list(zip(np.asarray(originals), np.asarray(changed)))
    return {"psnr_db": float(np.mean([psnr(a, b) for a, b in pairs])),
            "hf_energy_kept": float(np.mean([spectrum.high_frequency_kept(a, b, cutoff) for a, b in pairs])),
            "hf_correlation": float(np.mean([spectrum.high_frequency_correlation(a, b, cutoff) for a, b in pairs]))}


def perturbation_table(images, cutoff: float = spectrum.HIGH_FREQUENCY_CUTOFF) -> pd.DataFrame:
    """`evidence_kept` for every perturbation and level in PERTURBATIONS, one row each."""
    rows = []
    for name, (_, levels) in PERTURBATIONS.items():
        for step, level in enumerate(levels):
            changed = apply_perturbation(images, name, level)
            rows.append({"perturbation": name, "step": step, "level": level,
                         **evidence_kept(images, changed, cutoff)})
    return pd.DataFrame(rows)


def plot_evidence_kept(table: pd.DataFrame) -> plt.Figure:
    """A `perturbation_table` as two panels: fine-detail energy kept, and how much of it is the original's."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in table.groupby("perturbation", sort=False):
        axes[0].plot(rows["step"], rows["hf_energy_kept"], marker="o", label=name)
        axes[1].plot(rows["step"], rows["hf_correlation"], marker="o", label=name)
    axes[0].set(yscale="log", xlabel="level (0 = mildest)", ylabel="share of energy",
                title="High-frequency energy kept")
    axes[1].set(ylim=(-0.1, 1.05), xlabel="level (0 = mildest)", ylabel="correlation",
                title="Original fine detail still there")
    axes[0].legend()
    return fig


def perturbation_spectra(images, settings: dict[str, tuple[str, float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean radial spectrum of `images` ("original") and of each perturbed version: label -> (frequencies, power).

    `settings` maps a label to a perturbation and its level, e.g. {"blur 1.5": ("blur", 1.5)}.
    """
    profiles = {"original": spectrum.mean_radial_profile(images)}
    for label, (name, level) in settings.items():
        profiles[label] = spectrum.mean_radial_profile(apply_perturbation(images, name, level))
    return profiles


def plot_perturbation_spectra(profiles: dict[str, tuple[np.ndarray, np.ndarray]]) -> plt.Figure:
    """`perturbation_spectra` on a log scale, the original drawn thicker, the high-frequency band shaded."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, (frequencies, power) in profiles.items():
        ax.semilogy(frequencies, power, label=label, linewidth=2.5 if label == "original" else 1.5)
    ax.axvspan(spectrum.HIGH_FREQUENCY_CUTOFF, spectrum.NYQUIST, color="grey", alpha=0.15)
    ax.set(xlabel="spatial frequency (cycles per pixel)", ylabel="power (log scale)",
           title="Where each perturbation removes or adds detail")
    ax.legend()
    return fig


# ----------------------------------------------------------------------------- a detector on them


def _levels(perturbations, levels: dict | None) -> dict[str, list]:
    levels = levels or {}
    return {name: list(levels.get(name, _perturbation(name)[1])) for name in perturbations}


def _at_model_size(originals: list[np.ndarray], size: int, change=None, workers: int = 4) -> np.ndarray:
    """Apply `change` (or nothing) to each original, then resize it to size x size, as one batch."""
    def prepare(image: np.ndarray) -> np.ndarray:
        return resize(change(image) if change else image, size)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL releases the GIL while it works
        return np.stack(list(pool.map(prepare, originals)))


def _row(name: str, step: int, level, labels: np.ndarray, scores: np.ndarray, clean: np.ndarray, threshold: float,
         groups=None) -> dict:
    """One step: each measure, its interval, and its change from the clean scores with the paired interval."""
    row = {"perturbation": name, "step": step, "level": level}
    statistics = {"roc_auc": metrics.roc_auc,
                  "balanced_accuracy": metrics.threshold_statistics(threshold)["balanced_accuracy"]}
    for column, statistic in statistics.items():
        row[column] = statistic(labels, scores)
        row[f"{column}_low"], row[f"{column}_high"] = metrics.bootstrap_interval(labels, scores, statistic,
                                                                                 groups=groups)
        row[f"{column}_change"] = row[column] - statistic(labels, clean)
        row[f"{column}_change_low"], row[f"{column}_change_high"] = (0.0, 0.0) if step == 0 else \
            metrics.paired_difference_interval(labels, scores, clean, statistic, groups=groups)
    return row


def robustness_table(detector: Detector, frame: pd.DataFrame, perturbations=("jpeg", "downscale", "blur"),
                     levels: dict | None = None, workers: int = 4) -> pd.DataFrame:
    """ROC-AUC and balanced accuracy at the model's threshold, per perturbation and level, with their change.

    `frame` holds path and label columns (both classes), and a group column when the images come in
    groups (the intervals then resample whole groups). `levels` maps a perturbation to its levels,
    mild to harsh; by default those of `PERTURBATIONS`. One row per perturbation and step: step 0 is
    the clean image (level None), steps 1.. the levels in order. Each measure has its 95% interval
    (`_low`, `_high`) and its change from step 0 (`_change`) with the paired 95% interval of that
    change (`_change_low`, `_change_high`; 0 at step 0): an interval that excludes 0 is a change on
    these images, one that holds it is not, however the two steps' own intervals lie.
    """
    chosen = _levels(perturbations, levels)
    labels, groups = frame["label"].to_numpy(int), metrics.groups_of(frame)
    if len(np.unique(labels)) < 2:
        raise ValueError("ROC-AUC needs images of both classes in the frame.")
    originals = [load_image(path) for path in frame["path"]]
    size = detector.image_size
    clean = detector.p_fake(_at_model_size(originals, size, workers=workers))
    rows = []
    for name, name_levels in chosen.items():
        rows.append(_row(name, 0, None, labels, clean, clean, detector.threshold, groups))
        function = PERTURBATIONS[name][0]
        for step, level in enumerate(name_levels, start=1):
            batch = _at_model_size(originals, size, lambda image, level=level: function(image, level),
                                   workers)
            rows.append(_row(name, step, level, labels, detector.p_fake(batch), clean, detector.threshold, groups))
    return pd.DataFrame(rows, columns=COLUMNS)
