"""Faults a served process must live through, each visible while it lasts and recovered
from: the SQLite store's disk fills up (a real size-limited tmpfs), so does the folder
where an opened file is kept while it is read, and a browser that dies
mid-stream (Debian's Chromium killed with SIGKILL). The database server stopping and
``kill -9`` are in tests/test_restart.py, Prometheus stopping in tests/test_prometheus_source.py.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time

import pytest
import requests

from granite_panel.server.api import ROUTES
from granite_panel.server.openapi import document
from granite_panel.ui.dashboard import render_model

from .openapi_check import check_answer
from .serving import (free_port, running_server, start_server, status, wait_for,
                      wait_until_model_settled)
from .test_restart import STEP, _body, _env, _push, _stored

DISK_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted for the test (we run as root, as tests/run.sh does in CI)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the full-disk "
                    "test needs root, as tests/run.sh has in CI")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder) -> int:
    """Write a filler file until the filesystem refuses (ENOSPC); the bytes written."""
    written = 0
    block = b"\0" * 65536
    with open(folder / "filler", "wb") as filler:
        try:
            while True:
                filler.write(block)
                filler.flush()
                os.fsync(filler.fileno())
                written += len(block)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return written


def _ingest_503_or_200(base: str, t: int, t0: float):
    return requests.post(f"{base}/api/ingest?precision=s", data=_body(t, t0),
                         headers={"Content-Type": "text/plain"}, timeout=30)


def test_full_disk_503_visible_then_recovered_with_nothing_acknowledged_lost(small_disk):
    url = f"sqlite:///{small_disk / 'gp.db'}"
    t0 = float(int(time.time()) // STEP * STEP - 1000 * STEP)
    process, base = start_server("--source", "push", "--autostart", env=_env(url), timeout=180)
    try:
        wait_until_model_settled(base)
        acknowledged = []
        for t in range(30):
            assert _push(base, t, t0) == 200
            acknowledged.append(t)
        assert _fill(small_disk) > 0
        t, refused = 30, None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # pushes until the store says it cannot commit
            answer = _ingest_503_or_200(base, t, t0)
            if answer.status_code == 200:
                acknowledged.append(t)
            else:
                refused = answer
                break
            t += 1
        assert refused is not None and refused.status_code == 503, refused and refused.text
        assert "storage degraded" in refused.json()["error"] and refused.headers["Retry-After"]
        check_answer(document(ROUTES), "/api/ingest", "POST", refused)
        down = status(base)
        assert down["storage"]["state"] == "degraded"
        assert "full" in down["storage"]["reason"], down["storage"]
        assert down["running"]  # the stream goes on in memory
        assert "gp-storage-down" in render_model(down)  # the dashboard's banner
        # still full: a retry is refused again, never acknowledged
        assert _ingest_503_or_200(base, t, t0).status_code == 503
        (small_disk / "filler").unlink()  # space comes back
        wait_for(lambda: status(base)["storage"]["state"] == "ok", timeout=60, process=process)
        assert "gp-storage-down" not in render_model(status(base))
        for k in range(t, t + 5):  # the sender retries what was refused, and goes on
            answer = _ingest_503_or_200(base, k, t0)
            assert answer.status_code == 200, (answer.text, status(base)["storage"])
            acknowledged.append(k)
        stored = _stored(base, t0)
        for series in range(3):
            times = set(stored[stored.series == f'app.load{{host="h{series}"}}'].ts.tolist())
            missing = {t0 + k * STEP for k in acknowledged} - times
            assert not missing, f"{len(missing)} acknowledged points lost"
    finally:
        process.terminate()
        process.wait(30)


# ------------------------------------------------------------------------ browser killed

CHROMIUM = "/usr/bin/chromium"


def _chromium(tmp_path) -> tuple[subprocess.Popen, str]:
    """Debian's Chromium in its own process group with a DevTools port: (process, CDP URL)."""
    from .ui.conftest import CHROMIUM_ARGS

    port = free_port()
    process = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_ARGS, f"--remote-debugging-port={port}",
         f"--user-data-dir={tmp_path / 'chromium'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return requests.get(f"{url}/json/version", timeout=2).ok
        except requests.RequestException:
            return False

    wait_for(ready, timeout=30, process=process)
    return process, url


