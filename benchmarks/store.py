"""Store figures (issue 10, section 7): write rate; the engine's tick with and without the
store at 1,000 series; start-up (the engine resuming) and RSS over 10 million stored points;
one series' history over 1 million points, aggregated for the chart.

    python benchmarks/store.py [--stored 10000000] [--postgres]

Prints figures; asserts nothing. With --postgres a throwaway cluster is started
(tests/postgres.py). The stored set for the reload figure is written straight through sqlite3
(the fill is set-up, not what is measured).
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from granite_panel.store import Batch, open_store  # noqa: E402
from granite_panel.store.schema import ROLLUP_SECONDS  # noqa: E402
from granite_panel.store.store import UPSERT_ROLLUP, _rollup_rows  # noqa: E402


def write_rate(url: str, series_per_batch: int, points: int) -> float:
    store = open_store(url)
    ticks = max(1, points // series_per_batch)
    names = [f"s{k}" for k in range(series_per_batch)]
    store.submit(Batch(points=[(n, -1.0, 0.0, 0.0, 0, 0) for n in names])).result(60)
    start = time.perf_counter()
    futures = [store.submit(Batch(points=[(n, float(t), float(t), 0.1, 0, 0) for n in names]))
               for t in range(ticks)]
    for future in futures:
        future.result(600)
    elapsed = time.perf_counter() - start
    store.close()
    return ticks * series_per_batch / elapsed


def fill_sqlite(path: Path, n_series: int, per_series: int) -> None:
    open_store(f"sqlite:///{path}").close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    connection.executemany("INSERT INTO series (id, name) VALUES (?, ?)",
                           [(k + 1, f"s{k}") for k in range(n_series)])
    rng = np.random.default_rng(0)
    for k in range(n_series):
        values = rng.normal(size=per_series)
        rows = [(k + 1, float(60 * t), float(v), 0.0, 0, 0) for t, v in enumerate(values)]
        connection.executemany(
            "INSERT INTO points (series_id, ts, value, score, severity, flag) "
            "VALUES (?, ?, ?, ?, ?, ?)", rows)
        for width in ROLLUP_SECONDS:  # what the store's writer keeps beside the points
            connection.executemany(UPSERT_ROLLUP.format(w=width, p=", ".join("?" * 9)),
                                   _rollup_rows(rows, width))
        connection.commit()
    connection.close()


RESUME = """
import resource, sys, time
start = time.perf_counter()
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.store import open_store
settings = Settings(source="push", detector=sys.argv[2], data_generation_interval=1.0,
                    fallback_model="SeasonalNaive", model_name="/nonexistent", max_series=100000)
