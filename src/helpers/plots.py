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
