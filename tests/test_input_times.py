"""Times as real exports write them, read alike by the replay, ``detect`` and ``forecast``:
local time with UTC offsets that change at a DST switch, epoch seconds, and local clock
times without an offset in the zone TIMEZONE names (``detect``'s own cases are in
test_detect_cli.py)."""

import logging
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from granite_panel.cli.main import main
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings, SettingsError
from granite_panel.sources import open_source
from granite_panel.sources.points import InputError
from granite_panel.sources.replay import frame_to_batch

BERLIN = "Europe/Berlin"


def dst_export(path, n=96):
    """Half-hourly readings written in Berlin local time across the spring switch (+01:00,
    then +02:00), as a spreadsheet or a logger would: the instants are regular in UTC."""
    instants = pd.date_range("2026-03-28 12:00", periods=n, freq="30min", tz="UTC")
    local = instants.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S%z")
    stamps = [t[:-2] + ":" + t[-2:] for t in local]
    values = 10.0 + np.sin(np.arange(n) * 2 * np.pi / 48)
    pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(path, index=False)
    assert {t[-6:] for t in stamps} == {"+01:00", "+02:00"}
    return instants


def test_forecast_reads_offsets_that_change_at_a_dst_switch(tmp_path, capsys):
    """Before: a traceback (pandas could not build a grid from mixed offsets) after a
    FutureWarning. Now the forecast continues the UTC grid, without a warning."""
    instants = dst_export(tmp_path / "dst.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # pandas' mixed-offset warning
        assert main(["forecast", str(tmp_path / "dst.csv"), "-o", str(tmp_path / "f.csv"),
                     "--horizon", "3", "--model", "seasonal-naive", "--season", "48"]) == 0
    out = pd.read_csv(tmp_path / "f.csv", parse_dates=["ds"])
    expected = instants[-1].tz_localize(None) + pd.Timedelta("30min") * np.arange(1, 4)
    assert list(out["ds"]) == list(expected)
    assert "error" not in capsys.readouterr().err


def test_forecast_reads_epoch_seconds_as_seconds(tmp_path):
    """Before: 1,700,000,000 read as nanoseconds, so the forecast was dated 1970."""
    start = 1_700_000_000
    frame = pd.DataFrame({"timestamp": start + 60 * np.arange(50), "value": np.arange(50) % 7})
    frame.to_csv(tmp_path / "epoch.csv", index=False)
    assert main(["forecast", str(tmp_path / "epoch.csv"), "-o", str(tmp_path / "f.csv"),
                 "--horizon", "2", "--model", "seasonal-naive", "--season", "7"]) == 0
    out = pd.read_csv(tmp_path / "f.csv", parse_dates=["ds"])
    first = pd.Timestamp(start + 60 * 50, unit="s")
    assert list(out["ds"]) == [first, first + pd.Timedelta("60s")]



def clock_export(path, start="2024-10-26 20:00", periods=21, freq="30min", zone=BERLIN):
    """Readings a logger wrote with the local wall clock and no offset, as many do: at the
    end of summer time (2024-10-27 in Berlin) 02:00-02:30 appears twice. The instants, in
    UTC, are regular."""
    instants = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    clock = instants.tz_convert(zone).strftime("%Y-%m-%d %H:%M")
    frame = pd.DataFrame({"timestamp": clock, "value": np.arange(periods, dtype=float)})
    frame.to_csv(path, index=False)
    return frame, (instants.astype("int64") // 10**9).to_numpy().astype(float)


def replay(path, **options):
    base = dict(fallback_model="SeasonalNaive", context_length=16, history_limit=512,
                forecast_horizon=4, detector="zscore")
    settings = Settings(**{**base, **options})
    source = open_source(Settings(**{**settings.as_dict(), "source": str(path),
                                     "replay_speed": "max"}))
    engine = Engine(settings, source=source)
    while not source.finished:
        engine.step()
    return engine.snapshot()


def test_local_clock_times_keep_the_hour_that_the_end_of_summer_time_repeats(tmp_path, caplog):
    """Read as UTC, the repeated clock times fall on the times of the first run, so the
    second run interleaves with it (02:00, 02:00, 02:30, 02:30: readings 8, 10, 9, 11), an
    hour drawn back and forth. With TIMEZONE every reading keeps its own slot, in order, at
    the instant it was taken; without it, the repeat is logged with the fix."""
    path = tmp_path / "meter.csv"
    frame, instants = clock_export(path)
    with caplog.at_level(logging.WARNING, logger="granite_panel.sources.replay"):
        as_utc = replay(path)
    assert len(set(as_utc.timestamps)) == 19
    assert list(as_utc.values[0][8:12]) == [8, 10, 9, 11]
    assert "2 row(s) repeat an earlier time" in caplog.text and "TIMEZONE" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="granite_panel.sources.replay"):
        local = replay(path, timezone=BERLIN)
    assert list(local.timestamps) == list(instants)
    assert list(local.values[0]) == list(frame["value"])
    assert "repeat" not in caplog.text


def test_the_repeated_hour_is_told_apart_by_order_per_series(tmp_path):
    """A file written newest first runs the clock backwards, so there the first of two equal
    clock times is the later one; a long file interleaves its series, so a repeat counts
    within a series."""
    frame, instants = clock_export(tmp_path / "meter.csv")
    newest_first = frame_to_batch(frame.iloc[::-1].reset_index(drop=True), timezone=BERLIN)
    assert list(newest_first.timestamps) == list(instants)
    assert list(newest_first.values[0]) == list(frame["value"])
    long = pd.concat([frame.assign(series="a"), frame.assign(series="b", value=frame.value * 10)])
    long = long.sort_index(kind="stable").reset_index(drop=True)  # a, b, a, b, ...
    batch = frame_to_batch(long[["series", "timestamp", "value"]], timezone=BERLIN)
    assert list(batch.timestamps) == list(instants)
    assert list(batch.values[1]) == list(frame["value"] * 10)


def test_the_hour_skipped_when_summer_time_begins(tmp_path):
    """Clock times across the spring switch are one regular UTC grid (no gap where the clock
    jumped); a clock time that never happened is an error naming its cell, not a guess."""
    frame, instants = clock_export(tmp_path / "spring.csv", start="2024-03-30 22:00")
    assert "2024-03-31 02:00" not in set(frame["timestamp"])
    batch = frame_to_batch(frame, timezone=BERLIN)
    assert list(batch.timestamps) == list(instants)
    skipped = pd.DataFrame({"timestamp": ["2024-03-31 01:30", "2024-03-31 02:30"], "value": [1, 2]})
    with pytest.raises(InputError, match=r"f.csv: timestamp '2024-03-31 02:30' on data row 2 "
                                         r"never happened in Europe/Berlin"):
        frame_to_batch(skipped, where="f.csv", timezone=BERLIN)
    # daily data where summer time starts at midnight: that day begins at 01:00
    days = pd.DataFrame({"date": ["2024-09-07", "2024-09-08", "2024-09-09"], "value": [1, 2, 3]})
    batch = frame_to_batch(days, timezone="America/Santiago")
    assert list(pd.to_datetime(batch.timestamps, unit="s")) == list(pd.to_datetime(
        ["2024-09-07 04:00", "2024-09-08 04:00", "2024-09-09 03:00"]))


def test_times_that_say_their_instant_are_read_as_they_are(tmp_path):
    """TIMEZONE is for clock times only: an offset, a Z or an epoch number already names the
    instant. A spreadsheet's date cells carry no offset, so they are clock times."""
    zone = "America/New_York"
    for stamp in ["2024-10-27T02:00+02:00", "2024-10-27T00:00Z", 1729987200]:
        batch = frame_to_batch(pd.DataFrame({"timestamp": [stamp], "value": [1.0]}), timezone=zone)
        assert list(batch.timestamps) == [1729987200.0], stamp
    frame, instants = clock_export(tmp_path / "meter.csv")
    sheet = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))
    sheet.to_excel(tmp_path / "meter.xlsx", index=False)
    local = replay(tmp_path / "meter.xlsx", timezone=BERLIN)
    assert list(local.timestamps) == list(instants)
    series = pd.Series(frame["value"].to_numpy(), index=pd.to_datetime(frame["timestamp"]))
    assert list(frame_to_batch(series, timezone=BERLIN).timestamps) == list(instants)


