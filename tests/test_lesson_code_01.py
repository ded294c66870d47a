"""Lesson 01's audit statistics, shown in the open, are the audit's own: the same table and the same two numbers.

The cells of 01_eda_and_audit tagged `lesson-code` are run here as they stand, on the audit of the
`smoke` profile's images of the lessons' data root (the shared faces, or the stand-in set in a fresh
clone), and on a planted-shortcut copy of a few of them (where properties are flagged), and compared
with `audit.feature_aucs`, `audit.metadata_classifier_auc` and what `audit.audit_dataset` reported.
"""
import numpy as np
import pandas as pd
import pytest

from helpers import audit, config, data, near_duplicates, planted_shortcuts
from tests.conftest import lesson_code, run_lesson_code

NOTEBOOK = "01_eda_and_audit.ipynb"


@pytest.fixture(scope="module")
def smoke_audits(tmp_path_factory):
    """The audit of the smoke profile's images, and of a copy of a few of them with planted shortcuts."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "CACHE_DIR", cache)
        settings = config.resolve("smoke")
        frame, report = data.load_split(settings.data_root, settings.profile, progress=False)
        lesson = audit.audit_dataset(report, profile=settings.profile, progress=False)
        demo = frame.groupby(["split", "label"]).head(7)
        planted = planted_shortcuts.plant_shortcuts(demo, tmp_path_factory.mktemp("planted"), watermark=True,
                                                    fake_quality=75, quality=90)
        stamped = audit.audit_dataset(data.index_dataset(planted), progress=False)
    return {"lesson data": lesson, "planted shortcuts": stamped}


def test_the_lessons_cells_are_tagged():
    assert len(lesson_code(NOTEBOOK)) == 2  # each property's AUC, the cross-validated classifier


@pytest.mark.parametrize("which", ["lesson data", "planted shortcuts"])
def test_lesson_01_computes_the_audits_statistics(smoke_audits, which):
    result = smoke_audits[which]
    namespace = run_lesson_code(lesson_code(NOTEBOOK), {"result": result, "audit": audit, "config": config,
                                            "near_duplicates": near_duplicates, "print": lambda *args, **kwargs: None})
    features = audit.metadata_features(result.images)
    labels = result.images["label"].to_numpy()

    pd.testing.assert_frame_equal(namespace["aucs"], audit.feature_aucs(features, labels))
    pd.testing.assert_frame_equal(namespace["aucs"], result.feature_aucs)
    assert namespace["margin"] == pytest.approx(audit.chance_margin(labels), rel=1e-12)

    groups = near_duplicates.duplicate_groups(len(result.images), result.duplicates)
    rows = audit.classifier_rows(labels)
    seen = features.iloc[rows].reset_index(drop=True)
    file_only = seen[[name for name in seen.columns if not audit.is_region_feature(name)]]
    assert namespace["classifier_aucs"] == {
        audit.FILE_PROPERTIES: audit.metadata_classifier_auc(file_only, labels[rows], groups[rows]),
        audit.WITH_REGIONS: audit.metadata_classifier_auc(seen, labels[rows], groups[rows])}
    assert namespace["classifier_aucs"] == result.classifier_aucs


def test_the_planted_shortcuts_exercise_every_branch(smoke_audits):
    """The comparison above covers folded AUCs, both directions, constant properties and flagged severities."""
    aucs = smoke_audits["planted shortcuts"].feature_aucs
    assert {"fake", "real", "-"} <= set(aucs["higher_in"])
    assert "critical" in set(aucs["severity"]) and "ok" in set(aucs["severity"])
    assert np.isclose(aucs.loc[aucs["feature"] == "jpeg_quality", "auc"].item(), 1.0)
