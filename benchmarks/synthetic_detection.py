"""Score every online detector on the synthetic source's labelled anomalies.

    .venv/bin/python benchmarks/synthetic_detection.py [--seeds 0,1,2] [--n-series 8]
        [--n-points 3000] [--warmup 512] [--probabilities 0.05,0.01] [--detectors ...]
        [--no-speed]

A second check beside NAB (benchmarks/nab.py): ``SyntheticSource`` streams (default
settings, several seeds) with spikes, dips and 5-12 point level shifts whose positions are
known. Each detector scores each series from a fresh state, at the threshold it uses live
(``LIVE_THRESHOLDS``); the first ``--warmup`` points (the dashboard's backfill) are not
scored. Columns: events, event recall (events with a flag on one of their points), point
precision, point recall, NAB-style score (standard profile, one window per event, at the
live threshold). ``hybrid`` is run as the dashboard runs it, told the season length
(``SEASON_LENGTH``, 24 for this source); ``hybrid~`` is the same detector estimating the
season itself, as ``granite-panel detect`` and the NAB benchmark run it. The speed line is
the live adapter ``SeriesDetectors.score`` (one point per series a call) at N = 1, 100 and
1000 series.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.evaluation.synthetic import synthetic_metrics, synthetic_stream  # noqa: E402
from granite_panel.detection.detectors import (  # noqa: E402
    DEFAULT_DETECTOR,
    DETECTORS,
    LIVE_THRESHOLDS,
    SEASONAL_DETECTORS,
    SeriesDetectors,
)


SEASON_LENGTH = 24  # the synthetic source's (and the dashboard's default) season length


def variants(name: str) -> list[tuple[str, dict]]:
    """(label, detector kwargs) rows for one detector: as live, and as the CLI runs it."""
    if name in SEASONAL_DETECTORS:
        return [(name, {"period": SEASON_LENGTH}), (name + "~", {})]
    return [(name, {})]


def adapter_rows_per_second(name: str, n_series: int, ticks: int = 300, seed: int = 0) -> float:
    """rows/s of ``SeriesDetectors(name, n_series).score`` over ``ticks`` ticks of a
    synthetic stream, after a 600-point backfill through ``score_block`` (not timed)."""
    values, _ = synthetic_stream(seed, n_series, 600 + ticks)
    live = SeriesDetectors(name, n_series, **variants(name)[0][1])
    live.score_block(values[:, :600])
    t0 = time.perf_counter()
    for j in range(600, 600 + ticks):
        live.score(values[:, j])
    return n_series * ticks / (time.perf_counter() - t0)


def memory_per_series(name: str, n_series: int = 10, points: int = 10_000) -> float:
    """Bytes a live detector holds per series after ``points`` points (tracemalloc)."""
    import tracemalloc

    values, _ = synthetic_stream(0, n_series, points)
    tracemalloc.start()
    live = SeriesDetectors(name, n_series, **variants(name)[0][1])
    live.score_block(values)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del live
    return held / n_series


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated source seeds")
    parser.add_argument("--n-series", type=int, default=8)
    parser.add_argument("--n-points", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=512, help="points not scored per series")
    parser.add_argument("--probabilities", default="0.05,0.01",
                        help="comma-separated anomaly_probability values")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--no-speed", action="store_true", help="skip the adapter speed line")
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    names = [d.strip() for d in args.detectors.split(",") if d.strip()]
    print(f"SyntheticSource: seeds {seeds}, {args.n_series} series x {args.n_points} points, "
          f"first {args.warmup} not scored")
    header = (f"{'detector':<10}{'p(anom)':>8}{'thresh':>8}{'events':>8}{'recall':>8}"
              f"{'precision':>10}{'pt recall':>10}{'NAB-style':>10}{'rows/s':>11}")
    lines = [header, "-" * len(header)]
    print(header, flush=True)
    for name, label, kwargs in [(n, lab, kw) for n in names for lab, kw in variants(n)]:
        for p in _floats(args.probabilities):
            t0 = time.perf_counter()
            m = synthetic_metrics(name, None, seeds, args.n_series, args.n_points,
                                  args.warmup, anomaly_probability=p, **kwargs)
            rate = len(seeds) * args.n_series * args.n_points / (time.perf_counter() - t0)
            line = (f"{label:<10}{p:>8.2f}{LIVE_THRESHOLDS.get(name, 0.5):>8.3f}{m.events:>8d}"
                    f"{m.event_recall:>8.3f}{m.point_precision:>10.3f}{m.point_recall:>10.3f}"
                    f"{m.nab_score:>10.1f}{rate:>11,.0f}")
            lines.append(line)
            print(line, flush=True)
    print()
    print("\n".join(lines))
    if not args.no_speed:
        rates = {n: adapter_rows_per_second(DEFAULT_DETECTOR, n) for n in (1, 100, 1000)}
        print(f"\nlive adapter SeriesDetectors({DEFAULT_DETECTOR!r}).score, one point per series "
              "a call: " + ", ".join(f"N={n}: {r:,.0f} rows/s" for n, r in rates.items()))
        print(f"memory per series once every history is full (10,000 points): "
              f"{memory_per_series(DEFAULT_DETECTOR) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
