"""Online detectors: interface, causality, batch == row by row, bad values, registry."""

import math

import numpy as np
import pytest

from granite_panel.evaluation.synthetic import synthetic_metrics
from granite_panel.detection.detectors import (
    DEFAULT_DETECTOR,
    DETECTORS,
    LIVE_THRESHOLDS,
    SEVERITY_CUTOFFS,
    AnomalyLikelihood,
    EnsembleDetector,
    MultiWindowLikelihood,
    HybridDetector,
    RobustScale,
    RobustSurprise,
    RollingMoments,
    SeriesDetectors,
    ZScoreDetector,
    decimal_places,
    dominant_period,
    make_detector,
    score_series,
    severity_from_score,
    tail_score,
)


def series(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10 + np.sin(2 * np.pi * t / 50) + 0.1 * rng.standard_normal(n)
    x[1200:1210] += 8  # a burst
    return x


# settings for these 1,500-point series: KNN-CAD's default probation (750) leaves too little
SHORT_SERIES = {"knn_cad": {"probation": 300}, "cad_likelihood": {"probation": 300}}


@pytest.mark.parametrize("name", list(DETECTORS))
def test_scores_are_in_unit_interval_and_flag_the_burst(name):
    x = series()
    s = make_detector(name, **SHORT_SERIES.get(name, {})).score_series(x)
    assert s.shape == x.shape and np.all((s >= 0) & (s <= 1))
    assert s[1200:1215].max() > np.percentile(s[400:1190], 99)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_score_series_equals_update_row_by_row(name):
    x = series(900)
    x[[100, 500]] = np.nan
    batch = make_detector(name).score_series(x)
    det = make_detector(name)
    rows = np.array([det.update(v) for v in x])
    np.testing.assert_allclose(batch, rows, atol=1e-9)
    # and a batch continues from the state left by earlier updates
    det2 = make_detector(name)
    first = det2.update_many(x[:400])
    np.testing.assert_allclose(np.concatenate([first, det2.score_series(x[400:])]), rows, atol=1e-9)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_causal_later_rows_do_not_change_earlier_scores(name):
    x = series()
    y = x.copy()
    y[1000:] = np.random.default_rng(1).standard_normal(500) * 100
    a, b = score_series(x, name), score_series(y, name)
    np.testing.assert_array_equal(a[:1000], b[:1000])


@pytest.mark.parametrize("name", list(DETECTORS))
def test_non_finite_values_score_zero_and_do_not_poison_state(name):
    x = series(800)
    clean = make_detector(name)
    dirty = make_detector(name)
    for i, v in enumerate(x):
        if i in (300, 600):
            for bad in (math.nan, math.inf, -math.inf, None, "x"):
                assert dirty.update(bad) == 0.0
        assert dirty.update(v) == pytest.approx(clean.update(v))


def test_registry_and_did_you_mean():
    assert {"zscore", "forecast", DEFAULT_DETECTOR} <= set(DETECTORS)
    with pytest.raises(ValueError, match=r"did you mean 'zscore'.*allowed: zscore"):
        make_detector("zscor")
    with pytest.raises(ValueError, match="allowed"):
        make_detector("nothing-like-it")


def test_zscore_matches_hand_computation():
    det = ZScoreDetector(window=4, multiplier=3.0)
    assert [det.update(v) for v in (1.0, 2.0, 3.0)] == [0.0, 0.0, 0.0]
    # window 1,2,3: mean 2, population std sqrt(2/3); z of 4 = 2 / 0.8165 = 2.449
    z = 2 / math.sqrt(2 / 3)
    assert det.update(4.0) == pytest.approx(z / (z + 3))
    flat = ZScoreDetector()
    assert [flat.update(5.0) for _ in range(10)][-1] == 0.0
    assert flat.update(6.0) == 1.0  # a change after a flat window


def test_zscore_is_fast():
    import time

    x = np.random.default_rng(0).standard_normal(100_000)
    t0 = time.perf_counter()
    ZScoreDetector().score_series(x)
    assert 100_000 / (time.perf_counter() - t0) > 50_000


def test_rolling_moments():
    rm = RollingMoments(3)
    for v in (1, 2, 3, 4, 5):
        rm.add(float(v))
    assert rm.mean_std() == pytest.approx((4.0, math.sqrt(2 / 3)))
    assert rm.values().tolist() == [3.0, 4.0, 5.0] and len(rm) == 3  # oldest first
    rng = np.random.default_rng(0)
    long, xs = RollingMoments(100), rng.normal(5.0, 2.0, 1234)
    for v in xs:
        long.add(float(v))
    assert long.values().tolist() == xs[-100:].tolist()
    assert long.mean_std() == pytest.approx((xs[-100:].mean(), xs[-100:].std()), rel=1e-9)


def test_tail_score_and_likelihood():
    assert tail_score(-1.0) == 0.0 and tail_score(50.0) == 1.0
    # P(Z > 3) = 1.35e-3: log(1.35e-3) / log(1e-10) = 0.287
    assert tail_score(3.0) == pytest.approx(math.log(0.5 * math.erfc(3 / math.sqrt(2))) / math.log(1e-10))
    lik = AnomalyLikelihood(long=1000, short=5, learning=100)
    rng = np.random.default_rng(0)
    quiet = [lik.update(float(v)) for v in rng.uniform(0.1, 0.3, 500)]
    loud = [lik.update(0.95) for _ in range(5)]
    assert max(quiet[100:]) < 0.3 < loud[-1]


def test_multi_window_likelihood_is_numentas_likelihood_at_each_window():
    rng = np.random.default_rng(5)
    raw = np.concatenate([rng.uniform(0.1, 0.3, 700), np.full(30, 0.9), rng.uniform(0.1, 0.3, 200)])
    multi = MultiWindowLikelihood(windows=(5, 20), long=500, learning=100)
    single = [AnomalyLikelihood(long=500, short=w, learning=100) for w in (5, 20)]
    for r in raw:
        want = [lik.update(float(r)) for lik in single]
        assert multi.update(float(r)) == pytest.approx(want, abs=1e-12)


def noisy(n=4000, seed=6):
    return 10 + np.random.default_rng(seed).standard_normal(n)


def test_ensemble_alerts_once_per_episode_with_score_one():
    x = noisy()
    x[2000:2100] += 6  # a lasting disturbance: one episode
    det = EnsembleDetector()
    s = det.score_series(x)
    alerts = np.flatnonzero(s == 1.0)
    during = alerts[(alerts >= 2000) & (alerts < 2100 + det.refractory)]
    assert during.size == 1 and during[0] < 2010  # at once, and once
    assert s[s < 1.0].max() < 0.5  # non-alerts stay below every alert
    assert (s[during[0] + 1 : during[0] + 1 + det.refractory] == 0).all()  # the quiet period


def test_ensemble_quiet_period_restarts_while_the_disturbance_recurs():
    x = noisy()
    for start in range(2000, 3400, 200):  # a 40-point shift every 200 points (< 288)
        x[start : start + 40] += 6

    def alerts(**kwargs):
        s = EnsembleDetector(**kwargs).score_series(x)[2000:3300]
        return int(np.sum(s == 1.0))

    assert alerts() == 1  # one episode, one alert
    assert alerts(refractory=100) >= 4  # a shorter quiet period ends between recurrences


def test_dominant_period():
    t = np.arange(2000)
    assert dominant_period(np.sin(2 * np.pi * t / 288)) == 288
    assert dominant_period(np.random.default_rng(0).standard_normal(2000)) == 0


# --------------------------------------------------------------------------- hybrid, live adapter


def test_every_detector_has_a_live_threshold_and_rising_cutoffs():
    assert DEFAULT_DETECTOR == "hybrid_entropy" and DEFAULT_DETECTOR in DETECTORS
    for name in DETECTORS:
        medium, high, critical = SEVERITY_CUTOFFS[name]
        assert 0 < medium <= high <= critical <= 1
        assert LIVE_THRESHOLDS[name] == medium


def test_severity_from_score_cutoffs():
    s = np.array([0.0, 0.24, 0.25, 0.33, 1 / 3, 0.49, 0.5, 1.0, np.nan])
    codes = severity_from_score(s, *SEVERITY_CUTOFFS["hybrid"])
    assert codes.dtype == np.int8
    assert codes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 0]
    # default: the rest of [threshold, 1] in thirds -> 0.5, 2/3, 5/6
    assert severity_from_score([0.49, 0.5, 0.7, 0.9], 0.5).tolist() == [0, 1, 2, 3]
    # the seed's z-score levels: |z| = 3, 4, 5 with score |z| / (|z| + 3)
    z = np.array([2.99, 3.0, 4.0, 5.0])
    assert severity_from_score(z / (z + 3), *SEVERITY_CUTOFFS["zscore"]).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="rise"):
        severity_from_score([0.5], 0.5, 0.4)


