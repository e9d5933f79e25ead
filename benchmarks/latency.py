"""Point-to-pixel latency with 1 and 10 browser sessions on a 10 Hz stream.

For each session count: a fresh ``granite-panel serve`` with
LATENCY_PROBE=on (see ``granite_panel/ui/latency_probe.py``: the server stamps each tick
with its wall-clock time, the page records ``Date.now() - stamp`` in the animation frame
after the points arrive; one machine, one clock), the sessions opened in one headless
Debian Chromium on the stopped stream, Start pressed in the first, ``--warmup`` seconds discarded, then ``--seconds`` measured. Prints
p50/p95/p99/max over every drawn tick of every page, and the medians of its parts: the
wait for the viewer's poll (the engine ticks in its own thread and pushes a poll onto each
served page's event loop), transit (the server's batched update to its arrival in the page, which includes
the time the page was busy) and arrival to the drawn frame. Also printed: the CPU that
Chromium (all its processes, per page) and the server used over the measured window, in %
of one core. Target: p95 < 150 ms with 10.

    python -m benchmarks.latency [--sessions 1 10] [--seconds 60] [--interval 0.1]
                                 [--browser-idle]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.load import (  # noqa: E402
    server_status,
    ServerProcess, browsers, chromium_processes, cpu_seconds, latency_summary, merge_records,
    open_then_start,
)


def measure(sessions: int, seconds: float, interval: float, warmup: float,
            nice: int | str = 0) -> dict:
    env = {"DATA_GENERATION_INTERVAL": str(interval), "LATENCY_PROBE": "on"}
    with ServerProcess(env=env, autostart=False) as server, browsers(nice=nice) as chromium:
        pages = open_then_start(server, chromium, sessions)
        chromium.pump(warmup, pages[0])
        for page in pages:
            page.restart_latency()
        load_before = os.getloadavg()
        ticks_before, t0 = server_status(server.base)["ticks"], time.monotonic()
        browser_processes = chromium_processes()
        cpu_before = cpu_seconds(browser_processes), cpu_seconds([server.psutil])
        chromium.pump(seconds, pages[0])
        ticks = server_status(server.base)["ticks"] - ticks_before
        elapsed = time.monotonic() - t0
        browser_cpu = (cpu_seconds(browser_processes) - cpu_before[0]) / elapsed
        server_cpu = (cpu_seconds([server.psutil]) - cpu_before[1]) / elapsed
        records = [page.latency() for page in pages]
        errors = sum(len(page.errors) for page in pages)
        for page in pages:
            page.close()
    return {
        "sessions": sessions, "seconds": elapsed, "interval_s": interval,
        "ticks": ticks, "ticks_expected": round(elapsed / interval), "page_errors": errors,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "per_page_samples": [len(r["samples"]) for r in records],
        "browser_cpu_per_page": browser_cpu / sessions, "server_cpu": server_cpu,
        **latency_summary(merge_records(records)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.1, help="DATA_GENERATION_INTERVAL (s)")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="start Chromium at this nice level (Chromium, run as root, "
                        "resets it: see tests/load.py niced_chromium)")
    parser.add_argument("--browser-idle", action="store_true",
                        help="run Chromium under SCHED_IDLE (only the CPU the server leaves); "
                        "the pages then lag, so this isolates the server's share")
    args = parser.parse_args()
    if args.browser_idle:
        args.browser_nice = "idle"
    results = []
    print(f"{'sessions':>8} {'samples':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f"  medians (poll wait / transit / to frame) ms  engine ticks  load avg")
    for n in args.sessions:
        r = measure(n, args.seconds, args.interval, args.warmup, args.browser_nice)
        results.append(r)
        print(f"{n:>8} {r['samples']:>8} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} {r['p99_ms']:>8.0f} "
              f"{r['max_ms']:>8.0f}  {r['wait_for_poll_p50_ms']:>6.0f} / {r['transit_p50_ms']:>5.0f} / "
              f"{r['to_frame_p50_ms']:>4.0f}{'':>19}{r['ticks']:>5} of {r['ticks_expected']}"
              f"  {r['load_average_before'][0]:.1f}-{r['load_average_after'][0]:.1f}"
              + f"  CPU: Chromium {100 * r['browser_cpu_per_page']:.0f}% of a core per page,"
              f" server {100 * r['server_cpu']:.0f}%"
              + (f"  page errors {r['page_errors']}" if r["page_errors"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
