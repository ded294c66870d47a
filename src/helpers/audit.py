"""The data audit a careful practitioner runs before training: broken files, duplicates, shortcuts.

A *shortcut* is a property that differs between the classes without being what makes an image
real or fake: one class saved at another JPEG quality, a watermark stamped on every fake, a
different image size. A model learns such a property happily, scores well on a test set that
shares it, and fails on the first image that does not. The audit measures each property per
image and asks how well it alone tells the classes apart (ROC-AUC, 0.5 = not at all); then it
trains a tiny cross-validated classifier on all of them together.

Entry point: `audit_dataset(scan_report_or_frame, profile=None) -> AuditReport`.
"""
from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from helpers import config, data
from helpers.errors import FolderExistsError
from helpers.files import printable
from helpers.images import load_image, load_resized

# Thresholds: named here so a learner can see, and change, what counts as a problem.
# Perceptual hashes (64 bits) this close or closer are "the same picture". A re-saved or resized
# copy lands within 0-2 bits; aligned faces of two different people rarely come closer than 6.
NEAR_DUPLICATE_BITS = 4
SHORTCUT_WARNING_AUC = 0.70  # one property alone separating the classes this well deserves a look
SHORTCUT_CRITICAL_AUC = 0.90  # ... and this well means a model can cheat with it
CHANCE_Z = 3.5  # an AUC must also sit this many standard errors above 0.5, so small sets do not cry wolf
CORNER_FRACTION = 1 / 8  # side of each corner patch, as a fraction of the shorter image side
BORDER_FRACTION = 1 / 16  # width of each border strip, likewise
CV_FOLDS = 5
CLASSIFIER_MAX_PER_CLASS = 10_000  # images of each class the metadata classifier sees at most: the whole
# 190,000-image Kaggle set would take it many minutes, for an AUC already known to about +-0.01
FILE_PROPERTIES = "file properties"  # the two feature sets the metadata classifier is trained on
WITH_REGIONS = "file properties + corners and borders"

SEVERITIES = ("ok", "info", "warning", "critical")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# The IJG (libjpeg) base luminance table in natural order: every encoder built on libjpeg,
# PIL included, scales this table by the quality setting.
_IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


