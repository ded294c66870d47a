"""Scores from labels and p(fake)."""
import numpy as np
import pytest

from helpers import metrics


def test_perfect_and_chance_rankings():
    labels = np.array([0, 0, 1, 1])
    perfect = metrics.summary(labels, [0.1, 0.2, 0.8, 0.9], threshold=0.5)
    assert perfect["roc_auc"] == 1.0 and perfect["eer"] == 0.0
    assert perfect["at_threshold"]["confusion_matrix"] == [[2, 0], [0, 2]]
    flipped = metrics.summary(labels, [0.9, 0.8, 0.2, 0.1], threshold=0.5)
    assert flipped["roc_auc"] == 0.0 and flipped["at_threshold"]["recall"] == {"real": 0.0, "fake": 0.0}


def test_balanced_threshold_equalises_the_recalls():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(500, int), np.ones(500, int)]
    scores = np.r_[rng.uniform(0.0, 0.3, 500), rng.uniform(0.1, 0.4, 500)]  # every score far below 0.5
    at_half = metrics.at_threshold(labels, scores, 0.5)["recall"]
    assert at_half["fake"] == 0.0  # the original project's trouble: a fixed 0.5 misses the fakes
    recall = metrics.at_threshold(labels, scores, metrics.balanced_threshold(labels, scores))["recall"]
    assert abs(recall["real"] - recall["fake"]) < 0.03 and recall["fake"] > 0.6


def test_metrics_on_one_class_do_not_crash():
    result = metrics.summary([1, 1, 1], [0.2, 0.7, 0.9], threshold=0.5)
    assert result["roc_auc"] is None and result["at_threshold"]["recall"]["fake"] == pytest.approx(2 / 3)
    assert metrics.balanced_threshold([1, 1], [0.2, 0.4]) == 0.5


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="as many"):
        metrics.summary([0, 1], [0.5], threshold=0.5)


def _separable_sample(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping real and fake score distributions: ROC-AUC about 0.8."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_per_class, int), np.ones(n_per_class, int)]
    return labels, np.r_[rng.beta(2, 3, n_per_class), rng.beta(3, 2, n_per_class)]


def test_fast_roc_auc_agrees_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    labels, scores = rng.integers(0, 2, 200), np.round(rng.random(200), 1)  # many ties
    assert metrics.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_bootstrap_interval_holds_the_estimate_and_repeats():
    labels, scores = _separable_sample(150)
    low, high = metrics.bootstrap_interval(labels, scores, metrics.roc_auc)
    assert low < metrics.roc_auc(labels, scores) < high and 0.05 < high - low < 0.2
    assert metrics.bootstrap_interval(labels, scores, metrics.roc_auc) == (low, high)
    assert metrics.bootstrap_interval(labels, scores, metrics.roc_auc, seed=1) != (low, high)


def test_bootstrap_interval_narrows_as_the_sample_grows():
    widths = [np.subtract(*metrics.bootstrap_interval(*_separable_sample(n), metrics.roc_auc)[::-1])
              for n in (50, 1000)]
    assert widths[1] < widths[0] / 3  # the width shrinks like one over the square root of n


def test_bootstrap_resamples_keep_both_classes():
    labels = np.r_[np.zeros(98, int), np.ones(2, int)]  # plain resampling would often draw no fake at all
    scores = np.r_[np.linspace(0, 0.5, 98), [0.4, 0.9]]
    low, high = metrics.bootstrap_interval(labels, scores, metrics.roc_auc)
    assert 0 <= low < high <= 1


def test_bootstrap_interval_refuses_bad_input():
    with pytest.raises(ValueError, match="as many"):
        metrics.bootstrap_interval([0, 1, 0], [0.5, 0.2], metrics.roc_auc)
    with pytest.raises(ValueError, match="two images of each class"):
        metrics.bootstrap_interval([1, 1, 1, 1], [0.2, 0.4, 0.6, 0.8], metrics.roc_auc)
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        metrics.bootstrap_interval([0, 0, 2, 2], [0.2, 0.4, 0.6, 0.8], metrics.roc_auc)
    with pytest.raises(ValueError, match="confidence"):
        metrics.bootstrap_interval(*_separable_sample(5), metrics.roc_auc, confidence=95)


def test_summary_intervals_are_json_ready_and_bracket_the_metrics():
    labels, scores = _separable_sample(100)
    result = metrics.summary(labels, scores, threshold=0.5, intervals=True)
    ci = result["ci95"]
    assert set(ci) == {"roc_auc", "accuracy", "balanced_accuracy", "recall_real", "recall_fake"}
    assert all(isinstance(bounds, list) and len(bounds) == 2 for bounds in ci.values())
    at = result["at_threshold"]
    point = {"roc_auc": result["roc_auc"], "accuracy": at["accuracy"], "balanced_accuracy": at["balanced_accuracy"],
             "recall_real": at["recall"]["real"], "recall_fake": at["recall"]["fake"]}
    for name, value in point.items():
        assert ci[name][0] <= value <= ci[name][1], name
    assert "ci95" not in metrics.summary(labels, scores, threshold=0.5)
    assert metrics.confidence_intervals([1, 1, 0], [0.2, 0.7, 0.9], 0.5)["roc_auc"] is None


def test_a_paired_difference_interval_is_zero_for_one_model_and_excludes_zero_for_a_better_one():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(150, int), np.ones(150, int)]
    weak = rng.normal(size=300) + 0.3 * labels
    strong = weak + 1.0 * labels  # the same images, fakes pushed up: better on every resample
    assert metrics.paired_difference_interval(labels, weak, weak, metrics.roc_auc) == (0.0, 0.0)
    low, high = metrics.paired_difference_interval(labels, strong, weak, metrics.roc_auc)
    point = metrics.roc_auc(labels, strong) - metrics.roc_auc(labels, weak)
    assert 0 < low <= point <= high
    # Paired, it is narrower than the two separate intervals side by side would suggest.
    separate = [metrics.bootstrap_interval(labels, scores, metrics.roc_auc) for scores in (strong, weak)]
    assert high - low < (separate[0][1] - separate[0][0]) + (separate[1][1] - separate[1][0])


