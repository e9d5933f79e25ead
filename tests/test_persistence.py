"""The engine over a real store: every tick written, restarts that resume with the same scores.

Real SQLite files (and the served process killed with -9 in tests/test_restart.py); a
"crash" here is a store closed without the engine's clean-stop checkpoint, after every push
was acknowledged.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from granite_panel.engine import persistence
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.sources.points import Points
from granite_panel.store import open_store

STEP = 60.0
T0 = 1_700_000_000.0


def _settings(**overrides) -> Settings:
    values = dict(source="push", data_generation_interval=STEP, history_limit=256,
                  context_length=64, forecast_horizon=8, backfill=False,
                  fallback_model="SeasonalNaive", model_name="/nonexistent")
    values.update(overrides)
    return Settings(**values)


def _stream(n: int, names=("a", "b")) -> list[Points]:
    """One push per slot: a daily wave with noise and a level shift near the end."""
    rng = np.random.default_rng(7)
    pushes = []
    for t in range(n):
        values = [np.sin(2 * np.pi * t / 24) * (k + 1) + rng.normal(0, 0.1) + (5 if t % 97 == 90 else 0)
                  for k in range(len(names))]
        if t == 40:
            values[0] = float("nan")  # a bad point is stored as bad and replayed as one
        pushes.append(Points(tuple(names), np.full(len(names), T0 + t * STEP), np.array(values)))
    return pushes


def _push(engine: Engine, pushes) -> list:
    results = [engine.ingest_points(p, now=p.timestamps[0] + 1) for p in pushes]
    for result in results:
        if result.committed is not None:
            result.committed.result(10)  # acknowledged = committed
    return results


def _scores(engine: Engine, names=("a", "b")) -> dict:
    ts, values, score, severity, flag = engine.ring.last(engine.ring.capacity)
    return {name: dict(zip(ts.tolist(), zip(score[engine.rows[name]].tolist(),
                                            severity[engine.rows[name]].tolist())))
            for name in names}


def _without_restart(pushes, **overrides) -> dict:
    engine = Engine(_settings(**overrides))
    _push(engine, pushes)
    return _scores(engine)


@pytest.mark.parametrize("checkpoint_every", [None, 0.0])
@pytest.mark.parametrize("n_before", [150, 300])  # inside and past HISTORY_LIMIT (256)
def test_restart_gives_the_same_scores(tmp_path, monkeypatch, checkpoint_every, n_before):
    if checkpoint_every is not None:
        monkeypatch.setattr(persistence, "CHECKPOINT_SECONDS", checkpoint_every)
    # Without the time rule a checkpoint still comes every HISTORY_LIMIT slots, so 300 points
    # restart from one (150: from none, the replay of every stored point).
    pushes = _stream(n_before + 60)
    reference = _without_restart(pushes)
    url = f"sqlite:///{tmp_path}/gp.db"
    first = Engine(_settings(), store=open_store(url))
    _push(first, pushes[:n_before])
    first.store.close()  # a crash after the acknowledgements: no clean-stop checkpoint
    second = Engine(_settings(), store=open_store(url))
    assert second.restored["series"] == 2
    _push(second, pushes[n_before:])
    after = _scores(second)
    new_times = [float(p.timestamps[0]) for p in pushes[n_before:-1]]  # the last slot is open
    for name in ("a", "b"):
        assert [after[name][t] for t in new_times] == [reference[name][t] for t in new_times]
    # every acknowledged point is stored once, with its score
    second.wait_stored(10)
    stored = second.store.history("a")
    assert len(stored[0]) == n_before + 60
    assert stored[4][40] == 1 and np.isnan(stored[1][40])  # the bad point stayed bad
    second.close()


def test_restart_restores_memory_counters_and_open_slot(tmp_path):
    pushes = _stream(120)
    url = f"sqlite:///{tmp_path}/gp.db"
    first = Engine(_settings(), store=open_store(url))
    _push(first, pushes)
    before = first.snapshot()
    counters = {k: first.counters[k] for k in ("data_points", "bad_points", "anomaly_count")}
    first.store.close()
    second = Engine(_settings(), store=open_store(url))
    after = second.snapshot()
    # the same chart: the same slots, values and scores in memory
    assert np.array_equal(before.timestamps, after.timestamps)
    assert np.array_equal(before.values, after.values, equal_nan=True)
    assert np.allclose(before.score, after.score)
    assert {k: second.counters[k] for k in counters} == counters
    assert len(second.alerts) == len(first.alerts)
    # the newest slot was still open at the crash: it is open again, then closes normally
    assert set(second._pending) == set(first._pending)
    second.flush(now=T0 + 200 * STEP)
    assert second.ring.count == first.ring.count + 1
    second.close()


def test_clean_close_checkpoints_everything(tmp_path):
    pushes = _stream(80)
    url = f"sqlite:///{tmp_path}/gp.db"
    first = Engine(_settings(), store=open_store(url))
    _push(first, pushes)
    first.close()
    second = Engine(_settings(), store=open_store(url))
    assert second.restored["checkpoint"] is not None
    assert second.counters["data_points"] == first.counters["data_points"]
    second.close()


@pytest.mark.parametrize("second", [{"detector": "zscore"}, {"detector_season": "estimate"},
                                    {"season_length": 12}])
def test_a_checkpoint_of_another_detector_is_not_resumed(tmp_path, second):
    """Restarted with another DETECTOR or season, the detectors start fresh from the stored
    points; before, the checkpoint's detector went on scoring under the new name."""
    from granite_panel.detection.live import configuration

    url = f"sqlite:///{tmp_path}/gp.db"
    first = Engine(_settings(detector="hybrid"), store=open_store(url))
    _push(first, _stream(80))
    first.close()
    again = Engine(_settings(detector="hybrid"), store=open_store(url))
    assert again.restored["checkpoint"] is not None  # the same detector is resumed
    again.close()
    settings = {"detector": "hybrid", **second}
    changed = Engine(_settings(**settings), store=open_store(url))
    assert changed.restored["checkpoint"] is None
    assert configuration(changed.detector) == configuration(Engine(_settings(**settings)).detector)
    assert changed.counters["data_points"] > 0  # the points are still there
    changed.close()


