"""The statistical fallback: statsforecast models per series, chosen by backtest on the
series' own history, fitted rarely in the background and applied every tick."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from .context import fill_gaps
from .selection import FALLBACK_CANDIDATES, choose_fallback, seasonal_naive

log = logging.getLogger(__name__)


class StatisticalForecaster:
    """statsforecast models per series; fitted rarely, applied every call with ``forward``.

    ``model="auto"`` (the default, as ``FALLBACK_MODEL``) chooses the model by backtest on the series' own history
    (``selection.choose_fallback`` among SeasonalNaive, AutoTheta, AutoETS, MSTL: lowest MASE
    on the last two horizons of up to 8 series), once, in a background thread, as soon as a
    context holds two horizons plus two seasons; seasonal naive serves until then. A fixed
    AutoTheta lost to seasonal naive on ETTh1/ETTm1 (MSE 0.644 / 0.580 vs 0.512 / 0.423).

    A fit takes 70-400 ms per series, far too slow for every tick of many series. Each call
    refits the stalest series until ``fit_budget_s`` is spent; fitted
    series are forecast from their fitted state (``forward``, ~0.1 ms); series not yet
    fitted get a seasonal-naive forecast until their turn comes.
    """

    def __init__(
        self,
        model: str = "auto",
        horizon: int = 96,
        season_length: int = 24,
        refit_every: int = 200,
        fit_budget_s: float = 0.25,
    ):
        self.requested = model
        self.model = "SeasonalNaive" if model == "auto" else model
        self.name = self.model
        self.backtest: dict[str, float] = {}
        self._selection: threading.Thread | None = None
        self.horizon = horizon
        self.season_length = season_length
        self.refit_every = refit_every
        self.fit_budget_s = fit_budget_s
        self.min_context = 1
        self.reset()

    def reset(self) -> None:
        if self.requested == "auto" and (self._selection is None or not self._selection.is_alive()):
            self.model, self.name, self.backtest, self._selection = "SeasonalNaive", "SeasonalNaive", {}, None
        self._fitted: dict[int, object] = {}
        self._fitted_at: dict[int, int] = {}
        self._calls = 0

    @property
    def fitted_series(self) -> int:
        return len(self._fitted)

    def _new_model(self, season_length: int):
        from statsforecast import models

        return getattr(models, self.model)(season_length=season_length)

    def _season_for(self, n_points: int) -> int:
        return self.season_length if n_points >= 2 * self.season_length else 1

    def predict(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """[n_series, horizon] forecasts of ``context``'s series.

        ``rows``: the engine rows of ``context`` when it holds a share of the series
        (FORECAST_EVERY > 1), so each series is forecast with its own fitted state; None:
        row i is series i. (Keyed by position, a tick of rows 3, 13, 23 used the states
        fitted on the rows of an earlier tick's positions: another series' parameters.)
        """
        context = fill_gaps(context)
        n_series, n_points = context.shape
        keys = range(n_series) if rows is None else [int(r) for r in rows]
        if len(keys) != n_series:
            raise ValueError(f"rows names {len(keys)} series; the context has {n_series}")
        self._calls += 1
        season = self._season_for(n_points)
        self._maybe_select(context, season)
        if self.model == "SeasonalNaive" or n_points < 3:
            return seasonal_naive(context, self.horizon, season)
        self._refit_stalest(context, keys, season)
        out = seasonal_naive(context, self.horizon, season)
        for i, key in enumerate(keys):
            fitted = self._fitted.get(key)
            if fitted is None:
                continue
            try:
                out[i] = fitted.forward(y=context[i], h=self.horizon)["mean"]
            except Exception as exc:  # a numerically odd window: keep the naive one
                log.debug("forward failed for series %s: %s", key, exc)
        return out

    def _maybe_select(self, context: np.ndarray, season: int) -> None:
        """Start the backtest once there is enough history (``model="auto"`` only)."""
        if self.requested != "auto" or self._selection is not None:
            return
        if context.shape[1] < 2 * self.horizon + 2 * season + 2:
            return
        history = context.copy()

        def select():
            try:
                best, scores = choose_fallback(history, self.horizon, season, FALLBACK_CANDIDATES)
            except Exception as exc:  # keep seasonal naive, say why in the log
                log.warning("fallback backtest failed: %s", exc)
                return
            self.backtest = scores
            self._fitted, self._fitted_at = {}, {}
            self.model = self.name = best

        self._selection = threading.Thread(target=select, name="fallback-backtest", daemon=True)
        self._selection.start()

    def wait_for_selection(self, timeout: float | None = None) -> str:
        """Block until the backtest ended (CLI, tests); returns the chosen model's name."""
        if self._selection is not None:
            self._selection.join(timeout)
        return self.name

    def _refit_stalest(self, context: np.ndarray, keys, season: int) -> None:
        """Fit the series of ``context`` (``keys``: their rows) never fitted or fitted
        ``refit_every`` calls ago, the stalest first, until ``fit_budget_s`` is spent."""
        due = [
            (i, key)
            for i, key in enumerate(keys)
            if key not in self._fitted or self._calls - self._fitted_at[key] >= self.refit_every
        ]
        due.sort(key=lambda item: self._fitted_at.get(item[1], -1))
        deadline = time.perf_counter() + self.fit_budget_s
        for i, key in due:
            try:
                self._fitted[key] = self._new_model(season).fit(context[i])
            except Exception as exc:
                log.debug("fit failed for series %s: %s", key, exc)
            self._fitted_at[key] = self._calls
            if time.perf_counter() >= deadline:
                break
