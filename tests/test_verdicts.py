"""Reading a score against its threshold (helpers.verdicts): the band, the verdict, the sentence, the warning,
and the check of the band on lesson 04's committed test scores."""
import math

import pytest

from helpers import verdicts


def log_odds(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.parametrize("threshold", [0.5, 0.906, 0.099, 0.3])
def test_the_band_is_one_unit_of_log_odds_either_side_of_the_threshold(threshold):
    low, high = verdicts.uncertain_band(threshold)
    assert low < threshold < high
    assert log_odds(high) - log_odds(threshold) == pytest.approx(verdicts.UNCERTAIN_LOG_ODDS)
    assert log_odds(threshold) - log_odds(low) == pytest.approx(verdicts.UNCERTAIN_LOG_ODDS)


def test_a_threshold_at_the_edge_still_gives_a_band():
    assert verdicts.uncertain_band(0.0)[0] >= 0.0 and verdicts.uncertain_band(1.0)[1] <= 1.0
    assert verdicts.uncertain_band(0.5) == pytest.approx((0.2689, 0.7311), abs=1e-4)


def test_each_verdict_and_the_line_that_reads_it():
    # the StyleGAN2 face: below the threshold and outside the band
    below = verdicts.Reading(0.755, 0.906)
    assert below.verdict == below.label == "real"
    assert below.sentence == "fake from 0.906 up; 0.755 is below it"
    near = verdicts.Reading(0.85, 0.906)
    assert near.verdict == "uncertain" and near.label == "real"
    assert near.sentence == "fake from 0.906 up; 0.850 is below it, too close to call (uncertain from 0.780 to 0.963)"
    above = verdicts.Reading(0.99, 0.906)
    assert above.verdict == "fake" and above.sentence == "fake from 0.906 up; 0.990 is above it"
    at = verdicts.Reading(0.906, 0.906)
    assert at.verdict == "uncertain" and at.label == "fake" and at.sentence.startswith("fake from 0.906 up; 0.906 is at it")
    tiny = verdicts.Reading(0.00002, 0.906)
    assert tiny.verdict == "real" and tiny.sentence == "fake from 0.906 up; < 0.001 is below it"


def test_scores_that_round_to_0_or_1_say_so():
    assert [verdicts.score_text(p) for p in (0.0, 0.0004, 0.0006, 0.5, 0.9994, 0.9996, 1.0)] == [
        "< 0.001", "< 0.001", "0.001", "0.500", "0.999", "> 0.999", "> 0.999"]


def test_a_model_with_a_low_or_unrecorded_validation_roc_auc_is_warned_about():
    warning = verdicts.model_warning({"roc_auc": 0.58, "n": 48})
    assert "0.58 on 48 images, under 0.70" in warning and "little better than chance" in warning
    assert verdicts.model_warning({"roc_auc": 0.6}).startswith("This model's validation ROC-AUC is 0.60, under")
    assert "records no validation ROC-AUC" in verdicts.model_warning({})
    assert verdicts.model_warning({"roc_auc": verdicts.LOW_ROC_AUC}) is None
    assert verdicts.model_warning({"roc_auc": 0.85, "n": 4000}) is None


def test_inside_the_band_the_cpu_models_were_right_about_half_the_time():
    table = verdicts.band_accuracy_table()
    assert list(table.index) == ["dfdc-faces", "ffhq-stylegan2", "both"]
    both = table.loc["both"]
    assert both["faces in the band"] + both["faces outside"] == 300 + 120  # every test image, counted once
    assert 0.35 <= both["right in the band"] <= 0.65, "inside the band the verdict should be near a coin toss"
    assert both["right outside"] >= both["right in the band"] + 0.2, "outside the band the verdict should be far better"