def test_robust_scale_resists_dense_outliers():
    rng = np.random.default_rng(0)
    scale = RobustScale()
    for r in np.abs(rng.standard_normal(3000)):
        scale.learn(r * 10 if rng.random() < 0.05 else r)
    assert scale.sigma() == pytest.approx(1.0, rel=0.15)


def test_robust_surprise_does_not_learn_from_excursions_and_rebases():
    rng = np.random.default_rng(1)
    sur = RobustSurprise(persist=20)
    for v in rng.standard_normal(300):
        sur.update(float(v))
    level = sur.level
    assert sur.update(30.0) > 10  # a spike: very surprising...
    assert sur.level == level  # ...and not learned from
    assert sur.update(float(rng.standard_normal())) < 4  # the next normal point is normal
    zs = [sur.update(50.0 + float(v)) for v in rng.standard_normal(40)]
    assert min(zs[:19]) >= 3  # a lasting change: flagged until `persist` points ...
    assert np.median(zs[25:]) < 1.5 and max(zs[25:]) < 4  # ... then it is the new normal
    assert sur.level == pytest.approx(50, abs=2)


def test_hybrid_tiers():
    x = series(3000)
    det = HybridDetector()
    scores = det.score_series(x)
    only_surprise = HybridDetector(use_alerts=False).score_series(x)
    assert only_surprise.max() < 0.5  # the surprise tier stays below the alert tier
    assert scores.max() >= 0.5  # the ensemble alerts on the burst
    assert np.all(scores >= only_surprise)
    # dense random spikes (5% of points): nearly every one is flagged at the live threshold
    rng = np.random.default_rng(2)
    y = 10 + 0.5 * rng.standard_normal(3000)
    spikes = np.flatnonzero(rng.random(3000) < 0.05)
    spikes = spikes[spikes >= 600]
    y[spikes] += 6
    s = HybridDetector().score_series(y)
    assert np.mean(s[spikes] >= LIVE_THRESHOLDS["hybrid"]) > 0.95
    normal = np.setdiff1d(np.arange(600, 3000), spikes)
    assert np.mean(s[normal] >= LIVE_THRESHOLDS["hybrid"]) < 0.01