def _ijg_tables() -> np.ndarray:
    """The luminance table libjpeg writes at each quality 1..100, shape (100, 64)."""
    quality = np.arange(1, 101)[:, None]
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    return np.clip((_IJG_LUMINANCE[None, :] * scale + 50) // 100, 1, 255)


_QUALITY_TABLES = _ijg_tables()


def estimate_jpeg_quality(quantization: dict | None) -> float:
    """The libjpeg quality (1-100) whose luminance table is closest to the file's; 100 without one.

    `quantization` is what PIL exposes as `image.quantization` for a JPEG. Images without it
    (PNG and other lossless formats) count as quality 100: nothing was thrown away.
    """
    if not quantization:
        return 100.0
    table = np.asarray(quantization[min(quantization)], dtype=np.int64).ravel()[:64]
    errors = np.abs(_QUALITY_TABLES - table).sum(axis=1)
    return float(np.flatnonzero(errors == errors.min())[-1] + 1)  # ties near 100: the highest


REGIONS = ("corner_top_left", "corner_top_right", "corner_bottom_left", "corner_bottom_right",
           "border_top", "border_bottom", "border_left", "border_right")


def region_statistics(pixels: np.ndarray) -> dict[str, float]:
    """Brightness (mean), contrast (std) and edge strength of each corner patch and border strip.

    A watermark, a logo or a camera timestamp lives in a corner or along an edge. Its sharp strokes
    raise the edge strength (the mean grey-level step between neighbouring pixels) far above that
    of a background, even when they barely change the region's mean or contrast.
    """
    grey = pixels.astype(np.float32) @ _LUMA
    side = min(grey.shape)
    patch = max(2, round(side * CORNER_FRACTION))
    strip = max(2, round(side * BORDER_FRACTION))
    corners = (grey[:patch, :patch], grey[:patch, -patch:], grey[-patch:, :patch], grey[-patch:, -patch:])
    borders = (grey[:strip], grey[-strip:], grey[:, :strip], grey[:, -strip:])
    regions = dict(zip(REGIONS, corners + borders))
    stats = {}
    for name, region in regions.items():
        stats[f"{name}_mean"] = float(region.mean())
        stats[f"{name}_std"] = float(region.std())
        stats[f"{name}_edges"] = float(np.abs(np.diff(region, axis=0)).mean() + np.abs(np.diff(region, axis=1)).mean())
    return stats


def describe_file(path: str) -> dict:
    """Everything the audit measures on one readable file, from one read of its bytes."""
    raw = Path(path).read_bytes()
    with Image.open(io.BytesIO(raw)) as image:
        properties = {
            "sha256": hashlib.sha256(raw).hexdigest(),
            "jpeg_quality": estimate_jpeg_quality(getattr(image, "quantization", None)),
            "has_exif": "exif" in image.info,
            "has_icc_profile": "icc_profile" in image.info,
        }
    pixels = load_image(raw, name=path)
    properties["phash"] = str(imagehash.phash(Image.fromarray(pixels)))
    properties.update(region_statistics(pixels))
    return properties


DESCRIBED = {"sha256": "str", "jpeg_quality": "float64", "has_exif": "bool", "has_icc_profile": "bool", "phash": "str",
             **{f"{region}_{statistic}": "float64" for region in REGIONS for statistic in ("mean", "std", "edges")}}


def describe_files(files: pd.DataFrame, progress: bool = True, workers: int = 4, cache: bool = True) -> pd.DataFrame:
    """`files` (readable rows of a scan) with the audit's measurements (DESCRIBED) added as columns.

    Like the scan, the measurements are kept per file in .cache/audit (`data.measure_files`): a second
    audit of the same data opens only the files that are new or changed.
    """
    measured = data.measure_files(files["path"], describe_file, DESCRIBED, "audit", files.attrs.get("root"),
                                  cache=cache, progress=progress, workers=workers)
    return pd.concat([files.reset_index(drop=True), measured], axis=1)


# ----------------------------------------------------------------------------- duplicates
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


# ----------------------------------------------------------------------------- shortcuts
def is_region_feature(name: str) -> bool:
    """Corner and border statistics measure pixels (content), the rest measure the file."""
    return name.startswith(("corner_", "border_"))


def metadata_features(images: pd.DataFrame) -> pd.DataFrame:
    """The numeric properties a shortcut could hide in: size, file, encoding, metadata, edges."""
    features = pd.DataFrame({
        "width": images["width"], "height": images["height"], "file_bytes": images["bytes"],
        "jpeg_quality": images["jpeg_quality"],
        "has_exif": images["has_exif"].astype(int), "has_icc_profile": images["has_icc_profile"].astype(int),
    })
    for column in ("format", "mode"):  # one indicator per value, when the set holds more than one
        values = sorted(images[column].unique())
        if len(values) > 1:
            for value in values:
                features[f"{column}_is_{value}"] = (images[column] == value).astype(int)
    regions = [c for c in images.columns if is_region_feature(c)]
    return pd.concat([features, images[regions]], axis=1).astype(float).reset_index(drop=True)


def chance_margin(labels) -> float:
    """How far from 0.5 an AUC must be (CHANCE_Z standard errors) before it is more than luck."""
    labels = np.asarray(labels)
    n_fake, n_real = int((labels == 1).sum()), int((labels == 0).sum())
    if min(n_fake, n_real) == 0:
        return 0.5
    return CHANCE_Z * float(np.sqrt((n_fake + n_real + 1) / (12 * n_fake * n_real)))


def severity_of(auc: float, margin: float) -> str:
    """ok (chance), info (real but weak), warning or critical, from an AUC and the chance margin."""
    if auc < 0.5 + margin:
        return "ok"
    if auc >= SHORTCUT_CRITICAL_AUC:
        return "critical"
    return "warning" if auc >= SHORTCUT_WARNING_AUC else "info"


def feature_aucs(features: pd.DataFrame, labels) -> pd.DataFrame:
    """How well each property alone separates the classes, strongest first.

    `auc` is the ROC-AUC in whichever direction is larger (0.5 = no signal, 1.0 = perfect);
    `higher_in` says which class has the larger values.
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    margin = chance_margin(labels)
    rows = []
    for name, values in features.items():
        raw = roc_auc_score(labels, values) if values.nunique() > 1 else 0.5
        auc = max(raw, 1 - raw)
        rows.append({"feature": name, "auc": auc,
                     "higher_in": "-" if auc == 0.5 else config.CLASS_NAMES[int(raw > 0.5)],
                     "real_median": values[labels == 0].median(), "fake_median": values[labels == 1].median(),
                     "severity": severity_of(auc, margin)})
    return pd.DataFrame(rows).sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def duplicate_groups(n_images: int, duplicates: pd.DataFrame) -> np.ndarray:
    """A group number per image: images linked by `find_duplicates` pairs, directly or not, share one."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = coo_matrix((np.ones(len(duplicates)), (duplicates["index_a"], duplicates["index_b"])),
                       shape=(n_images, n_images))
    return connected_components(links, directed=False)[1]


