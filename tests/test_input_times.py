"""``forecast`` reads times as real exports write them, as the replay and ``detect`` do:
local time with UTC offsets that change at a DST switch, and epoch seconds (``detect``'s
own cases are in test_detect_cli.py)."""

import warnings

import numpy as np
import pandas as pd

from granite_panel.cli.main import main


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

