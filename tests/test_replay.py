"""File and DataFrame replay: layouts, labels, errors, and live scores equal to `detect`."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from granite_panel.cli.detect import run_detect
from granite_panel.engine.core import GAP, Engine
from granite_panel.settings import Settings
from granite_panel.sources import SourceError, open_source
from granite_panel.sources.points import InputError
from granite_panel.sources.replay import ReplaySource, frame_to_batch
from granite_panel.ui.dashboard import Dashboard

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab" / "data"


def settings(**overrides) -> Settings:
    options = dict(fallback_model="SeasonalNaive", context_length=16, history_limit=64,
                   forecast_horizon=4, detector="zscore")
    return Settings(**{**options, **overrides})


def test_wide_frame_one_series_per_column_with_the_files_timestamps():
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=100, freq="h"),
                          "cpu": np.arange(100.0), "mem": np.arange(100.0) * 2})
    engine = Engine(settings(), source=ReplaySource.from_frame(frame))
    for _ in range(20):
        engine.step()
    snap = engine.snapshot()
    assert snap.names == ("cpu", "mem")
    assert snap.timestamps[0] == pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    assert np.allclose(np.diff(snap.timestamps), 3600) and engine.step_seconds == 3600
    # backfill of one context (16 rows) plus one row per tick
    assert snap.values.shape == (2, 16 + 20)
    assert snap.values[1].tolist() == (np.arange(36.0) * 2).tolist()


@pytest.mark.parametrize("columns", [("series", "timestamp", "value"), ("unique_id", "ds", "y")])
def test_long_layouts_become_named_series_with_gaps(columns):
    s, t, v = columns
    frame = pd.DataFrame({
        s: ["a", "a", "a", "b", "b"],
        t: ["2024-01-01T00:00", "2024-01-01T01:00", "2024-01-01T02:00",
            "2024-01-01T00:00", "2024-01-01T02:00"],
        v: [1.0, 2.0, 3.0, 10.0, 30.0],
    })
    batch = frame_to_batch(frame)
    assert batch.series == ("a", "b")
    assert batch.values[0].tolist() == [1.0, 2.0, 3.0]
    assert np.isnan(batch.values[1, 1])
    engine = Engine(settings(), source=ReplaySource(batch))
    engine.step()
    snap = engine.snapshot()
    assert snap.flag[1].tolist() == [0, GAP, 0]  # b has no point at 01:00: a gap, not bad
    assert engine.status()["gap_points"] == 1 and engine.status()["bad_points"] == 0


def test_parquet_and_csv_files_and_a_label_column_feed_precision_recall(tmp_path):
    values = np.zeros(200)
    values[150] = 50.0
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=200, freq="5min"),
                          "value": values + np.sin(np.arange(200)), "label": 0})
    frame.loc[150, "label"] = 1
    frame.to_parquet(tmp_path / "load.parquet")
    frame.to_csv(tmp_path / "load.csv", index=False)
    for name in ("load.parquet", "load.csv"):
        source = open_source(settings(source=str(tmp_path / name), replay_speed="max"))
        engine = Engine(settings(), source=source)
        while not source.finished:
            engine.step()
        status = engine.status()
        assert status["series"] == ["load"]  # a lone value column is named after the file
        assert status["source"]["state"] == "finished"
        assert status["detection"]["recall"] == 1.0


def test_bad_files_give_one_clear_line(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "notime.csv").write_text("a,b\n1,2\n")
    (tmp_path / "badtime.csv").write_text("timestamp,value\n2024-01-01,1\nyesterday,2\n")
    # epoch numbers with an empty cell (NaN: once a crash of the engine's first tick, found
    # by fuzzing), and one past year 5138; rows as in the file though the frame is sorted
    (tmp_path / "blanktime.csv").write_text("timestamp,value\n1700000060,1\n1700000000,2\n,3\n")
    (tmp_path / "fartime.csv").write_text("timestamp,value\n1700000060,1\n1e17,2\n")
    for name, message in [("missing.csv", "no such file"), ("empty.csv", "the file is empty"),
                          ("notime.csv", "no timestamp column found"),
                          ("badtime.csv", "'yesterday' on data row 2 is not a date/time"),
                          ("blanktime.csv", "timestamp nan on data row 3 is not a date/time"),
                          ("fartime.csv", "1e[+]17 on data row 2 is out of range: expected a "
                                          "time in the years 1 to 5138")]:
        with pytest.raises(SourceError, match=message):
            open_source(settings(source=str(tmp_path / name)))
    with pytest.raises(SourceError, match="expected synthetic, push, prometheus or the path"):
        open_source(settings(source="kafka"))
    with pytest.raises(InputError, match="no column"):
        frame_to_batch(pd.read_csv(tmp_path / "badtime.csv"), value_columns="nope")


def test_serve_with_a_bad_source_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "serve", "--source", str(tmp_path / "x.csv")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"granite-panel: error: SOURCE='{tmp_path / 'x.csv'}': no such file"  # the path once
    ]


def test_speed_rows_per_second_and_max():
    frame = pd.DataFrame({"timestamp": pd.date_range("2024", periods=50, freq="min"),
                          "v": np.arange(50.0)})
    slow = ReplaySource.from_frame(frame, speed="2", interval=0.5)  # 2 rows/s at 0.5 s ticks
    assert [len(slow.poll(0).timestamps) for _ in range(3)] == [1, 1, 1]
    half = ReplaySource.from_frame(frame, speed="1", interval=0.5)
    assert [len(half.poll(0).timestamps) for _ in range(4)] == [0, 1, 0, 1]
    fast = ReplaySource.from_frame(frame, speed="max")
    assert fast.tick_seconds == 0 and len(fast.poll(0).timestamps) == 50 and fast.finished


def test_dashboard_from_frame():
    frame = pd.DataFrame({"timestamp": pd.date_range("2024", periods=40, freq="h"),
                          "temperature": np.arange(40.0)})
    dashboard = Dashboard.from_frame(frame, autopoll=False, settings=settings())
    dashboard.controller.step()
    assert dashboard.controller.names == ["temperature"]
    assert len(dashboard.controller.history.data) == 17


def test_frames_that_keep_their_times_in_the_index():
    """How pandas users hold a series: a ``DatetimeIndex`` (named or not, with a time zone),
    a Series, a long frame indexed by (unique_id, ds). Before, each was refused ('no
    timestamp column found') or raised AttributeError (a Series)."""
    times = pd.date_range("2024-01-01", periods=40, freq="h")
    frame = pd.DataFrame({"cpu": np.arange(40.0)}, index=times)
    expected = frame_to_batch(frame.rename_axis("timestamp").reset_index())
    for shaped in (frame, frame.rename_axis("when"), frame["cpu"],
                   frame.tz_localize("UTC")):
        batch = frame_to_batch(shaped)
        assert batch.series == ("cpu",)
        np.testing.assert_array_equal(batch.timestamps, expected.timestamps)
        np.testing.assert_array_equal(batch.values, expected.values)
    berlin = frame_to_batch(frame.tz_localize("Europe/Berlin"))
    np.testing.assert_array_equal(berlin.timestamps, expected.timestamps - 3600)
    assert frame_to_batch(pd.Series(np.arange(40.0), index=times), name="temp").series == ("temp",)
    long = pd.DataFrame({"unique_id": ["a"] * 3 + ["b"] * 3, "ds": list(times[:3]) * 2,
                         "y": np.arange(6.0)}).set_index(["unique_id", "ds"])
    batch = frame_to_batch(long)
    assert batch.series == ("a", "b") and batch.values.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(InputError, match="no timestamp column found among v"):
        frame_to_batch(pd.DataFrame({"v": [1.0, 2.0]}, index=[5, 7]))  # row numbers stay
    dashboard = Dashboard.from_frame(frame, autopoll=False, settings=settings())
    dashboard.controller.step()
    assert dashboard.controller.names == ["cpu"]


@pytest.mark.parametrize("detector", ["hybrid", "ensemble"])
@pytest.mark.parametrize("name", ["artificialWithAnomaly/art_daily_jumpsup.csv",
                                  "realTraffic/speed_7578.csv"])
def test_live_replay_of_a_nab_file_scores_like_detect(tmp_path, name, detector):
    """The live path (engine, ticks of up to 4,096 rows) and the batch path agree point for point."""
    path = NAB / name
    rows = len(pd.read_csv(path))
    s = settings(detector=detector, history_limit=rows + 16, season_length=24)
    source = open_source(Settings(**{**s.as_dict(), "source": str(path), "replay_speed": "max"}))
    engine = Engine(s, source=source)
    while not source.finished:
        engine.step()
    live = engine.snapshot().score[0]
    assert len(live) == rows

    class Args:
        input, output = str(path), str(tmp_path / "scored.csv")
        season = 24 if detector == "hybrid" else None

    Args.detector = detector
    assert run_detect(Args) == 0
    batch = pd.read_csv(tmp_path / "scored.csv")["anomaly_score"].to_numpy()
    assert np.allclose(live, batch, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name, per_day", [("artificialWithAnomaly/art_daily_jumpsup.csv", 288),
                                           ("realKnownCause/nyc_taxi.csv", 48)])