def _chart_points(page) -> int:
    from .ui.test_dashboard_browser import chart_lengths

    return chart_lengths(page).get("history", 0)


@pytest.mark.ui
def test_browser_killed_mid_stream_releases_its_session_and_a_new_one_connects(
    tmp_path, playwright  # pytest-playwright's (a second sync_playwright() would refuse)
):
    from .ui.test_dashboard_browser import open_dashboard

    with running_server("--autostart", timeout=180) as base:
        wait_until_model_settled(base)
        killed, cdp = _chromium(tmp_path)
        try:
            page = playwright.chromium.connect_over_cdp(cdp).contexts[0].new_page()
            open_dashboard(page, base)
            wait_for(lambda: status(base)["viewers"] == 1, timeout=30)
            wait_for(lambda: _chart_points(page) > 0, timeout=30)  # streaming into the page
            before = status(base)
            os.killpg(killed.pid, signal.SIGKILL)  # the whole browser, no goodbye
            killed.wait(10)
        finally:
            if killed.poll() is None:
                os.killpg(killed.pid, signal.SIGKILL)
        try:
            wait_for(lambda: status(base)["viewers"] == 0, timeout=120)
        except TimeoutError:  # say what kept it: a browser process that outlived the kill?
            left = subprocess.run(["pgrep", "-af", str(tmp_path / "chromium")],
                                  capture_output=True, text=True).stdout
            raise AssertionError(f"viewers {status(base)['viewers']} 120 s after the kill; "
                                 f"chromium processes left: {left or 'none'}") from None
        after = status(base)
        assert after["running"] and after["errors"] == before["errors"] == 0
        wait_for(lambda: status(base)["data_points"] > after["data_points"], timeout=10)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_launch_args())
        try:
            fresh = browser.new_page()
            open_dashboard(fresh, base)
            wait_for(lambda: status(base)["viewers"] == 1, timeout=30)
            wait_for(lambda: _chart_points(fresh) > 0, timeout=30)
        finally:
            browser.close()  # (a tab closed cleanly: tests/ui/test_dashboard_browser.py)


def _launch_args() -> list[str]:
    from .ui.conftest import CHROMIUM_ARGS

    return CHROMIUM_ARGS


def test_a_file_opened_while_the_temporary_folder_is_full_is_refused_and_the_stream_goes_on(
        small_disk, monkeypatch):
    """An opened file is kept in a temporary folder while it is read. With that folder's
    disk full (a real tmpfs) the page gets one line saying so, not a "Reading ..." that
    never ends, and the stream goes on; once there is room the same file opens."""
    import tempfile

    import numpy as np
    import pandas as pd

    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings
    from granite_panel.ui.controller import StreamController

    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))  # where uploads are kept
    n = 40_000  # about 1.1 MB
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="min"),
                          "cpu": np.round(np.linspace(0, 100, n), 3)})
    content = frame.to_csv(index=False).encode()
    engine = Engine(Settings(fallback_model="SeasonalNaive", model_name="/nonexistent/model",
                             context_length=16, history_limit=128, forecast_horizon=4,
                             n_series=2, data_generation_interval=0.05))
    controller = StreamController(engine, role="operator")
    engine.start()
    try:
        _fill(small_disk)
        points = engine.status()["data_points"]
        said = controller.open_file("big.csv", content)
        assert said.startswith("Not opened: big.csv could not be kept to read it (No space left "
                               "on device); the server's temporary folder may be full"), said
        assert engine.generation == 0 and engine.running
        wait_for(lambda: engine.status()["data_points"] > points, timeout=10)
        assert [p.name for p in small_disk.iterdir()] == ["filler"]  # nothing half-written left
        (small_disk / "filler").unlink()
        assert controller.open_file("big.csv", content).startswith(
            f"Replaying big.csv: {n:,} time steps of 1 series")
    finally:
        engine.close()
