"""Live accuracy: forecasts scored when they mature, conformal bands and their coverage."""

import numpy as np
import pytest

from granite_panel.engine.accuracy import AccuracyTracker, ConformalBands, mase_scale, score_forecast
from granite_panel.engine.accuracy import PendingForecast
from granite_panel.engine.core import Engine
from granite_panel.forecasting import ttm
from granite_panel.settings import Settings

# The bands calibrate with tsfm_public's conformal processor once it is imported (a tick
# never waits for that import: see test_a_tick_never_waits_for_tsfm_to_import).
ttm.import_tsfm()


def test_mase_scale_is_the_in_sample_seasonal_naive_error():
    context = np.array([[1.0, 2, 3, 5, 6, 7], [0, 0, 0, 0, 0, 0]])
    # season 3: |5-1|, |6-2|, |7-3| -> 4; a flat series gets 1 (no division by zero)
    assert list(mase_scale(context, 3)) == [4.0, 1.0]
    # season longer than the context falls back to lag 1: mean(1,1,2,1,1) = 1.2
    assert mase_scale(context[:1], 24)[0] == pytest.approx(1.2)
    assert mase_scale(np.array([[1.0, np.nan, 3.0, 4.0]]), 1)[0] == pytest.approx(1.0)


def test_score_of_one_matured_forecast_by_hand():
    actual = np.array([[10.0, 12.0]])
    pending = PendingForecast(
        start=0, model="m", values=np.array([[11.0, 12.0]]), naive=np.array([[10.0, 10.0]]),
        scale=np.array([2.0]), lower=np.array([[10.5, 11.0]]), upper=np.array([[11.5, 13.0]]),
    )
    score = score_forecast(actual, pending)
    assert score.mae == 0.5 and score.mase == 0.25
    assert score.naive_mae == 1.0 and score.naive_mase == 0.5
    assert (score.inside, score.banded) == (1, 2)  # 10 is below 10.5; 12 is inside


def test_forecasts_mature_only_after_their_horizon():
    tracker = AccuracyTracker(horizon=3, window=10)
    history = np.arange(20, dtype=float)[None, :]
    tracker.record(start=5, model="m", values=np.array([[5.0, 6, 7]]), naive=np.zeros((1, 3)),
                   scale=np.ones(1))
    assert tracker.mature(7, lambda s, n: history[:, s : s + n]) == 0
    assert tracker.mature(8, lambda s, n: history[:, s : s + n]) == 1
    summary = tracker.summary()
    assert summary["forecasts_scored"] == 1
    assert summary["model"] == {"name": "m", "mae": 0.0, "mase": 0.0}
    assert summary["seasonal_naive"]["mae"] == pytest.approx(6.0)


def test_points_no_longer_kept_are_not_scored():
    tracker = AccuracyTracker(horizon=2)
    tracker.record(0, "m", np.zeros((1, 2)), np.zeros((1, 2)), np.ones(1))
    assert tracker.mature(10, lambda s, n: None) == 0
    assert tracker.summary()["forecasts_scored"] == 0 and not tracker.pending


def test_conformal_bands_cover_about_the_nominal_level():
    rng = np.random.default_rng(0)
    horizon = 8
    bands = ConformalBands(horizon, level=0.8)
    assert not bands.ready
    for _ in range(300):  # matured forecasts of a zero forecaster on N(0, 2^2) noise
        bands.add(rng.normal(0, 2, (1, horizon)), np.zeros((1, horizon)), np.array([1.0]))
    assert bands.ready
    lower, upper = bands.bands(np.zeros((1, horizon)), np.array([1.0]))
    # The 10% / 90% quantiles of N(0, 4) are +-2.56.
    assert np.allclose(upper, 2.56, atol=0.45) and np.allclose(lower, -upper)
    fresh = rng.normal(0, 2, (2000, horizon))
    coverage = ((fresh >= lower) & (fresh <= upper)).mean()
    assert 0.75 < coverage < 0.86


def test_bands_scale_with_each_series():
    bands = ConformalBands(4, level=0.8)
    rng = np.random.default_rng(1)
    for _ in range(50):
        scale = np.array([1.0, 100.0])
        bands.add(rng.normal(0, 1, (2, 4)) * scale[:, None], np.zeros((2, 4)), scale)
    lower, upper = bands.bands(np.full((2, 4), 50.0), np.array([1.0, 100.0]))
    width = upper - lower
    assert np.allclose(width[1], 100 * width[0])
    assert np.allclose((upper + lower) / 2, 50.0)


