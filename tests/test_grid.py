"""Named points on the engine's regular grid: the documented rules, one test each."""

import numpy as np
import pytest

from granite_panel.engine.core import BAD, GAP, OK, Engine
from granite_panel.settings import Settings
from granite_panel.sources.points import Points
from granite_panel.sources.push_only import PushOnlySource

T0 = 1_700_000_000.0
STEP = 10.0


def push_engine(**overrides) -> Engine:
    options = dict(
        fallback_model="SeasonalNaive", context_length=16, history_limit=32,
        forecast_horizon=4, data_generation_interval=STEP, detector="zscore", source="push",
    )
    settings = Settings(**{**options, **overrides})
    return Engine(settings)


def points(*rows) -> Points:
    """points(("a", t, v), ...)"""
    names, stamps, values = zip(*rows)
    return Points(tuple(names), np.array(stamps, float), np.array(values, dtype=object).astype(float)
                  if all(isinstance(v, (int, float)) for v in values) else np.array(values, object))


def history(engine, name):
    snap = engine.snapshot()
    row = snap.names.index(name)
    return snap.timestamps, snap.values[row], snap.flag[row]


def test_push_source_starts_empty_and_names_make_series():
    engine = push_engine()
    assert isinstance(engine.source, PushOnlySource) and engine.n_series == 0
    result = engine.ingest_points(points(("a", T0, 1.0), ("b", T0, 2.0), ("a", T0 + STEP, 3.0)),
                                  now=T0 + STEP)
    assert result.accepted == 3 and result.new_series == ("a", "b") and result.refused == 0
    assert engine.names == ["a", "b"]
    # slot T0 closed (a newer slot has a point); T0+STEP is still open
    stamps, values, flags = history(engine, "a")
    assert stamps.tolist() == [T0] and values.tolist() == [1.0]
    engine.flush()
    stamps, values, flags = history(engine, "b")
    assert stamps.tolist() == [T0, T0 + STEP]
    assert np.isnan(values[1]) and flags.tolist() == [OK, GAP]  # b sent nothing for slot 2


def test_nearest_slot_and_last_value_wins():
    engine = push_engine()
    engine.ingest_points(points(("a", T0, 1.0)), now=T0)
    engine.ingest_points(points(("a", T0 + STEP + 3, 5.0), ("a", T0 + STEP - 2, 6.0)), now=T0)
    engine.flush()
    stamps, values, _ = history(engine, "a")
    assert stamps.tolist() == [T0, T0 + STEP] and values.tolist() == [1.0, 6.0]


def test_a_gap_is_not_a_bad_point_and_is_never_scored():
    engine = push_engine()
    engine.ingest_points(points(*[("a", T0 + i * STEP, float(i % 3)) for i in range(10)]), now=T0)
    engine.ingest_points(points(("a", T0 + 12 * STEP, "oops")), now=T0)  # a string: bad point
    engine.flush()
    _, values, flags = history(engine, "a")
    assert flags[10:].tolist() == [GAP, GAP, BAD]
    status = engine.status()
    assert status["gap_points"] == 2 and status["bad_points"] == 1 and status["data_points"] == 10
    snap = engine.snapshot()
    assert (snap.score[0][flags != OK] == 0).all() and (snap.severity[0][flags != OK] == 0).all()


def test_late_points_fill_their_slot_unscored_and_too_old_ones_are_refused():
    engine = push_engine()
    engine.ingest_points(points(*[("a", T0 + i * STEP, 1.0) for i in range(40)]), now=T0)
    engine.flush()
    late = engine.ingest_points(points(("a", T0 + 30 * STEP, 7.0)), now=T0)
    assert late.accepted == 1 and late.late == 1
    stamps, values, _ = history(engine, "a")
    assert values[stamps == T0 + 30 * STEP].tolist() == [7.0]
    old = engine.ingest_points(points(("a", T0, 2.0)), now=T0)  # out of the 32 slots kept
    assert old.refused == 1 and "older than the history kept" in old.reasons[0]
    assert engine.status()["refused_points"] == 1


def test_a_point_sent_again_keeps_its_score():
    """A sender that retries (no answer came) sends points already stored: nothing changes."""
    engine = push_engine()
    engine.ingest_points(points(*[("a", T0 + i * STEP, float(i % 7)) for i in range(20)]), now=T0)
    engine.flush()
    row = engine.rows["a"]
    before = engine.snapshot()
    again = engine.ingest_points(points(("a", T0 + 15 * STEP, float(15 % 7))), now=T0)
    assert again.accepted == 1 and again.late == 0
    after = engine.snapshot()
    assert np.array_equal(before.score[row], after.score[row]) and after.score[row].any()
    assert engine.status()["late_points"] == 0


