"""REST latency while the stream runs: median and p95 of /api/status and /api/history.

Starts a real ``granite-panel serve --autostart`` on a free port (offline: the fallback
model serves), lets it tick, then times sequential requests from this process.

    python benchmarks/api_latency.py [--series 1 100] [--requests 200] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serving import running_server, status, wait_for  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_requests(url: str, n: int) -> list[float]:
    session = requests.Session()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = session.get(url, timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.5, help="DATA_GENERATION_INTERVAL")
    args = parser.parse_args()
    print(f"{'N_SERIES':>8}  {'endpoint':<28} {'median ms':>10} {'p95 ms':>8}  ticks during run")
    for n in args.series:
        env = {"N_SERIES": str(n), "DATA_GENERATION_INTERVAL": str(args.interval)}
        with running_server("--autostart", env=env) as base:
            wait_for(lambda: status(base)["total_predictions"] > 0, timeout=120)
            for path in ("/api/status", "/api/history", "/api/history?series=0"):
                before = status(base)["ticks"]
                times = time_requests(base + path, args.requests)
                ticks = status(base)["ticks"] - before
                print(
                    f"{n:>8}  {path:<28} {statistics.median(times):>10.2f} "
                    f"{percentile(times, 0.95):>8.2f}  {ticks}"
                )


if __name__ == "__main__":
    main()
