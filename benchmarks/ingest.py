"""Ingest throughput and replay speed (issue 9's figures).

1. Accepted points per second through ``POST /api/ingest`` of a real ``granite-panel serve
   --source push``: line protocol and JSON, batches of 1, 100 and 5,000 points, 1 and 1,000
   series; one client on keep-alive connections (requests.Session), medians of repeated posts.
2. ``--speed max`` replay of a NAB file through the engine against ``granite-panel detect``
   on the same file (same detector, same scores): the time ratio.

    python benchmarks/ingest.py [--nab ../shared/data/nab/data/realKnownCause/machine_temperature_system_failure.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from serving import running_server  # noqa: E402

T0 = 1_700_000_000


def line_body(batch: int, n_series: int, start: int) -> bytes:
    rows = []
    for i in range(batch):
        slot = start + i // n_series
        rows.append(f"bench,host=h{i % n_series} value={i % 97}.5 {(T0 + slot) * 10**9}")
    return "\n".join(rows).encode()


def json_body(batch: int, n_series: int, start: int) -> bytes:
    per = {}
    for i in range(batch):
        slot = start + i // n_series
        per.setdefault(f"bench.json{{host=\"h{i % n_series}\"}}", []).append([T0 + slot, i % 97 + 0.5])
    return json.dumps([{"series": k, "points": v} for k, v in per.items()]).encode()


def throughput(base: str, make, content_type: str, batch: int, n_series: int, seconds: float):
    session = requests.Session()
    slots_per_post = max(1, batch // n_series)
    start, times, accepted = 0, [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        body = make(batch, n_series, start)
        started = time.perf_counter()
        answer = session.post(f"{base}/api/ingest", data=body,
                              headers={"Content-Type": content_type}, timeout=60)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
        accepted += answer.json()["accepted"]
        start += slots_per_post
    return batch / statistics.median(times), accepted


def ingest_table(seconds: float) -> None:
    env = {"DATA_GENERATION_INTERVAL": "1", "MAX_SERIES": "2000", "HISTORY_LIMIT": "4096",
           "CONTEXT_LENGTH": "512", "FALLBACK_MODEL": "SeasonalNaive", "DETECTOR": "zscore"}
    print("## POST /api/ingest, accepted points per second (median over posts)")
    print(f"{'format':<15} {'batch':>6} {'series':>7} {'points/s':>10}")
    for fmt, make, ctype in (("line protocol", line_body, "text/plain"),
                             ("JSON", json_body, "application/json")):
        for n_series in (1, 1000):
            for batch in (1, 100, 5000):
                if batch < n_series and batch != 1:
                    continue
                # a fresh server per row: each row starts on an empty engine
                with running_server("--source", "push", env=env) as base:
                    rate, _ = throughput(base, make, ctype, batch, n_series, seconds)
                print(f"{fmt:<15} {batch:>6} {n_series:>7} {rate:>10,.0f}", flush=True)


def replay_ratio(path: Path, detector: str) -> None:
    from granite_panel.cli.detect import read_series
    from granite_panel.detection.detectors import make_detector
    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings
    from granite_panel.sources import open_source

    rows = len(read_series(str(path)).values)
    settings = Settings(detector=detector, history_limit=max(rows, 512) + 16, season_length=24,
                        fallback_model="SeasonalNaive", source=str(path), replay_speed="max")
    live, batch = [], []
    for _ in range(3):
        started = time.perf_counter()
        values = read_series(str(path)).values
        make_detector(detector, period=24).score_series(values)
        batch.append(time.perf_counter() - started)
        started = time.perf_counter()
        engine = Engine(settings, source=open_source(settings))
        while not engine.source.finished:
            engine.step()
        live.append(time.perf_counter() - started)
    b, lv = statistics.median(batch), statistics.median(live)
    print(f"\n## --speed max replay vs detect: {path.name} ({rows:,} rows, {detector})")
    print(f"detect {b:.2f} s | live replay {lv:.2f} s | ratio {lv / b:.2f} (target <= 1.5)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per table row")
    parser.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "data" / "nab" / "data"
                        / "realKnownCause" / "machine_temperature_system_failure.csv")
    parser.add_argument("--detector", default="hybrid")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.skip_http:
        ingest_table(args.seconds)
    if args.nab.exists():
        replay_ratio(args.nab, args.detector)
    return 0


if __name__ == "__main__":
    sys.exit(main())
