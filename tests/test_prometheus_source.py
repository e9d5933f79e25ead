"""PrometheusSource against a real Prometheus scraping itself and a node exporter every 1 s."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import requests

from granite_panel.sources.points import SourceError, series_name
from granite_panel.sources.prometheus import PrometheusSource

from .prometheus import PrometheusServer



@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    server.start_exporter()
    server.start()
    server.wait_for('prometheus_build_info')
    server.wait_for("node_cpu_seconds_total")
    # 8 scrapes of both targets: backfills of the last 6 steps, 2 s ago, are then all there.
    server.wait_for('count_over_time(up[10s]) >= 8', samples=2)
    try:
        yield server
    finally:
        server.stop_all()


QUERY = 'prometheus_tsdb_head_series{job="prometheus"}'


def test_backfill_equals_prometheus_own_query_range(prometheus):
    end = float(int(time.time())) - 2  # settled: no scrape for these steps is still in flight
    source = PrometheusSource(url=prometheus.url, query=QUERY, step=1.0)
    points = source.backfill(end, 5)
    answer = requests.get(
        f"{prometheus.url}/api/v1/query_range",
        params={"query": QUERY, "start": end - 4, "end": end, "step": 1},
        timeout=5,
    ).json()["data"]["result"]
    expected_name = series_name(answer[0]["metric"]["__name__"], answer[0]["metric"])
    assert set(points.series) == {expected_name}
    np.testing.assert_array_equal(points.timestamps, [float(t) for t, _ in answer[0]["values"]])
    np.testing.assert_array_equal(points.values, [float(v) for _, v in answer[0]["values"]])
    assert len(points) == 5


def test_split_requests_return_the_same_points_as_one(prometheus):
    end = float(int(time.time())) - 2  # settled: no scrape for these steps is still in flight
    one = PrometheusSource(url=prometheus.url, query="up", step=1.0).backfill(end, 6)
    split = PrometheusSource(url=prometheus.url, query="up", step=1.0, max_points_per_request=2).backfill(end, 6)
    order = lambda p: sorted(zip(p.series, p.timestamps, p.values))  # noqa: E731
    assert len(set(one.series)) == 2 and len(one) >= 8  # two targets, up to 6 steps each
    assert order(one) == order(split)


def test_poll_brings_new_points_without_duplicates(prometheus):
    source = PrometheusSource(url=prometheus.url, query="up", step=1.0)
    start = float(int(time.time()))
    first = source.backfill(start, 3)
    time.sleep(2.2)
    second = source.poll(time.time())
    third = source.poll(time.time())  # same second or one more: nothing repeated
    seen = Counter(zip(first.series + second.series + third.series,
                       np.concatenate([first.timestamps, second.timestamps, third.timestamps])))
    assert len(second) >= 2 and max(seen.values()) == 1
    assert second.timestamps.min() > start
    assert source.status()["state"] == "ok"


def test_labelled_query_gives_one_named_series_per_mode(prometheus):
    query = "sum by (mode) (rate(node_cpu_seconds_total[5s]))"
    source = PrometheusSource(url=prometheus.url, query=query, step=1.0)
    points = source.backfill(float(int(time.time())), 3)
    modes = requests.get(f"{prometheus.url}/api/v1/query", params={"query": query}, timeout=5).json()
    expected = {series_name(query, m["metric"]) for m in modes["data"]["result"]}
    assert "idle" in str(expected) and set(points.series) == expected
    assert f'{query}{{mode="idle"}}' in points.series


def test_bad_url_and_bad_promql_raise_one_clear_line(prometheus, tmp_path):
    with pytest.raises(SourceError, match=r"^cannot reach Prometheus at http://127\.0\.0\.1:1: ConnectionError$"):
        PrometheusSource(url="http://127.0.0.1:1", timeout=1).check()
    with pytest.raises(SourceError, match=r"/nope/api/v1/query is not a Prometheus API \(HTTP 404"):
        PrometheusSource(url=prometheus.url + "/nope").check()
    with pytest.raises(SourceError, match=r"^Prometheus rejected query 'sum\(\(': .*parse error"):
        PrometheusSource(url=prometheus.url, query="sum((").check()
    PrometheusSource(url=prometheus.url, query="up").check()


def test_down_then_restarted_on_the_same_tsdb_resumes_without_duplicates(prometheus):
    """Last: it stops and restarts the shared server."""
    source = PrometheusSource(url=prometheus.url, query="up", step=1.0, timeout=1)
    before = source.backfill(float(int(time.time())), 3)
    prometheus.stop()
    down = source.poll(time.time() + 1)
    assert len(down) == 0
    status = source.status()
    assert status["state"] == "down" and "cannot reach Prometheus" in status["error"]
    assert status["last_success"] is not None
    time.sleep(2)  # steps evaluated while down would only repeat the last sample (lookback)
    prometheus.start()
    started = requests.get(f"{prometheus.url}/api/v1/status/runtimeinfo", timeout=5).json()["data"]["startTime"]
    prometheus.wait_for("count_over_time(up[2s]) >= 2", samples=2)  # two fresh scrapes
    after = source.poll(time.time())
    assert len(after) > 0 and after.timestamps.min() > pd.Timestamp(started).timestamp()  # no invented point
    assert source.status()["state"] == "ok" and len(after) > 0
    pairs = list(zip(before.series + after.series, np.concatenate([before.timestamps, after.timestamps])))
    assert len(pairs) == len(set(pairs))
    assert after.timestamps.min() > before.timestamps.max()


# ------------------------------------------------------------------ the served app


def test_serve_source_prometheus_shows_the_series_prometheus_returns(prometheus):
    """`granite-panel serve --source prometheus`: names and values equal Prometheus's API;
    Prometheus stopped: the status says down and the history is kept; back: it resumes."""
    from .serving import running_server, status, wait_for

    query = 'node_cpu_seconds_total{mode="idle"}'
    env = {"PROMETHEUS_URL": prometheus.url, "PROMETHEUS_QUERY": query,
           "DATA_GENERATION_INTERVAL": "1", "CONTEXT_LENGTH": "16", "HISTORY_LIMIT": "64",
           "FORECAST_HORIZON": "4", "FALLBACK_MODEL": "SeasonalNaive"}
    own = requests.get(f"{prometheus.url}/api/v1/query", params={"query": query}, timeout=5).json()
    expected = sorted(
        series_name(r["metric"]["__name__"], r["metric"]) for r in own["data"]["result"]
    )
    with running_server("--source", "prometheus", "--autostart", env=env) as base:
        wait_for(lambda: status(base)["data_points"] >= 20 * len(expected), timeout=40)
        first = status(base)
        assert first["series"] == expected and first["source"]["kind"] == "prometheus"
        assert first["source"]["state"] == "ok"
        for name in expected:
            points = requests.get(f"{base}/api/history", params={"series": name, "limit": 64},
                                  timeout=5).json()["points"]
            stamps = [pd.Timestamp(p["timestamp"]).timestamp() for p in points]
            assert len(stamps) == len(set(stamps)) >= 20
            answer = requests.get(f"{prometheus.url}/api/v1/query_range", timeout=5, params={
                "query": query, "start": stamps[0], "end": stamps[-1], "step": 1}).json()
            theirs = {
                float(t): float(v)
                for r in answer["data"]["result"]
                if series_name(r["metric"]["__name__"], r["metric"]) == name
                for t, v in r["values"]
            }
            ours = {t: p["value"] for t, p in zip(stamps, points) if p["value"] is not None}
            assert ours and all(theirs[t] == v for t, v in ours.items()), name
        prometheus.stop()
        try:
            wait_for(lambda: status(base)["source"]["state"] == "down", timeout=20)
            down = status(base)
            assert down["source"]["error"] and down["data_points"] >= first["data_points"]
            from granite_panel.ui.dashboard import render_model

            assert "gp-source-down" in render_model(down)  # the dashboard's banner says so
        finally:
            prometheus.start()
        wait_for(lambda: status(base)["source"]["state"] == "ok", timeout=30)
        resumed = status(base)["data_points"]
        wait_for(lambda: status(base)["data_points"] > resumed, timeout=30)
        from granite_panel.ui.dashboard import render_model

        assert "gp-source-down" not in render_model(status(base))
        for name in expected:  # points resumed without duplicates across the outage
            points = requests.get(f"{base}/api/history", params={"series": name, "limit": 64},
                                  timeout=5).json()["points"]
            stamps = [p["timestamp"] for p in points]
            assert len(stamps) == len(set(stamps)) and stamps == sorted(stamps), name


@pytest.mark.parametrize("env, message", [
    ({"PROMETHEUS_URL": "http://127.0.0.1:9"}, "granite-panel: error: "),
    ({"PROMETHEUS_QUERY": "rate(up[5s]"}, "granite-panel: error: "),
    ({"PROMETHEUS_URL": ""}, "SOURCE=prometheus needs PROMETHEUS_URL"),
])
def test_serve_with_a_bad_prometheus_exits_2_with_one_line(prometheus, env, message):
    import os
    import subprocess
    import sys

    environment = {**os.environ, "PROMETHEUS_URL": prometheus.url, "PROMETHEUS_QUERY": "up", **env}
    result = subprocess.run([sys.executable, "-m", "granite_panel.cli", "serve", "--source",
                             "prometheus"], env=environment, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize("data", [
    {"resultType": "matrix", "result": [{"metric": {"__name__": "m"}, "values": [[1, "x"]]}]},
    {"resultType": "matrix", "result": [{"metric": {}, "values": [["soon", "1"]]}]},
    {"resultType": "matrix", "result": [{"metric": [], "values": []}]},
    {"resultType": "matrix", "result": [["not", "an", "entry"]]},
    {"resultType": "matrix", "result": [{"metric": {}, "values": [[1]]}]},
    ["not", "a", "dict"],
])
def test_a_server_that_only_looks_like_prometheus_is_down_with_a_reason_never_a_crash(data):
    """A real Prometheus cannot send these; a proxy or an imitation can. (A stand-in server
    on loopback, since the real one cannot be made to.) The backfill refuses with one line
    and a poll gives no points and says why: it never raises, as documented."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = {"/api/v1/status/runtimeinfo": {"startTime": "2026-12-06T00:00:00Z"},
               "/api/v1/query_range": data}

    class Imitation(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "success",
                               "data": answers[self.path.split("?")[0]]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Imitation)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = PrometheusSource(url=f"http://127.0.0.1:{server.server_port}", step=1.0)
        with pytest.raises(SourceError) as refused:
            source.backfill(1_765_000_000.0, 5)
        assert "\n" not in str(refused.value)
        assert len(source.poll(float(int(time.time())))) == 0  # on the grid: it asks
        assert source.status()["state"] == "down" and source.status()["error"]
    finally:
        server.shutdown()
        server.server_close()