def test_a_paired_difference_reads_each_model_at_its_own_threshold():
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    scores = np.r_[np.full(20, 0.3), np.full(20, 0.4)]
    at = metrics.threshold_statistics
    low, high = metrics.paired_difference_interval(labels, scores, scores, at(0.35)["balanced_accuracy"],
                                                   at(0.5)["balanced_accuracy"])
    assert (low, high) == (0.5, 0.5)  # 1.0 at its own threshold against 0.5 at argmax, on every resample


@pytest.mark.parametrize("auc, low, high, words", [
    (0.40, 0.31, 0.49, "below chance"), (0.58, 0.49, 0.66, "indistinguishable from chance"),
    (0.58, 0.52, 0.64, "better than chance but weak"), (0.80, 0.75, 0.85, "useful"), (0.90, 0.86, 0.94, "strong")])
def test_one_reading_of_a_roc_auc_for_every_lesson(auc, low, high, words):
    assert metrics.read_roc_auc(auc, low, high).startswith(words)


# ----------------------------------------------------------------------------- groups (a cluster bootstrap)


def _per_class_bootstrap_as_it_was(labels, scores, statistic, seed=metrics.config.SEED) -> tuple[float, float]:
    """The per-class bootstrap as metrics computed it before groups: one resample per class, by scipy."""
    from scipy import stats

    real, fake = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)

    def on(reals, fakes):
        picked = np.concatenate([reals, fakes])
        return statistic(labels[picked], scores[picked])

    result = stats.bootstrap((real, fake), on, n_resamples=2000, vectorized=False, paired=False,
                             confidence_level=0.95, method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def test_groups_of_one_give_the_per_class_bootstrap_bit_for_bit():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 120)
    scores = rng.random(120) + 0.3 * labels
    before = _per_class_bootstrap_as_it_was(labels, scores, metrics.roc_auc)
    assert metrics.bootstrap_interval(labels, scores, metrics.roc_auc) == before
    names = [f"image {i}" for i in rng.permutation(120)]  # any unique labels, in any order
    assert metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=names) == before
    assert metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=[None] * 120) == before
    recall = metrics.threshold_statistics(0.6)["recall_fake"]
    assert metrics.bootstrap_interval(labels, scores, recall, groups=np.arange(120)) == \
        _per_class_bootstrap_as_it_was(labels, scores, recall)


