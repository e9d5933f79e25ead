"""Latency of one engine tick against the forecaster call inside it, for 1 to 1000 series.

A tick is what the stream thread does every DATA_GENERATION_INTERVAL seconds and what a
reader then asks for: ``engine.step()`` (generate, detect, forecast, store) followed by
``engine.snapshot(last=100)``; both are in the timed region. Beside it, the bare
``forecaster.predict(context)`` on the same [N, context] array shows how much of the tick
is the model and how much is the engine around it.

Forecasters:

* ``fallback``: the statsforecast model the engine is configured with (FALLBACK_MODEL),
  which is what runs live where TTM-R2 cannot be downloaded. TTM loading is switched off
  so the fallback serves every tick. Timed after warm-up fits, between refits (see
  StatisticalForecaster: fits are time-budgeted per tick, fitted series use ``forward``).
* ``ttm-shaped``: a randomly initialised TinyTimeMixer of the shape of TTM-R2 512-96
  (patch 64, d_model 192, 2 layers, 3 adaptive patching levels, decoder 128 x 2: 805k
  parameters), injected through ``ForecastService(loader=...)``. Its forecasts are noise;
  it is there for timing only and is never called TTM-R2. ``--ttm-shape get_random_ttm``
  uses ``tsfm_public.toolkit.get_model.get_random_ttm(512, 96)`` instead, which builds a
  different, larger model (patch 128, d_model 256, 3 layers: 1.78M parameters).

Run: ``python benchmarks/tick_latency.py [--series 1 10 100 1000] [--ticks 30]
[--warmup 3] [--forecaster fallback|ttm-shaped|all]``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded here
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from granite_panel.engine.core import Engine  # noqa: E402
from granite_panel.forecasting.service import (  # noqa: E402
    ForecastService,
    StatisticalForecaster,
    TTMForecaster,
    pick_device,
)
from granite_panel.settings import Settings  # noqa: E402

TTM_SHAPED_LABEL = "TTM-shaped (random weights, timing only)"
REAL_FITS = 100  # series fitted for real in the fallback warm-up; more are copies of these


def ttm_disabled(*args):
    raise RuntimeError("TTM switched off: this run measures the fallback")


def r2_shaped_ttm(context_length: int, horizon: int):
    """Random weights in the architecture of TTM-R2 512-96 (805k parameters)."""
    from tsfm_public import TinyTimeMixerConfig, TinyTimeMixerForPrediction

    config = TinyTimeMixerConfig(
        context_length=context_length,
        prediction_length=horizon,
        patch_length=64,
        patch_stride=64,
        num_input_channels=1,
        d_model=192,
        num_layers=2,
        adaptive_patching_levels=3,
        decoder_d_model=128,
        decoder_num_layers=2,
    )
    return TinyTimeMixerForPrediction(config)


def ttm_shaped_loader(shape: str):
    def load(model_name, context_length, horizon, device):
        if shape == "get_random_ttm":
            from tsfm_public.toolkit.get_model import get_random_ttm

            model = get_random_ttm(context_length, horizon)
        else:
            model = r2_shaped_ttm(context_length, horizon)
        return TTMForecaster(model, name=TTM_SHAPED_LABEL, horizon=horizon, device=device)

    return load


def build_engine(settings: Settings, kind: str, ttm_shape: str = "r2") -> Engine:
    return Engine(settings, forecasts=build_forecasts(settings, kind, ttm_shape))


def build_forecasts(settings: Settings, kind: str, ttm_shape: str = "r2") -> ForecastService:
    """The forecast service of a benchmark engine, its model loaded."""
    fallback = StatisticalForecaster(
        model=settings.fallback_model,
        horizon=settings.forecast_horizon,
        season_length=settings.season_length,
    )
    forecasts = ForecastService(
        model_name="random-weights-ttm" if kind == "ttm-shaped" else settings.model_name,
        context_length=settings.context_length,
        horizon=settings.forecast_horizon,
        use_gpu=settings.use_gpu,
        fallback=fallback,
        loader=ttm_shaped_loader(ttm_shape) if kind == "ttm-shaped" else ttm_disabled,
    )
    state = forecasts.wait_until_loaded(600)
    if kind == "ttm-shaped" and state != "ready":
        raise SystemExit(f"could not build the TTM-shaped model: {forecasts.error}")
    return forecasts


def fit_fallback(engine: Engine) -> str:
    """Fit every series once (what the per-tick budget would do over many ticks)."""
    forecaster = engine.forecasts.fallback
    if forecaster.model == "SeasonalNaive":
        return "nothing to fit"
    context = engine.ring.last_values(engine.settings.context_length)
    n = context.shape[0]
    real = min(n, REAL_FITS)
    during_warmup = forecaster.fitted_series
    budget, forecaster.fit_budget_s = forecaster.fit_budget_s, math.inf
    started = time.perf_counter()
    try:
        forecaster.predict(context[:real])
    finally:
        forecaster.fit_budget_s = budget
    fit_s = time.perf_counter() - started
    for i in range(real, n):  # same kind of fitted state, without minutes of fitting
        forecaster._fitted[i] = copy.deepcopy(forecaster._fitted[i % real])
        forecaster._fitted_at[i] = forecaster._calls
    note = f"{real} fitted ({during_warmup} by the warm-up ticks' budget, the rest in {fit_s:.1f} s)"
    return note + (f", {n - real} copies of those" if n > real else "")


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def measure(settings: Settings, kind: str, ticks: int, warmup: int, ttm_shape: str) -> dict:
    engine = build_engine(settings, kind, ttm_shape)
    for _ in range(warmup):  # the first one backfills a context
        engine.step()
        engine.snapshot(last=100)
    fitted = fit_fallback(engine) if kind == "fallback" else ""
    forecaster = engine.forecasts.ttm if kind == "ttm-shaped" else engine.forecasts.fallback
    context = engine.ring.last_values(settings.context_length)
    forecaster.predict(context)  # warm the bare call too
    inside_s = []  # the forecaster call made inside each tick, timed where the engine makes it
    bare_predict = forecaster.predict

    def timed_predict(*args, **kwargs):
        started = time.perf_counter()
        try:
            return bare_predict(*args, **kwargs)
        finally:
            inside_s.append(time.perf_counter() - started)

    forecaster.predict = timed_predict
    tick_ms, model_ms, outside_ms = [], [], []
    for _ in range(ticks):
        inside_s.clear()
        started = time.perf_counter()
        engine.step()
        engine.snapshot(last=100)
        tick_ms.append((time.perf_counter() - started) * 1000)
        outside_ms.append(tick_ms[-1] - sum(inside_s) * 1000)
        context = engine.ring.last_values(settings.context_length)  # the tick's own input
        started = time.perf_counter()
        forecaster.predict(context)
        model_ms.append((time.perf_counter() - started) * 1000)
    forecaster.predict = bare_predict
    served_by = engine.predictions[-1].model
    params = ""
    if kind == "ttm-shaped":
        params = f"{sum(p.numel() for p in forecaster.model.parameters()):,} parameters"
    return {
        "params": params,
        "n": settings.n_series,
        "ticks": ticks,
        "active": served_by,
        "expected": forecaster.name,
        "tick_med": statistics.median(tick_ms),
        "tick_p95": percentile(tick_ms, 95),
        "model_med": statistics.median(model_ms),
        "model_p95": percentile(model_ms, 95),
        "outside_med": statistics.median(outside_ms),
        "fitted": fitted,
        "errors": engine.counters["errors"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--ticks", type=int, default=30, help="timed ticks per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed ticks first")
    parser.add_argument(
        "--big-ticks",
        type=int,
        default=10,
        help="timed ticks for N >= 1000, to keep the run short (0: same as --ticks)",
    )
    parser.add_argument(
        "--forecaster", choices=("fallback", "ttm-shaped", "all"), default="all"
    )
    parser.add_argument(
        "--ttm-shape",
        choices=("r2", "get_random_ttm"),
        default="r2",
        help="architecture of the random-weight TTM (default: that of TTM-R2 512-96)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads (0: torch's default); 1 is steadier on a busy machine",
    )
    args = parser.parse_args(argv)
    logging.getLogger("granite_panel").setLevel(logging.ERROR)
    kinds = ("fallback", "ttm-shaped") if args.forecaster == "all" else (args.forecaster,)

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    base = Settings.from_env()
    print("granite-panel tick latency: engine.step() + engine.snapshot(last=100)")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), TTM device: {pick_device(base.use_gpu)}"
    )
    print(
        f"settings: context {base.context_length}, horizon {base.forecast_horizon}, "
        f"history {base.history_limit}, z-window {base.anomaly_window_size}, "
        f"season {base.season_length}, fallback {base.fallback_model}"
    )
    print(f"ticks per case: {args.ticks} timed after {args.warmup} warm-up", end="")
    if args.big_ticks and args.big_ticks < args.ticks and max(args.series) >= 1000:
        print(f"; N >= 1000: {args.big_ticks} timed (reduced to keep the run short)", end="")
    print(f"\nload average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    header = (
        f"{'N':>5}  {'forecaster':<42} {'ticks':>5}  {'tick med':>9} {'tick p95':>9}  "
        f"{'model med':>9} {'model p95':>9}  {'tick/model':>10}  {'overhead':>9}  "
        f"{'outside':>8}"
    )
    print(header)
    print(
        f"{'':>5}  {'':<42} {'':>5}  {'ms':>9} {'ms':>9}  {'ms':>9} {'ms':>9}  {'':>10}  "
        f"{'ms':>9}  {'ms':>8}"
    )
    print("-" * len(header))
    notes = []
    started = time.perf_counter()
    for kind in kinds:
        for n in args.series:
            ticks = args.ticks
            if n >= 1000 and args.big_ticks:
                ticks = min(ticks, args.big_ticks)
            settings = Settings(**{**base.as_dict(), "n_series": n})
            r = measure(settings, kind, ticks, args.warmup, args.ttm_shape)
            ratio = r["tick_med"] / r["model_med"] if r["model_med"] > 0 else float("nan")
            print(
                f"{r['n']:>5}  {r['active'][:42]:<42} {r['ticks']:>5}  "
                f"{r['tick_med']:>9.2f} {r['tick_p95']:>9.2f}  "
                f"{r['model_med']:>9.2f} {r['model_p95']:>9.2f}  {ratio:>10.2f}  "
                f"{r['tick_med'] - r['model_med']:>9.2f}  {r['outside_med']:>8.2f}",
                flush=True,
            )
            if r["active"] != r["expected"]:
                notes.append(f"N={n} {kind}: served by {r['active']}, expected {r['expected']}")
            if r["errors"]:
                notes.append(f"N={n} {kind}: {r['errors']} tick errors")
            if r["params"] and n == args.series[0]:
                notes.append(f"{TTM_SHAPED_LABEL}: {args.ttm_shape} shape, {r['params']}")
            if r["fitted"]:
                notes.append(f"N={n} {kind} warm-up fits: {r['fitted']}")
        print()
    print("notes:")
    print("  tick/model = median tick / median bare forecaster call on the same [N, context] array;")
    print("  overhead = their difference (generation, detection, history, snapshot, bookkeeping).")
    print(
        "  outside = median over ticks of the tick less the forecaster call made inside it: the\n"
        "  same overhead without the noise of two separately timed model calls."
    )
    print(
        "  fallback: timed between refits; when series fall due (every 200 calls each) a tick "
        "also spends up to fit_budget_s (0.25 s) refitting."
    )
    print(f"  {TTM_SHAPED_LABEL}: random weights; NOT TTM-R2, whose weights cannot be")
    print("  downloaded here. Its timings stand for a TTM of that shape only.")
    for note in notes:
        print(f"  {note}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"total run: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
