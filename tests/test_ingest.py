"""POST /api/ingest on a real server, with a real HTTP client: formats, limits, all or nothing."""

import json

import pytest
import requests

from granite_panel.sources.points import InputError
from granite_panel.sources.push import UnsupportedMediaType, parse_body

from .serving import running_server, status

T0 = 1_700_000_000

# The shape of Telegraf's outputs.http with data_format = "influx": several measurements,
# tags, float/int/uint/bool fields, a string field, nanosecond timestamps, a trailing newline.
TELEGRAF = (
    f"cpu,cpu=cpu-total,host=web-1 usage_idle=93.5,usage_user=4.25,usage_system=2.25 {T0}000000000\n"
    f"mem,host=web-1 used_percent=41.2,available=8123456789i,active=12u {T0}000000000\n"
    f'system,host=web-1 load1=0.42,n_cpus=2i,uptime_format="3 days, 2:10" {T0}000000000\n'
    f"net,host=web-1,interface=eth0 up=true {T0}000000000\n"
)


def test_line_protocol_names_precisions_and_escapes():
    points = parse_body(TELEGRAF.encode(), "text/plain; charset=utf-8")
    assert 'cpu.usage_idle{cpu="cpu-total",host="web-1"}' in points.series
    assert 'mem.available{host="web-1"}' in points.series
    assert 'net.up{host="web-1",interface="eth0"}' in points.series
    assert not any("uptime_format" in s for s in points.series)  # string fields are skipped
    assert len(points) == 3 + 3 + 2 + 1 and set(points.timestamps) == {float(T0)}
    for precision, stamp in [("s", T0), ("ms", T0 * 1000), ("us", T0 * 10**6), ("u", T0 * 10**6),
                             ("ns", T0 * 10**9), ("n", T0 * 10**9), ("m", T0 // 60), ("h", T0 // 3600)]:
        got = parse_body(f"m v=1 {stamp}".encode(), "text/plain", precision=precision)
        assert abs(got.timestamps[0] - T0) < 3600, precision
    odd = parse_body(b'my\\ meas,tag\\,k=a\\ b\\=c f\\=x=1.5,s="quote \\" here" 5', "text/plain",
                     precision="s")
    assert odd.series == ('my meas.f=x{tag,k="a b=c"}',) and odd.values.tolist() == [1.5]
    assert parse_body(b"m v=2", "text/plain", now=123.0).timestamps.tolist() == [123.0]


@pytest.mark.parametrize("body, message", [
    (b"cpu", "line 1: expected 'measurement[,tags] field=value"),
    (b"cpu v=1\ncpu v=abc", "line 2: field 'v' value 'abc' is not a number"),
    (b"cpu v=1 12x", "line 1: timestamp '12x' is not an integer"),
    (b"cpu,host v=1", "line 1: tag 'host' is not key=value"),
    (b'cpu s="open', "closing quote is missing"),
    (b"cpu v=1.5i", "is not an integer"),
])
def test_malformed_line_protocol_names_the_line(body, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_body(body, "text/plain")


def test_json_and_csv_bodies():
    doc = [{"series": "a", "points": [["2023-11-14T22:13:20Z", 1], [T0 + 1, "NaN"], [T0 * 1000 + 2000, None]]},
           {"series": "b", "points": [[T0, 2.5]]}]
    points = parse_body(json.dumps(doc).encode(), "application/json")
    assert points.series == ("a", "a", "a", "b")
    assert points.timestamps.tolist() == [T0, T0 + 1, T0 + 2, T0]
    assert points.values[0] == 1 and points.values[3] == 2.5
    assert all(v != v for v in points.values[1:3])  # NaN: bad points, not errors
    csv = f"unique_id,ds,y\nx,{T0},1\nx,2023-11-14 22:13:21,oops\n".encode()
    points = parse_body(csv, "text/csv")
    assert points.series == ("x", "x") and points.timestamps.tolist() == [T0, T0 + 1]
    with pytest.raises(UnsupportedMediaType, match="send one of application/json"):
        parse_body(b"<x/>", "application/xml")


@pytest.mark.parametrize("body, content_type, message", [
    (b'{"series": "a", "points": [[1, 2]', "application/json", "invalid JSON at line 1"),
    (b'[{"series": "a", "points": [[1, 2], [3]]}]', "application/json",
     "object 0, point 1: expected [timestamp, value]"),
    (b'{"points": []}', "application/json", '"series" must be a non-empty string'),
    (b'{"series": "a", "points": [["tomorrow", 1]]}', "application/json",
     "point 0: timestamp 'tomorrow' is not a date/time"),
    (b"series,timestamp,value\na,1,2\nb,2\n", "text/csv", "CSV data row 2: 2 fields"),
    (b"name,time,v\na,1,2\n", "text/csv", "expected series,timestamp,value or unique_id,ds,y"),
])
def test_malformed_json_and_csv_name_the_row(body, content_type, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        parse_body(body, content_type)


def history(base, series, limit=100):
    return requests.get(f"{base}/api/history", params={"series": series, "limit": limit},
                        timeout=5).json()


def test_push_over_http_every_format_and_every_refusal():
    env = {"INGEST_MAX_BYTES": "4096", "MAX_SERIES": "12", "DATA_GENERATION_INTERVAL": "1"}
    with running_server("--source", "push", "--autostart", env=env) as base:
        url = f"{base}/api/ingest"
        doc = {"series": "app.latency", "points": [[T0 + i, 10.0 + i] for i in range(5)]}
        answer = requests.post(url, json=doc, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 5 and answer.json()["new_series"] == ["app.latency"]
        csv = "series,timestamp,value\n" + "".join(f"app.errors,{T0 + i},{i}\n" for i in range(5))
        assert requests.post(url, data=csv, headers={"Content-Type": "text/csv"},
                             timeout=10).json()["accepted"] == 5
        answer = requests.post(url, data=TELEGRAF.replace(f" {T0}000000000", f" {T0 + 3}000000000"),
                               headers={"Content-Type": "text/plain"}, timeout=10)
        assert answer.status_code == 200 and answer.json()["accepted"] == 9
        # the clock is far past these slots: the engine's tick closes them
        from .serving import wait_for

        wait_for(lambda: len(history(base, "app.latency")["points"]) == 5, timeout=10)
        points = history(base, "app.latency")["points"]
        assert [p["value"] for p in points] == [10.0, 11.0, 12.0, 13.0, 14.0]
        assert points[0]["timestamp"] == "2023-11-14T22:13:20.000Z"
        cpu = history(base, 'cpu.usage_idle{cpu="cpu-total",host="web-1"}')["points"]
        assert [p["value"] for p in cpu] == [93.5]
        before = status(base)
        assert before["n_series"] == 11 and before["data_points"] == 19

        # every bad input: its status code, its message, and nothing applied
        bad = [
            (b'[{"series": "new.one", "points": [[1700000010, 1]]}, {"series": "x"}]',
             "application/json", 400, 'object 1: "points" must be a list'),
            (f"new.two v=1 {T0}000000000\nnew.two v=oops\n".encode(), "text/plain", 400,
             "line 2: field 'v' value 'oops' is not a number"),
            (b"series,timestamp,value\nnew.three,1700000000,1\nnew.three,never,2\n", "text/csv",
             400, "CSV data row 2: timestamp 'never'"),
            (b"x" * 5000, "text/plain", 413, "over the limit of 4,096"),
            (b"<points/>", "application/xml", 415, "is not accepted"),
        ]
        for body, content_type, code, message in bad:
            answer = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=10)
            assert answer.status_code == code, (body[:40], answer.text)
            assert answer.headers["Content-Type"].startswith("application/json")
            assert message in answer.json()["error"], answer.json()
        answer = requests.post(f"{url}?precision=fortnight", data=b"m v=1 1",
                               headers={"Content-Type": "text/plain"}, timeout=10)
        assert answer.status_code == 400 and "precision='fortnight'" in answer.json()["error"]
        after = status(base)
        assert after["n_series"] == before["n_series"] and after["series"] == before["series"]
        assert after["data_points"] == before["data_points"]

        # NaN/inf/strings are bad points; past MAX_SERIES a new name is refused and counted
        doc = [{"series": "app.latency", "points": [[T0 + 5, "inf"], [T0 + 6, "n/a"]]},
               {"series": "one.more", "points": [[T0 + 5, 1]]},
               {"series": "too.many", "points": [[T0 + 5, 1]]}]
        answer = requests.post(url, json=doc, timeout=10).json()
        assert answer["accepted"] == 3 and answer["bad"] == 2 and answer["refused"] == 1
        assert "MAX_SERIES=12 reached" in answer["reasons"][0]
        wait_for(lambda: status(base)["bad_points"] == 2, timeout=10)
        final = status(base)
        assert final["refused_series"] == 1 and "too.many" in final["last_refusal"]