def test_a_file_replayed_with_default_settings_scores_as_detect_does(tmp_path, name, per_day):
    """Left at their defaults, SEASON_LENGTH and DETECTOR_SEASON follow the file: a day of
    its rows, and each series' season estimated as ``detect`` (and the NAB benchmark)
    estimate it, so the dashboard scores a file exactly as the benchmarked configuration
    does. Before, a 5-minute file was scored with the synthetic stream's fixed 24 (two
    hours) and disagreed with ``detect``. A season the user sets stays, for the detectors
    too (as ``detect --season``)."""
    path = NAB / name
    rows = len(pd.read_csv(path))
    given = dict(source=str(path), replay_speed="max", fallback_model="SeasonalNaive",
                 history_limit=rows + 16)
    source = open_source(Settings(**given))
    engine = Engine(Settings(**given), source=source)
    assert (engine.settings.season_length, engine.settings.detector_season) == (per_day, "estimate")
    assert engine.settings.history_limit == rows + 16  # what was given is kept
    status = engine.status()  # and the dashboard and /api/status say which season scores
    assert status["detector"]["season"] == "estimate"
    assert (status["config"]["season_length"], status["config"]["detector_season"]) == (
        per_day, "estimate")
    while not source.finished:
        engine.step()
    live = engine.snapshot().score[0]

    class Args:
        input, output, detector, season = str(path), str(tmp_path / "scored.csv"), "hybrid_entropy", None

    assert run_detect(Args) == 0
    batch = pd.read_csv(tmp_path / "scored.csv")["anomaly_score"].to_numpy()
    np.testing.assert_allclose(live, batch, atol=1e-12, rtol=0)  # a CSV's 16 digits
    assert (live == 1.0).any()
    chosen = Engine(Settings(**given, season_length=24), source=open_source(Settings(**given)))
    assert (chosen.settings.season_length, chosen.settings.detector_season) == (24, "fixed")
    assert chosen.status()["detector"]["season"] == 24
    fixed = Engine(Settings(**given, detector_season="fixed"), source=open_source(Settings(**given)))
    assert (fixed.settings.season_length, fixed.settings.detector_season) == (per_day, "fixed")