engine = Engine(settings, store=open_store(sys.argv[1]))
elapsed = time.perf_counter() - start
print(elapsed, engine.restored["points"], engine.restored["seconds"],
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
if sys.argv[3] == "checkpoint":
    engine.close()  # the clean stop: a checkpoint of the warmed detectors
"""


def resume_figures(path: Path, detector: str, then: str = "") -> tuple[float, int, float, float]:
    """A fresh process starts an engine on the stored file: (seconds to an engine ready to
    serve, points reloaded, seconds of that in the restore, max RSS MiB)."""
    done = subprocess.run([sys.executable, "-c", RESUME, f"sqlite:///{path}", detector, then],
                          text=True, capture_output=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"resume failed:\n{done.stderr[-3000:]}")
    out = done.stdout.split()
    return float(out[0]), int(out[1]), float(out[2]), float(out[3])


def tick_times(n_series: int, url: str | None, ticks: int = 40) -> float:
    """Median ms of a pushed slot for ``n_series`` series (closing the previous slot: detection,
    forecast, and with a store the submit of its rows), with or without the store."""
    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings
    from granite_panel.sources.points import Points

    settings = Settings(source="push", data_generation_interval=60.0, max_series=100000,
                        fallback_model="SeasonalNaive", model_name="/nonexistent",
                        context_length=64, forecast_horizon=8)
    engine = Engine(settings, store=None if url is None else open_store(url))
    names = tuple(f"s{k}" for k in range(n_series))
    rng = np.random.default_rng(0)
    t0 = 1_700_000_000.0
    times = []
    for t in range(ticks + 10):
        points = Points(names, np.full(n_series, t0 + 60 * t), rng.normal(size=n_series))
        start = time.perf_counter()
        result = engine.ingest_points(points, now=t0 + 60 * t + 1)
        if result.committed is not None:
            result.committed.result(60)  # what /api/ingest waits for before answering
        if t >= 10:
            times.append(time.perf_counter() - start)
    engine.close()
    return float(np.median(times)) * 1000


def history_figure(path: Path) -> tuple[float, float, int]:
    """What the dashboard's stored-history chart does for one series over all its points:
    the store aggregates 2,000 spans (min/max), then HoloViews' LTTB thins it for drawing."""
    import holoviews as hv
    from holoviews.operation.downsample import downsample1d

    from granite_panel.ui.history import SPANS, overview_frame

    hv.extension("bokeh", logo=False)
    store = open_store(f"sqlite:///{path}", read_only=True)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        frame = overview_frame(store.overview("s0", None, None, SPANS))
        read = time.perf_counter() - start
        curve = hv.Curve(frame, "time", "value")
        small = downsample1d(curve, algorithm="lttb", width=2000, dynamic=False)
        times.append((read, time.perf_counter() - start))
    store.close()
    read, total = np.median(np.array(times), axis=0)
    return read, total, len(small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=10_000_000)
    parser.add_argument("--write-points", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--parts", default="writes,tick,resume,history",
                        help="which figures (comma-separated): writes, tick, resume, history")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="granite-store-bench-"))
    urls = {"sqlite": lambda n: f"sqlite:///{folder / f'w{n}.db'}"}
    cluster = None
    if args.postgres:
        from tests import postgres

        cluster = postgres.PostgresCluster()
        cluster.init()
        cluster.start()
        for n in (1, 100, 1000):
            cluster.psql(f"CREATE DATABASE w{n}")
        urls["postgresql"] = lambda n: cluster.url(f"w{n}")
    try:
        parts = set(args.parts.split(","))
        for database, url in urls.items() if "writes" in parts else ():
            for n in (1, 100, 1000):
                points = min(args.write_points, 2000) if n == 1 else args.write_points
                rate = write_rate(url(n), n, points)
                print(f"write {database:10s} {n:5d} series/batch: {rate:12,.0f} points/s "
                      f"({points:,} points)", flush=True)
        for n in (1000,) if "tick" in parts else ():
            without = tick_times(n, None)
            with_store = tick_times(n, urls["sqlite"](f"t{n}"))
            print(f"tick with {n:,} series: {without:.1f} ms without the store, {with_store:.1f} "
                  f"ms with SQLite (commit awaited): ratio {with_store / without:.2f}", flush=True)
        for n_series in (100, 1000) if "resume" in parts else ():
            per_series = args.stored // n_series
            big = folder / f"big{n_series}.db"
            start = time.perf_counter()
            fill_sqlite(big, n_series, per_series)
            print(f"fill sqlite {n_series * per_series:,} points in {n_series:,} series: "
                  f"{time.perf_counter() - start:.1f} s ({big.stat().st_size / 2**20:,.0f} MiB)",
                  flush=True)
            for detector, then in (("zscore", ""), ("hybrid", "checkpoint"), ("hybrid", "")):
                if detector == "hybrid" and n_series > 100:
                    continue  # its replay without a checkpoint: ~9k points/s, minutes here
                elapsed, reloaded, restore, rss = resume_figures(big, detector, then)
                what = "no checkpoint, replays the kept points" if then else "from a checkpoint"
                if detector == "zscore":
                    what = "z-score needs no replay"
                print(f"start-up over {n_series * per_series:,} stored points, {detector} "
                      f"({what}): engine ready in {elapsed:.2f} s (restore {restore:.2f} s, "
                      f"{reloaded:,} points read), max RSS {rss:,.0f} MiB", flush=True)
        if "history" not in parts:
            return
        one = folder / "one.db"
        fill_sqlite(one, 1, 1_000_000)
        read, total, shown = history_figure(one)
        print(f"history of 1,000,000 stored points for the chart: store aggregation "
              f"{read * 1000:.0f} ms, + LTTB to {shown:,} points {total * 1000:.0f} ms (median "
              "of 5)", flush=True)
    finally:
        if cluster is not None:
            cluster.remove()


if __name__ == "__main__":
    main()