def test_series_detectors_match_one_detector_per_series():
    rng = np.random.default_rng(3)
    x = np.stack([series(700, seed=i) for i in range(3)])
    x[1, 100] = np.nan
    live = SeriesDetectors("hybrid", 3)
    got = np.stack([live.score(x[:, j]) for j in range(x.shape[1])], axis=1)
    want = np.stack([make_detector("hybrid").score_series(row) for row in x])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[1, 100] == 0.0
    assert np.all((got >= 0) & (got <= 1))
    # a block (backfill) equals the same points one tick at a time
    block = SeriesDetectors("hybrid", 3)
    np.testing.assert_allclose(
        np.concatenate([block.score_block(x[:, :400]), block.score_block(x[:, 400:])], axis=1),
        got, atol=1e-12)
    assert live.severity(got).shape == got.shape and live.threshold == 0.25
    live.reset()
    np.testing.assert_allclose(live.score(x[:, 0]), got[:, 0])
    del rng


def test_series_detectors_nan_leaves_state_untouched():
    x = series(600)
    live, clean = SeriesDetectors("hybrid", 2), SeriesDetectors("hybrid", 1)
    for j, v in enumerate(x):
        if j % 50 == 0:
            assert live.score(np.array([np.nan, v]))[0] == 0.0
        a = live.score(np.array([v, v]))
        assert a[0] == clean.score(np.array([v]))[0]


