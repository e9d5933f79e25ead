"""The published detectors ported in detection/: each against values derived by hand from its
paper's definitions (no reference file needed), plus their bad-input errors. About 1 s."""

import math

import numpy as np
import pytest

from granite_panel.detection.cad_ose import CadOseDetector
from granite_panel.detection.knn_cad import KnnCadDetector
from granite_panel.detection.likelihood import (
    LikelihoodDetector,
    NumentaLikelihood,
    log_likelihood,
    tail_probability,
)


def test_cad_ose_context_scores_on_a_constant_then_a_novel_value():
    """Range (0, 7), 3 bits: 0 is bin 0 (facts 0, 2, 4), 7 is bin 7 (facts 1, 3, 5).

    step 1: nothing was predicted, nothing new: (1 - 0 + 0) / 2 = 0.5;
    step 2: the zero-level context (0 -> 0) is new, the only candidate: (1 - 0 + 1) / 2 = 1;
    step 3: (0 -> 0) is selected and comes true, nothing new: (1 - 1 + 0) / 2 = 0;
    step 4: the left side now holds neuron 0, so (0 + n0 -> 0) is new: (1 - 1 + 1) / 2 = 0.5;
    and so on, alternating while the neuron set grows. A novel 7 after that: no selected
    context's right half shares a fact with it (no active context, no candidate crossing),
    the zero-level context is new: (1 - 0 + 1) / 2 = 1.
    """
    det = CadOseDetector(value_range=(0.0, 7.0), rest_period=3)
    assert det.facts_of(0.0) == (0, 2, 4) and det.facts_of(7.0) == (1, 3, 5)
    assert det.facts_of(5.0) == (1, 2, 5)  # bin 5 = 101 in binary, lowest digit first
    raw = [det.raw_score(0.0) for _ in range(8)]
    assert raw == [0.5, 1.0, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5]
    assert det.raw_score(7.0) == 1.0


def test_cad_ose_rest_period_after_an_alarm_and_at_the_start():
    """The reference's score history starts at 1.0: the first ``rest_period`` scores are 0;
    after a context score >= 0.75 (step 2 and the novel value) the next ``rest_period`` are 0."""
    det = CadOseDetector(value_range=(0.0, 7.0), rest_period=3)
    out = [det.update(v) for v in [0.0] * 12 + [7.0, 7.0, 0.0, 0.0, 0.0]]
    assert out[:5] == [0.0] * 5  # steps 1-3 after the initial 1.0, steps 3-5 after step 2
    assert out[5:12] == [0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5]
    assert out[12] == 1.0  # the novel value
    assert out[13:16] == [0.0, 0.0, 0.0]


def test_cad_ose_live_range_is_the_running_min_max():
    """Without a range a value is binned against the min / max seen so far, itself included:
    a new maximum is always the top bin."""
    det = CadOseDetector(range_margin=0.0)
    for v in (10.0, 20.0, 15.0):
        det.update(v)
    assert det.facts_of(20.0) == (1, 3, 5) and det.facts_of(10.0) == (0, 2, 4)
    det.update(30.0)
    assert det.facts_of(30.0) == (1, 3, 5)
    assert det.facts_of(20.0) == (1, 3, 4)  # (20 - 10) / (20 / 7) = 3.5 -> bin 3 = 011


def test_cad_ose_live_range_margin_moves_the_bins_now_and_then():
    """Default live range: a value beyond it widens it past the value by half the new span."""
    det = CadOseDetector()
    for v in (10.0, 20.0, 15.0, 24.0):
        det.update(v)
    assert (det.lo, det.hi) == (10.0, 25.0)  # 20 widened it to 20 + 0.5 * 10; 24 is inside
    det.update(30.0)
    assert (det.lo, det.hi) == (10.0, 40.0)
    assert det.facts_of(25.0) == (1, 3, 4)  # (25 - 10) / (30 / 7) = 3.5 -> bin 3
    det.update(0.0)
    assert (det.lo, det.hi) == (-20.0, 40.0)


def test_cad_ose_bounded_memory_stops_storing_contexts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(800)
    free, capped = CadOseDetector(), CadOseDetector(max_contexts=50)
    free.score_series(x)
    capped.score_series(x)
    assert capped.memory.n == 50 < free.memory.n


