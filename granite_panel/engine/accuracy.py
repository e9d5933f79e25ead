"""How good the live forecasts are: conformal bands, their coverage, MAE and MASE.

Every forecast waits until its horizon has matured, then it is scored against what really
happened, beside a seasonal-naive forecast made from the same context. The matured errors
also calibrate the prediction band of the next forecasts (split conformal, through
``tsfm_public.toolkit.conformal.PostHocProbabilisticProcessor``).

Errors are pooled across series after dividing by each series' in-sample seasonal-naive
error (the MASE scale), so one calibration serves any number of series at the cost of one.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MIN_SCALE = 1e-8


def mase_scale(context: np.ndarray, season: int) -> np.ndarray:
    """Per series: mean |y[t] - y[t - season]| over the context (NaNs ignored)."""
    context = np.asarray(context, dtype=float)
    season = season if context.shape[1] > season else 1
    if context.shape[1] <= season:
        return np.ones(context.shape[0])
    diffs = np.abs(context[:, season:] - context[:, :-season])
    finite = np.isfinite(diffs)
    count = finite.sum(axis=1)  # a series with gaps everywhere has no scale yet: 1
    scale = np.where(finite, diffs, 0.0).sum(axis=1) / np.maximum(count, 1)
    scale = np.where(count > 0, scale, np.nan)
    return np.where(np.isfinite(scale) & (scale > MIN_SCALE), scale, 1.0)


class ConformalBands:
    """Symmetric bands ``forecast +- q[h] * scale`` at ``level``, from matured errors.

    ``q[h]`` is the conformal quantile of the scaled absolute error at step ``h``, computed
    by IBM's ``PostHocProbabilisticProcessor`` over the most recent ``max_samples`` matured
    (series, forecast) pairs. It is fitted again once ``RECALIBRATE_SHARE`` of those pairs
    are new (each tick while few are held): a fit over 1,000 pairs costs ~9 ms, which a
    10 Hz stream of one series would pay on every tick for a band that barely moved.
    """

    RECALIBRATE_SHARE = 0.05  # a cost knob (not tuned on any benchmark)

    def __init__(self, horizon: int, level: float = 0.8, max_samples: int = 1000):
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level}")
        self.horizon = horizon
        self.level = level
        self.max_samples = max_samples
        self.quantiles = [round((1 - level) / 2, 6), round(1 - (1 - level) / 2, 6)]
        self.min_samples = int(np.ceil(1 / (1 - level)))
        self.reset()

    def reset(self) -> None:
        self._actual: deque[np.ndarray] = deque(maxlen=self.max_samples)
        self._predicted: deque[np.ndarray] = deque(maxlen=self.max_samples)
        self.half_width: np.ndarray | None = None  # [horizon], in scaled units
        self._fresh = 0  # pairs added since the last fit

    @property
    def ready(self) -> bool:
        return self.half_width is not None

    def add(self, actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> None:
        """Learn from matured forecasts: ``actual``/``predicted`` are [n_series, horizon]."""
        if not len(actual) == len(predicted) == len(scale):
            raise ValueError(f"actual, predicted and scale have {len(actual)}, "
                             f"{len(predicted)} and {len(scale)} series; expected the same")
        whole = np.isfinite(actual).all(axis=1) & np.isfinite(predicted).all(axis=1)
        scale = np.asarray(scale, dtype=float)[whole, None]
        self._actual.extend(actual[whole] / scale)  # one row per (series, forecast) pair
        self._predicted.extend(predicted[whole] / scale)
        self._fresh += int(whole.sum())
        due = self._fresh >= max(1, self.RECALIBRATE_SHARE * len(self._actual))
        if len(self._actual) >= self.min_samples and (due or not self.ready):
            self._calibrate()

    def _calibrate(self) -> None:
        """Fit the conformal half width; skipped (tried again at the next ``add``) while
        tsfm_public is still being imported, so the tick never waits on an import."""
        from ..forecasting.ttm import tsfm_if_imported

        tsfm = tsfm_if_imported()
        if tsfm is None:
            return
        PostHocProbabilisticProcessor = tsfm.PostHocProbabilisticProcessor
        actual = np.stack(self._actual)[:, :, None]
        predicted = np.stack(self._predicted)[:, :, None]
        processor = PostHocProbabilisticProcessor(quantiles=self.quantiles)
        processor.train(y_cal_gt=actual, y_cal_pred=predicted)
        self._fresh = 0
        # Absolute-error conformal bands are symmetric: the upper quantile of a zero
        # forecast is the half width at each step.
        zero = np.zeros((1, self.horizon, 1))
        self.half_width = processor.predict(zero)[0, :, 0, 1]

    def bands(self, forecast: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each [n_series, horizon]; call only when ``ready``."""
        width = self.half_width[None, : forecast.shape[1]] * scale[:, None]
        return forecast - width, forecast + width