def test_an_unknown_zone_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    with pytest.raises(SettingsError, match="TIMEZONE='Mars/Base' is not allowed: unknown time "
                                            "zone 'Mars/Base'"):
        Settings(timezone="Mars/Base")
    monkeypatch.setenv("TIMEZONE", BERLIN)
    assert Settings.from_env(env_file=None).timezone == BERLIN
    clock_export(tmp_path / "meter.csv")
    for command in (["detect"], ["forecast", "--horizon", "2"]):
        assert main([*command, str(tmp_path / "meter.csv"), "--timezone", "Mars/Base"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "unknown time zone 'Mars/Base'" in err[0], err
    served = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "serve", "--source",
         str(tmp_path / "meter.csv"), "--timezone", "Mars/Base"],
        capture_output=True, text=True, timeout=120)
    assert served.returncode == 2 and served.stderr.strip().splitlines() == [
        "granite-panel: error: TIMEZONE='Mars/Base' is not allowed: unknown time zone "
        "'Mars/Base': expected an IANA name such as Europe/Berlin, America/New_York or UTC"]


def test_forecast_and_detect_read_clock_times_as_the_replay_does(tmp_path, capsys, monkeypatch):
    """``forecast`` refused the file (two rows at one time) and named the fix; with the
    zone (flag, or TIMEZONE as the dashboard reads it) it continues the UTC grid. ``detect``
    scores every row, point for point as the live replay."""
    path = tmp_path / "meter.csv"
    frame, instants = clock_export(path, start="2024-10-20 00:00", periods=700)
    args = ["forecast", str(path), "-o", str(tmp_path / "f.csv"), "--horizon", "2",
            "--model", "seasonal-naive", "--season", "48"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "has two rows at 2024-10-27 02:00:00" in err and "--timezone" in err
    assert main([*args, "--timezone", BERLIN]) == 0
    out = pd.read_csv(tmp_path / "f.csv")
    assert list(out["ds"]) == ["2024-11-03 15:00:00+01:00", "2024-11-03 15:30:00+01:00"]
    last = pd.Timestamp(instants[-1], unit="s", tz="UTC")  # the input's last, 14:30 in Berlin
    assert list(pd.to_datetime(out["ds"], utc=True)) == [last + pd.Timedelta("30min"),
                                                        last + pd.Timedelta("60min")]
    monkeypatch.setenv("TIMEZONE", BERLIN)
    assert main(["detect", str(path), "-o", str(tmp_path / "s.csv"), "--detector", "hybrid",
                 "--season", "48"]) == 0
    scored = pd.read_csv(tmp_path / "s.csv")["anomaly_score"].to_numpy()
    live = replay(path, timezone=BERLIN, detector="hybrid", season_length=48, history_limit=1024)
    assert np.allclose(live.score[0], scored, atol=1e-12, rtol=0)