def test_each_tick_written_with_forecasts_and_model(tmp_path):
    url = f"sqlite:///{tmp_path}/gp.db"
    engine = Engine(_settings(), store=open_store(url))
    _push(engine, _stream(100))
    engine.wait_stored(10)
    store = engine.store
    ts, value, score, severity, flag = store.history("b")
    assert len(ts) == 100 and (severity[:-1] >= 0).all() and severity[-1] == -1  # last: open
    forecasts = b"".join(store.export(kind="forecasts")).decode().splitlines()
    assert forecasts[0].startswith("series,made_at,model,horizon")
    made = sorted({float(line.split(",")[1]) for line in forecasts[1:]})
    assert len(made) >= 2 and all(np.diff(made) >= 8 * STEP)  # once per horizon, tiled
    with store.engine.connect() as connection:
        import sqlalchemy as sa
        runs = connection.execute(sa.text("SELECT model FROM model_runs")).scalars().all()
    assert runs and "SeasonalNaive" in runs[0]
    engine.close()


def replaying_engine(tmp_path):
    """A factory of engines replaying one 300-row hourly frame onto one SQLite store."""
    import pandas as pd

    from granite_panel.sources.replay import ReplaySource

    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=300, freq="h"),
                          "load": np.sin(np.arange(300) / 5.0)})
    url = f"sqlite:///{tmp_path}/gp.db"
    settings = _settings(source="synthetic", backfill=True)

    def engine():
        source = ReplaySource.from_frame(frame, "load", speed="max", chunk=50)
        return Engine(settings, source=source, store=open_store(url))

    return engine


