"""``POST /api/ingest?timezone=ZONE``: pushed ISO times without an offset are clock times of
that zone (a logger's local clock), as TIMEZONE makes them for files; the hour that the end
of summer time repeats is placed as the clock ran, even one point a push."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from granite_panel.sources.points import InputError
from granite_panel.sources.push import parse_body

from .serving import running_server, wait_for
from .test_input_times import BERLIN, clock_export

UTC = dt.timezone.utc


def epoch(*args) -> float:
    return dt.datetime(*args, tzinfo=UTC).timestamp()


def body(points, series="meter") -> bytes:
    return json.dumps({"series": series, "points": points}).encode()


def test_times_without_an_offset_are_clock_times_of_the_zone_and_the_rest_are_instants():
    points = parse_body(body([["2026-12-07T10:00:00", 1], ["2026-07-07 10:00", 2],
                              ["2026-12-07T10:00:00+00:00", 3], ["2026-12-07T10:00:00Z", 4],
                              [1_796_637_600, 5]]), "application/json", timezone=BERLIN)
    assert list(points.timestamps) == [epoch(2026, 12, 7, 9), epoch(2026, 7, 7, 8),
                                       epoch(2026, 12, 7, 10), epoch(2026, 12, 7, 10),
                                       1_796_637_600.0]
    assert parse_body(body([["2026-12-07T10:00:00", 1]]), "application/json").timestamps[0] == \
        epoch(2026, 12, 7, 10)  # no zone: UTC, as before
    long_csv = b"series,timestamp,value\nmeter,2026-12-07T10:00:00,1\n"
    wide_csv = b"timestamp,meter,other\n2026-12-07 10:00,1,2\n"
    assert parse_body(long_csv, "text/csv", timezone=BERLIN).timestamps[0] == epoch(2026, 12, 7, 9)
    assert list(parse_body(wide_csv, "text/csv", timezone=BERLIN).timestamps) == [
        epoch(2026, 12, 7, 9)] * 2


def test_a_clock_time_the_zone_skipped_or_an_unknown_zone_is_refused_in_one_line():
    with pytest.raises(InputError, match=r"object 0 \(meter\), point 1: 2026-03-29T02:30:00 "
                                         r"never happened in Europe/Berlin"):
        parse_body(body([["2026-03-29T01:30:00", 1], ["2026-03-29T02:30:00", 2]]),
                   "application/json", timezone=BERLIN)
    with pytest.raises(InputError, match="CSV row 1: 2026-03-29T02:30:00 never happened"):
        parse_body(b"timestamp,meter\n2026-03-29 02:30,1\n", "text/csv", timezone=BERLIN)
    with pytest.raises(InputError, match="unknown time zone 'Mars/Base'"):
        parse_body(body([["2026-12-07T10:00:00", 1]]), "application/json", timezone="Mars/Base")
    # a name longer than the file system takes (the zone database is files) is refused too
    with pytest.raises(InputError, match="unknown time zone 'aaaa"):
        parse_body(body([["2026-12-07T10:00:00", 1]]), "application/json", timezone="a" * 300)
    # files of the zone folder that the standard library loads but pandas does not know
    for name in ("Factory", "localtime", "posixrules", "right/UTC", "posix/Europe/Berlin"):
        with pytest.raises(InputError, match=f"unknown time zone '{name}'"):
            parse_body(body([["2026-12-07T10:00:00", 1]]), "application/json", timezone=name)


def test_every_zone_the_pickers_offer_is_one_pandas_reads():
    import pandas as pd

    from granite_panel.sources.local_time import time_zones

    offered = time_zones()
    assert "Europe/Berlin" in offered and "UTC" in offered and "Asia/Calcutta" in offered
    assert "Factory" not in offered and "localtime" not in offered
    for name in offered:
        pd.Timestamp("2024-10-27T02:30").tz_localize(name, ambiguous=True,
                                                     nonexistent="shift_forward")


def test_the_repeated_hour_is_placed_as_the_clock_ran_in_one_body_or_one_point_a_body(tmp_path):
    """A Berlin logger's night across the end of summer time (02:00 and 02:30 twice): in one
    body the second run follows the first; pushed one point a body, each repeated clock time
    is placed after the series' newest point (``newest``, as the engine answers it)."""
    frame, instants = clock_export(tmp_path / "meter.csv")
    rows = [[stamp, float(value)] for stamp, value in zip(frame["timestamp"], frame["value"])]
    whole = parse_body(body(rows), "application/json", timezone=BERLIN)
    assert list(whole.timestamps) == list(instants)
    held = {}
    for row in rows:
        one = parse_body(body([row]), "application/json", timezone=BERLIN,
                         newest=lambda names: {n: held[n] for n in names if n in held})
        held["meter"] = one.timestamps[0]
        assert one.timestamps[0] == instants[int(row[1])]
    # without the stream's newest point, one point a body reads the first run (as before)
    alone = [parse_body(body([row]), "application/json", timezone=BERLIN).timestamps[0]
             for row in rows]
    assert len(set(alone)) == len(rows) - 2


