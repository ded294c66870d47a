"""Figure saving and the shared look of every plot in the lessons."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from helpers import config


def use_style() -> None:
    """One consistent, readable style for all lessons."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
                         "axes.titleweight": "bold"})


def save_figure(fig: plt.Figure, name: str) -> str:
    """Save `fig` as figures/<name>.png (a stable name the lessons and README refer to)."""
    config.FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = config.FIGURES_DIR / f"{name}.png"
    fig.savefig(path)
    return str(path.relative_to(config.REPO_ROOT)) if path.is_relative_to(config.REPO_ROOT) else str(path)


def image_grid(images, titles=None, columns: int = 6, size: float = 2.0, suptitle: str | None = None) -> plt.Figure:
    """Show uint8 or 0-255 float images in a grid, with optional titles."""
    images = list(images)
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(np.clip(np.asarray(images[index]), 0, 255).astype(np.uint8))
            if titles is not None:
                ax.set_title(titles[index], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def training_curves(history, metrics=("loss", "accuracy", "auc")) -> plt.Figure:
    """Train and validation curves per epoch; a dashed line marks where fine-tuning (stage 2) begins."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    stage2 = history.loc[history["stage"] == "stage2", "global_epoch"]
    for ax, metric in zip(axes.flat, metrics):
        ax.plot(history["global_epoch"], history[metric], marker="o", label="train")
        ax.plot(history["global_epoch"], history[f"val_{metric}"], marker="o", label="validation")
        if len(stage2):
            ax.axvline(stage2.iloc[0] - 0.5, color="grey", linestyle="--", label="fine-tuning starts")
        ax.set(title=metric, xlabel="epoch")
    axes.flat[0].legend()
    fig.tight_layout()
    return fig
