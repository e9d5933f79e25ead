"""Start the real ``granite-panel serve`` on a free port for a test, and stop it after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import requests

FAST_STREAM = {
    "HF_HUB_OFFLINE": "1",  # the hub is unreachable: fail the TTM load at once
    "DATA_GENERATION_INTERVAL": "0.25",
    "ANOMALY_PROBABILITY": "0.1",
    "FORECAST_HORIZON": "48",
    "DATABASE_URL": "memory",  # a test that wants a store names one
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*args: str, env: dict | None = None, timeout: float = 90.0, port=None):
    """A fresh ``granite-panel serve`` process answering on ``port``: (process, base URL)."""
    port = port or free_port()
    environment = {**os.environ, **FAST_STREAM, **(env or {})}
    command = [sys.executable, "-m", "granite_panel.cli", "serve", "--port", str(port)]
    command += ["--session-check-ms", "500", *args]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    process.output = ServerOutput(process.stdout)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base), timeout, process)
    except BaseException:
        process.kill()
        raise
    return process, base


class ServerOutput:
    """A served process's output (stdout and stderr), read by a thread as it comes.

    Nobody reading the pipe would stop the server: once its 64 KiB buffer is full, the next
    log line (Tornado logs every refused request) blocks the event loop in ``write``, and
    every request after it times out. A fuzzer's few hundred bad pushes fill it."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._reader.start()

    def _drain(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self, wait: float = 5.0) -> str:
        """Everything so far; after the process ended, wait for the rest."""
        self._reader.join(wait)
        return "".join(self.lines)


@contextmanager
def running_server(*args: str, env: dict | None = None, timeout: float = 90.0):
    """Yield the base URL of a fresh server process; kill it on exit."""
    process, base = start_server(*args, env=env, timeout=timeout)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _answers(base: str) -> bool:
    """Up: /api/status answers (401 is an answer too, from a server with auth on)."""
    try:
        return requests.get(f"{base}/api/status", timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


def wait_for(predicate, timeout: float = 30.0, process=None, interval: float = 0.2):
    """Poll ``predicate`` until true; fail with the server's output if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = process.output.text() if hasattr(process, "output") else process.stdout.read()
            raise RuntimeError(f"server exited {process.returncode}:\n{output}")
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


def status(base: str) -> dict:
    return requests.get(f"{base}/api/status", timeout=5).json()


def wait_until_model_settled(base: str, timeout: float = 180.0) -> None:
    """Until the background model load has finished (loaded or fallen back). Importing
    tsfm_public takes tens of seconds on a loaded machine; while the loader holds that
    import, a tick that needs the conformal processor waits for it with the engine's lock
    held, and so do pushes: tests that time their requests start after it."""

    def settled():
        try:
            return status(base)["model_state"] != "loading"
        except requests.RequestException:
            return False

    wait_for(settled, timeout)