@pytest.mark.parametrize("kwargs, message", [
    ({"value_range": (3.0, 1.0)}, "value_range"),
    ({"bits": 0}, "bits"),
    ({"rest_period": 0}, "rest_period"),
    ({"range_margin": -1}, "range_margin"),
])
def test_cad_ose_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CadOseDetector(**kwargs)


def test_knn_cad_conformal_rank_by_hand():
    """dim 1, k 1, probation 4: the windows of points 1-3 (values 1, 2, 4) train; at point 4
    the metric is 1 / (1 + 4 + 16) = 1/21 and the calibration scores are each training
    value's distance to its nearest other one (k + 1 = 2 smallest, itself at 0):
    1 -> 1/21, 2 -> 1/21, 4 -> 4/21. A 6 is at 4/21 from its nearest (4): two of the three
    calibration scores are below it, score 2/3. Then the oldest calibration score (1/21)
    leaves and 4/21 joins: a 0 (1/21 from 1) has none below it, score 0."""
    det = KnnCadDetector(probation=4, dim=1, k=1)
    out = [det.update(v) for v in (1.0, 2.0, 4.0, 6.0, 0.0)]
    assert out[:3] == [0.0, 0.0, 0.0]
    assert out[3] == pytest.approx(2.0 / 3.0)
    assert out[4] == 0.0
    np.testing.assert_allclose(det.sigma, [[1.0 / 21.0]])


def test_knn_cad_alarm_then_half_scores_for_a_fifth_of_probation():
    rng = np.random.default_rng(1)
    x = np.sin(np.arange(700) * 2 * np.pi / 25) + 0.05 * rng.standard_normal(700)
    x[600] = 8.0
    det = KnnCadDetector(probation=200)
    s = det.score_series(x)
    assert s[:199].max() == 0.0  # training
    assert s[600] >= 0.9965
    assert np.all(s[601:641] == 0.5)  # probation // 5 = 40 points after the alarm
    with pytest.raises(ValueError, match="probation"):
        KnnCadDetector(probation=40)


def test_numenta_likelihood_definitions():
    # a value below the mean is as unlikely as its mirror image above it
    assert tail_probability(0.2, 0.5, 0.1) == pytest.approx(tail_probability(0.8, 0.5, 0.1))
    assert tail_probability(0.5, 0.5, 0.1) == pytest.approx(0.5)
    assert log_likelihood(0.5) == pytest.approx(math.log(0.5000000001) / math.log(1e-10))
    assert log_likelihood(1.0) == pytest.approx(1.0)
    lik = NumentaLikelihood(learning_period=10, estimation_samples=10, reestimation_period=5)
    rng = np.random.default_rng(2)
    raws = 0.1 + 0.02 * rng.standard_normal(200)
    values = rng.standard_normal(200)
    out = [lik.update(v, r) for v, r in zip(values, raws)]
    assert out[:20] == [0.5] * 20  # learning + estimation samples
    assert all(0.0 <= o <= 1.0 for o in out)
    # a sustained jump: the first point in the red zone shows, the next ones read 1e-3
    jump = [lik.update(0.0, 1.0) for _ in range(6)]
    red = [j for j in jump if j >= 1 - 1e-5]
    assert len(red) >= 1 and jump.index(red[0]) + 1 < len(jump)
    assert jump[jump.index(red[0]) + 1] == pytest.approx(1 - 1e-3)


def test_numenta_likelihood_flat_values_mean_nothing_is_unlikely():
    lik = NumentaLikelihood(learning_period=10, estimation_samples=10, reestimation_period=5)
    for _ in range(100):
        lik.update(3.0, 0.01)
    assert lik.distribution == (0.5, 1e3)
    assert lik.update(3.0, 1.0) < 0.6


def test_likelihood_detector_spatial_anomaly_scores_one():
    rng = np.random.default_rng(3)
    x = np.sin(np.arange(400) * 2 * np.pi / 20) + 0.01 * rng.standard_normal(400)
    x[300] = 1.2  # more than 5% of the range (about 2) above everything seen
    s = LikelihoodDetector(probation=100).score_series(x)
    assert s[:100].max() < 0.1 or s[:100].argmax() < 20  # only while the first cycle grows
    assert s[300] == 1.0 and s[150:300].max() < 0.5