def test_bands_match_tsfm_posthoc_processor():
    from tsfm_public.toolkit.conformal import PostHocProbabilisticProcessor

    rng = np.random.default_rng(2)
    actual, predicted = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) * 0.1
    bands = ConformalBands(6, level=0.8)
    bands.add(actual, predicted, np.ones(40))
    reference = PostHocProbabilisticProcessor(quantiles=[0.1, 0.9])
    reference.train(y_cal_gt=actual[:, :, None], y_cal_pred=predicted[:, :, None])
    expected = reference.predict(np.zeros((1, 6, 1)))[0, :, 0, 1]
    assert np.allclose(bands.half_width, expected)


def test_bad_levels_are_refused():
    with pytest.raises(ValueError, match="level"):
        ConformalBands(4, level=1.5)


def test_engine_reports_accuracy_band_and_coverage():
    settings = Settings(
        context_length=64, forecast_horizon=8, history_limit=256, season_length=12,
        fallback_model="SeasonalNaive", model_name="/nonexistent", accuracy_window=20,
        n_series=2,
    )
    engine = Engine(settings)
    first = engine.step(now=1e9)
    assert first.prediction.lower is None  # no matured forecast yet, so no band
    for i in range(1, 40):
        tick = engine.step(now=1e9 + 2 * i)
    accuracy = engine.status()["accuracy"]
    assert accuracy["forecasts_scored"] == 40 - 8
    assert accuracy["window"] == 20
    assert accuracy["model"]["name"] == "SeasonalNaive"
    # The fallback here *is* seasonal naive (same season), so both score the same.
    assert accuracy["model"]["mae"] == pytest.approx(accuracy["seasonal_naive"]["mae"])
    assert accuracy["band_ready"] and 0 <= accuracy["coverage"] <= 1
    assert accuracy["interval_level"] == 0.8
    band = tick.prediction
    assert (band.lower <= band.values).all() and (band.values <= band.upper).all()
    assert (band.upper - band.lower > 0).all()
    engine.reset()
    assert engine.status()["accuracy"]["forecasts_scored"] == 0


def test_a_tick_never_waits_for_tsfm_to_import(monkeypatch):
    """While another thread imports tsfm_public (the model loader, holding the import lock),
    a matured forecast is recorded at once and the band comes when the import is done."""
    monkeypatch.setattr(ttm, "_TSFM", None)
    horizon = 4
    bands = ConformalBands(horizon, level=0.8, max_samples=1000)
    rng = np.random.default_rng(1)
    with ttm._TSFM_IMPORT_LOCK:  # "another thread is importing"
        import time

        started = time.perf_counter()
        for _ in range(bands.min_samples + 5):
            bands.add(rng.normal(0, 1, (1, horizon)), np.zeros((1, horizon)), np.array([1.0]))
        assert time.perf_counter() - started < 2.0 and not bands.ready
    deadline = time.time() + 30
    while not bands.ready and time.time() < deadline:  # the background import finishes
        time.sleep(0.05)
        bands.add(rng.normal(0, 1, (1, horizon)), np.zeros((1, horizon)), np.array([1.0]))
    assert bands.ready


def test_bands_are_refitted_once_a_share_of_the_pairs_is_new(monkeypatch):
    """One pair per tick over 1,000 held pairs: a fit every 50 ticks, not every tick."""
    bands = ConformalBands(4, level=0.8, max_samples=1000)
    rng = np.random.default_rng(3)
    bands.add(rng.normal(0, 1, (1000, 4)), np.zeros((1000, 4)), np.ones(1000))
    assert bands.ready
    fits = []
    original = bands._calibrate
    monkeypatch.setattr(bands, "_calibrate", lambda: (fits.append(1), original()))
    for _ in range(100):
        bands.add(rng.normal(0, 5, (1, 4)), np.zeros((1, 4)), np.ones(1))
    assert len(fits) == 2  # at the 50th and the 100th new pair
    # the wider errors that arrived did move the band at those fits
    before = ConformalBands(4, level=0.8, max_samples=1000)
    before.add(rng.normal(0, 1, (1000, 4)), np.zeros((1000, 4)), np.ones(1000))
    assert (bands.half_width > before.half_width).all()
