"""benchmarks/capstone_loading.py: its committed results hold together, and it runs with today's Keras."""
import importlib.util
import json

import pytest

from helpers import config

SCRIPT = config.REPO_ROOT / "benchmarks" / "capstone_loading.py"
README = config.REPO_ROOT / "benchmarks" / "README.md"


@pytest.fixture(scope="module")
def loading():
    spec = importlib.util.spec_from_file_location("capstone_loading", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(loading):
    assert loading.RESULT.is_file(), f"{loading.RESULT} is missing: run benchmarks/capstone_loading.py run"
    return json.loads(loading.RESULT.read_text())


def _expected_cases(loading) -> set[tuple[str, str, str]]:
    capstone = {(stage, fmt, way) for stage in loading.STAGES for fmt in loading.CAPSTONE_FORMATS
                for way in ("plain", *loading.WORKAROUNDS)}
    weights = {(stage, "weights.h5", "rebuild, load_weights") for stage in loading.STAGES}
    return capstone | weights | {("project", "folder", way) for way in loading.PROJECT_WAYS}


def test_every_pair_of_environments_has_every_case_once(loading, result):
    labels = [environment["label"] for environment in result["environments"]]
    assert len(set(labels)) == len(labels) >= 2, "several distinct TensorFlow/Keras pairs"
    for environment in result["environments"]:
        assert environment["label"] == f"tf{environment['tensorflow']}-keras{environment['keras']}"
        assert environment["python"].count(".") == 2
    found: dict[tuple[str, str], list] = {}
    for case in result["cases"]:
        found.setdefault((case["saved_with"], case["loaded_with"]), []).append(
            (case["artefact"], case["format"], case["way"]))
    assert set(found) == {(saver, loader) for saver in labels for loader in labels}
    for cases in found.values():
        assert len(cases) == len(set(cases)) and set(cases) == _expected_cases(loading)
    assert result["size"] > 0 and result["tolerance"] > 0 and result["date"].count("-") == 2


def test_each_recorded_outcome_is_self_consistent(result):
    saved = {environment["label"]: environment["saved"] for environment in result["environments"]}
    for case in result["cases"]:
        where = (case["saved_with"], case["loaded_with"], case["artefact"], case["format"], case["way"])
        was_saved = (saved[case["saved_with"]][case["artefact"]]["folder" if case["artefact"] == "project"
                                                                  else case["format"]]["ok"])
        if case["loaded"] is None:
            assert not was_saved and case["skipped"], where
            continue
        assert was_saved, where
        if case["loaded"] and case["error_type"] is None:
            assert case["max_abs_diff"] >= 0 and case["output_structure"], where
            assert case["same_outputs"] == (case["max_abs_diff"] <= result["tolerance"]), where
        else:
            assert case["error_type"] and case["error"] is not None and case["max_abs_diff"] is None, where
        assert (case["route"] is not None) == (case["way"] == "helpers.saving.load_model" and case["loaded"]), where
        assert ("files_removed" in case) == (case["artefact"] == "project"), where


def test_helpers_load_model_took_the_way_its_own_cases_predict(result):
    """It tries model.keras (compile=False) first, else rebuilds from model.weights.h5; both ran alone too."""
    by_key = {(case["saved_with"], case["loaded_with"], case["way"]): case for case in result["cases"]
              if case["artefact"] == "project" and case["loaded"] is not None}
    for (saver, loader, way), case in by_key.items():
        if way != "helpers.saving.load_model":
            continue
        keras_file = by_key[saver, loader, "model.keras compile=False"]
        weights = by_key[saver, loader, "model.weights.h5 into build_classifier"]
        opened = keras_file["loaded"] and not keras_file["error_type"]
        expected = "model.keras" if opened else "rebuilt from model.weights.h5"
        assert case["route"] == expected, (saver, loader)
        assert case["same_outputs"] == (keras_file if expected == "model.keras" else weights)["same_outputs"]


def test_the_reported_error_is_among_the_recorded_ones(result):
    """Issue 31's error, reproduced: only the capstone's nested model raises it, never the flat detector."""
    raising = [case for case in result["cases"] if "expects 1 input(s), but it received 2" in (case.get("error") or "")]
    assert raising and {case["artefact"] for case in raising} <= {"capstone_stage1", "capstone_stage2"}


def test_the_readme_tables_are_the_ones_the_result_gives(loading, result):
    assert loading.tables(result) in README.read_text()


def test_saving_and_loading_in_this_environment(loading, tmp_path):
    """The same-version part with today's TensorFlow/Keras, small and without training steps."""
    record = loading.save_all(tmp_path, size=64, fit=False)
    assert record["artefacts"]["capstone_stage2"]["serialised"]["nested"]  # the backbone is one layer of it
    cases = loading.load_all(tmp_path, ways={"plain", "rebuild, load_weights", "helpers.saving.load_model"})
    assert len(cases) == 2 * 3 + 1
    for case in cases:
        where = (case["artefact"], case["format"], case["way"], case["error_type"], case["error"])
        assert case["loaded"] and case["error_type"] is None and case["same_outputs"], where
    project = cases[-1]
    assert project["route"] == "model.keras" and project["files_removed"] == []
