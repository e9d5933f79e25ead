"""W1ACAS, tsfm_public's online conformal score on forecast residuals, scored on NAB.

    .venv/bin/python benchmarks/nab_w1acas.py --data ../shared/data/nab/data \\
        --labels ../shared/data/nab/labels [--only NAME,NAME]

The issue names it as a candidate; this measures it rather than adding a detector. The
residuals are those of the one-step forecast the default detector already makes (the
hybrid's robust Holt-Winters, ``RobustSurprise``: ``level + season``). No TTM feeds it: a
NAB file's probation (the only part a detector may learn from before it is scored) is
400-3,400 points, less than the windows one training run needs (context 512 + horizon 96).

``get_forecast_conformal_adaptive_online_score`` is called as published (significance 0.01,
uniform weighting, 10-point batches, learning rate 0.001; its calibration window is the
whole past up to 5,000 points, so every p-value uses earlier points only) with one-step
``y_pred`` / ``y_true``. Rows, each with NAB's sweep and leave-one-category-out:

- ``w1acas``: ``1 - p``;
- ``w1acas_likelihood``: Numenta's anomaly likelihood of ``1 - p`` (the recipe
  ``cad_likelihood`` applies to CAD OSE: probation 750, log form) with the 5% spatial
  anomaly rule;
- ``alarm:hybrid+w1acas_likelihood``: the default detector, 1.0 where that reaches 1.0.

About 2 ms a point (torch, one thread): 4-5 minutes for the 31 files.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import nab  # noqa: E402
from granite_panel.detection.detectors import HybridDetector  # noqa: E402
from granite_panel.detection.likelihood import LikelihoodDetector  # noqa: E402
from granite_panel.evaluation.nab import score_corpus  # noqa: E402


def one_step_forecasts(values: np.ndarray) -> np.ndarray:
    """The hybrid's forecast of each point, made before it sees the point (the first
    point is its own forecast)."""
    detector = HybridDetector()
    surprise = detector.surprise
    forecasts = values.astype(float).copy()
    for i, value in enumerate(values):
        if surprise.level is not None:
            period = detector.ensemble.season.period
            seasonal = (float(surprise.season[surprise.n % period])
                        if period and period == surprise.season.size else 0.0)
            forecasts[i] = surprise.level + seasonal
        detector._update(float(value))
    return forecasts


def w1acas_scores(values: np.ndarray) -> np.ndarray:
    """``1 - p`` of every point (0 for the calibration points W1ACAS starts with)."""
    from tsfm_public.toolkit.w1acas import get_forecast_conformal_adaptive_online_score

    shape = (len(values), 1, 1)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameters
        p = get_forecast_conformal_adaptive_online_score(
            {"y_pred": one_step_forecasts(values).reshape(shape),
             "y_true": values.astype(float).reshape(shape)})
    return np.nan_to_num(1.0 - np.asarray(p, dtype=float).ravel(), nan=0.0)


def likelihood_scores(values: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """``cad_likelihood``'s recipe (Numenta's log-likelihood, 1.0 on a spatial anomaly,
    probation 750) over ``raw`` instead of CAD OSE's score."""
    recipe = LikelihoodDetector()
    return np.array([recipe.score(float(v), float(r)) for v, r in zip(values, raw)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="NAB data folder")
    parser.add_argument("--labels", type=Path, required=True, help="NAB labels folder or file")
    parser.add_argument("--only", default="",
                        help="only the files whose names contain one of these (comma-separated)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning, module="tsfm_public")
    corpus = nab.load_corpus(args.data, args.labels)
    if args.only:
        wanted = [part for part in args.only.split(",") if part]
        corpus = {f: c for f, c in corpus.items() if any(part in f for part in wanted)}
    rows, seconds = {}, 0.0
    w1, lik = {}, {}
    for name, (_, values, labels) in corpus.items():
        t0 = time.perf_counter()
        raw = w1acas_scores(values)
        seconds += time.perf_counter() - t0
        w1[name] = (raw, labels)
        lik[name] = (likelihood_scores(values, raw), labels)
    hybrid, _, _ = nab.run_detector("hybrid", corpus)
    rows["w1acas"] = w1
    rows["w1acas_likelihood"] = lik
    rows["alarm:hybrid+w1acas_likelihood"] = {
        f: (np.where(lik[f][0] >= 1.0, 1.0, hybrid[f][0]), hybrid[f][1]) for f in corpus}
    rows["hybrid"] = hybrid
    n_rows = sum(len(v) for _, v, _ in corpus.values())
    print(f"{len(corpus)} files, {n_rows} rows; W1ACAS {n_rows / seconds:,.0f} rows/s")
    print(f"{'row':<32}" + "".join(f"{p + ' (LOCO)':>30}" for p in nab.PROFILES))
    for row, scores in rows.items():
        swept = score_corpus(scores)
        cells = []
        for profile, prof in nab.PROFILES.items():
            loco = nab.leave_one_category_out([scores], prof)[0]
            cells.append(f"{swept[profile].normalized:.1f} ({loco:.1f})")
        print(f"{row:<32}" + "".join(f"{c:>30}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
