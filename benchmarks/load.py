"""Load: N browser sessions watch a 10 Hz stream while wrk hits /api/status and /api/history.

Starts a real ``granite-panel serve`` (DATABASE_URL=memory, a tick every ``--interval``
s, LATENCY_PROBE=on so every page counts the ticks it drew), opens ``--sessions`` pages in
one headless Debian Chromium (one context each: its own Bokeh session) on the stopped
stream, presses Start in the first, waits until the engine ticks steadily, then for ``--seconds`` runs Debian's ``wrk`` on loopback
(alternating the two endpoints; ``--wrk-delay-ms`` between a connection's requests, 0 for
as fast as it goes) while psutil samples the server process every second. Prints the
errors (wrk's non-2xx and socket errors, page errors, console errors, failed requests),
wrk's requests/s and latency, server CPU% (of one core) and RSS, ticks the engine missed,
and what the pages drew (ticks, point-to-pixel latency, the longest gap between drawn
ticks).

    python -m benchmarks.load                              # the issue's 20 sessions, 10 min
    python -m benchmarks.load --sessions 5 --seconds 120   # shorter
    python -m benchmarks.load --browser-idle               # browsers under SCHED_IDLE

``--browser-idle`` gives the server the two cores first, as browsers on the viewers' own
machines would: Chromium runs only when the server, wrk and the driver leave a core free.
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
    ServerProcess,
    Wrk,
    browsers,
    latency_summary,
    merge_records,
    open_then_start,
    summarize_samples,
    tick_gaps,
)

def run(sessions: int, seconds: float, interval: float, wrk_connections: int,
        wrk_delay_ms: float, probe: bool = True, env: dict | None = None,
        browser_nice: int | str = 0) -> dict:
    """One load run; returns every figure (the test suite calls this with small numbers)."""
    env = {"DATA_GENERATION_INTERVAL": str(interval), "LATENCY_PROBE": "on" if probe else "off",
           **(env or {})}
    report: dict = {"sessions": sessions, "seconds": seconds, "interval_s": interval,
                    "wrk_connections": wrk_connections, "wrk_delay_ms": wrk_delay_ms,
                    "browser_nice": browser_nice}
    with ServerProcess(env=env, autostart=False) as server, \
            browsers(nice=browser_nice) as chromium:
        began = time.monotonic()
        pages = open_then_start(server, chromium, sessions)
        report["open_all_s"] = time.monotonic() - began
        report["viewers"] = server_status(server.base).get("viewers")
        for page in pages:
            page.restart_latency()
        report["load_average_before"] = os.getloadavg()
        ticks_before, t0 = server_status(server.base)["ticks"], time.monotonic()
        server.start_sampling()
        wrk = Wrk(server.base, seconds, connections=wrk_connections, delay_ms=wrk_delay_ms)
        deadline = t0 + seconds
        while time.monotonic() < deadline:
            chromium.pump(min(5.0, max(0.1, deadline - time.monotonic())), pages[0])
            if server.poll() is not None:
                raise RuntimeError(f"server exited {server.returncode}:\n{server.output()}")
        elapsed = time.monotonic() - t0
        report["load_average_after"] = os.getloadavg()
        ticks = server_status(server.base)["ticks"] - ticks_before
        samples = server.stop_sampling()
        result = wrk.result()
        records = [page.latency() for page in pages]
        page_errors = [list(page.errors) for page in pages]
        offline_styles = sum(len(page.errors.offline_styles) for page in pages)
        for page in pages:
            page.close()
    drawn = [tick_gaps(r["stamps"], interval) for r in records]
    report.update(
        elapsed_s=elapsed,
        ticks=ticks,
        ticks_expected=round(elapsed / interval),
        ticks_missed=max(0, round(elapsed / interval) - ticks),
        wrk={k: v for k, v in vars(result).items() if k != "output"},
        page_errors=sum(len(e) for e in page_errors),
        page_error_examples=[e for errors in page_errors for e in errors][:5],
        offline_styles_not_counted=offline_styles,
        server=summarize_samples(samples),
        pages_ticks_drawn_min=min((d["ticks_drawn"] for d in drawn), default=0),
        pages_ticks_drawn_max=max((d["ticks_drawn"] for d in drawn), default=0),
        pages_max_gap_ms=max((d["max_gap_ms"] for d in drawn), default=float("nan")),
        latency=latency_summary(merge_records(records)) if probe else None,
    )
    report["errors"] = report["page_errors"] + result.non_2xx + result.socket_errors
    return report


def print_report(r: dict) -> None:
    w, s = r["wrk"], r["server"]
    print(f"sessions {r['sessions']} for {r['elapsed_s']:.0f} s at {1 / r['interval_s']:.0f} Hz "
          f"(pages opened on the stopped stream, then Start: {r['open_all_s']:.0f} s with the warm-up; viewers {r['viewers']})")
    if r.get("browser_nice") == "idle":
        print("Chromium under SCHED_IDLE (it runs only when the server, wrk and the driver "
              "leave a core free, as browsers on machines of their own would)")
    elif r.get("browser_nice"):
        print(f"Chromium started at nice {r['browser_nice']} (which Chromium, run as root, "
              "partly undoes: see tests/load.py niced_chromium)")
    print("machine load average (1, 5, 15 min) before %s, after %s" % tuple(
        ", ".join(f"{x:.1f}" for x in r[k]) for k in ("load_average_before", "load_average_after")))
    kinds = ", ".join(f"{k} {n}" for k, n in w["socket_error_kinds"].items() if n)
    print(f"errors: {r['errors']} (wrk non-2xx {w['non_2xx']}, socket {w['socket_errors']}"
          f"{f' ({kinds})' if kinds else ''}; page/console/request errors {r['page_errors']})")
    for example in r["page_error_examples"]:
        print(f"  page error: {example}")
    print(f"wrk ({r['wrk_connections']} connections, {r['wrk_delay_ms']:.0f} ms pause): "
          f"{w['requests']} requests, {w['requests_per_s']:.1f}/s, latency p50 "
          f"{w['latency_p50_ms']:.1f} ms, p99 {w['latency_p99_ms']:.1f} ms, max {w['latency_max_ms']:.0f} ms")
    print(f"server CPU mean {s['cpu_mean']:.0f}% (p95 {s['cpu_p95']:.0f}%) of one core; RSS "
          f"{s['rss_start_mib']:.0f} -> {s['rss_end_mib']:.0f} MiB (peak {s['rss_peak_mib']:.0f}); "
          f"fds {s['fds_start']} -> {s['fds_end']}; threads {s['threads_start']} -> {s['threads_end']}")
    print(f"engine ticks {r['ticks']} of {r['ticks_expected']} expected (missed {r['ticks_missed']})")
    print(f"pages drew {r['pages_ticks_drawn_min']}-{r['pages_ticks_drawn_max']} ticks each; "
          f"longest gap between drawn ticks {r['pages_max_gap_ms']:.0f} ms")
    if r["latency"]:
        lat = r["latency"]
        print(f"point-to-pixel over all pages: p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, "
              f"max {lat['max_ms']:.0f} ms ({lat['samples']} samples; medians: wait for poll "
              f"{lat['wait_for_poll_p50_ms']:.0f}, transit {lat['transit_p50_ms']:.0f}, "
              f"to frame {lat['to_frame_p50_ms']:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--interval", type=float, default=0.1, help="DATA_GENERATION_INTERVAL (s)")
    parser.add_argument("--wrk-connections", type=int, default=2)
    parser.add_argument("--wrk-delay-ms", type=float, default=50.0,
                        help="pause between a connection's requests (0: as fast as it goes)")
    parser.add_argument("--no-probe", action="store_true", help="LATENCY_PROBE=off in the pages")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="start Chromium at this nice level (Chromium, run as root, "
                        "resets it: use --browser-idle)")
    parser.add_argument("--browser-idle", action="store_true",
                        help="run Chromium under SCHED_IDLE: the browsers take only the CPU "
                        "the server leaves, as on machines of their own")
    args = parser.parse_args()
    if args.browser_idle:
        args.browser_nice = "idle"
    report = run(args.sessions, args.seconds, args.interval, args.wrk_connections,
                 args.wrk_delay_ms, probe=not args.no_probe, browser_nice=args.browser_nice)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
