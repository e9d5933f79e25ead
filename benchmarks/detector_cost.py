"""What each online detector costs: rows/s idle and through the live adapter, bytes per series.

    .venv/bin/python benchmarks/detector_cost.py [--detectors hybrid,zscore,...]
        [--series 100] [--backfill 1000] [--ticks 30] [--repeats 3] [--points 10000]

Every figure is measured in this one run on synthetic series (``SyntheticSource``, seed 0,
the dashboard's defaults), each detector built as the dashboard builds it (``live_detector``:
the hybrids told ``SEASON_LENGTH`` = 24):

- ``idle rows/s``: ``score_series`` of one fresh detector over ``--points`` points (what
  ``granite-panel detect`` and ``benchmarks/nab.py`` do), median of ``--repeats``;
- ``live rows/s``: the engine's call, ``OnlineDetectors.score_block`` of one new point per
  series per tick (for ``zscore`` its live form, ``ZScoreDetector.score_many`` on the
  window from the history), ``--series`` series, after a ``--backfill``-point backfill (not
  timed); median over ``--repeats`` runs of ``--ticks`` ticks. From ``BANK_MIN_SERIES``
  series on the hybrid runs as one ``HybridBank``; ``--crossover`` prints the hybrid's live
  rows/s both ways at several N (where the bank starts to pay);
- ``bytes/series``: what the live adapter holds per series once every history is full
  (``--points`` points each, 4 series): traced by ``tracemalloc``, and the size of its
  pickle (what a checkpoint stores, ``engine/persistence.py``).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.detection.detectors import (  # noqa: E402
    DETECTORS,
    SEASONAL_DETECTORS,
    make_detector,
)
from granite_panel.detection import live as live_module  # noqa: E402
from granite_panel.detection.live import OnlineDetectors, ZScoreDetector  # noqa: E402
from granite_panel.evaluation.synthetic import synthetic_stream  # noqa: E402

SEASON_LENGTH = 24  # the dashboard's default, told to the hybrids live
MEMORY_SERIES = 4


def live_kwargs(name: str) -> dict:
    """Keyword arguments ``live_detector`` gives the detector (see detection/live.py)."""
    return {"period": SEASON_LENGTH} if name in SEASONAL_DETECTORS else {}


def idle_rows_per_second(name: str, points: int, repeats: int) -> float:
    values = synthetic_stream(0, 1, points)[0][0]
    rates = []
    for _ in range(repeats):
        det = make_detector(name, **live_kwargs(name))
        t0 = time.perf_counter()
        det.score_series(values)
        rates.append(points / (time.perf_counter() - t0))
    return statistics.median(rates)


def live_rows_per_second(name: str, n_series: int, backfill: int, ticks: int,
                         repeats: int) -> float:
    values = synthetic_stream(1, n_series, backfill + ticks * repeats)[0]
    if name == "zscore":  # live, the z-score reads its window from the engine's history
        seed = ZScoreDetector()
        w = seed.window_size

        def tick(j):
            seed.score_many(values[:, j - w : j], values[:, j : j + 1])
    else:
        live = OnlineDetectors(name, n_series, **live_kwargs(name))
        live.score_block(values[:, :backfill])

        def tick(j):
            live.score_block(values[:, j : j + 1])
    rates = []
    for r in range(repeats):
        start = backfill + r * ticks
        t0 = time.perf_counter()
        for j in range(start, start + ticks):
            tick(j)
        rates.append(n_series * ticks / (time.perf_counter() - t0))
    return statistics.median(rates)


def bytes_per_series(name: str, points: int) -> tuple[float, float]:
    """(tracemalloc bytes, pickle bytes) per series of a live adapter after ``points``."""
    values = synthetic_stream(2, MEMORY_SERIES, points)[0]
    tracemalloc.start()
    live = OnlineDetectors(name, MEMORY_SERIES, **live_kwargs(name))
    live.score_block(values)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    blob = pickle.dumps(live, protocol=pickle.HIGHEST_PROTOCOL)
    return held / MEMORY_SERIES, len(blob) / MEMORY_SERIES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--series", type=int, default=100, help="series in the live run")
    parser.add_argument("--backfill", type=int, default=1000, help="points before timing")
    parser.add_argument("--ticks", type=int, default=30, help="ticks per live repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=10_000,
                        help="points per series for idle speed and memory")
    parser.add_argument("--crossover", default="",
                        help="comma-separated N: hybrid live rows/s per-series vs bank at each")
    args = parser.parse_args(argv)
    names = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        parser.error(f"unknown detector(s) {unknown}; allowed: {', '.join(DETECTORS)}")
    print(f"synthetic series; live: {args.series} series, backfill {args.backfill}, "
          f"{args.ticks} ticks x {args.repeats}; idle and memory: {args.points} points; "
          f"medians of {args.repeats}")
    header = f"{'detector':<16}{'idle rows/s':>12}{'live rows/s':>12}{'kB traced':>11}{'kB pickle':>11}"
    print(header)
    print("-" * len(header), flush=True)
    for name in names:
        idle = idle_rows_per_second(name, args.points, args.repeats)
        live = live_rows_per_second(name, args.series, args.backfill, args.ticks, args.repeats)
        traced, pickled = bytes_per_series(name, args.points)
        print(f"{name:<16}{idle:>12,.0f}{live:>12,.0f}{traced / 1e3:>11.1f}{pickled / 1e3:>11.1f}",
              flush=True)
    sizes = [int(n) for n in args.crossover.split(",") if n.strip()]
    if sizes:
        print(f"\nhybrid live rows/s (BANK_MIN_SERIES = {live_module.BANK_MIN_SERIES})")
        print(f"{'series':>8}{'per-series':>12}{'bank':>12}")
        keep = live_module.BANK_MIN_SERIES
        try:
            for n in sizes:
                rates = []
                for threshold in (10**9, 1):  # never the bank, always the bank
                    live_module.BANK_MIN_SERIES = threshold
                    rates.append(live_rows_per_second("hybrid", n, args.backfill, args.ticks,
                                                      args.repeats))
                print(f"{n:>8}{rates[0]:>12,.0f}{rates[1]:>12,.0f}", flush=True)
        finally:
            live_module.BANK_MIN_SERIES = keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