def metadata_classifier_auc(features: pd.DataFrame, labels, groups=None, seed: int = config.SEED) -> float | None:
    """Cross-validated ROC-AUC of a small random forest that sees only `features`; None if too few images.

    Images of one `group` (duplicates of each other) stay in the same fold. Otherwise a real frame
    and the fake made from it, nearly identical in every property, land on both sides of a split,
    and the held-out one is predicted as its twin's class: the score says more about the pairing
    than about the properties.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    folds = min(CV_FOLDS, int(np.bincount(labels, minlength=2).min()), len(np.unique(groups)))
    if folds < 2:
        return None
    forest = RandomForestClassifier(n_estimators=50, max_depth=4, min_samples_leaf=2, random_state=seed, n_jobs=1)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(forest, features, labels, groups=groups, cv=splitter, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def classifier_rows(labels, max_per_class: int = CLASSIFIER_MAX_PER_CLASS, seed: int = config.SEED) -> np.ndarray:
    """Positions of the rows the metadata classifier sees: all, or `max_per_class` of each class drawn with a seed."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = [np.zeros(0, np.int64)]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.choice(members, max_per_class, replace=False) if len(members) > max_per_class else members)
    return np.sort(np.concatenate(chosen))


def classifier_aucs(features: pd.DataFrame, labels, groups=None, seed: int = config.SEED) -> dict[str, float | None]:
    """The metadata classifier twice: on file properties alone, then with corners and borders added.

    Kept apart because they mean different things: a file property that separates the classes is
    almost always a shortcut; corners and borders also see the picture itself (a generator's
    smooth backgrounds, say), which may be a real trait of the fakes or a background shortcut.
    """
    file_only = features[[c for c in features.columns if not is_region_feature(c)]]
    return {FILE_PROPERTIES: metadata_classifier_auc(file_only, labels, groups, seed),
            WITH_REGIONS: metadata_classifier_auc(features, labels, groups, seed)}


# ----------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """One result of the audit, in plain English."""

    kind: str  # unreadable | exact_duplicate | near_duplicate | shortcut | metadata_classifier
    severity: str  # ok | info | warning | critical
    message: str
    features: tuple[str, ...] = ()  # for shortcuts: the leaking properties, strongest first


REGION_GROUP = "corners and borders (watermarks, logos)"
_PROPERTY_GROUPS = {  # feature-name prefix -> the property a learner would recognise
    "width": "image size", "height": "image size", "file_bytes": "file size",
    "jpeg_quality": "JPEG quality", "format_is_": "file format", "mode_is_": "colour mode",
    "has_exif": "metadata (EXIF, ICC profile)", "has_icc_profile": "metadata (EXIF, ICC profile)",
    "corner_": REGION_GROUP, "border_": REGION_GROUP,
}


def property_group(feature: str) -> str:
    return next(group for prefix, group in _PROPERTY_GROUPS.items() if feature.startswith(prefix))


