"""Run every online detector over the NAB files and score them with NAB's rules.

    .venv/bin/python benchmarks/nab.py --data ../shared/data/nab/data \\
        --labels ../shared/data/nab/labels [--detectors zscore,forecast] [--per-file]

Each file is scored from a fresh detector, row by row as a stream would feed it (the
detector's ``score_series``, which equals ``update`` row by row). One threshold per profile
for the whole corpus, picked by NAB's sweep. rows/s is total rows over total detector time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.detectors import DETECTORS, make_detector  # noqa: E402
from granite_panel.nab_scoring import (  # noqa: E402
    PROFILES,
    FileLabels,
    load_windows,
    score_corpus,
    window_indices,
)


def load_corpus(data_dir: Path, labels_dir: Path):
    """``{name: (timestamps, values, FileLabels)}`` for every CSV that has labels."""
    windows = load_windows(labels_dir)
    corpus = {}
    for path in sorted(data_dir.rglob("*.csv")):
        name = path.relative_to(data_dir).as_posix()
        if name not in windows:
            continue
        frame = pd.read_csv(path)
        ts = pd.to_datetime(frame["timestamp"]).to_numpy(dtype="datetime64[ns]")
        labels = FileLabels(len(frame), window_indices(ts, windows[name]), name=name)
        corpus[name] = (ts, frame["value"].to_numpy(dtype=float), labels)
    return corpus


def run_detector(name: str, corpus) -> tuple[dict, float, int]:
    scores, seconds, rows = {}, 0.0, 0
    for fname, (_, values, labels) in corpus.items():
        det = make_detector(name)
        t0 = time.perf_counter()
        scores[fname] = (det.score_series(values), labels)
        seconds += time.perf_counter() - t0
        rows += len(values)
    return scores, seconds, rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="NAB data folder")
    parser.add_argument("--labels", type=Path, required=True, help="NAB labels folder or file")
    parser.add_argument(
        "--detectors", default=",".join(DETECTORS), help="comma-separated detector names"
    )
    parser.add_argument("--per-file", action="store_true", help="per-file TP/FN/FP (standard)")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    corpus = load_corpus(args.data, args.labels)
    n_windows = sum(len(lab.scored_windows) for _, _, lab in corpus.values())
    print(f"{len(corpus)} files, {n_windows} windows, "
          f"{sum(len(v) for _, v, _ in corpus.values())} rows")
    header = f"{'detector':<12}" + "".join(f"{p:>20}" for p in PROFILES) + f"{'rows/s':>12}"
    lines = [header, "-" * len(header)]
    for name in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        scores, seconds, rows = run_detector(name, corpus)
        results = score_corpus(scores)
        line = f"{name:<12}" + "".join(f"{results[p].normalized:>20.1f}" for p in PROFILES)
        line += f"{rows / seconds:>12,.0f}"
        lines.append(line)
        print(line, flush=True)
        if args.per_file:
            std = results["standard"]
            print(f"  standard threshold {std.threshold:.6g}, raw {std.raw:.3f}")
            for fname, fs in std.files.items():
                print(f"  {fname:<55} score {fs.score:7.3f} tp {fs.tp} fn {fs.fn} fp {fs.fp}")
    print()
    print("\n".join(lines))
    print(f"\ntotal time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