@dataclass
class PendingForecast:
    start: int  # absolute index of the first forecast point
    model: str
    values: np.ndarray  # [n_series, horizon]
    naive: np.ndarray
    scale: np.ndarray  # [n_series]
    lower: np.ndarray | None
    upper: np.ndarray | None
    own: np.ndarray | None = None  # the model's own forecast before any per-series fallback
    rows: np.ndarray | None = None  # engine rows of ``values`` (None: 0..len(values)-1)
    n_series: int | None = None  # series in the engine when it was made (per-series scores)


@dataclass(frozen=True)
class Score:
    model: str
    mae: float
    mase: float
    naive_mae: float
    naive_mase: float
    inside: int  # matured points inside the band (0 when there was no band)
    banded: int  # matured points that had a band
    # Per series: MASE of the model's own forecast and of seasonal naive (NaN: not scored).
    series_mase: np.ndarray | None = None
    series_naive_mase: np.ndarray | None = None


def score_forecast(actual: np.ndarray, pending: PendingForecast) -> Score:
    """Errors of one matured forecast and of its seasonal-naive twin on the same points."""
    valid = np.isfinite(actual) & np.isfinite(pending.values)  # no forecast for a new series
    error = np.abs(actual - pending.values)[valid]
    naive_error = np.abs(actual - pending.naive)[valid]
    scale = np.broadcast_to(pending.scale[:, None], actual.shape)[valid]
    inside = banded = 0
    if pending.lower is not None:
        within = (actual >= pending.lower) & (actual <= pending.upper)
        inside, banded = int(within[valid].sum()), int(valid.sum())
    own = pending.values if pending.own is None else pending.own
    series_mase = per_series_mase(actual, own, pending.scale)
    series_naive_mase = per_series_mase(actual, pending.naive, pending.scale)
    return Score(
        model=pending.model,
        mae=float(error.mean()) if error.size else float("nan"),
        mase=float((error / scale).mean()) if error.size else float("nan"),
        naive_mae=float(naive_error.mean()) if error.size else float("nan"),
        naive_mase=float((naive_error / scale).mean()) if error.size else float("nan"),
        inside=inside,
        banded=banded,
        series_mase=series_mase,
        series_naive_mase=series_naive_mase,
    )


def series_summary(scores, n_series: int) -> dict[str, np.ndarray]:
    """{"mase", "naive_mase", "scored"}: per series [n_series], the mean per-series MASE of
    ``scores`` (Score objects) where both were scored, NaN (and 0 scored) where never; a
    score older than a series (shorter arrays) has not scored it."""
    own_sum, naive_sum = np.zeros(n_series), np.zeros(n_series)
    count = np.zeros(n_series, dtype=np.int64)
    for score in scores:
        if score.series_mase is None:
            continue
        width = min(n_series, len(score.series_mase))
        own, naive = score.series_mase[:width], score.series_naive_mase[:width]
        both = np.isfinite(own) & np.isfinite(naive)
        own_sum[:width] += np.where(both, own, 0.0)
        naive_sum[:width] += np.where(both, naive, 0.0)
        count[:width] += both
    with np.errstate(invalid="ignore", divide="ignore"):
        mase = np.where(count > 0, own_sum / count, np.nan)
        naive_mase = np.where(count > 0, naive_sum / count, np.nan)
    return {"mase": mase, "naive_mase": naive_mase, "scored": count}


def widen(score: Score, pending: PendingForecast) -> Score:
    """A score of some rows with per-series MASE over all ``pending.n_series`` (NaN: not
    forecast then), so per-series windows line up whichever share a forecast covered."""
    width = pending.n_series if pending.n_series is not None else int(pending.rows.max()) + 1
    full = {}
    for key in ("series_mase", "series_naive_mase"):
        wide = np.full(width, np.nan)
        wide[pending.rows] = getattr(score, key)
        full[key] = wide
    return dataclasses.replace(score, **full)


