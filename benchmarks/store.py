"""Store figures (issue 10, section 7): write rate, open-and-reload with many stored points,
one series' history downsampled for the chart.

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
        connection.executemany(
            "INSERT INTO points (series_id, ts, value, score, severity, flag) "
            "VALUES (?, ?, ?, ?, 0, 0)",
            ((k + 1, float(t), float(v), 0.0) for t, v in enumerate(values)))
        connection.commit()
    connection.close()


RELOAD = """
import resource, sys, time
start = time.perf_counter()
from granite_panel.store import open_store
store = open_store(sys.argv[1])
recent = store.recent(2048)
elapsed = time.perf_counter() - start
print(elapsed, sum(len(v[0]) for v in recent.values()),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def reload_figures(path: Path) -> tuple[float, int, float]:
    out = subprocess.run([sys.executable, "-c", RELOAD, f"sqlite:///{path}"], text=True,
                         capture_output=True, check=True, timeout=600).stdout.split()
    return float(out[0]), int(out[1]), float(out[2])


def history_figure(path: Path) -> tuple[float, float, int]:
    import holoviews as hv
    from holoviews.operation.downsample import downsample1d

    hv.extension("bokeh", logo=False)
    store = open_store(f"sqlite:///{path}", read_only=True)
    start = time.perf_counter()
    ts, value, *_ = store.history("s0")
    read = time.perf_counter() - start
    curve = hv.Curve((ts, value))
    small = downsample1d(curve, algorithm="lttb", width=2000, x_range=(ts[0], ts[-1]),
                         dynamic=False)
    total = time.perf_counter() - start
    store.close()
    return read, total, len(small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=10_000_000)
    parser.add_argument("--write-points", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true")
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
        for database, url in urls.items():
            for n in (1, 100, 1000):
                points = min(args.write_points, 2000) if n == 1 else args.write_points
                rate = write_rate(url(n), n, points)
                print(f"write {database:10s} {n:5d} series/batch: {rate:12,.0f} points/s "
                      f"({points:,} points)", flush=True)
        n_series = 1000
        per_series = args.stored // n_series
        big = folder / "big.db"
        start = time.perf_counter()
        fill_sqlite(big, n_series, per_series)
        print(f"fill sqlite {n_series * per_series:,} points: {time.perf_counter() - start:.1f} s "
              f"({big.stat().st_size / 2**20:,.0f} MiB)", flush=True)
        elapsed, reloaded, rss = reload_figures(big)
        print(f"open + recent(2048) over {n_series * per_series:,} stored points: {elapsed:.2f} s, "
              f"{reloaded:,} points reloaded, max RSS {rss:,.0f} MiB", flush=True)
        one = folder / "one.db"
        fill_sqlite(one, 1, 1_000_000)
        read, total, shown = history_figure(one)
        print(f"history of 1,000,000 points: read {read * 1000:.0f} ms, read + LTTB to {shown:,}: "
              f"{total * 1000:.0f} ms", flush=True)
    finally:
        if cluster is not None:
            cluster.remove()


if __name__ == "__main__":
    main()
