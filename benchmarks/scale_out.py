"""Batch scale-out on Dask: series/s with 1 and 2 workers, memory per worker, and no Dask.

Synthetic hourly series (daily season, trend, noise, spikes) scored by the detect path
(``score_all``) and forecast by the statistical forecast path (``forecast_frame`` with a
``ChunkForecaster``), the functions ``granite-panel detect/forecast [--dask]`` run. Each
figure is the time to scatter, compute and gather every chunk on an already started cluster
(cluster start is printed apart); workers are warmed first (imports, numba JIT), as a long
batch amortises them. Memory per worker: its peak resident memory (VmHWM) after the batch.

    timeout 900 python -m benchmarks.scale_out                      # 10k series
    timeout 900 python -m benchmarks.scale_out --series 100000 --forecast-series 0
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def synthetic(n_series: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    amp = rng.uniform(0.5, 5, (n_series, 1))
    values = amp * np.sin(2 * np.pi * t / 24 + phase) + 0.01 * rng.normal(size=(n_series, 1)) * t
    values += rng.normal(0, 0.3, (n_series, length))
    spikes = rng.integers(length // 4, length, n_series)
    values[np.arange(n_series), spikes] += 6 * amp[:, 0]
    return values


def cpu_seconds() -> float:
    return time.process_time()


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), in MiB.

    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a worker process spawned
    by the benchmark reported the benchmark's own peak (2,258 MiB for every 100k-series
    worker, the figure of the process holding all the data). VmHWM belongs to the
    process's own address space.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def warm(detector: str, model: str) -> None:
    """Import and JIT-compile what the tasks use, once per process."""
    from granite_panel.cli.detect import score_chunk
    from granite_panel.cli.forecast import ChunkForecaster

    values = synthetic(2, 96)
    score_chunk(list(values), detector, {})
    ChunkForecaster(False, model, 24, 24, 0.8).forecast_chunk(values)


def run_batches(values, ids, args, client=None) -> dict[str, float]:
    """Seconds for the detect batch and the forecast batch (here or on ``client``)."""
    import pandas as pd

    from granite_panel.cli.detect import score_all
    from granite_panel.cli.forecast import ChunkForecaster, Panel, forecast_frame

    seconds = {}
    started = time.perf_counter()
    scores = score_all(values.ravel(), ids, args.detector, {}, client, args.chunk_series)
    seconds["detect"] = time.perf_counter() - started
    assert np.isfinite(scores).all()
    if args.forecast_series:
        rows = values[: args.forecast_series]
        stamps = pd.date_range("2024-01-01", periods=rows.shape[1], freq="h")
        panel = Panel([f"s{i}" for i in range(len(rows))], stamps, rows, pd.Timedelta("1h"))
        forecaster = ChunkForecaster(False, args.model, args.horizon, 24, 0.8)
        started = time.perf_counter()
        frame = forecast_frame(panel, forecaster, client=client, chunk=args.chunk_series)
        seconds["forecast"] = time.perf_counter() - started
        assert len(frame) == len(rows) * args.horizon
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000, help="series to detect on")
    parser.add_argument("--forecast-series", type=int, default=1_000,
                        help="of those, how many to forecast (0: skip)")
    parser.add_argument("--length", type=int, default=168, help="points per series (a week hourly)")
    parser.add_argument("--detector", default="hybrid")
    parser.add_argument("--model", default="AutoTheta")
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--chunk-series", type=int, default=None,
                        help="series per task (default: the CLI's CHUNK_SERIES)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from granite_panel.forecasting.distributed import quiet_dask_logging

    quiet_dask_logging()
    values = synthetic(args.series, args.length)
    ids = np.repeat([f"s{i}" for i in range(args.series)], args.length)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{args.series} series x {args.length} points; detect with {args.detector}, "
          f"forecast {args.forecast_series} with {args.model} (horizon {args.horizon})")

    warm(args.detector, args.model)
    cpu_before = cpu_seconds()
    base = run_batches(values, ids, args)
    base_cpu = cpu_seconds() - cpu_before
    rates = {"none": base}
    print(f"no Dask (this process): " + ", ".join(
        f"{k} {n / base[k]:.1f} series/s ({base[k]:.1f} s)"
        for k, n in (("detect", args.series), ("forecast", args.forecast_series)) if k in base)
        + f"; peak RSS {peak_rss_mib():.0f} MiB; CPU {base_cpu:.1f} s")
    for workers in [int(w) for w in args.workers.split(",")]:
        started = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
        client.run(warm, args.detector, args.model)
        start_s = time.perf_counter() - started
        cpu_before = client.run(cpu_seconds)
        seconds = run_batches(values, ids, args, client)
        cpu = {w: t - cpu_before[w] for w, t in client.run(cpu_seconds).items()}
        rss = client.run(peak_rss_mib)
        rates[workers] = seconds
        print(f"{workers} worker(s): " + ", ".join(
            f"{k} {n / seconds[k]:.1f} series/s ({seconds[k]:.1f} s)"
            for k, n in (("detect", args.series), ("forecast", args.forecast_series)) if k in seconds)
            + f"; start+warm {start_s:.1f} s; peak RSS per worker "
            + ", ".join(f"{v:.0f}" for v in rss.values()) + " MiB; CPU s per worker "
            + ", ".join(f"{v:.1f}" for v in cpu.values()))
        client.close()
        cluster.close()
    if 1 in rates and 2 in rates:
        print("speed-up 2 workers vs 1: " + ", ".join(
            f"{k} {rates[1][k] / rates[2][k]:.2f}x" for k in rates[1])
            + f"; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