def per_series_mase(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """[n_series] mean |actual - forecast| / scale over a matured horizon (NaN: no valid point)."""
    error = np.abs(actual - forecast) / scale[:, None]
    valid = np.isfinite(error)
    count = valid.sum(axis=1)
    total = np.where(valid, error, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class AccuracyTracker:
    """Forecasts waiting to mature, rolling scores of the last ``window``, and the bands.

    ``share``: how many forecasts it takes to cover every series once (FORECAST_EVERY,
    when each tick forecasts a share of the series in turn); the rolling window keeps
    ``window * share`` of them, so each series has ``window`` scores in it as with
    ``share`` 1. A forecast of some rows scores those rows (``record(rows=...)``)."""

    def __init__(self, horizon: int, level: float = 0.8, window: int = 50, share: int = 1):
        self.horizon = horizon
        self.window = window * max(1, share)
        self.bands = ConformalBands(horizon, level)
        self.reset()

    def reset(self) -> None:
        self.pending: deque[PendingForecast] = deque()
        self.scores: deque[Score] = deque(maxlen=self.window)
        self.scored = 0
        self.bands.reset()

    def record(
        self, start: int, model: str, values: np.ndarray, naive: np.ndarray, scale: np.ndarray,
        own: np.ndarray | None = None, rows: np.ndarray | None = None,
        n_series: int | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Keep a new forecast until it matures; return its band (None until calibrated).

        ``own``: the model's forecast before per-series fallbacks replaced some rows (scored
        per series, so a series that fell back can come back when the model wins again).
        ``rows``: the engine rows of ``values`` when it forecast some series only, of
        ``n_series`` in all (per-series scores are then NaN for the others)."""
        lower = upper = None
        if self.bands.ready:
            lower, upper = self.bands.bands(values, scale)
        self.pending.append(PendingForecast(
            start, model, values, naive, scale, lower, upper, own, rows, n_series))
        return lower, upper

    def naive_better(self, n_series: int, model: str, min_scores: int = 10) -> np.ndarray:
        """[n_series] True where seasonal naive's live MASE beat ``model``'s own over the window.

        Only forecasts by ``model`` count (a new model starts with a clean slate), and a series
        needs ``min_scores`` matured forecasts of it before it can fall back."""
        rows = [
            (s.series_mase, s.series_naive_mase)
            for s in self.scores
            if s.model == model and s.series_mase is not None
        ]
        mask = np.zeros(n_series, dtype=bool)
        if len(rows) < min_scores:
            return mask
        width = min(n_series, min(len(own) for own, _ in rows))
        own = np.stack([o[:width] for o, _ in rows])
        naive = np.stack([n[:width] for _, n in rows])
        scored = np.isfinite(own) & np.isfinite(naive)
        enough = scored.sum(axis=0) >= min_scores
        own_mean = np.where(scored, own, 0.0).sum(axis=0) / np.maximum(scored.sum(axis=0), 1)
        naive_mean = np.where(scored, naive, 0.0).sum(axis=0) / np.maximum(scored.sum(axis=0), 1)
        mask[:width] = enough & (naive_mean < own_mean)
        return mask

    def series_summary(self, n_series: int, model: str | None = None) -> dict[str, np.ndarray]:
        """Per series over the rolling window: live MASE of the model's own forecast and of
        seasonal naive, and how many matured forecasts each mean has (see
        ``series_summary``); ``model``: only that model's scores."""
        scores = [s for s in self.scores if model is None or s.model == model]
        return series_summary(scores, n_series)

    def mature(self, count: int, values_at: Callable[[int, int], np.ndarray | None]) -> int:
        """Score every forecast whose horizon ended before point ``count``; returns how many.

        ``values_at(start, length)`` gives the actual [n_series, length] points, or None
        when they have already left the bounded history.
        """
        matured = 0
        while self.pending and self.pending[0].start + self.horizon <= count:
            pending = self.pending.popleft()
            actual = values_at(pending.start, self.horizon)
            if actual is None:
                continue
            if pending.rows is None:
                actual = actual[: pending.values.shape[0]]  # series that appeared later: not scored
                self.scores.append(score_forecast(actual, pending))
            else:
                actual = actual[pending.rows]
                self.scores.append(widen(score_forecast(actual, pending), pending))
            self.bands.add(actual, pending.values, pending.scale)
            self.scored += 1
            matured += 1
        return matured

    def summary(self) -> dict:
        """Rolling accuracy of the last ``window`` matured forecasts, JSON-ready."""
        scores = list(self.scores)
        banded = sum(s.banded for s in scores)

        def mean(values):
            values = [v for v in values if np.isfinite(v)]
            return float(np.mean(values)) if values else None

        return {
            "forecasts_scored": self.scored,
            "window": len(scores),
            "model": {
                "name": scores[-1].model if scores else None,
                "mae": mean(s.mae for s in scores),
                "mase": mean(s.mase for s in scores),
            },
            "seasonal_naive": {
                "mae": mean(s.naive_mae for s in scores),
                "mase": mean(s.naive_mase for s in scores),
            },
            "interval_level": self.bands.level,
            "coverage": sum(s.inside for s in scores) / banded if banded else None,
            "coverage_points": banded,
            "band_ready": self.bands.ready,
        }
