"""The engine: bounded history, counters, backfill, threads, bad input, readers."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from granite_panel.engine.core import RECENT_TICKS, Engine
from granite_panel.forecasting.service import ForecastService, StatisticalForecaster
from granite_panel.settings import Settings
from granite_panel.sources.synthetic import Batch

SMALL = dict(
    n_series=3,
    context_length=64,
    forecast_horizon=16,
    history_limit=128,
    anomaly_window_size=20,
    season_length=12,
    fallback_model="SeasonalNaive",
    use_gpu=False,
    data_generation_interval=1.0,
    seed=7,
)
T0 = 1_700_000_000.0


def no_ttm(*args):
    raise RuntimeError("TTM switched off for this test")


def make_engine(**overrides) -> Engine:
    """A small engine whose TTM never loads (the fallback serves; quality is irrelevant)."""
    settings = Settings(**{**SMALL, **overrides})
    forecasts = ForecastService(
        model_name=settings.model_name,
        context_length=settings.context_length,
        horizon=settings.forecast_horizon,
        use_gpu=False,
        fallback=StatisticalForecaster(
            model=settings.fallback_model,
            horizon=settings.forecast_horizon,
            season_length=settings.season_length,
        ),
        loader=no_ttm,
    )
    return Engine(settings, forecasts=forecasts)


def run_steps(engine: Engine, n: int, start: float = T0):
    return [engine.step(now=start + i) for i in range(n)]


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def ttm_engine(tiny_ttm_dir):
    """Engine built from settings alone, with the tiny TTM folder as its model."""

    def build(**overrides):
        engine = Engine(Settings(**{**SMALL, "model_name": tiny_ttm_dir, **overrides}))
        assert engine.forecasts.wait_until_loaded(60) == "ready"
        return engine

    return build


# --------------------------------------------------------------------------- history


def test_history_is_bounded_by_history_limit():
    engine = make_engine(history_limit=100, backfill=True)
    run_steps(engine, 80)  # 64 backfill + 80 live = 144 points
    snap = engine.snapshot()
    assert snap.values.shape == (3, 100)
    assert snap.timestamps.shape == (100,) == snap.score.shape[1:] == snap.severity.shape[1:]
    assert np.all(np.diff(snap.timestamps) > 0)
    assert snap.timestamps[-1] == engine.recent_ticks[-1].timestamps[-1]
    assert engine.counters["data_points"] == 144 * 3  # counting goes on
    assert engine.snapshot(last=10).values.shape == (3, 10)
    np.testing.assert_array_equal(engine.snapshot(last=10).values, snap.values[:, -10:])


def test_counters_rise_per_step():
    engine = make_engine(backfill=False)
    for i in range(1, 6):
        tick = engine.step(now=T0 + i)
        c = engine.counters
        assert c["ticks"] == i == tick.seq
        assert c["data_points"] == 3 * i
        assert c["total_predictions"] == 3 * i  # every step forecasts all series
        assert c["bad_points"] == 0 and c["errors"] == 0
        assert tick.values.shape == (3, 1) and tick.prediction is not None
        assert tick.prediction.values.shape == (3, 16)
    flagged = int((engine.snapshot().severity > 0).sum())
    assert engine.counters["anomaly_count"] == flagged


def test_anomaly_count_and_alerts_follow_detections():
    engine = make_engine(backfill=False, anomaly_probability=0.2, noise_level=1.0)
    ticks = run_steps(engine, 120)
    snap = engine.snapshot()
    assert engine.counters["anomaly_count"] == int((snap.severity > 0).sum()) > 0
    alerts = [a for t in ticks for a in t.alerts]
    assert len(alerts) == engine.counters["anomaly_count"]
    assert all(a.severity > 0 for a in alerts)
    json.dumps([a.as_dict() for a in snap.alerts])


def test_backfill_gives_a_context_before_the_first_live_point(ttm_engine):
    engine = ttm_engine(backfill=True, anomaly_probability=0.2)
    tick = engine.step(now=T0)
    assert engine.ring.count == 64 + 1
    # The backfill rides in the first tick (readers stream it), the live point last, at now.
    assert tick.values.shape == (3, 65)
    assert tick.timestamps[-1] == T0
    np.testing.assert_allclose(np.diff(tick.timestamps), 1.0)
    snap = engine.snapshot()
    np.testing.assert_array_equal(snap.timestamps, tick.timestamps)
    assert tick.prediction is not None  # a forecast on the very first step ...
    assert tick.prediction.model == engine.forecasts.ttm.name  # ... from TTM: context is full
    assert tick.prediction.values.shape == (3, 16) and np.isfinite(tick.prediction.values).all()
    np.testing.assert_allclose(np.diff(tick.prediction.timestamps), 1.0)
    assert tick.prediction.timestamps[0] == T0 + 1.0
    # Only the live point can raise alerts; the backfill is history.
    assert all(alert.timestamp == T0 for alert in tick.alerts)
    assert (tick.severity[:, :-1] > 0).any()  # (there were anomalies in the backfill)
    assert engine.status()["active_model"] == engine.forecasts.ttm.name
    second = engine.step(now=T0 + 1)
    assert second.values.shape == (3, 1) and second.timestamps[0] == T0 + 1.0


def test_without_backfill_ttm_waits_for_a_full_context(ttm_engine):
    engine = ttm_engine(backfill=False)
    ttm_name = engine.forecasts.ttm.name
    for i in range(1, 64):
        tick = engine.step(now=T0 + i)
        assert tick.prediction.model == "SeasonalNaive", i
        assert f"{i} of 64" in tick.prediction.reason
    status = engine.status()
    assert status["active_model"] == "SeasonalNaive"
    assert "63 of 64" in status["fallback_reason"]
    assert status["model_loaded"] is True
    tick = engine.step(now=T0 + 64)
    assert tick.prediction.model == ttm_name and tick.prediction.reason == ""
    status = engine.status()
    assert status["active_model"] == ttm_name and status["fallback_reason"] is None


def test_reset_clears_everything_and_bumps_generation():
    engine = make_engine(backfill=False, anomaly_probability=0.3)
    first = run_steps(engine, 30)
    assert engine.counters["data_points"] > 0
    engine.reset()
    assert engine.generation == 1
    assert engine.seq == 0
    assert set(engine.counters.values()) == {0}
    assert engine.ring.count == 0 and engine.snapshot().values.shape == (3, 0)
    assert not engine.predictions and not engine.alerts and not engine.recent_ticks
    assert engine.status()["generation"] == 1
    assert engine.status()["detection"] == {"precision": None, "recall": None}
    again = run_steps(engine, 30)
    assert again[0].generation == 1 and again[0].seq == 1
    # The source restarts from its seed: the same stream again.
    np.testing.assert_array_equal(
        np.concatenate([t.values for t in first], axis=1),
        np.concatenate([t.values for t in again], axis=1),
    )


# --------------------------------------------------------------------------- thread


def test_start_and_stop_run_ticks_in_the_background():
    engine = make_engine(data_generation_interval=0.05, backfill=False)
    assert not engine.running
    engine.start()
    try:
        assert engine.running
        assert wait_for(lambda: engine.counters["ticks"] >= 3)
        assert engine._thread is not threading.current_thread()
    finally:
        engine.stop()
    assert not engine.running
    engine._thread.join(5)
    assert not engine._thread.is_alive()
    ticks = engine.counters["ticks"]
    time.sleep(0.2)
    assert engine.counters["ticks"] == ticks  # stopped means stopped
    # and it can start again
    engine.start()
    try:
        assert wait_for(lambda: engine.counters["ticks"] >= ticks + 2)
    finally:
        engine.stop()
        engine._thread.join(5)


@pytest.mark.parametrize("part", ["forecast", "source"])
def test_an_error_in_a_step_is_counted_and_the_thread_goes_on(part, monkeypatch):
    engine = make_engine(data_generation_interval=0.05, backfill=False)
    owner, attribute = (engine.forecasts, "predict") if part == "forecast" else (engine.source, "next_batch")
    real = getattr(owner, attribute)
    failures = []

    def failing_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError(f"{part} exploded")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, failing_once)
    engine.start()
    try:
        assert wait_for(lambda: engine.counters["errors"] == 1 and engine.counters["ticks"] >= 3)
        assert engine.running
    finally:
        engine.stop()
        engine._thread.join(5)
    status = engine.status()
    assert status["errors"] == 1
    assert f"{part} exploded" in status["last_error"]


def test_points_of_a_step_whose_forecast_fails_still_reach_readers(monkeypatch):
    """Stored points must be streamed: a reader following ticks_since never has a gap."""
    engine = make_engine(backfill=False)
    run_steps(engine, 3)

    def broken(context, n_valid):
        raise RuntimeError("forecast exploded")

    with monkeypatch.context() as patch:
        patch.setattr(engine.forecasts, "predict", broken)
        try:
            engine.step(now=T0 + 10)
        except RuntimeError:
            pass  # raising is allowed; losing the points for readers is not
    run_steps(engine, 2, start=T0 + 20)
    ticks = engine.ticks_since(0)
    assert ticks is not None
    streamed = np.concatenate([t.timestamps for t in ticks])
    assert engine.ring.count == 6
    np.testing.assert_array_equal(streamed, engine.snapshot().timestamps)


# --------------------------------------------------------------------------- bad input


def test_ingest_of_bad_points_never_raises_and_stays_finite():
    engine = make_engine(backfill=False)
    run_steps(engine, 30)
    before = dict(engine.counters)
    last = engine.ring.timestamps[(engine.ring.count - 1) % engine.ring.capacity]
    values = np.array(
        [
            [101.0, np.nan, "x", 99.0],
            [np.inf, 100.0, None, "100.5"],
            [-np.inf, "nan", 98.0, 102.0],
        ],
        dtype=object,
    )
    tick = engine.ingest(Batch(timestamps=last + 1 + np.arange(4.0), values=values))
    assert engine.counters["bad_points"] == before["bad_points"] + 6
    assert engine.counters["data_points"] == before["data_points"] + 6
    assert np.isnan(tick.values[0, 1]) and np.isnan(tick.values[1, 0]) and np.isnan(tick.values[1, 2])
    assert tick.values[1, 3] == 100.5
    assert np.isfinite(tick.score).all()
    assert (tick.severity[np.isnan(tick.values)] == 0).all()
    assert tick.prediction is not None and np.isfinite(tick.prediction.values).all()
    # Later points are scored against windows holding the gaps: still finite.
    ticks = run_steps(engine, 5, start=last + 10)
    snap = engine.snapshot()
    assert np.isfinite(snap.score).all()
    assert all(np.isfinite(t.prediction.values).all() for t in ticks)
    json.dumps(snap.status)


def test_ingest_into_an_empty_engine_of_only_bad_points():
    engine = make_engine(backfill=False)
    values = np.array([["a", None], [np.nan, np.inf], ["", "-inf"]], dtype=object)
    tick = engine.ingest(Batch(timestamps=np.array([T0, T0 + 1]), values=values))
    assert engine.counters["bad_points"] == 6 and engine.counters["data_points"] == 0
    assert tick.prediction is None  # nothing to forecast from
    assert np.isfinite(tick.score).all()


def test_ingest_with_ttm_and_gaps_gives_a_finite_forecast(ttm_engine):
    engine = ttm_engine(backfill=True)
    engine.step(now=T0)
    values = np.array([[np.nan], ["oops"], [np.inf]], dtype=object)
    tick = engine.ingest(Batch(timestamps=np.array([T0 + 1]), values=values))
    assert tick.prediction.model == engine.forecasts.ttm.name
    assert np.isfinite(tick.prediction.values).all()


def test_ingest_rejects_a_batch_for_another_number_of_series():
    engine = make_engine()
    with pytest.raises(ValueError, match="series"):
        engine.ingest(Batch(timestamps=np.array([T0]), values=np.zeros((2, 1))))


# --------------------------------------------------------------------------- readers


def test_ticks_since_returns_missing_ticks_or_none_when_too_old():
    engine = make_engine(backfill=False)
    run_steps(engine, 3)
    assert [t.seq for t in engine.ticks_since(0)] == [1, 2, 3]
    assert [t.seq for t in engine.ticks_since(1)] == [2, 3]
    assert engine.ticks_since(3) == []
    run_steps(engine, RECENT_TICKS + 5, start=T0 + 10)
    assert engine.ticks_since(1) is None  # dropped already: the reader must resync
    newest = engine.seq
    assert [t.seq for t in engine.ticks_since(newest - 2)] == [newest - 1, newest]
    assert len(engine.ticks_since(newest - RECENT_TICKS)) == RECENT_TICKS


def test_snapshot_and_status_have_the_seed_keys():
    engine = make_engine(backfill=True)
    assert engine.forecasts.wait_until_loaded(10) == "failed"
    run_steps(engine, 5)
    snap = engine.snapshot()
    status = snap.status
    for key in (
        "running",
        "data_points",
        "anomaly_count",
        "total_predictions",
        "model_loaded",
        "active_model",
        "fallback_reason",
    ):
        assert key in status, key
    assert status["config"]["forecast_horizon"] == 16
    assert status["config"]["context_length"] == 64
    assert status["config"]["generation_interval"] == 1.0
    assert status["running"] is False
    assert status["model_loaded"] is False
    assert status["active_model"] == "SeasonalNaive"
    assert "unavailable" in status["fallback_reason"]
    assert status["data_points"] == (64 + 5) * 3
    assert status["total_predictions"] == 5 * 3
    assert snap.seq == 5 == status["ticks"]
    assert len(snap.predictions) == 5
    assert snap.values.shape == (3, 69) and snap.timestamps.shape == (69,)
    json.dumps(status)
    json.dumps(snap.predictions[-1].as_dict([0, 1, 2], list(snap.names)))


def test_precision_and_recall_come_from_labels():
    engine = make_engine(n_series=1, detector="zscore", anomaly_window_size=5, backfill=False)

    def feed(value, label):
        t = T0 + engine.ring.count
        batch = Batch(
            timestamps=np.array([t]),
            values=np.array([[value]]),
            labels=np.array([[label]], dtype=np.int8),
        )
        return engine.ingest(batch).severity[0, 0] > 0

    flat = lambda n: [feed(100.0, 0) for _ in range(n)]  # noqa: E731
    assert not any(flat(10))
    assert feed(200.0, 1)  # true positive
    flat(6)
    assert not feed(100.0, 1)  # false negative
    assert not feed(100.0, 1)  # false negative
    flat(2)
    assert feed(50.0, 0)  # false positive
    flat(6)
    assert feed(300.0, 1)  # true positive
    c = engine.counters
    assert (c["true_positives"], c["false_positives"], c["false_negatives"]) == (2, 1, 2)
    quality = engine.status()["detection"]
    assert quality["precision"] == pytest.approx(2 / 3)
    assert quality["recall"] == pytest.approx(2 / 4)


def test_detection_quality_on_the_synthetic_stream_is_sensible():
    engine = make_engine(n_series=2, anomaly_probability=0.05, noise_level=2.0, backfill=True)
    run_steps(engine, 200)
    quality = engine.detection_quality()
    assert quality["precision"] is not None and quality["recall"] is not None
    assert 0.0 < quality["precision"] <= 1.0 and 0.0 < quality["recall"] <= 1.0


def test_snapshots_from_another_thread_while_steps_run():
    engine = make_engine(backfill=True, history_limit=80)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            run_steps(engine, 300)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    seq = 0
    try:
        while not done.is_set() or reads < 5:
            snap = engine.snapshot(last=50)
            n = snap.timestamps.shape[0]
            assert snap.values.shape == snap.score.shape == snap.severity.shape == (3, n)
            assert np.all(np.diff(snap.timestamps) > 0)
            assert snap.seq == snap.status["ticks"]
            json.dumps(snap.status)
            ticks = engine.ticks_since(seq)
            if ticks is None:
                seq = snap.seq
            elif ticks:
                assert [t.seq for t in ticks] == list(range(seq + 1, seq + 1 + len(ticks)))
                seq = ticks[-1].seq
            reads += 1
    finally:
        thread.join(30)
    assert not errors
    assert reads >= 5
    assert engine.counters["ticks"] == 300


def test_live_detector_is_chosen_by_setting_and_scores_in_its_own_units():
    from granite_panel.detection.detectors import DETECTORS, SEVERITY_CUTOFFS
    from granite_panel.settings import DETECTORS as SETTING_CHOICES

    assert set(SETTING_CHOICES) == set(DETECTORS)
    counts = {}
    for name in ("zscore", "hybrid"):
        engine = make_engine(
            n_series=4, detector=name, context_length=1500, history_limit=1600, seed=3
        )
        tick = engine.step(now=T0)  # scores the 1500-point backfill with its labels
        status = engine.status()
        assert status["detector"] == {"name": name, "score": "z" if name == "zscore" else "score",
                                      "learning_points": 0 if name == "zscore" else 288,
                                      "season": None if name == "zscore"
                                      else engine.settings.season_length}
        if name == "hybrid":
            assert ((tick.score >= 0) & (tick.score <= 1)).all()
            medium, high, critical = SEVERITY_CUTOFFS["hybrid"]
            flagged = tick.score >= medium
            assert (flagged == (tick.severity > 0)).all()
            assert ((tick.score >= critical) == (tick.severity == 3)).all()
        counts[name] = engine.counters
    # The hybrid detector finds far more of the injected anomalies than the z-score.
    def recall(c):
        return c["true_positives"] / (c["true_positives"] + c["false_negatives"])

    def precision(c):
        return c["true_positives"] / (c["true_positives"] + c["false_positives"])

    assert recall(counts["hybrid"]) > 2 * recall(counts["zscore"])
    # ... without drowning them in false alarms (0.945 here; zscore 0.942)
    assert precision(counts["hybrid"]) > 0.9


def test_listeners_hear_every_tick_start_stop_and_reset():
    """What pushes a tick to the served pages at once (ui.controller): the engine calls its
    listeners after each tick and each start, stop and reset; a failing one stops nothing."""
    engine = make_engine()
    heard = []

    def failing():
        raise RuntimeError("a listener that fails")

    engine.add_listener(failing)
    engine.add_listener(lambda: heard.append(engine.seq))
    engine.step(T0)
    engine.step(T0 + 1)
    assert heard == [1, 2] and engine.seq == 2  # the failing listener did not stop the ticks
    engine.reset()
    assert len(heard) == 4  # its stop, then the reset itself
    engine.remove_listener(failing)
    ticked = threading.Event()
    engine.add_listener(ticked.set)
    engine.start()
    try:
        assert ticked.wait(10)  # the start, and the ticks of the thread
    finally:
        engine.stop()
        engine.join(10)
    count, seq = len(heard), engine.seq
    calls = []

    def counting():
        calls.append(engine.seq)

    engine.add_listener(counting)
    engine.step()
    engine.remove_listener(counting)
    engine.step()
    assert calls == [seq + 1] and heard[count:] == [seq + 1, seq + 2]  # removed: unheard
