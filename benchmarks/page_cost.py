"""What one dashboard page costs its browser per tick of a 10 Hz stream (Chromium CPU).

A fresh ``granite-panel serve`` (the synthetic stream at ``--interval``), one page in a
headless Debian Chromium, Start pressed, ``--warmup`` seconds discarded, then the CPU time
(user + system, psutil) that each kind of Chromium process used over ``--seconds``,
divided by the ticks the engine made meanwhile: milliseconds of CPU per tick, which is what
decides how many pages a machine's cores can keep up to date (ten pages at 10 Hz need
ten times one page's figure every 100 ms). CPU time, not wall time, so a busy machine
slows the run but moves the figure less. Repeated ``--repeats`` times; the median is
printed last.

    python -m benchmarks.page_cost [--seconds 30] [--repeats 3] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.load import (  # noqa: E402
    ServerProcess, browsers, chromium_processes, cpu_seconds, open_then_start, server_status,
)


def process_kind(process) -> str:
    """Chromium's own name for a process's role (``--type=renderer``, ...), or browser."""
    try:
        arguments = process.cmdline()
    except Exception:  # ended meanwhile
        return "ended"
    return next((a.split("=", 1)[1] for a in arguments if a.startswith("--type=")), "browser")


def by_kind(processes) -> dict[str, list]:
    """``processes`` grouped by ``process_kind`` (read once: it parses each command line)."""
    groups = collections.defaultdict(list)
    for process in processes:
        groups[process_kind(process)].append(process)
    return dict(groups)


def measure(seconds: float, interval: float, warmup: float, playwright=None) -> dict:
    """CPU ms per tick by Chromium process kind, for one page watching the stream (on
    ``playwright``'s Chromium, or a Playwright of its own; see ``tests.load.browsers``)."""
    env = {"DATA_GENERATION_INTERVAL": str(interval)}
    with ServerProcess(env=env, autostart=False) as server, browsers(playwright) as chromium:
        (page,) = open_then_start(server, chromium, 1)
        chromium.pump(warmup, page)
        kinds = by_kind(chromium_processes())
        before = {kind: cpu_seconds(group) for kind, group in kinds.items()}
        ticks_before = server_status(server.base)["ticks"]
        chromium.pump(seconds, page)
        after = {kind: cpu_seconds(group) for kind, group in kinds.items()}
        ticks = server_status(server.base)["ticks"] - ticks_before
        errors = len(page.errors)
        page.close()
    per_tick = {kind: 1000 * (after[kind] - before[kind]) / max(ticks, 1) for kind in after}
    return {"ticks": ticks, "page_errors": errors, "ms_per_tick": per_tick,
            "total_ms_per_tick": sum(per_tick.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.1, help="DATA_GENERATION_INTERVAL (s)")
    args = parser.parse_args()
    totals, renderers = [], []
    for run in range(args.repeats):
        result = measure(args.seconds, args.interval, args.warmup)
        kinds = result["ms_per_tick"]
        totals.append(result["total_ms_per_tick"])
        renderers.append(kinds.get("renderer", 0.0))
        print(f"run {run + 1}: {result['total_ms_per_tick']:.1f} ms of Chromium CPU per tick "
              f"(renderer {kinds.get('renderer', 0.0):.1f}, GPU process "
              f"{kinds.get('gpu-process', 0.0):.1f}, browser {kinds.get('browser', 0.0):.1f}); "
              f"{result['ticks']} ticks, {result['page_errors']} page errors, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"median of {args.repeats}: {statistics.median(totals):.1f} ms per tick "
          f"(renderer {statistics.median(renderers):.1f}); at {1 / args.interval:g} Hz one page "
          f"needs {statistics.median(totals) / args.interval / 10:.0f}% of a core")


if __name__ == "__main__":
    main()