def _example(pairs: pd.DataFrame) -> str:
    first = pairs.iloc[0]
    return f"e.g. {first['relpath_a']} and {first['relpath_b']}"


def unreadable_findings(unreadable: pd.DataFrame) -> list[Finding]:
    if unreadable.empty:
        return [Finding("unreadable", "ok", "Every file could be opened and decoded.")]
    names = ", ".join(unreadable["relpath"].head(3))
    return [Finding("unreadable", "warning",
                    f"{len(unreadable)} file(s) cannot be read ({names}{', ...' if len(unreadable) > 3 else ''}); "
                    "the lessons leave them out, but find out why: a broken download may have lost more.")]


def duplicate_findings(pairs: pd.DataFrame, n_images: int) -> list[Finding]:
    findings = []
    exact, near = pairs[pairs["kind"] == "exact"], pairs[pairs["kind"] == "near"]
    conflicts = exact[exact["across_classes"]]
    if len(conflicts):
        findings.append(Finding("exact_duplicate", "critical",
                                f"{len(conflicts)} identical file pair(s) carry both labels, real and fake "
                                f"({_example(conflicts)}): at least one label is wrong."))
    if exact["across_splits"].any():
        leaked = exact[exact["across_splits"]]
        findings.append(Finding("exact_duplicate", "critical",
                                f"{len(leaked)} identical file pair(s) sit in two splits ({_example(leaked)}): "
                                "the model is tested on images it trained on, which inflates every metric. "
                                "Keep each in one split only."))
    within = exact[~exact["across_splits"] & ~exact["across_classes"]]
    if len(within):
        findings.append(Finding("exact_duplicate", "warning",
                                f"{len(within)} identical file pair(s) within one split ({_example(within)}): "
                                "each counts twice in training and evaluation."))
    if exact.empty:
        findings.append(Finding("exact_duplicate", "ok", f"No two of the {n_images} files have identical bytes."))
    if near["across_splits"].any():
        leaked = near[near["across_splits"]]
        findings.append(Finding("near_duplicate", "warning",
                                f"{len(leaked)} near-identical pair(s) across splits ({_example(leaked)}; perceptual "
                                f"hashes within {NEAR_DUPLICATE_BITS} bits): look at them. The same picture, or the "
                                "same person in the same scene, in two splits lets a model recognise instead of "
                                "detect; keep such images in one split."))
    if (~near["across_splits"]).any():
        inside = near[~near["across_splits"]]
        paired = int(inside["across_classes"].sum())
        findings.append(Finding("near_duplicate", "info",
                                f"{len(inside)} near-identical pair(s) within a split ({paired} of them a real and a "
                                f"fake, e.g. a fake made from that real frame; {_example(inside)}): harmless for "
                                "evaluation as long as they stay in the same split."))
    if near.empty:
        findings.append(Finding("near_duplicate", "ok",
                                f"No near-duplicates (perceptual hashes within {NEAR_DUPLICATE_BITS} bits)."))
    return findings


_SAVING_ADVICE = "How a file was saved says nothing about how its face was made: prepare both classes the same way."
_ADVICE = {  # property group -> what to do about it; anything else is about how files were saved
    "file size": ("File size follows both how a file was saved and how much detail it holds (smoother faces "
                  "compress smaller): if size, format and JPEG quality match between the classes, it reflects content."),
    REGION_GROUP: (
        "Corners and borders also show the picture itself (a generator's smooth backgrounds, say): "
        "look at a few images to tell a stamped mark, which must go, from a trait of the fakes."),
}