def test_replay_resumes_after_the_stored_rows(tmp_path):
    engine = replaying_engine(tmp_path)
    first = engine()
    for _ in range(3):
        first.step()
    first.wait_stored(10)
    first.store.close()
    second = engine()
    assert second.source.position == first.source.position
    second.step()
    second.wait_stored(10)
    ts = second.store.history("load")[0]
    assert len(ts) == len(np.unique(ts)) and np.all(np.diff(ts) == 3600)
    second.close()


def test_a_replay_resumes_after_its_own_rows_not_after_newer_points_of_other_series(tmp_path):
    """Points of another series stored later than the file's (pushed, or a file opened in
    the dashboard, then a restart with the configured one): before, the replay resumed
    after those and skipped the rest of its file."""
    import pandas as pd

    from granite_panel.sources.points import Points

    engine = replaying_engine(tmp_path)
    first = engine()
    first.step()
    position = first.source.position
    later = pd.Timestamp("2024-06-01").timestamp()
    first.ingest_points(Points(("pushed",), np.array([later]), np.array([1.0])), now=later)
    first.wait_stored(10)
    first.store.close()
    second = engine()
    assert 0 < second.source.position == position < 300
    second.close()


def test_incidents_come_back_after_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/gp.db"
    first = Engine(_settings(), store=open_store(url))
    _push(first, _stream(300))
    first.wait_stored(10)
    before = {i["id"]: i for i in first.incidents.recent(1000)}
    assert before, "the stream's spikes make incidents"
    acknowledged = next(iter(before))
    first.incidents.acknowledge(acknowledged)
    _push(first, _stream(302)[300:])  # the next tick carries the acknowledgement
    first.wait_stored(10)
    first.store.close()
    second = Engine(_settings(), store=open_store(url))
    after = {i["id"]: i for i in second.incidents.recent(1000)}
    assert set(before) <= set(after)
    assert after[acknowledged]["acknowledged"]
    for key in ("series", "start", "peak_score", "severity"):
        assert [before[k][key] for k in before] == [after[k][key] for k in before]
    second.close()


def test_mutes_survive_a_restart_and_expired_ones_do_not(tmp_path):
    url = f"sqlite:///{tmp_path}/gp.db"
    first = Engine(_settings(), store=open_store(url))
    _push(first, _stream(20))
    now = time.time()
    first.incidents.mute("b", 3600, now)
    first.incidents.mute("a", 1.0, now)  # over before the restart reads it
    first.incidents.unmute("b")
    first.incidents.mute("b", 7200, now)
    first.wait_stored(10)
    first.store.close()  # no clean stop: the mutes were written when they were made
    time.sleep(1.1)
    second = Engine(_settings(), store=open_store(url))
    assert list(second.incidents.mutes(time.time())) == ["b"]
    assert second.incidents.mute_state()["b"] == pytest.approx(now + 7200)
    assert second.incidents.muted("b", time.time())
    second.incidents.unmute("b")
    second.wait_stored(10)
    second.store.close()
    third = Engine(_settings(), store=open_store(url))
    assert third.incidents.mutes(time.time()) == {}
    third.close()


def test_the_trainer_learns_from_the_store_beyond_memory(tmp_path):
    url = f"sqlite:///{tmp_path}/gp.db"
    engine = Engine(_settings(), store=open_store(url))  # HISTORY_LIMIT 256
    pushes = _stream(700)
    _push(engine, pushes)
    engine.wait_stored(10)
    history = engine.history_for_training()
    assert history.shape == (2, 699)  # every closed slot, not the 256 in memory
    expected = np.array([p.values[1] for p in pushes[:699]])
    assert np.allclose(history[1], expected)
    assert np.isnan(history[0, 40])  # the bad point stays a gap
    memory_only = Engine(_settings())
    _push(memory_only, pushes[:300])
    assert memory_only.history_for_training().shape == (2, 256)  # no store: memory
    engine.close()
