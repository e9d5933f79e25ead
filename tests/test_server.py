"""The real server on a free port: REST endpoints while the stream runs; panel serve too."""

import subprocess
import sys
from pathlib import Path

import requests

from tests.serving import FAST_STREAM, free_port, running_server, status, wait_for

SEED_KEYS = {"running", "data_points", "anomaly_count", "total_predictions", "model_loaded", "config"}


def test_status_and_history_while_streaming():
    with running_server("--autostart") as base:
        # The first forecasts may come while the (doomed, offline) TTM load is under way.
        first = wait_for(
            lambda: (lambda s: "unavailable" in (s["fallback_reason"] or "") and s)(status(base))
        )
        assert SEED_KEYS <= first.keys()
        assert first["running"] is True
        assert first["config"] == {
            **first["config"],
            "forecast_horizon": 48,
            "context_length": 512,
            "generation_interval": 0.25,
        }
        assert first["model_loaded"] is False
        # FALLBACK_MODEL=auto: seasonal naive until the backtest has chosen among these.
        assert first["active_model"] in ("SeasonalNaive", "AutoTheta", "AutoETS", "MSTL")
        assert "TTM-R2 unavailable: no network" in first["fallback_reason"]
        wait_for(lambda: status(base)["data_points"] > first["data_points"] + 3, timeout=30)

        history = requests.get(f"{base}/api/history", timeout=5).json()
        assert len(history["points"]) == 100
        point = history["points"][-1]
        assert set(point) >= {"timestamp", "value", "series", "anomaly", "severity"}
        assert point["timestamp"].endswith("Z")
        assert 1 <= len(history["predictions"]) <= 10
        prediction = history["predictions"][-1]
        assert len(prediction["series"]["synthetic-0"]) == 48 == len(prediction["timestamps"])
        assert prediction["model"] in ("SeasonalNaive", "AutoTheta", "AutoETS", "MSTL")

        few = requests.get(f"{base}/api/history?limit=5&series=0", timeout=5).json()
        assert len(few["points"]) == 5
        by_name = requests.get(f"{base}/api/history?limit=5&series=synthetic-0", timeout=5).json()
        assert {p["series"] for p in by_name["points"]} == {"synthetic-0"}


def test_bad_query_parameters_get_json_errors():
    with running_server() as base:
        # '²' is a digit to str.isdigit, not to int(): once a 500 (found by fuzzing)
        for query in ("limit=abc", "limit=0", "limit=99999999", "series=7", "series=x",
                      "series=²", "series=1,²"):
            response = requests.get(f"{base}/api/history?{query}", timeout=5)
            assert response.status_code == 400, query
            assert response.headers["Content-Type"].startswith("application/json")
            assert query.split("=")[0] in response.json()["error"]
        for path in ("incidents", "export"):
            response = requests.get(f"{base}/api/{path}?series=²", timeout=5)
            assert response.status_code == 400 and "series" in response.json()["error"], path
        for names in (",", "synthetic-0,", ",synthetic-0"):  # an empty name: once a 500
            response = requests.get(f"{base}/api/export", params={"series": names}, timeout=5)
            assert response.status_code == 400 and "empty name" in response.json()["error"]
        response = requests.post(f"{base}/api/status", timeout=5)
        assert response.status_code == 405
        assert response.json()["status"] == 405



def test_a_server_whose_log_outgrows_a_pipe_keeps_answering():
    """Tornado logs every refused request. 200 refused pushes with a long query string log
    about 200 KiB, three times a pipe's buffer: the test harness must keep reading the
    server's output, or the event loop blocks in the next log line's ``write`` and every
    request after it times out (a long schemathesis run found it)."""
    with running_server("--source", "push") as base:
        with requests.Session() as session:
            for _ in range(200):
                answer = session.post(f"{base}/api/ingest", params={"pad": "x" * 1000},
                                      data="not,a,push", headers={"Content-Type": "text/csv"},
                                      timeout=10)
                assert answer.status_code == 400
        assert requests.get(f"{base}/api/status", timeout=10).status_code == 200

def test_panel_serve_on_the_app_file_with_the_api_plugin(tmp_path):
    import os

    port = free_port()
    app = Path(__file__).parent.parent / "granite_panel" / "server" / "app.py"
    env = {**os.environ, **FAST_STREAM, "AUTOSTART": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(app), "--port", str(port),
         "--plugins", "granite_panel.server.api"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ok(f"{base}/api/status"), timeout=90, process=process)
        wait_for(lambda: status(base)["data_points"] > 0, timeout=60, process=process)
        page = requests.get(f"{base}/app", timeout=30)
        assert page.status_code == 200 and "bokeh" in page.text.lower()
    finally:
        process.terminate()
        process.wait(10)


def _ok(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
