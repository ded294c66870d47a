"""Exact and near duplicates: the same picture twice, found by perceptual hashes (`file_properties`).

A near duplicate is a pair whose 64-bit perceptual hashes differ in a few bits: a re-saved or
resized copy, or the same person in the same scene. `near_pairs` finds every such pair exactly,
without comparing all N²/2 pairs (multi-index hashing); `find_duplicates` names both files.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.images import load_resized

# Perceptual hashes (64 bits) this close or closer are "the same picture". A re-saved or resized
# copy lands within 0-2 bits; aligned faces of two different people rarely come closer than 6.
NEAR_DUPLICATE_BITS = 4


def _hash_integers(phashes) -> np.ndarray:
    """64-bit perceptual hashes (imagehash's 16 hex digits) as unsigned integers."""
    values = np.asarray(phashes, dtype=str).tolist()
    odd = next((value for value in values if len(value) != 16), None)
    if odd is not None:
        raise ValueError(f"Perceptual hashes must have 64 bits (16 hex digits); got {odd!r}.")
    return np.array([int(value, 16) for value in values], dtype=np.uint64)


def _bit_counts(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (NumPy 2 counts them natively; before, through a table of bytes)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values).astype(np.int64)
    table = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.int64)
    return table[values.view(np.uint8).reshape(-1, 8)].sum(axis=1)


def near_pairs(phashes, max_bits: int = NEAR_DUPLICATE_BITS, batch: int = 1 << 21) -> pd.DataFrame:
    """Index pairs (a < b) whose perceptual hashes differ in at most `max_bits` bits, sorted by a, then b.

    Multi-index hashing instead of comparing all N²/2 pairs: the 64 bits are cut into max_bits + 1
    blocks. Two hashes that differ in at most max_bits bits differ in at most max_bits blocks, so at
    least one block is the same in both (the pigeonhole principle). So only pairs that agree on a
    whole block are compared, each in the first block they agree on, `batch` pairs at a time. Exact:
    the same pairs as comparing every pair, in a fraction of the time unless most hashes share blocks.
    """
    if not 0 <= max_bits < 64:
        raise ValueError(f"max_bits must be between 0 and 63, not {max_bits}.")
    hashes = _hash_integers(phashes)
    edges = np.linspace(0, 64, max_bits + 2).round().astype(int)
    masks = [np.uint64(((1 << (high - low)) - 1) << low) for low, high in zip(edges[:-1], edges[1:])]
    found = [np.zeros((0, 3), np.int64)]
    for block, mask in enumerate(masks):
        order = np.argsort(hashes & mask, kind="stable")
        keys = (hashes & mask)[order]
        later = np.searchsorted(keys, keys, side="right") - np.arange(len(keys)) - 1  # same key, further on
        ends = np.cumsum(later)
        start = 0
        while start < len(keys):  # positions start..stop-1 and their partners: about `batch` pairs
            done = ends[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, done + batch, side="right")))
            counts = later[start:stop]
            left = np.repeat(np.arange(start, stop), counts)
            right = left + 1 + np.arange(len(left)) - np.repeat(ends[start:stop] - counts - done, counts)
            a, b = order[left], order[right]
            differing = hashes[a] ^ hashes[b]
            keep = _bit_counts(differing) <= max_bits
            for earlier in masks[:block]:  # a pair that agrees on an earlier block was counted there
                keep &= (differing & earlier) != 0
            a, b = a[keep], b[keep]
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b), _bit_counts(differing[keep])], axis=1))
            start = stop
    pairs = np.concatenate(found)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return pd.DataFrame(pairs, columns=["a", "b", "distance"])


def find_duplicates(images: pd.DataFrame, max_bits: int = NEAR_DUPLICATE_BITS) -> pd.DataFrame:
    """Every pair of images that are exact (same bytes) or near (close perceptual hash) duplicates."""
    pairs = near_pairs(images["phash"], max_bits)
    sha = images["sha256"].to_numpy()
    # Identical bytes always decode to identical hashes, so exact pairs are among the near ones.
    pairs["kind"] = np.where(sha[pairs["a"]] == sha[pairs["b"]], "exact", "near")
    columns = ["path", "relpath", "split", "class_name"]
    side_a = images.loc[pairs["a"], columns].reset_index(drop=True).add_suffix("_a")
    side_b = images.loc[pairs["b"], columns].reset_index(drop=True).add_suffix("_b")
    positions = pairs[["a", "b"]].rename(columns={"a": "index_a", "b": "index_b"})  # rows of `images`
    result = pd.concat([pairs[["kind", "distance"]], positions, side_a, side_b], axis=1)
    result["across_splits"] = result["split_a"] != result["split_b"]
    result["across_classes"] = result["class_name_a"] != result["class_name_b"]
    return result.sort_values(["kind", "distance", "relpath_a"]).reset_index(drop=True)


def duplicate_groups(n_images: int, duplicates: pd.DataFrame) -> np.ndarray:
    """A group number per image: images linked by `find_duplicates` pairs, directly or not, share one."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = coo_matrix((np.ones(len(duplicates)), (duplicates["index_a"], duplicates["index_b"])),
                       shape=(n_images, n_images))
    return connected_components(links, directed=False)[1]


def plot_pairs(pairs: pd.DataFrame, size: int = 112) -> plt.Figure:
    """Each duplicate pair (rows of an audit's `duplicates`) side by side, with where each file sits."""
    fig, axes = plt.subplots(len(pairs), 2, figsize=(4.4, 2.3 * len(pairs)), squeeze=False)
    for row, pair in zip(axes, pairs.itertuples()):
        for ax, path, relpath in ((row[0], pair.path_a, pair.relpath_a), (row[1], pair.path_b, pair.relpath_b)):
            ax.imshow(load_resized(path, size))
            ax.set_title(f"{relpath}\n({pair.kind}, {pair.distance} bits)", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig
