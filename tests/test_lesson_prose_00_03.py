"""What lessons 00-03 say in prose about committed results agrees with the JSON those results are in.

Each test reads a markdown cell (by its id), checks that it still says what is checked here, and
checks that against the committed JSON: benchmarks/scale (the `full` profile's data steps),
benchmarks/eda (lesson 01 on the lesson sets, and the published ffhq-stylegan2 files) and
benchmarks/probe (lesson 03's probe). Numbers the cells print from these files need no test: the
notebooks run under nbval.
"""
import json
import re

import pytest

from helpers import audit, config

BENCHMARKS = config.REPO_ROOT / "benchmarks"
NOTEBOOKS = config.REPO_ROOT / "notebooks"


def cell(notebook: str, cell_id: str) -> str:
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    return "".join(next(found["source"] for found in cells if found.get("id") == cell_id))


def time_line(notebook: str) -> str:
    opening = next(text for text in (cell(notebook, found["id"]) for found in
                                     json.loads((NOTEBOOKS / notebook).read_text())["cells"])
                   if text.startswith("## What you will learn"))
    return next(line for line in opening.splitlines() if line.startswith("**Time per profile:**"))


def result(*parts: str) -> dict:
    return json.loads(BENCHMARKS.joinpath(*parts).read_text())


def says(text: str, *phrases: str) -> None:
    flat = " ".join(text.split())
    for phrase in phrases:
        assert phrase in flat, f"the prose no longer says {phrase!r}: update it and this test together"


# ----------------------------------------------------------------------------- the full profile's times
@pytest.fixture(scope="module")
def scale() -> dict:
    measured = result("scale", "1.0.json")
    steps = measured["steps"]
    first_scans = [steps["scan"]["seconds"]] + [again["measured_again"]["scan"]["seconds"]
                                                for again in measured.get("filled_later", [])
                                                if "scan" in again.get("measured_again", {})]
    return {"images": measured["images"]["total"], "scan": (round(min(first_scans)), round(max(first_scans))),
            "audit": round(steps["audit"]["seconds"]), "eda": round(steps["eda"]["seconds"]),
            "data_step": round(steps["lesson_data_full"]["seconds"])}


def test_lesson_00_quotes_the_measured_scan(scale):
    says(time_line("00_setup.ipynb"), f"{scale['scan'][0]}-{scale['scan'][1]} s", f"{scale['images']:,}",
         "generated variants of the lesson sets' faces", "benchmarks/scale/1.0.json")


def test_lesson_01_quotes_the_measured_steps(scale):
    line = time_line("01_eda_and_audit.ipynb")
    says(line, f"scan {scale['scan'][0]}-{scale['scan'][1]} s", f"audit {scale['audit']} s", f"EDA {scale['eda']} s",
         f"{scale['images']:,} generated variants", "benchmarks/scale/1.0.json")
    low, high = (int(value) for value in re.search(r"about (\d+)-(\d+) min", line).groups())
    total = (scale["scan"][0] + scale["audit"] + scale["eda"], scale["scan"][1] + scale["audit"] + scale["eda"])
    assert low * 60 <= total[0] and total[1] <= high * 60, "the estimate is the sum of the measured steps"


def test_lesson_02_quotes_the_measured_data_step(scale):
    says(time_line("02_augmentation.ipynb"), f"took {scale['data_step']} s at {scale['images']:,} images",
         "benchmarks/scale/1.0.json")


# ----------------------------------------------------------------------------- lesson 01 on the lesson sets
def test_lesson_01_measures_the_committed_spectrum_with_its_own_sample():
    per_class = int(re.search(r"^EDA_PER_CLASS = (\d+)", (BENCHMARKS / "bench_eda.py").read_text(), re.M).group(1))
    assert f"EDA_PER_CLASS = {per_class} " in cell("01_eda_and_audit.ipynb", "4e7632c2")
    for name in ("dfdc-faces", "ffhq-stylegan2"):
        measured = result("eda", f"{name}.json")
        assert measured["lesson_set"] == name and measured["profile"] == "cpu"
        assert measured["spectrum"]["per_class"] == per_class


def _aucs(measured: dict) -> dict:
    return {row["feature"]: row for row in measured["audit"]["feature_aucs"]}


def test_what_lesson_01_says_about_dfdc_faces():
    says(cell("01_eda_and_audit.ipynb", "b8d2f0a4"), "near-identical pairs within splits are almost all a real frame",
         "The few across splits", "only the file size differs, weakly, and the fakes are the smaller",
         "the face swaps are smoother", "No periodic traces")
    measured = result("eda", "dfdc-faces.json")
    found, spectral = measured["audit"], measured["spectrum"]
    pairs = found["duplicates"]
    assert found["unreadable"] == 0 and pairs["exact_pairs"] == 0
    assert pairs["near_pairs_within_splits_real_and_fake"] >= 0.95 * pairs["near_pairs_within_splits"] > 0
    assert 0 < pairs["near_pairs_across_splits"] < 0.05 * pairs["near_pairs_within_splits"]
    assert found["flagged_groups"] == ["file size"]
    size = _aucs(measured)["file_bytes"]
    assert size["higher_in"] == "real" and size["severity"] == "info" and size["auc"] < audit.SHORTCUT_WARNING_AUC
    energy = spectral["high_frequency_change"]
    assert energy["clear"] and energy["change"] < 0
    assert not spectral["periodic_peak"]["notable"]


