"""The trainer inside the live stream: promoted model's live MASE against the fallback's,
and the tick time while it trains.

    python benchmarks/live_training.py --source synthetic [--series 3]
    python benchmarks/live_training.py --source /work/shared/data/ett/ETTh1.csv
    python benchmarks/live_training.py --fast-fill --isolation thread   # the tick cost of each

What it does, as ``serve`` with TRAINING=auto would (no hub: the TTM-R2 load fails at once):

1. ``--fill`` ticks of the stream (after the one-context backfill) fill the in-memory
   history; the fallback (FALLBACK_MODEL, AutoTheta by default) serves. The median tick
   time of the last ``--timed`` of them is the tick time without the trainer.
2. The engine's trainer starts in the background (the same ``Trainer`` serve starts,
   TRAIN_THREADS default: all cores but one); the stream keeps ticking every
   ``--interval`` seconds meanwhile: the median tick time while it trains.
3. When the run ends (promoted or not, the card says why), ``--after`` more ticks run
   back to back. A second engine, training off, runs the same number of ticks on the same
   stream: the fallback alone.

Printed: live MASE (the tracker's: MAE over the series' in-sample seasonal-naive error) of
what served over the forecasts made in the last part, for both engines, beside seasonal
naive on the same points, and the tick times. Nothing is written to the repository:
models go to a temporary MODELS_DIR.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from granite_panel.engine.core import Engine  # noqa: E402
from granite_panel.settings import Settings  # noqa: E402


def settings_for(args, models_dir: str, training: str) -> Settings:
    options = dict(
        source=args.source,
        n_series=args.series,
        model_name=os.path.join(models_dir, "no-hub-model"),  # TTM-R2 cannot be loaded here
        models_dir=models_dir,
        training=training,
        train_seconds=args.train_seconds,
        train_isolation=args.isolation,
        fallback_model=args.fallback,
        history_limit=args.history,
        # every forecast made after training (less two horizons) is in the scored window
        accuracy_window=max(1, args.after - 2 * 96),
        seed=args.seed,
    )
    return Settings(**options)


def timed_ticks(engine: Engine, n: int, interval: float = 0.0) -> list[float]:
    """Tick ``n`` times; milliseconds of each; ``interval`` paces them as the live stream does."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        engine.step()
        elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        if interval:
            time.sleep(max(0.0, interval - elapsed))
    return times


def fill(engine: Engine, n: int, fast: bool, timed: int) -> list[float]:
    """The fill ticks; ``fast`` serves seasonal naive in all but the last ``timed`` (a
    benchmark shortcut: the configured fallback is back, refitted, before training starts
    and long before the scored forecasts)."""
    if not fast:
        return timed_ticks(engine, n)
    from granite_panel.forecasting.service import StatisticalForecaster

    fallback = engine.forecasts.fallback
    engine.forecasts.fallback = StatisticalForecaster(
        "SeasonalNaive", fallback.horizon, season_length=fallback.season_length
    )
    try:
        timed_ticks(engine, max(0, n - timed))
    finally:
        engine.forecasts.fallback = fallback
    return timed_ticks(engine, min(n, timed))


def live_scores(engine: Engine) -> dict:
    """Mean live MASE of what served and of seasonal naive over the tracker's window."""
    scores = list(engine.accuracy.scores)
    return {
        "models": sorted({s.model for s in scores}),
        "forecasts": len(scores),
        "mase": float(np.nanmean([s.mase for s in scores])),
        "naive_mase": float(np.nanmean([s.naive_mase for s in scores])),
        "mae": float(np.nanmean([s.mae for s in scores])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="synthetic", help="synthetic, or a CSV/Parquet file")
    parser.add_argument("--series", type=int, default=3, help="synthetic series")
    parser.add_argument("--fill", type=int, default=1536, help="ticks before training starts")
    parser.add_argument("--timed", type=int, default=200, help="of those, ticks timed at the end")
    parser.add_argument("--after", type=int, default=800, help="ticks after training")
    parser.add_argument("--interval", type=float, default=0.25, help="tick pace while training")
    parser.add_argument("--train-seconds", type=float, default=240.0)
    parser.add_argument("--history", type=int, default=2048, help="HISTORY_LIMIT")
    parser.add_argument("--fallback", default="AutoTheta", help="FALLBACK_MODEL")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--isolation", default="process", choices=["process", "thread"],
                        help="TRAIN_ISOLATION: train in a child process or a thread")
    parser.add_argument(
        "--fast-fill", action="store_true",
        help="seasonal naive serves the fill ticks but the last --timed (both engines)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    with tempfile.TemporaryDirectory() as models_dir:
        engine = Engine(settings_for(args, models_dir, "auto"))
        engine.use_trained_models(train=False)  # trainer started by hand below, at step 2
        engine.forecasts.wait_until_loaded(120)
        from granite_panel.forecasting.trainer import live_trainer

        trainer = live_trainer(
            engine.settings, engine.forecasts, engine.history_for_training, engine.step_seconds
        )
        started = time.perf_counter()
        before = fill(engine, args.fill, args.fast_fill, args.timed)[-args.timed :]
        fill_s = time.perf_counter() - started
        print(f"source {args.source}: {engine.n_series} series, step {engine.step_seconds:g} s")
        print(f"filled {engine.ring.size} points per series in {fill_s:.0f} s "
              f"(trainer needs {trainer.min_points()}); serving {engine.status()['active_model']}")
        assert trainer.start(), "the trainer did not start"
        during, training_ticks, by_phase = [], 0, {}
        while trainer.running:
            phase = trainer.status()["phase"]
            ms = timed_ticks(engine, 1, args.interval)
            during += ms
            by_phase.setdefault(phase, []).extend(ms)
            training_ticks += 1
        card = trainer.last_card or {}
        print(f"training: {trainer.status()['phase']}, {card.get('training_seconds')} s, "
              f"{card.get('steps')} steps, {card.get('train_windows')} windows; "
              f"{training_ticks} ticks meanwhile")
        print(f"  {card.get('decision') or trainer.status().get('error')}")
        print(f"  banner: {engine.forecasts.banner(engine.ring.size)}")
        timed_ticks(engine, args.after)
        trained = live_scores(engine)
        naive_series = engine.status()["naive_series"]

        baseline = Engine(settings_for(args, models_dir + "-none", "off"))
        baseline.forecasts.wait_until_loaded(120)
        fill(baseline, args.fill, args.fast_fill, args.timed)
        timed_ticks(baseline, training_ticks + args.after)
        fallback = live_scores(baseline)

    print(f"\nlive MASE over the last {trained['forecasts']} forecasts (made after training):")
    for label, row in (("with the trainer", trained), ("fallback only", fallback)):
        print(f"  {label:17s} {', '.join(row['models']):28s} MASE {row['mase']:.3f} "
              f"(seasonal naive {row['naive_mase']:.3f}; ratio {row['mase'] / row['naive_mase']:.3f})"
              f"  MAE {row['mae']:.4g}")
    print(f"  series served by seasonal naive (live MASE): {naive_series or 'none'}")
    print(f"\ntick ms (median): {statistics.median(before):.1f} without the trainer, "
          f"{statistics.median(during):.1f} while it trains "
          f"(p95 {np.percentile(during, 95):.1f}; {len(during)} ticks)")
    for phase, ms in by_phase.items():
        print(f"  while {phase}: median {statistics.median(ms):.1f} ms, p95 "
              f"{np.percentile(ms, 95):.1f} ms ({len(ms)} ticks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
