"""A real Prometheus (Debian's package) on a free loopback port, scraping itself and a node
exporter every second, its tsdb in a temporary folder; stopped by its own pid."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrometheusServer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.exporter_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.exporter: subprocess.Popen | None = None
        (folder / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{self.port}']\n"
            f"  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{self.exporter_port}']\n"
        )

    def start_exporter(self) -> None:
        self.exporter = subprocess.Popen(
            [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{self.exporter_port}",
             "--collector.disable-defaults", "--collector.cpu"],
            stdout=subprocess.DEVNULL, stderr=(self.folder / "exporter.log").open("ab"),
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=(self.folder / "prometheus.log").open("ab"),
        )
        self.wait_for("up")

    def wait_for(self, query: str, samples: int = 1, timeout: float = 30.0) -> None:
        """Until an instant query returns at least one series (the first scrapes are in)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=1).json()
                if len(answer["data"]["result"]) >= samples:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Prometheus at {self.url} has no samples of {query!r} after {timeout} s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None

    def stop_all(self) -> None:
        self.stop()
        if self.exporter is not None:
            self.exporter.terminate()
            self.exporter.wait(timeout=15)
            self.exporter = None
