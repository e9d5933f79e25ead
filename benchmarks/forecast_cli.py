"""Seconds per 1,000 series of ``granite-panel forecast``, with and without ``--train``.

    python benchmarks/forecast_cli.py [--series 1000] [--rows 1200] [--horizon 24] \\
        [--train-seconds 60] [--context-length 128]

The many-series file is cut from real data: every (channel, start) pair of ETTh1 and
ETTm1 (``/work/shared/data/ett``) gives one series of ``--rows`` points, in Nixtla's long
format. Each run is a fresh process (``python -m granite_panel.cli.main forecast``), so
import and model-load time are counted, as a user would see them. Prints wall seconds and
seconds per 1,000 series.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path("/work/shared/data/ett")


def many_series(n: int, rows: int) -> pd.DataFrame:
    frames = []
    for file in ("ETTh1.csv", "ETTm1.csv"):
        frame = pd.read_csv(DATA / file)
        frames.append((file, frame.drop(columns="date").to_numpy(dtype=float), frame.columns[1:]))
    pieces, k = [], 0
    start = pd.Timestamp("2020-01-01")
    ds = pd.date_range(start, periods=rows, freq="h")  # one hourly grid for every series
    while k < n:
        for file, values, channels in frames:
            for c, channel in enumerate(channels):
                offset = (k * 97) % (len(values) - rows)
                pieces.append(
                    pd.DataFrame({"unique_id": f"{file[:-4]}-{channel}-{k}", "ds": ds,
                                  "y": values[offset : offset + rows, c]})
                )  # fmt: skip
                k += 1
                if k == n:
                    break
            if k == n:
                break
    return pd.concat(pieces, ignore_index=True)


def run(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli.main", "forecast", *args],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print("   ", done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "(no output)")
    if done.returncode != 0:
        raise SystemExit(f"forecast failed with exit {done.returncode}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--context-length", type=int, default=128)
    parser.add_argument("--train-seconds", type=float, default=60)
    parser.add_argument("--model", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.csv"
        many_series(args.series, args.rows).to_csv(path, index=False)
        env = {**os.environ, "MODEL_NAME": str(Path(tmp) / "no-hub-model"),
               "MODELS_DIR": str(Path(tmp) / "models"), "HF_HUB_OFFLINE": "1"}  # fmt: skip
        common = [str(path), "-o", str(Path(tmp) / "out.csv"), "--horizon", str(args.horizon),
                  "--model", args.model, "--context-length", str(args.context_length)]  # fmt: skip
        print(f"{args.series} series x {args.rows} hourly points, horizon {args.horizon}")
        for label, extra in (
            ("without --train", []),
            (f"with --train ({args.train_seconds:g} s budget)", ["--train", "--train-seconds",
                                                                  str(args.train_seconds)]),
        ):  # fmt: skip
            seconds = run(common + extra, env)
            per_k = seconds / args.series * 1000
            print(f"  {label}: {seconds:.1f} s wall, {per_k:.1f} s per 1,000 series")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
