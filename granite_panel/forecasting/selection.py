"""Choosing models on evidence: the fallback by backtest, a trained TTM by validation.

Every score here is a MASE against seasonal naive on the same windows: the mean absolute
error of a model divided by seasonal naive's on exactly the windows it was scored on, so
seasonal naive is 1.00 by definition and below 1 means "beats same-as-last-season".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

# statsforecast models a fallback may be; SeasonalNaive is always a candidate and wins ties.
FALLBACK_CANDIDATES = ("SeasonalNaive", "AutoTheta", "AutoETS", "MSTL")


def seasonal_naive(context: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last ``season`` points (the last value when ``season`` is 1)."""
    season = max(1, min(season, context.shape[1]))
    last = context[:, -season:]
    reps = int(np.ceil(horizon / season))
    return np.tile(last, (1, reps))[:, :horizon].copy()


def fit_forecast(model: str, context: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """[rows, horizon]: a fresh statsforecast ``model`` fitted on each row of ``context``."""
    if model == "SeasonalNaive":
        return seasonal_naive(context, horizon, season)
    from statsforecast import models

    out = seasonal_naive(context, horizon, season)
    for i, row in enumerate(np.asarray(context, dtype=float)):
        try:
            out[i] = getattr(models, model)(season_length=season).forecast(y=row, h=horizon)[
                "mean"
            ]
        except Exception as exc:  # a numerically odd series keeps seasonal naive
            log.debug("%s failed on row %s: %s", model, i, exc)
    return out


def mase_against_naive(
    forecasts: np.ndarray, targets: np.ndarray, contexts: np.ndarray, season: int
) -> float:
    """MAE of ``forecasts`` over seasonal naive's MAE on the same windows (naive = 1.0)."""
    naive = seasonal_naive(contexts, targets.shape[1], season)
    scale = float(np.mean(np.abs(naive - targets)))
    error = float(np.mean(np.abs(np.asarray(forecasts) - targets)))
    return error / scale if scale > 0 else (0.0 if error == 0 else float("inf"))


def backtest_windows(
    history: np.ndarray,
    horizon: int,
    origins: int = 2,
    max_series: int = 8,
    max_context: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """(contexts, targets): the last ``origins`` non-overlapping horizons of a few series.

    Series with gaps are filled (last good value); at most ``max_series`` evenly chosen
    series and ``max_context`` points per context keep a backtest to a few seconds.
    """
    from .context import fill_gaps

    history = np.atleast_2d(np.asarray(history, dtype=float))
    rows = history[np.isfinite(history).sum(axis=1) > 0]
    if len(rows) > max_series:
        rows = rows[np.linspace(0, len(rows) - 1, max_series).astype(int)]
    rows = fill_gaps(rows)
    contexts, targets = [], []
    for k in range(1, origins + 1):
        cut = rows.shape[1] - k * horizon
        if cut < 2:
            break
        contexts.append(rows[:, max(0, cut - max_context) : cut])
        targets.append(rows[:, cut : cut + horizon])
    if not contexts:
        return np.empty((0, 0)), np.empty((0, horizon))
    width = min(c.shape[1] for c in contexts)
    return np.vstack([c[:, -width:] for c in contexts]), np.vstack(targets)


def choose_fallback(
    history: np.ndarray,
    horizon: int,
    season: int,
    candidates: Sequence[str] = FALLBACK_CANDIDATES,
    origins: int = 2,
    max_series: int = 8,
) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest backtest MASE (seasonal naive on ties), and all scores.

    Too little history for one backtest window gives seasonal naive with no scores.
    """
    contexts, targets = backtest_windows(history, horizon, origins, max_series)
    if contexts.size == 0 or contexts.shape[1] < 2 * season + 2:
        return "SeasonalNaive", {}
    scores = {}
    for name in ["SeasonalNaive", *[c for c in candidates if c != "SeasonalNaive"]]:
        started = time.perf_counter()
        forecast = fit_forecast(name, contexts, horizon, season)
        scores[name] = mase_against_naive(forecast, targets, contexts, season)
        log.debug("backtest %s: MASE %.3f (%.2f s)", name, scores[name], time.perf_counter() - started)
    best = min(scores, key=lambda n: (round(scores[n], 6), n != "SeasonalNaive"))
    return best, scores


def validation_split(
    history: np.ndarray, context_length: int, horizon: int, valid_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """(train part, validation part) of [n, t]: the last ``valid_fraction`` of time is held out.

    The validation part starts ``context_length`` points before the held-out span, so its
    windows forecast only points the training windows never saw.
    """
    history = np.atleast_2d(np.asarray(history, dtype=float))
    t = history.shape[1]
    held = max(horizon, int(round(t * valid_fraction)))
    cut = t - held
    return history[:, :cut], history[:, max(0, cut - context_length) :]


def score_on_windows(
    predict: Callable[[np.ndarray], np.ndarray],
    windows: np.ndarray,
    context_length: int,
    season: int,
) -> float:
    """MASE against seasonal naive of ``predict`` on [windows, context + horizon] windows."""
    contexts, targets = windows[:, :context_length], windows[:, context_length:]
    forecasts = np.vstack(
        [predict(contexts[i : i + 256]) for i in range(0, len(contexts), 256)]
    )[:, : targets.shape[1]]
    return mase_against_naive(forecasts, targets, contexts, season)


def promotion_decision(candidate: float, serving: float, serving_name: str) -> tuple[bool, str]:
    """A new model serves only when its validation MASE beats the serving model's."""
    if not np.isfinite(candidate):
        return False, "not promoted: its validation error is not finite"
    if candidate < serving:
        return True, (
            f"promoted: validation MASE {candidate:.2f} beats {serving_name}'s {serving:.2f}"
        )
    return False, (
        f"not promoted: validation MASE {candidate:.2f} does not beat "
        f"{serving_name}'s {serving:.2f}"
    )