def test_max_series_refuses_new_names_with_a_reason_and_counts_them():
    engine = push_engine(max_series=2)
    result = engine.ingest_points(points(("a", T0, 1.0), ("b", T0, 1.0), ("c", T0, 1.0)), now=T0)
    assert result.accepted == 2 and result.refused == 1
    assert "MAX_SERIES=2" in result.reasons[0]
    status = engine.status()
    assert status["refused_series"] == 1 and status["series"] == ["a", "b"]



def test_a_name_whose_points_are_all_refused_does_not_become_a_series():
    """A push of only too-old (or far-ahead) points for a new name changes nothing: no empty
    series on the dashboard, none of MAX_SERIES used up. One point with a slot makes it."""
    engine = push_engine(max_series=2)
    engine.ingest_points(points(*[("a", T0 + i * STEP, 1.0) for i in range(40)]), now=T0)
    engine.flush()
    old = engine.ingest_points(points(("ghost", T0, 1.0), ("ghost", T0 + STEP, 2.0)), now=T0)
    ahead = engine.ingest_points(points(("far", T0 + 10 * 86_400, 1.0)), now=T0)
    assert old.refused == 2 and old.new_series == () and "older than" in old.reasons[0]
    assert ahead.refused == 1 and ahead.new_series == ()
    assert engine.status()["series"] == ["a"] and engine.status()["refused_series"] == 0
    mixed = engine.ingest_points(points(("b", T0, 1.0), ("b", T0 + 40 * STEP, 2.0)), now=T0)
    assert (mixed.accepted, mixed.refused, mixed.new_series) == (1, 1, ("b",))
    assert engine.status()["series"] == ["a", "b"]

def test_points_far_ahead_of_the_clock_are_refused():
    engine = push_engine()
    result = engine.ingest_points(points(("a", T0 + 10 * 86_400, 1.0)), now=T0)
    assert result.refused == 1 and "ahead of the clock" in result.reasons[0]


def test_a_long_silence_skips_ahead_without_scoring_empty_slots():
    engine = push_engine()
    engine.ingest_points(points(("a", T0, 1.0)), now=T0)
    engine.ingest_points(points(("a", T0 + 1000 * STEP, 2.0)), now=T0 + 1000 * STEP)
    engine.flush()
    stamps, values, flags = history(engine, "a")
    assert len(stamps) == 32 and stamps[-1] == T0 + 1000 * STEP
    assert np.allclose(np.diff(stamps), STEP) and values[-1] == 2.0 and (flags[:-1] == GAP).all()


def test_a_slot_closes_at_a_tick_once_the_clock_is_past_it():
    engine = push_engine()
    engine.ingest_points(points(("a", T0, 1.0)), now=T0)
    assert engine.ring.count == 0
    engine.step(now=T0 + STEP / 2)
    assert engine.ring.count == 0  # still open: a point may come
    engine.step(now=T0 + STEP)
    assert engine.ring.count == 1


def test_pushes_join_the_synthetic_stream_on_its_grid():
    settings = Settings(fallback_model="SeasonalNaive", context_length=16, history_limit=64,
                        forecast_horizon=4, data_generation_interval=STEP)
    engine = Engine(settings)
    engine.step(now=T0)
    engine.ingest_points(points(("pushed", T0 + STEP + 1, 42.0)), now=T0 + STEP)
    engine.step(now=T0 + STEP)
    snap = engine.snapshot()
    assert snap.names == ("synthetic-0", "pushed")
    assert snap.timestamps[-1] == T0 + STEP and snap.values[1, -1] == 42.0
    assert (snap.flag[1, :-1] == GAP).all()
    assert np.isfinite(snap.predictions[-1].values[1]).all()  # forecast from its one point


def test_a_new_series_gets_detectors_and_forecasts_of_its_own():
    engine = push_engine(detector="hybrid")
    engine.ingest_points(points(*[("a", T0 + i * STEP, np.sin(i)) for i in range(20)]), now=T0)
    engine.ingest_points(points(*[("b", T0 + i * STEP, np.cos(i)) for i in range(10, 21)]), now=T0)
    engine.flush()
    assert len(engine.detector.series.detectors) == 2
    prediction = engine.snapshot().predictions[-1]
    assert prediction.values.shape == (2, 4) and np.isfinite(prediction.values).all()


def test_reset_forgets_pushed_series():
    engine = push_engine()
    engine.ingest_points(points(("a", T0, 1.0)), now=T0)
    engine.flush()
    engine.reset()
    assert engine.n_series == 0 and engine.snapshot().values.shape == (0, 0)
    engine.ingest_points(points(("b", T0, 1.0)), now=T0)
    engine.flush()
    assert engine.names == ["b"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", None])
def test_nan_inf_strings_are_bad_points_not_errors(bad):
    engine = push_engine()
    result = engine.ingest_points(
        Points(("a", "a"), np.array([T0, T0 + STEP]), np.array([1.0, bad], dtype=object)), now=T0)
    engine.flush()
    assert result.accepted == 2 and result.bad == 1
    assert engine.status()["bad_points"] == 1
