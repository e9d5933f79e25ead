"""POST /api/ingest on a real server, with a real HTTP client: formats, limits, all or nothing."""

import requests

from granite_panel.sources.push import parse_body

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


def test_telegraf_shaped_body_names():
    """Parsing itself is covered by tests/test_push_parsing.py; here the names the server uses."""
    points = parse_body(TELEGRAF.encode(), "text/plain; charset=utf-8")
    assert 'cpu.usage_idle{cpu="cpu-total",host="web-1"}' in points.series
    assert 'net.up{host="web-1",interface="eth0"}' in points.series
    assert not any("uptime_format" in s for s in points.series)  # string fields are skipped
    assert len(points) == 9 and set(points.timestamps) == {float(T0)}


def history(base, series, limit=100):
    return requests.get(f"{base}/api/history", params={"series": series, "limit": limit},
                        timeout=5).json()


def test_push_over_http_every_format_and_every_refusal():
    env = {"INGEST_MAX_BYTES": "4096", "MAX_SERIES": "12", "DATA_GENERATION_INTERVAL": "1"}
    with running_server("--source", "push", "--autostart", env=env) as base:
        url = f"{base}/api/ingest"
        doc = {"series": "app.latency", "points": [[T0 + i, 10.0 + i] for i in range(5)]}
        answer = requests.post(url, json=doc, timeout=60)  # the first tick compiles the fallback
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
             "application/json", 400, 'object 1 (x): missing "points"'),
            (f"new.two v=1 {T0}000000000\nnew.two v=oops\n".encode(), "text/plain", 400,
             "line 2: field 'v' value 'oops' is not a float"),
            (b"series,timestamp,value\nnew.three,1700000000,1\nnew.three,never,2\n", "text/csv",
             400, "CSV row 2: timestamp 'never'"),
            (b"x" * 5000, "text/plain", 413, "over the limit of 4,096"),
            (b"<points/>", "application/xml", 415, "unsupported media type 'application/xml'"),
        ]
        for body, content_type, code, message in bad:
            answer = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=10)
            assert answer.status_code == code, (body[:40], answer.text)
            assert answer.headers["Content-Type"].startswith("application/json")
            assert message in answer.json()["error"], answer.json()
        answer = requests.post(f"{url}?precision=fortnight", data=b"m v=1 1",
                               headers={"Content-Type": "text/plain"}, timeout=10)
        assert answer.status_code == 400 and "unknown precision 'fortnight'" in answer.json()["error"]
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


def test_a_wide_csv_is_pushed_as_a_file_is_replayed():
    """A CSV body in the wide layout of files (a time column, one column per series; NAB's
    timestamp,value named by ``?series=``): each column a series, an empty cell no point.
    Before, any header but series,timestamp,value / unique_id,ds,y was a 400."""
    with running_server("--source", "push", "--autostart",
                        env={"DATA_GENERATION_INTERVAL": "1"}) as base:
        url = f"{base}/api/ingest"
        nab = "timestamp,value\n" + "".join(f"{T0 + i},{i}\n" for i in range(4))
        answer = requests.post(f"{url}?series=nab.cpu", data=nab,
                               headers={"Content-Type": "text/csv"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 4 and answer.json()["new_series"] == ["nab.cpu"]
        wide = ("Date,web.cpu,web.mem\n2023-11-14T22:13:20Z,1.5,70\n"
                "2023-11-14T22:13:21Z,,71\n2023-11-14T22:13:22Z,oops,72\n")
        answer = requests.post(url, data=wide, headers={"Content-Type": "text/csv"}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 5 and answer.json()["bad"] == 1
        assert sorted(answer.json()["new_series"]) == ["web.cpu", "web.mem"]
        from .serving import wait_for

        wait_for(lambda: len(history(base, "web.mem")["points"]) == 3, timeout=10)
        assert [p["value"] for p in history(base, "web.mem")["points"]] == [70, 71, 72]
        refused = requests.post(url, data=nab, headers={"Content-Type": "text/csv"}, timeout=10)
        assert refused.status_code == 400
        assert "needs ?series=NAME" in refused.json()["error"]
        assert status(base)["n_series"] == 3
