"""A thousand live series: does the engine keep its 1 s schedule for minutes, and at what memory?

The engine runs as served: ``Engine.start()`` ticks in its own thread every
DATA_GENERATION_INTERVAL seconds (synthetic source, N series, the default detector unless
``--detector``), each tick forecasting a 1/FORECAST_EVERY share of the series in one
batched call of a TTM-shaped model (random weights in the shape of TTM-R2 512-96, see
tick_latency.py; timing only). Measured over ``--seconds`` after the warm-up:

* lag: each tick's start against its place on the fixed schedule (first tick + i x
  interval): a tick that overran pushes every later one back, so lag that grows means the
  engine fell behind; p50/p95/max;
* tick time (``engine.step()``): p50/p95/max;
* forecast age: per series, the most grid seconds between its newest forecast and the
  newest slot, sampled after every tick; the max over series and run;
* RSS (psutil) after the warm-up and at the end; per series: the history ring, the
  detectors (pickled size: their state as the checkpoint keeps it), the forecasts kept
  (predictions, ticks' predictions and pending forecasts, numpy ``nbytes``), the ticks kept
  for readers (``RECENT_TICKS``), and what is left of RSS over a bare process with the same
  imports and model (torch, libraries: not per series).

Run: ``timeout 900 python benchmarks/fleet_live.py [--series 1000] [--interval 1]
[--seconds 600] [--forecast-every 10] [--detector NAME]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded here
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from tick_latency import build_forecasts  # noqa: E402
from granite_panel.detection.detectors import DEFAULT_DETECTOR  # noqa: E402
from granite_panel.engine.core import Engine  # noqa: E402
from granite_panel.settings import Settings  # noqa: E402

MB = 1024 * 1024


class LiveRun:
    """Times every tick of a started engine: start against schedule, duration, ages."""

    def __init__(self, engine, interval: float):
        self.engine, self.interval = engine, interval
        self.starts: list[float] = []
        self.durations: list[float] = []
        self.age_max = np.zeros(0)  # per series: the oldest forecast seen after a tick
        self.unforecast_ticks = 0  # ticks after which some series had no forecast at all
        self._step = engine.step
        self._lock = threading.Lock()

    def _timed_step(self, *args, **kwargs):
        started = time.monotonic()
        try:
            return self._step(*args, **kwargs)
        finally:
            done = time.monotonic()
            ages = self.engine.forecast_ages()
            with self._lock:
                self.starts.append(started)
                self.durations.append(done - started)
                if len(self.age_max) < len(ages):
                    self.age_max = np.append(self.age_max, np.zeros(len(ages) - len(self.age_max)))
                self.unforecast_ticks += int(np.isnan(ages).any())
                self.age_max[: len(ages)] = np.fmax(self.age_max[: len(ages)], ages)

    def run(self, seconds: float | None = None, ticks: int | None = None) -> dict:
        """Start the engine, let it tick for ``seconds`` (or until ``ticks`` ticks), stop."""
        self.engine.step = self._timed_step  # the engine's thread calls self.step()
        try:
            self.engine.start()
            deadline = time.monotonic() + (seconds if seconds is not None else 1e9)
            while time.monotonic() < deadline and (ticks is None or len(self.starts) < ticks):
                time.sleep(min(0.05, self.interval / 4))
            self.engine.stop()
            self.engine.join(60)
        finally:
            del self.engine.step
        return self.figures()

    def figures(self) -> dict:
        with self._lock:
            starts, durations = np.array(self.starts), np.array(self.durations)
            age = self.age_max.copy()
        lag = starts - (starts[0] + self.interval * np.arange(len(starts))) if len(starts) else starts
        pct = lambda a, q: float(np.percentile(a, q)) if len(a) else float("nan")  # noqa: E731
        return {
            "ticks": len(starts),
            "lag_p50": pct(lag, 50), "lag_p95": pct(lag, 95), "lag_max": pct(lag, 100),
            "lag_last": float(lag[-1]) if len(lag) else float("nan"),
            "tick_p50": pct(durations, 50), "tick_p95": pct(durations, 95),
            "tick_max": pct(durations, 100),
            "age_max": float(age.max()) if len(age) else float("nan"),
            "age_p50": pct(age, 50),
            "unforecast_ticks": self.unforecast_ticks,
        }


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def _nbytes(*arrays) -> int:
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def memory_breakdown(engine) -> dict:
    """Bytes per part of the engine's state (see the module docstring for how)."""
    ring = engine.ring
    with engine._state_lock:
        history = _nbytes(ring.timestamps, ring.values, ring.score, ring.severity, ring.flag)
        detector = len(pickle.dumps(engine.detector, protocol=pickle.HIGHEST_PROTOCOL))
        predictions = sum(_nbytes(p.values, p.lower, p.upper, p.rows) for p in engine.predictions)
        tick_predictions = sum(
            _nbytes(t.prediction.values, t.prediction.lower, t.prediction.upper, t.prediction.rows)
            for t in engine.recent_ticks if t.prediction is not None
            and all(t.prediction is not p for p in engine.predictions))
        pending = sum(_nbytes(p.values, p.naive, p.scale, p.lower, p.upper, p.own, p.rows)
                      for p in engine.accuracy.pending)
        scores = sum(_nbytes(s.series_mase, s.series_naive_mase) for s in engine.accuracy.scores)
        ticks = sum(_nbytes(t.timestamps, t.values, t.score, t.severity)
                    for t in engine.recent_ticks)
    return {
        "history ring": history,
        "detectors (pickled)": detector,
        "forecasts (kept, in ticks, pending)": predictions + tick_predictions + pending,
        "accuracy window (per-series MASE)": scores,
        "recent ticks (points)": ticks,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    parser.add_argument("--seconds", type=float, default=600.0, help="timed run after warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="ticks (stepped) before the run")
    parser.add_argument("--forecast-every", type=int, default=10, help="FORECAST_EVERY")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (0: torch's default); 1 by default: on "
                        "the shared 2-core machine 2 threads made one share's call 15-25x slower")
    args = parser.parse_args(argv)
    logging.getLogger("granite_panel").setLevel(logging.ERROR)
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    base = Settings.from_env()
    settings = Settings(**{**base.as_dict(), "n_series": args.series,
                           "data_generation_interval": args.interval,
                           "forecast_every": args.forecast_every, "detector": args.detector,
                           "database_url": "memory"})
    print(f"granite-panel fleet live: {args.series} series every {args.interval:g} s for "
          f"{args.seconds:g} s, FORECAST_EVERY={args.forecast_every}, detector {args.detector}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rss_start = rss_mb()
    started = time.perf_counter()
    forecasts = build_forecasts(settings, "ttm-shaped")
    forecasts.ttm.predict(np.zeros((args.series // args.forecast_every, settings.context_length)))
    rss_model = rss_mb()  # libraries, the model and torch's buffers for one share's batch
    engine = Engine(settings, forecasts=forecasts)
    for _ in range(args.warmup):  # the first backfills a context (and warms the detectors)
        engine.step()
    warm_s = time.perf_counter() - started
    rss_warm = rss_mb()
    print(f"warm-up: {warm_s:.0f} s (model built, {args.warmup} ticks, the first with a "
          f"{settings.context_length}-point backfill); RSS {rss_warm:.0f} MB "
          f"(imports {rss_start:.0f} MB, with the model and one batched call {rss_model:.0f} MB)")
    live = LiveRun(engine, args.interval)
    load_during = []
    sampler = threading.Thread(target=lambda: [
        (load_during.append(os.getloadavg()[0]), time.sleep(10)) for _ in range(int(args.seconds // 10) + 1)
    ], daemon=True)
    sampler.start()
    r = live.run(seconds=args.seconds)
    rss_end = rss_mb()
    n, every, interval = args.series, args.forecast_every, args.interval
    print(f"\nticks: {r['ticks']} in {args.seconds:g} s (schedule: "
          f"{int(args.seconds / interval)}); errors: {engine.counters['errors']}; served by "
          f"{engine.predictions[-1].model if engine.predictions else None}")
    print(f"lag vs schedule:  p50 {r['lag_p50']:.3f} s  p95 {r['lag_p95']:.3f} s  "
          f"max {r['lag_max']:.3f} s  last {r['lag_last']:.3f} s   (target p95 < {interval:g} s)")
    print(f"tick time:        p50 {r['tick_p50']:.3f} s  p95 {r['tick_p95']:.3f} s  "
          f"max {r['tick_max']:.3f} s")
    print(f"forecast age:     max over series {r['age_max']:.1f} s, median series' max "
          f"{r['age_p50']:.1f} s (schedule bound {every * interval:g} s; target <= 10 s); "
          f"ticks with a series never forecast: {r['unforecast_ticks']}")
    print(f"RSS:              after warm-up {rss_warm:.0f} MB, at the end {rss_end:.0f} MB "
          f"(target <= 2048 MB)")
    parts = memory_breakdown(engine)
    print(f"\nper series ({n} series):")
    for name, size in parts.items():
        print(f"  {name:<38} {size / n / 1024:>9.1f} KiB   ({size / MB:.1f} MB in all)")
    counted = sum(parts.values())
    print(f"  {'sum of the above':<38} {counted / n / 1024:>9.1f} KiB   ({counted / MB:.1f} MB)")
    print(f"  RSS at the end minus the process with the model: "
          f"{(rss_end - rss_model):.0f} MB ({(rss_end - rss_model) * 1024 / n:.1f} KiB a series)")
    print(f"load average during (1 min, every 10 s): "
          f"{' '.join(f'{x:.1f}' for x in load_during)}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
