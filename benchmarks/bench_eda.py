"""Lesson 01's numbers on whole data sets: what the audit and the spectrum find, as the lesson finds them.

    python benchmarks/bench_eda.py --data ROOT [--data ROOT2 ...] [--profile cpu]
    python benchmarks/bench_eda.py --published SOURCES       # the ffhq-stylegan2 files as first published

For each data root, lesson 01's steps in the given profile (default `cpu`, which holds every image of
the two lesson sets): the scan, the audit of the profile's subset (`audit.audit_dataset`: unreadable
files, exact and near duplicates, each property's ROC-AUC, the metadata classifier), and, on
`EDA_PER_CLASS` images of each class at their own size, the share of clipped pixels, the change in
high-frequency energy with its 95% interval and the strongest periodic trace of the spectrum
(`helpers.eda`). Writes <out>/<data folder>.json (default benchmarks/eda/, committed), which lesson 01
prints in "What we saw on the shared sets".

`--published` audits a folder of source files in the flat layout (real/, fake/), such as
`data/` of the repository `ffhq-stylegan2` was cut from: each file's git blob id is looked up in the
lesson sets' manifests, and the JSON (<out>/<set>-published.json) records how many were found
there, each class's image sizes and estimated JPEG qualities, and what the audit flags. Lesson 01
prints it where it tells how that set was cleaned. Every result records the command, versions,
machine and seconds; the scan and the audit measure every file afresh (no cache).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_model import machine_info  # same folder

from helpers import audit, config, data, eda, files, lesson_sets, spectrum

EDA_PER_CLASS = 300  # lesson 01's EDA_PER_CLASS: the images of each class its statistics are computed on
OUT_DIR = Path(__file__).parent / "eda"
REPO = Path(__file__).resolve().parent.parent


def code_version() -> dict:
    """The commit measured, and whether the helpers differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.rstrip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "helpers_modified": git("status", "--porcelain", "--", "src/helpers").splitlines()}


def duplicate_counts(pairs) -> dict:
    exact, near = pairs[pairs["kind"] == "exact"], pairs[pairs["kind"] == "near"]
    within = near[~near["across_splits"]]
    return {"exact_pairs": len(exact), "exact_pairs_across_splits": int(exact["across_splits"].sum()),
            "exact_pairs_across_classes": int(exact["across_classes"].sum()),
            "near_pairs_within_splits": len(within),
            "near_pairs_within_splits_real_and_fake": int(within["across_classes"].sum()),
            "near_pairs_across_splits": int(near["across_splits"].sum())}


def audit_summary(found: audit.AuditReport) -> dict:
    """What the lesson reads from an audit: counts, duplicates, each property's AUC, the flags, the classifier."""
    images = found.images
    labels = images["label"].to_numpy()
    formats = images.groupby(["width", "height", "format", "mode"]).size()
    aucs = found.feature_aucs.assign(group=found.feature_aucs["feature"].map(audit.property_group))
    flagged = aucs[aucs["severity"] != "ok"]
    return {
        "images": len(images), "real": int((labels == 0).sum()), "fake": int((labels == 1).sum()),
        "fake_share": round(float(labels.mean()), 4),
        "formats": [{"width": int(w), "height": int(h), "format": f, "mode": m, "images": int(n)}
                    for (w, h, f, m), n in formats.items()],
        "jpeg_quality": {name: sorted({float(q) for q in images.loc[labels == label, "jpeg_quality"]})
                         for label, name in enumerate(config.CLASS_NAMES)},
        "unreadable": len(found.unreadable),
        "duplicates": duplicate_counts(found.duplicates),
        "chance_margin": round(audit.chance_margin(labels), 4),
        "feature_aucs": [{"feature": row.feature, "group": row.group, "auc": round(float(row.auc), 4),
                          "higher_in": row.higher_in, "real_median": round(float(row.real_median), 4),
                          "fake_median": round(float(row.fake_median), 4), "severity": row.severity}
                         for row in aucs.itertuples()],
        "flagged_groups": list(dict.fromkeys(flagged["group"])),  # strongest first
        "classifier_aucs": {name: None if auc is None else round(auc, 4)
                            for name, auc in found.classifier_aucs.items()},
        "problems": [finding.message for finding in found.problems],
    }


def spectrum_summary(frame) -> dict:
    """Lesson 01's EDA cells: clipped pixels, high-frequency energy and periodic traces, fake against real."""
    size = int(frame["width"].mode()[0])
    sample = eda.sample_per_class(frame, EDA_PER_CLASS)
    images, labels = data.load_images(sample, size), sample["label"].to_numpy()
    clipped = eda.per_class(eda.clipped_share, images, labels)
    spectra = eda.per_class(spectrum.mean_log_spectrum, images, labels)
    energy = eda.high_frequency_change(images, labels)
    peak = eda.periodic_peak(spectra["fake"] - spectra["real"])
    return {
        "per_class": EDA_PER_CLASS, "images": len(images), "image_size": size,
        "clipped_share": {name: round(share, 5) for name, share in clipped.items()},
        "high_frequency_change": {"change": round(energy.change, 4), "interval": [round(energy.low, 4),
                                                                                 round(energy.high, 4)],
                                  "clear": energy.clear},
        "periodic_peak": {"kind": peak.kind, "score": round(peak.score, 2), "notable": peak.notable,
                          "period_pixels": round(peak.period, 1), "where": peak.where()},
        "described": eda.describe_spectrum(energy, peak),
    }


def measure(root: Path, profile: config.Profile) -> dict:
    started = time.perf_counter()
    report = data.scan(data.index_dataset(root), progress=False, cache=False)  # data.load_split, without the cache
    frame = data.subset(report.good, profile)
    frame.attrs.update(report.files.attrs)
    scanned = time.perf_counter()
    found = audit.audit_dataset(report, profile=profile, progress=False, cache=False)
    audited = time.perf_counter()
    spectra = spectrum_summary(frame)
    return {"data": root.name, "lesson_set": lesson_sets.identify(root), "profile": profile.name,
            "audit": {**audit_summary(found), "scope": found.scope.split(" under ")[0]},
            "spectrum": spectra,
            "seconds": {"scan": round(scanned - started, 1), "audit": round(audited - scanned, 1),
                        "spectrum": round(time.perf_counter() - audited, 1)}}


def manifest_sources() -> dict[str, tuple[str, str, str]]:
    """Every lesson-set source by its git blob id: (set, repository, commit)."""
    found = {}
    for name in lesson_sets.NAMES:
        for row in lesson_sets.manifest(name).itertuples():
            found[row.source_git_blob] = (name, row.repository, row.commit)
    return found


def measure_published(folder: Path) -> dict:
    """The audit of files as published, each looked up by its git blob id in the lesson sets' manifests."""
    started = time.perf_counter()
    frame = data.index_dataset(folder)
    sources = manifest_sources()
    listed = [sources.get(lesson_sets.git_blob_id(Path(path).read_bytes())) for path in frame["path"]]
    sets = {entry for entry in listed if entry}
    if len(sets) != 1:
        raise ValueError(f"the files in {folder} are not the sources of one lesson set ({len(sets)} sets found)")
    (name, repository, commit), = sets
    found = audit.audit_dataset(frame, progress=False, cache=False)
    return {"data": f"{name} as published", "lesson_set": name, "repository": repository, "commit": commit,
            "files": len(frame), "files_in_manifest": sum(entry is not None for entry in listed),
            "audit": {**audit_summary(found), "scope": found.scope.split(" under ")[0]},
            "seconds": {"total": round(time.perf_counter() - started, 1)}}


def write(result: dict, path: Path, command: str) -> None:
    result.update(command=command, code=code_version(),
                  machine={key: value for key, value in machine_info().items() if key != "host"})
    files.write_text(path, json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", default=[], help="a data root; repeat for several")
    parser.add_argument("--profile", default="cpu", help="smoke, cpu or full (default: cpu)")
    parser.add_argument("--published", type=Path, help="a folder of a lesson set's source files, real/ and fake/")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the JSON files")
    args = parser.parse_args(argv)
    if not args.data and not args.published:
        parser.error("give --data ROOT, --published SOURCES, or both")
    profile = config.get_profile(args.profile)
    args.out.mkdir(parents=True, exist_ok=True)
    for root in args.data:
        result = measure(config.data_root(root), profile)
        audited, spectra = result["audit"], result["spectrum"]
        print(f"{result['data']}: {audited['images']} images, duplicates {audited['duplicates']}, flagged "
              f"{audited['flagged_groups']}, classifier {audited['classifier_aucs']}; {spectra['described']} "
              f"({result['seconds']})")
        write(result, args.out / f"{result['data']}.json",
              f"python benchmarks/bench_eda.py --data {result['data']} --profile {profile.name}")
    if args.published:
        try:
            result = measure_published(args.published)
        except ValueError as err:
            parser.error(str(err))
        print(f"{result['data']}: {result['files_in_manifest']} of {result['files']} files in the manifest; "
              f"JPEG quality {result['audit']['jpeg_quality']}; flagged {result['audit']['flagged_groups']}")
        write(result, args.out / f"{result['lesson_set']}-published.json",
              "python benchmarks/bench_eda.py --published SOURCES")
    return 0


if __name__ == "__main__":
    sys.exit(main())