def test_series_detectors_validate():
    with pytest.raises(ValueError, match="did you mean"):
        SeriesDetectors("hybird", 2)
    with pytest.raises(ValueError, match="n_series"):
        SeriesDetectors("zscore", 0)
    live = SeriesDetectors("zscore", 2)
    with pytest.raises(ValueError, match=r"\[n_series\]"):
        live.score(np.zeros(3))
    with pytest.raises(ValueError, match=r"\[n_series, k\]"):
        live.score_block(np.zeros(2))
    assert live.score_block(np.zeros((2, 0))).shape == (2, 0)


def test_series_detectors_are_fast_enough():
    import time

    x = np.random.default_rng(0).standard_normal((100, 50))
    live = SeriesDetectors(DEFAULT_DETECTOR, 100)
    t0 = time.perf_counter()
    for j in range(50):
        live.score(x[:, j])
    assert 100 * 50 / (time.perf_counter() - t0) > 1_000


def test_hybrid_told_the_season_keeps_precision_on_dense_anomalies():
    """The live case: SEASON_LENGTH known, 5% of points start an anomaly (17% anomalous)."""
    known = synthetic_metrics("hybrid", seeds=(21,), n_series=4, n_points=2500, period=24)
    guessed = synthetic_metrics("hybrid", seeds=(21,), n_series=4, n_points=2500)
    zscore = synthetic_metrics("zscore", seeds=(21,), n_series=4, n_points=2500)
    assert known.event_recall > 0.95 and known.point_precision > 0.9
    assert known.event_recall > 2 * zscore.event_recall
    assert guessed.point_precision < known.point_precision  # the season is worth telling


def test_robust_surprise_keeps_a_level_shift_flagged_to_its_end():
    """Hysteresis: once an excursion starts, points of the same sign above z_flag / 2 are not
    learned from, so a shift not far above z_flag is not half learned and the return to
    normal after it is not flagged."""
    rng = np.random.default_rng(4)
    sur = RobustSurprise()
    for v in rng.standard_normal(500):
        sur.update(float(v))
    level, sigma = sur.level, sur.scale.sigma()
    inside = [sur.update(k * sigma) for k in (4.5, 2.5, 4.0, 2.0, 3.5, 2.5, 4.0, 2.2)]
    assert sur.level == level  # nothing of the shift was learned
    assert [z >= 3 for z in inside] == [True, False, True, False, True, False, True, False]
    after = [sur.update(float(v)) for v in rng.standard_normal(10)]
    assert max(after) < 3


@pytest.mark.parametrize("name", ["hybrid", "hybrid_entropy"])
def test_a_new_series_raises_no_alert_while_the_hybrid_learns(name):
    """Alerts (1.0, critical) wait for the ensemble's learning period, as its spatial novelty
    does: a range or an entropy baseline of a few points says nothing yet. Before, each new
    series of plain noise raised about seven critical alerts in its first 300 points (the
    range seen so far grows by more than 5% again and again), which NAB's probation hides
    but a live feed and its webhooks do not. The surprise tier still flags from 30 points."""
    learning = EnsembleDetector().learning
    rng = np.random.default_rng(5)
    early = late = 0
    for _ in range(20):
        x = 50 + rng.standard_normal(1000)
        scores = make_detector(name).score_series(x)
        early += int((scores[:learning] >= 0.5).sum())
        late += int((scores[learning:] >= 0.5).sum())
    assert early == 0
    assert late < 60  # measured 19 and 21: alerts come back once it has learnt
    y = 50 + rng.standard_normal(400)
    y[100:110] += 10  # a level shift while it learns: flagged, not an alert
    scores = make_detector(name).score_series(y)
    assert np.all(scores[100:110] >= LIVE_THRESHOLDS[name]) and scores[:learning].max() < 0.5
    y[350] += 15  # after it: an alert
    assert make_detector(name).score_series(y)[350] == 1.0


def test_decimal_places_say_how_a_value_is_written():
    assert [decimal_places(v) for v in (0.0, 3.0, 1e15, -2.25, 0.1 + 0.2, 1234567.891)] == [
        0, 0, 0, 2, 1, 3]
    assert [decimal_places(v) for v in (math.pi, 1e-13, 0.123456789)] == [-1, -1, -1]
    assert decimal_places(3.0, at_least=2) == 2 and decimal_places(1.5, at_least=-1) == -1