def shortcut_findings(aucs: pd.DataFrame) -> list[Finding]:
    """One finding per property group that separates the classes beyond chance."""
    flagged = aucs[aucs["severity"] != "ok"].assign(group=lambda t: t["feature"].map(property_group))
    if flagged.empty:
        return [Finding("shortcut", "ok", "No single property (size, file size, JPEG quality, format, colour mode, "
                                          "metadata, corners, borders) separates the classes beyond chance.")]
    findings = []
    for group, rows in flagged.groupby("group", sort=False):
        top = rows.iloc[0]
        severity = max(rows["severity"], key=SEVERITIES.index)
        consequence = {"critical": "a model can tell the classes apart from this alone",
                       "warning": "a model could lean on it",
                       "info": "a weak but real difference"}[severity]
        advice = _ADVICE.get(group, _SAVING_ADVICE)
        findings.append(Finding(
            "shortcut", severity,
            f"{group}: {top['feature']} separates the classes with AUC {top['auc']:.2f} (higher in "
            f"{top['higher_in']}; median real {top['real_median']:.4g}, fake {top['fake_median']:.4g}): "
            f"{consequence}. {advice}", tuple(rows["feature"])))
    return findings


def classifier_finding(feature_set: str, auc: float | None, labels) -> Finding:
    if auc is None:
        return Finding("metadata_classifier", "info", "Too few images of one class to cross-validate a classifier.")
    severity = severity_of(auc, chance_margin(labels))  # below 0.5 is no shortcut: nothing to exploit
    verdict = {"ok": "no sign that a model could cheat with them",
               "info": "a weak signal; see which single properties carry it",
               "warning": "a model could learn part of the task from them alone",
               "critical": "a model could cheat: fix the data before trusting any score"}[severity]
    return Finding("metadata_classifier", severity,
                   f"A small classifier that sees only the {feature_set} (not the faces) reaches ROC-AUC "
                   f"{auc:.2f} ({CV_FOLDS}-fold cross-validated on {len(labels):,} images, 0.5 = chance): {verdict}.")


# ----------------------------------------------------------------------------- the report
@dataclass
class AuditReport:
    """What `audit_dataset` found. `findings` lists every check; `problems` only what needs attention."""

    images: pd.DataFrame  # one row per audited image with everything measured
    unreadable: pd.DataFrame
    duplicates: pd.DataFrame  # pairs: kind (exact | near), distance, both files (index_a/b: rows of images)
    feature_aucs: pd.DataFrame
    classifier_aucs: dict[str, float | None]  # feature set -> cross-validated ROC-AUC
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    scope: str = ""

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity in ("warning", "critical")]

    @property
    def metadata_auc(self) -> float | None:
        """The headline number: the classifier on file properties alone."""
        return self.classifier_aucs[FILE_PROPERTIES]

    @property
    def flagged_features(self) -> list[str]:
        return self.feature_aucs.loc[self.feature_aucs["severity"] != "ok", "feature"].tolist()

    def duplicate_counts(self) -> pd.DataFrame:
        """Pairs of exact and near duplicates, within one split and across splits."""
        table = pd.crosstab(self.duplicates["kind"], self.duplicates["across_splits"])
        table = table.reindex(index=["exact", "near"], columns=[False, True], fill_value=0)
        table.columns = ["within a split", "across splits"]
        return table

    def summary(self) -> pd.DataFrame:
        """The findings as a table, worst first."""
        table = pd.DataFrame([(f.severity, f.kind, f.message) for f in self.findings],
                             columns=["severity", "check", "finding"])
        order = table["severity"].map(SEVERITIES.index)
        return table.iloc[order.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)

    def __str__(self) -> str:
        lines = [f"Audited {len(self.images)} images ({self.scope}) in {self.seconds:.1f} s: "
                 f"{len(self.problems)} problem(s)."]
        lines += [f"  [{row.severity:>8}] {row.check}: {row.finding}" for row in self.summary().itertuples()]
        return printable("\n".join(lines))


def _readable_files(source: data.ScanReport | pd.DataFrame, progress: bool, cache: bool) -> pd.DataFrame:
    """A scan's file table: from a ScanReport, a scanned frame, or an index frame (scanned here)."""
    if isinstance(source, data.ScanReport):
        return source.files
    return source if "ok" in source.columns else data.scan(source, progress=progress, cache=cache).files


