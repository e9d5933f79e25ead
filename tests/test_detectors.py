"""Online detectors: interface, causality, batch == row by row, bad values, registry."""

import math

import numpy as np
import pytest

from granite_panel.detectors import (
    DEFAULT_DETECTOR,
    DETECTORS,
    AnomalyLikelihood,
    RollingMoments,
    ZScoreDetector,
    dominant_period,
    make_detector,
    score_series,
    tail_score,
)


def series(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10 + np.sin(2 * np.pi * t / 50) + 0.1 * rng.standard_normal(n)
    x[1200:1210] += 8  # a burst
    return x


@pytest.mark.parametrize("name", list(DETECTORS))
def test_scores_are_in_unit_interval_and_flag_the_burst(name):
    x = series()
    s = make_detector(name).score_series(x)
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


def test_tail_score_and_likelihood():
    assert tail_score(-1.0) == 0.0 and tail_score(50.0) == 1.0
    # P(Z > 3) = 1.35e-3: log(1.35e-3) / log(1e-10) = 0.287
    assert tail_score(3.0) == pytest.approx(math.log(0.5 * math.erfc(3 / math.sqrt(2))) / math.log(1e-10))
    lik = AnomalyLikelihood(long=1000, short=5, learning=100)
    rng = np.random.default_rng(0)
    quiet = [lik.update(float(v)) for v in rng.uniform(0.1, 0.3, 500)]
    loud = [lik.update(0.95) for _ in range(5)]
    assert max(quiet[100:]) < 0.3 < loud[-1]


def test_dominant_period():
    t = np.arange(2000)
    assert dominant_period(np.sin(2 * np.pi * t / 288)) == 288
    assert dominant_period(np.random.default_rng(0).standard_normal(2000)) == 0
