"""The served process over a real database, the hard way: pushes acknowledged, ``kill -9``,
start again, everything acknowledged is there with the same scores, the stream goes on. On a
SQLite file and on a real PostgreSQL server (tests/postgres.py); and a PostgreSQL server that
stops mid-stream: 503 instead of false acknowledgements, then recovery with nothing lost.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import requests

from .serving import start_server, status, wait_for

STEP = 60
N_SERIES = 3


def _env(url: str) -> dict:
    return {"DATABASE_URL": url, "DATA_GENERATION_INTERVAL": str(STEP), "FORECAST_HORIZON": "8",
            "CONTEXT_LENGTH": "64", "HISTORY_LIMIT": "512", "FALLBACK_MODEL": "SeasonalNaive",
            "MODEL_NAME": "/nonexistent", "BACKFILL": "false"}


def _body(t: int, t0: float) -> str:
    """Line protocol: one point per series at slot ``t`` (a wave, a spike every 50 slots)."""
    lines = []
    for k in range(N_SERIES):
        value = np.sin(2 * np.pi * t / 24) * (k + 1) + (6.0 if t % 50 == 45 else 0.0) + 0.01 * t
        lines.append(f"app,host=h{k} load={value:.6f} {int(t0 + t * STEP)}")
    return "\n".join(lines) + "\n"


def _push(base: str, t: int, t0: float) -> int:
    return requests.post(f"{base}/api/ingest?precision=s", data=_body(t, t0),
                         headers={"Content-Type": "text/plain"}, timeout=30).status_code


def _stored(base: str, t0: float) -> pd.DataFrame:
    """Every point of every series, through the streamed export."""
    answer = requests.get(f"{base}/api/export", params={"format": "csv", "start": t0 - 1},
                          timeout=60)
    assert answer.status_code == 200, answer.text
    return pd.read_csv(io.BytesIO(answer.content))


def _serve(url: str, port=None):
    return start_server("--source", "push", "--autostart", env=_env(url), port=port)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_9_mid_stream_loses_nothing_acknowledged(database, tmp_path, request):
    url = (f"sqlite:///{tmp_path / 'gp.db'}" if database == "sqlite"
           else request.getfixturevalue("pg_url"))
    t0 = float(int(time.time()) // STEP * STEP - 2000 * STEP)
    process, base = _serve(url)
    acknowledged: list[int] = []
    stop = threading.Event()

    def sender():  # pushes as fast as answers come, until the server dies under it
        t = 0
        while not stop.is_set():
            try:
                code = _push(base, t, t0)
            except requests.RequestException:
                return
            if code == 200:
                acknowledged.append(t)
            t += 1

    thread = threading.Thread(target=sender)
    thread.start()
    wait_for(lambda: len(acknowledged) >= 150, timeout=120, process=process)
    process.send_signal(signal.SIGKILL)  # mid-stream: the sender is still pushing
    process.wait(10)
    stop.set()
    thread.join(30)
    sent = max(acknowledged)
    process, base = _serve(url)
    try:
        restored = status(base)
        assert restored["storage"]["state"] == "ok" and restored["storage"]["restored"]["series"] == N_SERIES
        stored = _stored(base, t0)
        for k in range(N_SERIES):
            times = stored[stored.series == f'app.load{{host="h{k}"}}'].ts.to_numpy()
            missing = {t0 + t * STEP for t in acknowledged} - set(times.tolist())
            assert not missing, f"{len(missing)} acknowledged points lost"
        # what was scored before the kill keeps its scores (tests/test_persistence.py shows
        # the scores after a restart equal those without one)
        before = stored[stored.severity >= 0]
        # the stream goes on: more pushes are taken and scored after the restart
        for t in range(sent + 1, sent + 40):
            assert _push(base, t, t0) == 200
        after = _stored(base, t0)
        merged = before.merge(after, on=["series", "ts"], suffixes=("", "_after"))
        assert len(merged) == len(before)
        assert np.allclose(merged.score, merged.score_after) and (
            merged.severity == merged.severity_after).all()
        newest = after[after.ts > t0 + sent * STEP]
        assert len(newest) >= 38 * N_SERIES
        assert (after.severity < 0).sum() <= N_SERIES  # only each series' newest slot is open
        assert status(base)["data_points"] >= len(before)
    finally:
        process.terminate()
        process.wait(30)


def test_clean_stop_then_start_shows_the_same_history(tmp_path):
    url = f"sqlite:///{tmp_path / 'gp.db'}"
    t0 = float(int(time.time()) // STEP * STEP - 1000 * STEP)
    process, base = _serve(url)
    for t in range(200):
        assert _push(base, t, t0) == 200
    name = 'app.load{host="h1"}'
    before = requests.get(f"{base}/api/history", params={"series": name, "limit": 500},
                          timeout=10).json()["points"]
    counters = status(base)
    process.terminate()  # SIGTERM: the engine checkpoints and commits, then exits
    assert process.wait(30) == 0
    process, base = _serve(url)
    try:
        after = requests.get(f"{base}/api/history", params={"series": name, "limit": 500},
                             timeout=10).json()["points"]
        assert after == before
        again = status(base)
        for key in ("data_points", "anomaly_count", "bad_points"):
            assert again[key] == counters[key], key
        assert again["storage"]["restored"]["checkpoint"] is not None
        # an older range than memory holds is read from the store
        old = requests.get(f"{base}/api/history", params={
            "series": name, "start": t0, "end": t0 + 9 * STEP}, timeout=10).json()
        assert [p["timestamp"] for p in old["points"]] == [
            pd.Timestamp(t0 + t * STEP, unit="s").strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for t in range(10)]
    finally:
        process.terminate()
        process.wait(30)


def test_second_server_on_one_sqlite_file_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'gp.db'}"
    process, _ = _serve(url)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "granite_panel.cli", "serve", "--port", "1",
             "--database-url", url], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"granite-panel: error: {tmp_path / 'gp.db'} is already open for writing by "
            "another granite-panel process; stop it or open this one read-only"]
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("url, message", [
    ("mysql://x/y", "DATABASE_URL='mysql://x/y' is not allowed: expected memory, sqlite:///PATH "
                    "or postgresql+psycopg://USER@HOST/DB"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
     "DATABASE_URL='postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2': "
     "cannot connect"),
])
def test_bad_database_url_one_line_exit_2(tmp_path, url, message):
    result = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "serve", "--port", "1"],
        env={**__import__("os").environ, "DATABASE_URL": url}, cwd=tmp_path,
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"granite-panel: error: {message}")


def test_corrupt_sqlite_file_refused_and_untouched(tmp_path):
    path = tmp_path / "gp.db"
    path.write_bytes(b"not a database, but somebody's notes\n" * 10)
    before = path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "serve", "--port", "1",
         "--database-url", f"sqlite:///{path}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "is not a SQLite database" in result.stderr
    assert path.read_bytes() == before


def test_postgres_stopped_mid_stream_503_then_recovered(pg_cluster, pg_url):
    t0 = float(int(time.time()) // STEP * STEP - 1000 * STEP)
    process, base = _serve(pg_url)
    try:
        acknowledged = []
        for t in range(30):
            assert _push(base, t, t0) == 200
            acknowledged.append(t)
        pg_cluster.stop()
        codes = {}
        t = 30
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the store says it cannot commit
            code = _push(base, t, t0)
            codes[t] = code
            t += 1
            if code == 503:
                break
        assert 503 in codes.values()
        down = status(base)
        assert down["storage"]["state"] == "degraded" and down["storage"]["reason"]
        assert down["running"]  # the stream goes on in memory
        answer = requests.post(f"{base}/api/ingest?precision=s", data=_body(t, t0),
                               headers={"Content-Type": "text/plain"}, timeout=30)
        assert answer.status_code == 503 and "storage degraded" in answer.json()["error"]
        assert answer.headers["Retry-After"] == "5"
        pg_cluster.start()
        wait_for(lambda: status(base)["storage"]["state"] == "ok", timeout=60, process=process)
        acknowledged += [k for k, code in codes.items() if code == 200]
        t += 1
        for k in range(t, t + 5):  # senders retry: taken again
            answer = requests.post(f"{base}/api/ingest?precision=s", data=_body(k, t0),
                                   headers={"Content-Type": "text/plain"}, timeout=30)
            assert answer.status_code == 200, (answer.text, status(base)["storage"])
            acknowledged.append(k)
        requests.get(f"{base}/api/status", timeout=5)
        stored = _stored(base, t0)
        times = set(stored[stored.series == 'app.load{host="h0"}'].ts.tolist())
        assert {t0 + k * STEP for k in acknowledged} <= times
    finally:
        process.terminate()
        process.wait(30)