def test_the_season_of_a_replay_follows_its_step_and_flags_keep_what_the_user_set(monkeypatch):
    from granite_panel.cli.main import load_settings

    base = Settings()
    for step, season in [(3600, 24), (300, 288), (60, 1440), (86400, 1), (7 * 86400, 1),
                         (7, 24), (1, 24)]:  # 7 s: not a whole number a day; 1 s: 86,400
        assert base.for_replay(step).season_length == season, step
    monkeypatch.setenv("SEASON_LENGTH", "12")
    settings = load_settings(source="x.csv", replay_speed="max")  # a flag on top of the env
    assert settings.for_replay(300).season_length == 12
    assert settings.for_replay(300).detector_season == "fixed"
    monkeypatch.delenv("SEASON_LENGTH")
    assert load_settings(source="x.csv").for_replay(300).season_length == 288


def test_a_file_out_of_time_order_scores_alike_live_and_in_detect(tmp_path):
    """The replay source sorts a file by time; ``detect`` scores each series in time order
    too, so the two still agree point for point when the rows are not sorted (here a NAB
    file written backwards). Before, ``detect`` scored it bottom-up: another stream."""
    frame = pd.read_csv(NAB / "artificialWithAnomaly/art_daily_jumpsup.csv")
    path = tmp_path / "backwards.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    s = settings(detector="hybrid", history_limit=len(frame) + 16, season_length=24)
    source = open_source(Settings(**{**s.as_dict(), "source": str(path), "replay_speed": "max"}))
    engine = Engine(s, source=source)
    while not source.finished:
        engine.step()
    live = engine.snapshot().score[0]

    class Args:
        input, output, detector, season = str(path), str(tmp_path / "scored.csv"), "hybrid", 24

    assert run_detect(Args) == 0
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert scored["timestamp"].iloc[0] == frame["timestamp"].iloc[-1]  # the file's order kept
    batch = scored["anomaly_score"].to_numpy()[::-1]  # back in time order
    assert np.allclose(live, batch, atol=1e-12, rtol=0)
    assert (batch == 1.0).any()


def test_forecast_and_a_replay_give_a_file_the_same_daily_season():
    """``granite-panel forecast`` and a replay pick one season for one step; where no daily
    season fits (seconds: 86,400 rows a day, longer than any file) forecast uses none,
    instead of a seasonal-naive model whose season the data never completes."""
    import pandas as pd

    from granite_panel.cli.forecast import default_season

    base = Settings()  # step -> (the replay's SEASON_LENGTH, forecast's season)
    for seconds, seasons in [(3600, (24, 24)), (900, (96, 96)), (300, (288, 288)),
                             (60, (1440, 1440)), (86400, (1, 1)), (7 * 86400, (1, 1)),
                             (7, (24, 1)), (1, (24, 1)), (0.1, (24, 1))]:
        forecast = default_season(pd.Timedelta(seconds=seconds))
        assert (base.for_replay(seconds).season_length, forecast) == seasons, seconds