def test_grouping_the_copies_gives_the_interval_of_the_set_without_them():
    labels, scores = _separable_sample(150)
    original = metrics.bootstrap_interval(labels, scores, metrics.roc_auc)
    twice_labels, twice_scores = np.r_[labels, labels], np.r_[scores, scores]  # every image appears twice
    copies = np.r_[np.arange(300), np.arange(300)]  # an image and its copy form one group
    grouped = metrics.bootstrap_interval(twice_labels, twice_scores, metrics.roc_auc, groups=copies)
    ignored = metrics.bootstrap_interval(twice_labels, twice_scores, metrics.roc_auc)
    # Drawing a pair of copies is drawing the image: the same draws give the same interval.
    assert grouped == pytest.approx(original, abs=1e-12)
    width = {name: high - low for name, (low, high) in
             {"original": original, "grouped": grouped, "ignored": ignored}.items()}
    # Ignoring the copies counts each image twice: the interval shrinks by about the square root of 2.
    assert width["ignored"] < width["grouped"] / 1.25
    assert width["grouped"] / width["ignored"] == pytest.approx(np.sqrt(2), rel=0.2)


def _matched_pairs(within_pair: float, n: int = 150, seed: int = 2):
    """n source videos, each giving one real and one fake; `within_pair` sets how their scores move together."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=n)  # the video's person, scene and compression, as they sway the score
    real = shared + rng.normal(0, 0.7, n)
    fake = within_pair * shared + 0.6 + rng.normal(0, 0.7, n)
    return np.r_[np.zeros(n, int), np.ones(n, int)], np.r_[real, fake], np.r_[np.arange(n), np.arange(n)]


@pytest.mark.parametrize("within_pair, grouped_is", [(1.0, "narrower"), (-1.0, "wider")])
def test_matched_pairs_move_the_interval_by_the_sign_of_their_correlation(within_pair, grouped_is):
    """A fake scored against its own real is a paired comparison: a shared effect cancels (or adds up)."""
    labels, scores, videos = _matched_pairs(within_pair)
    correlation = np.corrcoef(scores[labels == 0], scores[labels == 1])[0, 1]
    assert np.sign(correlation) == np.sign(within_pair) and abs(correlation) > 0.5
    per_class = np.subtract(*metrics.bootstrap_interval(labels, scores, metrics.roc_auc)[::-1])
    by_video = np.subtract(*metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=videos)[::-1])
    assert (by_video < 0.85 * per_class) if grouped_is == "narrower" else (by_video > 1.05 * per_class)


def test_grouped_resampling_keeps_the_kinds_of_group_apart():
    labels = np.array([0, 1, 0, 1, 0, 0, 1, 1, 0])
    groups = ["a", "a", "b", "b", "c", "d", "e", "f", "g"]  # a, b: a pair each; c, d, g: real; e, f: fake
    strata, fixed, images_of = metrics.grouped_resampling(labels, groups)
    assert [images_of(stratum).tolist() for stratum in strata] == [[4, 5, 8], [6, 7], [0, 1, 2, 3]]
    assert fixed.size == 0
    assert images_of(np.array([1, 1, 0])).tolist() == [2, 3, 2, 3, 0, 1]  # a group drawn twice counts twice
    strata, fixed, _ = metrics.grouped_resampling([0, 0, 1, 1, 0, 1], ["a", "b", "c", "d", "e", "e"])
    assert len(strata) == 2 and fixed.tolist() == [4, 5]  # one pair only: kept whole in every resample


def test_grouped_intervals_flow_through_every_entry_point_and_refuse_bad_groups():
    labels, scores, videos = _matched_pairs(1.0, n=40)
    at = metrics.threshold_statistics(0.5)["balanced_accuracy"]
    grouped = metrics.confidence_intervals(labels, scores, 0.5, groups=videos)
    assert grouped["roc_auc"] == list(metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=videos))
    assert grouped != metrics.confidence_intervals(labels, scores, 0.5)
    summary = metrics.summary(labels, scores, 0.5, intervals=True, groups=videos)
    assert summary["ci95"] == grouped and summary["ci95_groups"] == 40
    assert metrics.summary(labels, scores, 0.5, intervals=True)["ci95_groups"] == 80
    low, high = metrics.paired_difference_interval(labels, scores + labels, scores, at, groups=videos)
    assert low <= at(labels, scores + labels) - at(labels, scores) <= high
    assert (low, high) != metrics.paired_difference_interval(labels, scores + labels, scores, at)
    with pytest.raises(ValueError, match="one group per image"):
        metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=videos[:-1])
    with pytest.raises(ValueError, match="at least two groups"):
        metrics.bootstrap_interval([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], metrics.roc_auc, groups=["a"] * 4)


# ----------------------------------------------------------------------------- calibration


def _calibrated(n: int = 20000, seed: int = 0, spread: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """True log-odds and labels drawn from them: sigmoid(true log-odds) is a calibrated p(fake)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, spread, n)
    return true_logits, (rng.random(n) < 1 / (1 + np.exp(-true_logits))).astype(int)