def test_what_lesson_01_says_about_ffhq_stylegan2():
    says(cell("01_eda_and_audit.ipynb", "b8d2f0a4"), "no duplicates, and size, format and JPEG quality are the same",
         "busier borders and more clipped pixels", "does better than the one on file properties alone",
         "the fakes are smoother too, and one faint periodic line stands out")
    measured = result("eda", "ffhq-stylegan2.json")
    found, spectral = measured["audit"], measured["spectrum"]
    assert found["unreadable"] == 0 and not any(found["duplicates"].values())
    aucs = _aucs(measured)
    assert len(found["formats"]) == 1 and all(aucs[name]["auc"] == 0.5 for name in ("width", "height", "jpeg_quality"))
    assert found["flagged_groups"] == [audit.REGION_GROUP]
    assert aucs["border_left_std"]["higher_in"] == "real"  # busier borders: more contrast in the reals
    assert spectral["clipped_share"]["real"] > spectral["clipped_share"]["fake"]
    assert found["classifier_aucs"][audit.WITH_REGIONS] > found["classifier_aucs"][audit.FILE_PROPERTIES]
    energy = spectral["high_frequency_change"]
    assert energy["clear"] and energy["change"] < 0
    assert spectral["periodic_peak"]["notable"] and spectral["periodic_peak"]["kind"] == "line"


def test_what_lesson_01_says_about_the_published_files():
    says(cell("01_eda_and_audit.ipynb", "efbe6397"), "audited 40 of the published files (20 of each class")
    says(cell("01_eda_and_audit.ipynb", "b8d2f0a2"),
         "JPEG quality and file size each separate the published classes perfectly",
         "The watermark would not have been, on these 40 images", "thin line of text in a 1024-pixel image")
    measured = result("eda", "ffhq-stylegan2-published.json")
    found = measured["audit"]
    assert measured["files"] == measured["files_in_manifest"] == 40 and found["real"] == found["fake"] == 20
    assert [(kind["width"], kind["height"]) for kind in found["formats"]] == [(1024, 1024)]
    aucs = _aucs(measured)
    assert aucs["jpeg_quality"]["auc"] == aucs["file_bytes"]["auc"] == 1.0
    assert found["jpeg_quality"]["real"] != found["jpeg_quality"]["fake"]
    assert audit.REGION_GROUP not in found["flagged_groups"]


# ----------------------------------------------------------------------------- lesson 03's probe
def _probe(name: str) -> tuple[dict, float, float]:
    measured = result("probe", f"{name}.json")
    real, fake = measured["images"]["validation"]["real"], measured["images"]["validation"]["fake"]
    standard_error = ((real + fake + 1) / (12 * real * fake)) ** 0.5
    gap = measured["correct"]["validation_roc_auc"] - measured["divided_by_255"]["validation_roc_auc"]
    return measured, gap, standard_error


def test_what_lesson_03_says_about_the_probe():
    says(cell("03_frozen_head_training.ipynb", "c9e3a1b2"), "a large drop, about two standard errors",
         "On `dfdc-faces` both probes sit near chance", "the probe with the bug even scores a little higher, by less "
         "than one standard error", "the spread of the features shows the bug plainly")
    ffhq, gap, standard_error = _probe("ffhq-stylegan2")
    assert ffhq["correct"]["validation_roc_auc"] > 0.9 and round(gap / standard_error) == 2
    dfdc, gap, standard_error = _probe("dfdc-faces")
    assert all(abs(dfdc[key]["validation_roc_auc"] - 0.5) < 0.15 for key in ("correct", "divided_by_255"))
    assert -standard_error < gap < 0
    for measured in (ffhq, dfdc):
        assert measured["profile"] == "cpu"
        assert measured["correct"]["feature_spread"] > 100 * measured["divided_by_255"]["feature_spread"]


def test_the_benchmarks_readme_quotes_the_measured_seconds():
    readme = (BENCHMARKS / "README.md").read_text()
    names = ("dfdc-faces", "ffhq-stylegan2")
    eda = {name: round(sum(result("eda", f"{name}.json")["seconds"].values())) for name in names}
    probe = {name: round(result("probe", f"{name}.json")["seconds"]) for name in names}
    says(readme, f"{eda['dfdc-faces']} s for `dfdc-faces`, {eda['ffhq-stylegan2']} s for `ffhq-stylegan2`",
         f"{probe['ffhq-stylegan2']} s for `ffhq-stylegan2`, {probe['dfdc-faces']} s for `dfdc-faces`")