@pytest.mark.parametrize("name", ["hybrid", "hybrid_entropy"])
def test_counts_and_readings_to_one_decimal_are_not_flagged_at_every_step(name):
    """The surprise's scale is never below the step of the values' last digit. A count that
    is mostly 0 has a median residual near 0, and before, every 1 was flagged: 4.9% of a
    Poisson(0.05) series' points and 12.8% of a Poisson(0.5) one's (an ad-hoc script, ten
    seeds each), against 0.3% of Gaussian noise's. A real spike is still an alert. (These
    series change value on more than 1% of their points: see the next test.)"""
    rng = np.random.default_rng(11)
    series = {
        "rare counts": rng.poisson(0.05, 2000).astype(float),
        "counts": rng.poisson(0.5, 2000).astype(float),
        "a reading to 0.1": np.round(20.0 + 0.04 * rng.standard_normal(2000), 1),
    }
    for label, x in series.items():
        flagged = (make_detector(name).score_series(x)[300:] >= LIVE_THRESHOLDS[name]).mean()
        assert flagged < 0.01, (label, flagged)  # measured 0.1-0.2%
        x[1500] += 12.0
        assert make_detector(name).score_series(x)[1500] >= 0.5, label


@pytest.mark.parametrize("name", ["hybrid", "hybrid_entropy"])
def test_a_series_that_rarely_changes_keeps_every_change_a_surprise(name):
    """An ``up`` gauge (1, and 0 in an outage) or a replica count: one step is the whole
    news, so the resolution does not apply until a series changes on 1% of its points."""
    up = np.ones(2000)
    up[1000:1010] = 0.0
    up[1500] = 0.0
    scores = make_detector(name).score_series(up)
    assert np.all(scores[1000:1010] >= 0.25) and scores[1500] >= 0.25
    replicas = np.full(2000, 12.0)
    replicas[[700, 1200]] = 13.0
    scores = make_detector(name).score_series(replicas)
    assert scores[700] >= 0.25 and scores[1200] >= 0.25


@pytest.mark.parametrize("name", ["hybrid", "hybrid_entropy"])
def test_a_pattern_that_recurs_each_cycle_is_no_longer_flagged(name):
    """A GC sawtooth or an hourly job's step: the forecast never learns the drop (flagged
    points are not learned from), so before, about 30% of a sawtooth's points and 10% of a
    job's were flagged for good. A phase that surprised it three cycles running, at the same
    value, is judged against the last cycle; a change in the pattern is still flagged."""
    rng = np.random.default_rng(8)
    t = np.arange(3000)
    sawtooth = np.round(100 + (t % 60) * 5 + rng.normal(0, 2, t.size), 1)
    job = np.where(t % 60 < 5, 80.0, 10.0) + rng.normal(0, 1, t.size)
    for label, x in (("sawtooth", sawtooth), ("job", job)):
        scores = make_detector(name, period=60).score_series(x)
        assert (scores[:300] >= 0.25).mean() > 0.05, label  # at first: flagged
        assert (scores[600:] >= 0.25).mean() < 0.005, label  # measured 0.0-0.1%
        x[2400:2405] = 10.0  # the job does not run (the sawtooth: a drop at the wrong time)
        scores = make_detector(name, period=60).score_series(x)
        assert (scores[2400:2405] >= 0.25).any(), label
    surprise = RobustSurprise()
    for v in job[:600]:
        surprise.update(v, 60)
    assert surprise.update(job[600], 60) < 3.0 and surprise.recurring  # t = 600: the step


def test_a_surprise_from_a_checkpoint_without_decimals_goes_on():
    """Checkpoints pickle detectors: one made before ``decimals`` and the cycles still loads."""
    import pickle

    s = RobustSurprise()
    for v in (1.0, 2.0, 1.0):
        s.update(v)
    _, slots = s.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2]
    for name in ("decimals", "prev", "change_rate", "cycle_value", "cycle_count", "recurring"):
        del slots[name]
    old = RobustSurprise.__new__(RobustSurprise)
    old.__setstate__((None, slots))
    assert (old.decimals, old.prev, old.change_rate, old.recurring) == (0, None, 0.0, False)
    assert old.update(1.5) == 0.0 and old.decimals == 1 and old.change_rate == 0.0
    assert old.cycle_value.size == 0 and old.update(1.0, 24) == 0.0 and old.cycle_count.size == 24