def audit_dataset(source: data.ScanReport | pd.DataFrame, profile: config.Profile | None = None,
                  progress: bool = True, workers: int = 4, seed: int = config.SEED,
                  cache: bool = True) -> AuditReport:
    """Audit a dataset: unreadable files, exact and near duplicates, and shortcuts.

    `source` is a `data.scan` report, or a frame from `data.index_dataset` (scanned here). With a
    `profile`, only its subset of the readable images is audited (unreadable ones are all listed).
    With `cache`, each file's measurements are kept for the next audit (`describe_files`).
    """
    started = time.perf_counter()
    files = _readable_files(source, progress, cache)
    unreadable = files[~files["ok"]].reset_index(drop=True)
    readable = files[files["ok"]].reset_index(drop=True)
    readable.attrs.update(files.attrs)
    chosen = data.subset(readable, profile, seed=seed) if profile else readable
    scope = (f"{profile.name} profile: {len(chosen)} of {len(readable)} readable images"
             if profile else f"all {len(readable)} readable images")
    images = describe_files(chosen, progress=progress, workers=workers, cache=cache)
    duplicates = find_duplicates(images)
    features = metadata_features(images)
    aucs = feature_aucs(features, images["label"])
    groups = duplicate_groups(len(images), duplicates)
    rows = classifier_rows(images["label"], seed=seed)
    labels = images["label"].to_numpy()[rows]
    classifiers = classifier_aucs(features.iloc[rows].reset_index(drop=True), labels, groups[rows], seed)
    findings = (unreadable_findings(unreadable) + duplicate_findings(duplicates, len(images))
                + shortcut_findings(aucs)
                + [classifier_finding(name, auc, labels) for name, auc in classifiers.items()])
    return AuditReport(images, unreadable, duplicates, aucs, classifiers, findings,
                       time.perf_counter() - started, f"{scope} under {files.attrs.get('root', '?')}")


# ----------------------------------------------------------------------------- planting shortcuts
def stamp_watermark(pixels: np.ndarray, text: str = "AI-GENERATED") -> np.ndarray:
    """The image with `text` stamped in white into its bottom-right corner, as some generators publish."""
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, image.height // 16))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(2, image.height // 64)
    draw.text((image.width - (right - left) - margin - left, image.height - (bottom - top) - margin - top),
              text, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def plant_shortcuts(frame: pd.DataFrame, folder: str | Path, watermark: bool = True,
                    fake_quality: int | None = None, quality: int = 90) -> Path:
    """Copy `frame`'s images into `folder` (Train/Validation/Test x Real/Fake) with shortcuts planted.

    Every image is decoded and re-saved at `quality`; fakes get a watermark and/or `fake_quality`
    instead. This rebuilds, on a small scale, how the StyleGAN2 fakes of ffhq-stylegan2 were
    first published. Each image keeps its split, so `frame` needs all three. It writes only
    inside `folder`, never into the data, and refuses a `folder` that exists and is not empty.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FolderExistsError(f"{folder} already exists and is not an empty folder; "
                                "choose a new folder for the planted copy (nothing was deleted).")
    for row in frame.itertuples():
        pixels = load_image(row.path)
        is_fake = row.label == 1
        if is_fake and watermark:
            pixels = stamp_watermark(pixels)
        target = folder / row.split.title() / row.class_name.title() / Path(row.relpath).with_suffix(".jpg").name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, quality=fake_quality if (is_fake and fake_quality) else quality)
    return folder


def plot_feature_aucs(aucs: pd.DataFrame, warning: float = SHORTCUT_WARNING_AUC, critical: float = SHORTCUT_CRITICAL_AUC,
                      top: int = 15) -> plt.Figure:
    """The audit's per-property AUCs as bars, strongest first, with the warning and critical lines."""
    shown = aucs.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.2))
    ax.barh(shown["feature"], shown["auc"], color=["C3" if s != "ok" else "C0" for s in shown["severity"]])
    for value, label in ((0.5, "chance"), (warning, "warning"), (critical, "critical")):
        ax.axvline(value, color="grey", lw=0.8, ls=":")
        ax.text(value, len(shown) - 0.4, label, fontsize=8, ha="center")
    ax.set(xlim=(0.45, 1.0), xlabel="ROC-AUC of the property alone", title="Which properties tell the classes apart?")
    return fig


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