def test_hybrid_cad_is_the_hybrid_raised_to_one_at_cad_alarms():
    from granite_panel.detection.detectors import HybridDetector, make_detector

    rng = np.random.default_rng(4)
    x = 10 + np.sin(np.arange(1200) * 2 * np.pi / 24) + 0.1 * rng.standard_normal(1200)
    x[900:905] += 3.0
    both = make_detector("hybrid_cad", period=24).score_series(x)
    hybrid = HybridDetector(period=24).score_series(x)
    cad = CadOseDetector().score_series(x)
    alarm = cad >= 0.75
    assert alarm.any() and not alarm.all()
    np.testing.assert_array_equal(both, np.where(alarm, 1.0, hybrid))


def test_hybrid_entropy_raises_the_hybrid_only_where_both_flag_the_point():
    """With ``rest=0``: 1.0 where relative entropy alarms *and* the hybrid's score reaches
    its live threshold (0.25); elsewhere the hybrid's score, an entropy alarm alone changing
    nothing."""
    from granite_panel.detection.detectors import HybridDetector, make_detector
    from granite_panel.detection.relative_entropy import RelativeEntropyDetector

    rng = np.random.default_rng(5)
    x = 10 + np.sin(np.arange(1500) * 2 * np.pi / 24) + 0.1 * rng.standard_normal(1500)
    x[900:960] += 1.5  # a level shift: the window's histogram changes, the hybrid flags it
    both = make_detector("hybrid_entropy", period=24, rest=0).score_series(x)
    hybrid = HybridDetector(period=24).score_series(x)
    entropy = RelativeEntropyDetector().score_series(x)
    alarm, flagged = entropy >= 1.0, hybrid >= 0.25
    assert (alarm & flagged).any() and (alarm & ~flagged).any()  # both cases occur
    np.testing.assert_array_equal(both, np.where(alarm & flagged, 1.0, hybrid))


def scripted(det, hybrid, entropy, learnt=True):
    """``det``'s scores with its two parts replaced by these score sequences; ``learnt``:
    as if past the hybrid's learning period (entropy alarms count only from there)."""
    if learnt:
        det.hybrid.ensemble.n = det.hybrid.ensemble.learning + 1
    h, e = iter(hybrid), iter(entropy)
    det.hybrid._update = lambda value: next(h)
    det.entropy._update = lambda value: next(e)
    return [det.update(0.0) for _ in hybrid]


def test_hybrid_entropy_rests_after_an_alert():
    """Derived by hand with rest 3: a hybrid alert at 1 starts a rest ("any"), so the entropy
    alarm at 3 (2 points later) is dropped and the one at 5 counts; that alarm starts a rest
    too, so 7 is dropped and 9 counts; 10 is dropped unflagged (0.1 < 0.25). With "own" only
    counted entropy alarms rest: 3 counts, 5 is dropped, 7 counts; 9 is dropped."""
    from granite_panel.detection.detectors import make_detector

    hybrid = [0.3, 1.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.1]
    entropy = [0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1]
    any_ = scripted(make_detector("hybrid_entropy", rest=3), hybrid, entropy)
    assert [i for i, s in enumerate(any_) if s == 1.0] == [1, 5, 9]
    own = scripted(make_detector("hybrid_entropy", rest=3, rest_after="own"), hybrid, entropy)
    assert [i for i, s in enumerate(own) if s == 1.0] == [1, 3, 7]
    learning = scripted(make_detector("hybrid_entropy", rest=3), hybrid, entropy, learnt=False)
    assert [i for i, s in enumerate(learning) if s == 1.0] == [1]  # the hybrid's own alert
    none = scripted(make_detector("hybrid_entropy", rest=0), hybrid, entropy)
    assert [i for i, s in enumerate(none) if s == 1.0] == [1, 3, 5, 7, 9]
    assert any_[10] == own[10] == 0.1  # elsewhere the hybrid's own score


def test_hybrid_entropy_defaults_and_bad_settings():
    from granite_panel.detection.detectors import make_detector

    det = make_detector("hybrid_entropy")
    assert (det.rest, det.rest_after) == (52, "any")
    for bad in ({"rest": -1}, {"rest": 1.5}, {"rest_after": "all"}):
        with pytest.raises(ValueError):
            make_detector("hybrid_entropy", **bad)