def test_a_logger_pushing_its_clock_one_point_a_request_keeps_every_point(tmp_path):
    """Over HTTP, one row a request, as a logger sends: with ?timezone= the night's 21
    readings are stored at their instants; without it the repeated hour's second run lands
    on the first's times (read as UTC) and overwrites them, 19 times for 21 readings."""
    frame, instants = clock_export(tmp_path / "meter.csv")
    env = {"DATA_GENERATION_INTERVAL": "1800"}  # the logger's step: one slot a reading
    with running_server("--source", "push", "--autostart", env=env) as base:
        url = f"{base}/api/ingest"
        bad = requests.post(url, params={"timezone": "Mars/Base"}, timeout=30,
                            data=body([["2024-10-26T20:00:00", 1]]),
                            headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and "unknown time zone 'Mars/Base'" in bad.json()["error"]
        for series, zone in (("zoned", BERLIN), ("as-utc", "")):
            for stamp, value in zip(frame["timestamp"], frame["value"]):
                answer = requests.post(url, params={"timezone": zone} if zone else {}, timeout=60,
                                       data=body([[stamp, float(value)]], series),
                                       headers={"Content-Type": "application/json"})
                assert answer.status_code == 200, answer.text
            # a later reading closes the night's last slot
            requests.post(url, data=body([["2024-10-27T12:00:00Z", 0.0]], series), timeout=30,
                          headers={"Content-Type": "application/json"})

        def stored(series):
            answer = requests.get(f"{base}/api/history", params={"series": series, "limit": 50},
                                  timeout=10).json()
            night = [(dt.datetime.fromisoformat(p["timestamp"]).timestamp(), p["value"])
                     for p in answer["points"]]
            return [(t, v) for t, v in night if t < epoch(2024, 10, 27, 12)]

        wait_for(lambda: len(stored("zoned")) >= 21, timeout=30)
        zoned = stored("zoned")
        assert [t for t, _ in zoned] == list(instants)
        assert [v for _, v in zoned] == list(np.arange(21.0))
        assert len(stored("as-utc")) == 19

        # asked for in the logger's clock times, the repeated hour is both of its runs
        # (a range is read wide: a start in it is its first run, an end its second)
        hour = {"series": "zoned", "start": "2024-10-27T02:00:00", "end": "2024-10-27T02:59:59"}
        answer = requests.get(f"{base}/api/history", params={**hour, "timezone": BERLIN},
                              timeout=10)
        assert answer.status_code == 200, answer.text
        assert [p["value"] for p in answer.json()["points"]] == [8.0, 9.0, 10.0, 11.0]
        as_utc = requests.get(f"{base}/api/history", params=hour, timeout=10).json()
        assert [p["value"] for p in as_utc["points"]] == [12.0, 13.0]  # 03:00, 03:30 CET
        exported = requests.get(f"{base}/api/export", params={**hour, "timezone": BERLIN},
                                timeout=30)
        assert exported.status_code == 200, exported.text
        assert [line.split(",")[2] for line in exported.text.splitlines()[1:]] == [
            "8.0", "9.0", "10.0", "11.0"], exported.text
        for route in ("history", "export"):
            bad = requests.get(f"{base}/api/{route}", params={**hour, "timezone": "Mars/Base"},
                               timeout=10)
            assert bad.status_code == 400
            assert bad.json()["error"].startswith("timezone='Mars/Base' is not allowed: unknown")


def test_the_engine_answers_each_series_newest_point_open_or_kept():
    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings
    from granite_panel.sources.points import Points

    engine = Engine(Settings(source="push", data_generation_interval=60, model_name="/none",
                             fallback_model="SeasonalNaive", database_url="memory"))
    try:
        t0 = epoch(2026, 12, 7, 10)
        engine.ingest_points(Points(("a", "a", "b"), np.array([t0, t0 + 60, t0]),
                                    np.array([1.0, 2.0, 3.0])), now=t0 + 61)
        assert engine.newest_times(["a", "b", "c"]) == {"a": t0 + 60, "b": t0}
        engine.flush(now=t0 + 200)  # both slots closed: kept in the history
        assert engine.newest_times(["b", "a"]) == {"a": t0 + 60, "b": t0}
    finally:
        engine.close()


ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata",
         "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago")


@settings(max_examples=400, deadline=None)
@given(moments=st.lists(st.datetimes(), min_size=1, max_size=5), zone=st.sampled_from(ZONES),
       held=st.one_of(st.none(), st.floats(-1e10, 1e10)))
def test_any_clock_time_in_any_zone_is_read_at_that_clock_time_or_refused_in_one_line(
        moments, zone, held):
    """Any date of the years 1 to 9999 in zones with odd offsets and half-hour summer time:
    the points it reads show, in the zone, the clock time sent (a repeated one in either
    run); the rest is an InputError (a skipped time, a year past the range), never another
    exception (the API would answer 500)."""
    import zoneinfo

    rows = [[m.isoformat(), 1.0] for m in moments]
    try:
        points = parse_body(body(rows), "application/json", timezone=zone,
                            newest=lambda names: {} if held is None else {"meter": held})
    except InputError:
        return
    tz = zoneinfo.ZoneInfo(zone)
    for moment, stamp in zip(moments, points.timestamps):
        shown = dt.datetime.fromtimestamp(stamp, tz).replace(tzinfo=None)
        assert shown == moment


def test_a_range_asked_for_now_or_today_means_that_in_the_zone_asked():
    """pandas reads ``now`` and ``today`` on the machine's clock (UTC here): in a query with
    ?timezone= they are this instant and midnight today in that zone."""
    import time

    from granite_panel.sources.local_time import range_bound

    for zone in ("", "Asia/Tokyo", "America/Adak"):
        assert abs(range_bound("now", zone) - time.time()) < 5
    tokyo = dt.datetime.now(dt.timezone(dt.timedelta(hours=9)))
    midnight = tokyo.replace(hour=0, minute=0, second=0, microsecond=0)
    assert range_bound("today", "Asia/Tokyo") == midnight.timestamp()
    assert range_bound("Today", "") == dt.datetime.now(UTC).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
