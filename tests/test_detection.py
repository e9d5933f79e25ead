"""Rolling z-score and severities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from granite_panel.detection.live import (
    CRITICAL,
    HIGH,
    MEDIUM,
    MIN_WINDOW_POINTS,
    NORMAL,
    SEVERITY_NAMES,
    Z_LIMIT,
    ZScoreDetector,
    rolling_zscore,
    severity_of,
)


def test_zscore_matches_a_hand_computation():
    # window 1..5: mean 3, population variance (4+1+0+1+4)/5 = 2
    window = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 10.0, 10.0, 20.0, 20.0]])
    points = np.array([6.0, 5.0])
    z = rolling_zscore(window, points)
    assert z[0] == pytest.approx(3.0 / math.sqrt(2.0))
    # second: mean 14, variance (3*16 + 2*36)/5 = 24
    assert z[1] == pytest.approx((5.0 - 14.0) / math.sqrt(24.0))
    assert z.shape == (2,)


def test_zscore_equals_numpy_on_random_windows():
    rng = np.random.default_rng(0)
    window = rng.normal(50, 7, (6, 40))
    points = rng.normal(50, 20, 6)
    expected = (points - window.mean(axis=1)) / window.std(axis=1)
    np.testing.assert_allclose(rolling_zscore(window, points), expected, rtol=1e-12)


@pytest.mark.parametrize("m", [3.0, 2.5, 1.0])
def test_severity_cut_offs_are_exact(m):
    below = np.nextafter(m, 0)
    z = np.array([0.0, below, m, np.nextafter(m + 1, 0), m + 1, np.nextafter(m + 2, 0), m + 2, 1e6])
    expected = [NORMAL, NORMAL, MEDIUM, MEDIUM, HIGH, HIGH, CRITICAL, CRITICAL]
    np.testing.assert_array_equal(severity_of(z, m), expected)
    np.testing.assert_array_equal(severity_of(-z, m), expected)  # sign does not matter
    assert severity_of(z, m).dtype == np.int8


def test_default_cut_offs_in_sigma():
    z = np.array([2.99, 3.0, 3.99, 4.0, 4.99, 5.0])
    names = [SEVERITY_NAMES[s] for s in severity_of(z, 3.0)]
    assert names == ["normal", "medium", "medium", "high", "high", "critical"]


def test_nans_in_window_are_ignored():
    window = np.array([[1.0, np.nan, 2.0, 3.0, np.nan, 4.0, 5.0]])
    clean = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    point = np.array([9.0])
    assert rolling_zscore(window, point)[0] == pytest.approx(rolling_zscore(clean, point)[0])
    assert np.isfinite(rolling_zscore(window, point)).all()


def test_nan_point_gets_zero():
    window = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    z = rolling_zscore(window, np.array([np.nan, 100.0]))
    assert z[0] == 0.0
    assert z[1] > 3


def test_too_few_valid_points_gives_zero():
    few = [np.nan] * 5 + list(range(MIN_WINDOW_POINTS - 1))
    enough = [np.nan] * 4 + list(range(MIN_WINDOW_POINTS))
    z = rolling_zscore(np.array([few, enough], dtype=float), np.array([50.0, 50.0]))
    assert z[0] == 0.0
    assert abs(z[1]) > 3
    assert rolling_zscore(np.empty((2, 0)), np.array([1.0, 2.0])).tolist() == [0.0, 0.0]
    assert rolling_zscore(np.full((1, 10), np.nan), np.array([1.0]))[0] == 0.0


def test_flat_window_and_a_different_point_is_critical_and_clipped():
    window = np.full((3, 20), 100.0)
    z = rolling_zscore(window, np.array([100.5, 99.0, 100.0]))
    assert z[0] == Z_LIMIT
    assert z[1] == -Z_LIMIT
    assert z[2] == 0.0  # the same value is no news
    assert np.isfinite(z).all()
    assert severity_of(z, 3.0).tolist() == [CRITICAL, CRITICAL, NORMAL]


def test_detector_uses_only_the_last_window_size_points():
    detector = ZScoreDetector(window_size=4, multiplier=3.0)
    # The old points are wild; the last four are 1, 2, 3, 4 (mean 2.5, std ~1.118).
    window = np.array([[1e6, -1e6, 5e5, 1.0, 2.0, 3.0, 4.0]])
    z, severity = detector.score(window, np.array([9.0]))
    assert z[0] == pytest.approx((9.0 - 2.5) / np.std([1.0, 2.0, 3.0, 4.0]))
    assert severity[0] == CRITICAL
    z, severity = detector.score(window, np.array([3.0]))
    assert severity[0] == NORMAL


def test_detector_multiplier_sets_the_threshold():
    window = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]] * 2)  # std sqrt(2)
    points = np.array([3.0 + 2.0 * math.sqrt(2.0), 3.0 - 2.0 * math.sqrt(2.0)])  # z = +-2
    assert ZScoreDetector(multiplier=3.0).score(window, points)[1].tolist() == [0, 0]
    assert ZScoreDetector(multiplier=1.5).score(window, points)[1].tolist() == [MEDIUM, MEDIUM]


def test_default_live_detector_is_hybrid_entropy_told_the_season_length():
    from granite_panel.detection.live import OnlineDetectors, live_detector
    from granite_panel.settings import Settings

    from granite_panel.detection.detectors import DEFAULT_DETECTOR

    assert Settings().detector == DEFAULT_DETECTOR == "hybrid_entropy"  # dashboard and CLI agree
    default = live_detector(Settings(n_series=2, season_length=30))
    assert isinstance(default, OnlineDetectors) and default.name == "hybrid_entropy"
    assert [d.hybrid.period for d in default.series.detectors] == [30, 30]
    # the other online detectors estimate what they need themselves
    assert live_detector(Settings(detector="ensemble")).series.kwargs == {}
    assert isinstance(live_detector(Settings(detector="zscore")), ZScoreDetector)


def test_each_series_can_have_its_own_estimated_season():
    """DETECTOR_SEASON=estimate: a sawtooth of period 60 beside a wave of period 24, live,
    with 40 series (the bank). Told SEASON_LENGTH 24, the sawtooth's drop is a surprise every
    cycle for good; estimated, each series finds its own period and the drop, recurring,
    stops being flagged (see the README's surprise tier)."""
    from granite_panel.detection.live import live_detector
    from granite_panel.settings import Settings

    rng = np.random.default_rng(9)
    t = np.arange(2500)
    values = np.vstack([np.round(100 + (t % 60) * 5 + rng.normal(0, 2, (20, t.size)), 1),
                        50 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, (20, t.size))])
    flagged = {}
    for season in ("fixed", "estimate"):
        detector = live_detector(Settings(n_series=40, detector_season=season))
        assert detector.bank is not None
        scores, _ = detector.score_block(values)
        flagged[season] = (scores[:20, 1500:] >= 0.25).mean()
        if season == "estimate":
            assert detector.bank.hybrid.e_period.tolist() == [60] * 20 + [24] * 20
    assert flagged["fixed"] > 0.1 and flagged["estimate"] < 0.005  # measured 0.34 and 0.0


def test_zscore_score_many_equals_point_by_point_scoring():
    """The engine scores a many-slot tick in one pass: the same as slot after slot."""
    import numpy as np

    from granite_panel.detection.live import ZScoreDetector

    rng = np.random.default_rng(3)
    detector = ZScoreDetector(window_size=20, multiplier=3.0)
    before = rng.normal(size=(3, 7))
    values = rng.normal(size=(3, 1200)) * rng.choice([1, 1, 1, 8], size=(3, 1200))
    values[rng.random(values.shape) < 0.05] = np.nan
    z, severity = detector.score_many(before, values)
    history = np.hstack([before, values])
    for j in range(values.shape[1]):
        window = history[:, max(0, 7 + j - 20) : 7 + j]
        zj, sj = detector.score(window, values[:, j])
        assert np.allclose(z[:, j], zj) and (severity[:, j] == sj).all(), j