def _sigmoid(values):
    return 1 / (1 + np.exp(-values))


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_fit_temperature_recovers_the_temperature_the_scores_were_made_with(temperature):
    true_logits, labels = _calibrated()
    scores = _sigmoid(true_logits * temperature)  # logits T times too large: T > 1 over-confident, T < 1 timid
    fitted = metrics.fit_temperature(labels, scores)
    assert fitted.temperature == pytest.approx(temperature, rel=0.05) and fitted.bias == 0.0
    np.testing.assert_allclose(fitted(scores), _sigmoid(true_logits), atol=0.02)
    assert metrics.log_loss(labels, fitted(scores)) < metrics.log_loss(labels, scores)


def test_a_temperature_cannot_move_the_prior_but_a_bias_can():
    """Scores whose log-odds are all raised by log 3 (class weights on three real per fake)."""
    true_logits, labels = _calibrated(spread=1.0)
    shifted = _sigmoid(true_logits + np.log(3))
    temperature_only = metrics.fit_temperature(labels, shifted)
    platt = metrics.fit_temperature(labels, shifted, bias=True)
    assert platt.temperature == pytest.approx(1.0, rel=0.05) and platt.bias == pytest.approx(-np.log(3), abs=0.06)
    assert temperature_only(np.array([0.5]))[0] == pytest.approx(0.5)  # dividing a logit of 0 leaves it at 0
    losses = {name: metrics.log_loss(labels, calibration(shifted)) for name, calibration in
              (("temperature", temperature_only), ("platt", platt), ("prior", metrics.prior_correction(0.75, 0.5)))}
    assert losses["platt"] < losses["temperature"] - 0.01 and losses["prior"] < losses["temperature"] - 0.01
    assert losses["prior"] == pytest.approx(metrics.log_loss(labels, _sigmoid(true_logits)), abs=1e-9)


def test_the_prior_correction_undoes_balanced_class_weights():
    """A logistic regression trained with balanced class weights on three real per fake, corrected in closed form."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    labels = np.r_[np.zeros(30000, int), np.ones(10000, int)]
    features = (rng.normal(0, 1, labels.size) + 1.2 * labels)[:, None]
    plain = LogisticRegression().fit(features, labels).predict_proba(features)[:, 1]
    weighted = LogisticRegression(class_weight="balanced").fit(features, labels).predict_proba(features)[:, 1]
    assert weighted.mean() > labels.mean() + 0.1, "balanced weights inflate p(fake)"
    corrected = metrics.prior_correction(0.5, labels.mean())(weighted)
    assert metrics.prior_correction(0.5, 0.25).bias == pytest.approx(-np.log(3))
    np.testing.assert_allclose(corrected, plain, atol=0.01)
    assert metrics.log_loss(labels, corrected) < metrics.log_loss(labels, weighted)


def test_calibration_helpers_on_the_edges():
    assert np.isfinite(metrics.logits([0.0, 1.0])).all() and metrics.logits([0.5])[0] == 0.0
    assert metrics.log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-6)
    assert metrics.log_loss([0, 1], [0.5, 0.5]) == pytest.approx(np.log(2))
    np.testing.assert_allclose(metrics.Calibration()([0.1, 0.9]), [0.1, 0.9])
    with pytest.raises(ValueError, match="both classes"):
        metrics.fit_temperature([1, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="strictly between"):
        metrics.prior_correction(0.5, 1.0)
