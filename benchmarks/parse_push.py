"""Push parser speed: median points/s for 5,000-point line-protocol and JSON batches.

    python benchmarks/parse_push.py [--repeats 15]

Parses the bodies only (no HTTP): the handler targets >= 100k points/s end to end, so the
parser alone should be several times faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package
from granite_panel.sources.push import parse_body  # noqa: E402

POINTS = 5000
T0 = 1_700_000_000


def line_protocol(n_series: int) -> bytes:
    per = POINTS // n_series
    lines = [
        f"cpu,host=web-{s},region=eu usage_idle={50 + (s + i) % 37 * 0.5} {(T0 + i) * 10**9}"
        for i in range(per) for s in range(n_series)
    ]
    return "\n".join(lines).encode()


def line_protocol_escaped(n_series: int) -> bytes:
    per = POINTS // n_series
    lines = [
        f'cpu\\ load,host=web\\ {s} usage=1.5,status="ok" {(T0 + i) * 10**9}'
        for i in range(per) for s in range(n_series)
    ]
    return "\n".join(lines).encode()


def json_body(n_series: int) -> bytes:
    per = POINTS // n_series
    return json.dumps(
        [{"series": f"s{s}", "points": [[T0 + i, 50 + i % 37 * 0.5] for i in range(per)]} for s in range(n_series)]
    ).encode()


def csv_body(n_series: int) -> bytes:
    per = POINTS // n_series
    rows = ["series,timestamp,value"] + [f"s{s},{T0 + i},{i % 37 * 0.5}" for s in range(n_series) for i in range(per)]
    return "\n".join(rows).encode()


def median_rate(body: bytes, content_type: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        points = parse_body(body, content_type, now=T0)
        times.append(time.perf_counter() - start)
    assert len(points) == POINTS and np.isfinite(points.values).all()
    return POINTS / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    cases = [
        ("line protocol", line_protocol, "text/plain"),
        ("line protocol, escapes + string field (slow path)", line_protocol_escaped, "text/plain"),
        ("JSON", json_body, "application/json"),
        ("CSV", csv_body, "text/csv"),
    ]
    for label, make, content_type in cases:
        for n_series in (1, 1000):
            rate = median_rate(make(n_series), content_type, args.repeats)
            print(f"{label:52s} {n_series:5d} series  {rate:>12,.0f} points/s")


if __name__ == "__main__":
    main()
