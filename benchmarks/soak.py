"""Soak: a 10 Hz stream for an hour with 3 browser sessions that disconnect and reconnect.

A real ``granite-panel serve`` (DATABASE_URL=memory; LATENCY_PROBE off, as a normal page),
3 sessions in one headless Debian Chromium (opened on the stopped stream, then Start);
every ``--reconnect-every``
seconds the oldest session closes (its browser context, so its websocket) and a fresh one
opens. psutil samples the server every ``--sample-every`` seconds. Prints RSS after
``--warmup`` against the end (growth %, target < 5%), open file descriptors and threads
over time (one line a minute; target: no growth), the viewers the server counts, the
engine's ticks against the expected, and every page error.

    python -m benchmarks.soak                              # the issue's hour
    python -m benchmarks.soak --seconds 900 --warmup 120   # shortened
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
    ServerProcess, browsers, open_then_start, server_status, summarize_samples,
)


def soak(seconds: float, sessions: int, reconnect_every: float, warmup: float, interval: float,
         sample_every: float = 5.0, progress=print) -> dict:
    """One soak run; returns the samples and figures (tests call it with small numbers)."""
    env = {"DATA_GENERATION_INTERVAL": str(interval), "LATENCY_PROBE": "off"}
    with ServerProcess(env=env, period=sample_every, autostart=False) as server, \
            browsers() as chromium:
        pages = open_then_start(server, chromium, sessions)
        server.start_sampling()  # the warm-up counts from here: every session open
        load_before = os.getloadavg()
        ticks_before, t0 = server_status(server.base)["ticks"], time.monotonic()
        errors, reconnects, viewers, next_reconnect, next_line = [], 0, [], t0 + reconnect_every, t0
        while (now := time.monotonic()) < t0 + seconds:
            if now >= next_reconnect:
                oldest = pages.pop(0)
                errors += list(oldest.errors)
                oldest.close()
                pages.append(chromium.open(server.base))
                reconnects += 1
                next_reconnect += reconnect_every
            if now >= next_line and server.samples:
                s = server.samples[-1]
                viewers.append(server_status(server.base).get("viewers"))
                progress(f"  t={now - t0:6.0f} s  RSS {s.rss_mib:7.1f} MiB  fds {s.fds:4d}  "
                         f"threads {s.threads:3d}  CPU {s.cpu_percent:5.1f}%  viewers {viewers[-1]}  "
                         f"reconnects {reconnects}")
                next_line += 60
            chromium.pump(min(1.0, max(0.05, next_reconnect - time.monotonic())), pages[-1])
            if server.poll() is not None:
                raise RuntimeError(f"server exited {server.returncode}:\n{server.output()}")
        elapsed = time.monotonic() - t0
        ticks = server_status(server.base)["ticks"] - ticks_before
        for page in pages:
            errors += list(page.errors)
            page.close()
        released_in = None  # every closed session released (the viewers count back to 0)?
        closed_at = time.monotonic()
        while time.monotonic() - closed_at < 120:
            if server_status(server.base).get("viewers") == 0:
                released_in = time.monotonic() - closed_at
                break
            chromium.pump(1.0, chromium.blank())
        viewers_after = server_status(server.base).get("viewers")
        samples = server.stop_sampling()
    return {
        "seconds": elapsed, "sessions": sessions, "reconnect_every_s": reconnect_every,
        "reconnects": reconnects, "warmup_s": warmup, "interval_s": interval,
        "ticks": ticks, "ticks_expected": round(elapsed / interval),
        "page_errors": len(errors), "page_error_examples": errors[:5],
        "viewers_after_close": viewers_after, "released_in_s": released_in,
        "viewers_seen": sorted(set(v for v in viewers if v is not None)),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "after_warmup": summarize_samples(samples, warmup=warmup),
        "samples": [vars(s) for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--reconnect-every", type=float, default=30.0,
                        help="seconds between one session closing and a new one opening")
    parser.add_argument("--warmup", type=float, default=300.0,
                        help="seconds after the sessions open before the reference RSS")
    parser.add_argument("--interval", type=float, default=0.1, help="DATA_GENERATION_INTERVAL (s)")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--json", help="also write every figure and sample to this file")
    args = parser.parse_args()
    r = soak(args.seconds, args.sessions, args.reconnect_every, args.warmup, args.interval,
             args.sample_every)
    a = r["after_warmup"]
    print(f"soak {r['seconds']:.0f} s at {1 / r['interval_s']:.0f} Hz, {r['sessions']} sessions, "
          f"{r['reconnects']} reconnects (one every {r['reconnect_every_s']:.0f} s); load average "
          f"{r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}")
    print(f"RSS after {r['warmup_s']:.0f} s warm-up {a['rss_start_mib']:.1f} MiB -> end "
          f"{a['rss_end_mib']:.1f} MiB: growth {a['rss_growth_pct']:+.1f}% (peak {a['rss_peak_mib']:.1f})")
    print(f"fds {a['fds_start']} -> {a['fds_end']} (max {a['fds_max']}); threads "
          f"{a['threads_start']} -> {a['threads_end']} (max {a['threads_max']}); CPU mean "
          f"{a['cpu_mean']:.0f}% of one core")
    released = (f"all released {r['released_in_s']:.0f} s after the last page closed"
                if r["released_in_s"] is not None else
                f"NOT all released: {r['viewers_after_close']} still counted 120 s after the last page closed")
    print(f"engine ticks {r['ticks']} of {r['ticks_expected']} expected; viewers counted "
          f"{r['viewers_seen']}; {released}; page errors {r['page_errors']}")
    for example in r["page_error_examples"]:
        print(f"  page error: {example}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2, default=str))


if __name__ == "__main__":
    main()
