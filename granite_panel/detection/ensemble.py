"""The ``ensemble`` detector, NAB's tier of the hybrid: anomaly likelihoods of three
surprises (forecast residual, level shift, seasonal residual) and spatial novelty, one
alert per episode; and the period estimate the seasonal parts share."""

from __future__ import annotations

from collections import deque

import numpy as np

from .anomaly_likelihood import MultiWindowLikelihood
from .base import OnlineDetector
from .forecast_residual import SmoothingResidual
from .rolling import RollingMoments, ValueRing


def dominant_period(x: np.ndarray, min_lag: int = 4, min_acf: float = 0.5) -> int:
    """Lag of the highest autocorrelation peak of ``x`` (biased ACF), 0 if none reaches
    ``min_acf``. Lags up to a third of the length are considered."""
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 3 * min_lag:
        return 0
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return 0
    size = 1 << int(2 * n - 1).bit_length()
    f = np.fft.rfft(x, size)
    acf = np.fft.irfft(f * np.conj(f), size)[: n // 3] / denom
    if acf.size <= min_lag + 1:
        return 0
    lags = np.arange(acf.size)
    peak = (acf[1:-1] > acf[:-2]) & (acf[1:-1] >= acf[2:])
    cand = lags[1:-1][peak & (lags[1:-1] >= min_lag)]
    if cand.size == 0:
        return 0
    best = int(cand[np.argmax(acf[cand])])
    return best if acf[best] >= min_acf else 0


class SeasonalResidual:
    """Raw surprise of a point against the same phase of the previous cycle,
    ``|x_t - x_{t-P}|`` relative to its typical size (``res / (res + typical)`` in [0, 1]).

    ``P`` is re-estimated from the last ``history`` points every ``every`` points (first
    after ``first``); ``update`` returns None while no clear period is known. ``changes``
    counts period changes, so that a caller can restart what it built on the old one.
    """

    def __init__(self, history: int = 4000, every: int = 1000, first: int = 900,
                 scale_window: int = 1000):
        self.hist = ValueRing(history)
        self.every, self.first = int(every), int(first)
        self.period = 0
        self.changes = 0
        self.abs_res = RollingMoments(scale_window)
        self.n = 0

    def update(self, value: float) -> float | None:
        self.n += 1
        raw = None
        p = self.period
        if p and len(self.hist) >= p:
            res = abs(value - self.hist.back(p))
            typical = self.abs_res.s1 / len(self.abs_res) if len(self.abs_res) else 0.0
            self.abs_res.add(res)
            raw = res / (res + typical) if typical > 0 else (1.0 if res > 0 else 0.0)
        self.hist.append(value)
        if self.n >= self.first and (self.n - self.first) % self.every == 0:
            new = dominant_period(self.hist.values())
            if new != self.period:
                self.period = new
                self.changes += 1
                self.abs_res = RollingMoments(self.abs_res.size)
        return raw


class EnsembleDetector(OnlineDetector):
    """NAB's tier: multi-scale anomaly likelihoods of three surprises, one alert per episode.

    1. raw surprises in [0, 1]: forecast residual (``SmoothingResidual``: exponential
       smoothing, ``alpha``), level shift (|z| of the mean of the last ``shift_short`` points
       against the ``shift_long`` before them, ``|z| / (|z| + 3)``) and seasonal residual
       (``SeasonalResidual``, none while no clear period);
    2. each through ``MultiWindowLikelihood`` (Numenta's anomaly likelihood, history
       ``long``, learning ``learning`` = 288, at averaging windows 10, 20, 40, 80: Numenta's
       10 and its doublings instead of one tuned window);
    3. evidence = per window the largest of the three, then the mean over windows. Scores
       are ``log(tail) / log(1e-10)``, so the mean is the log of the geometric mean of the
       tail probabilities: evidence has to persist across time scales;
    4. spatial novelty (as Numenta's NAB detector): once past ``learning`` points, a value
       beyond the range seen so far by more than ``spatial_tol`` of it is evidence 1;
    5. one alert per episode: evidence >= ``alert_level`` (a tail probability of 10^-2.5)
       outside a quiet period is an alert, score 1.0, and opens a quiet period of
       ``refractory`` points (288, Numenta's learning period: a day of 5-minute data) that
       restarts while the evidence stays at or above ``alert_level``; so a disturbance that
       keeps recurring (daily, say) alerts once. Points in a quiet period score 0, the rest
       ``0.5 * evidence / alert_level`` (< 0.5, for displays; never an alert).

    Alerts are 1.0 rather than graded on purpose: NAB's corpus-wide threshold then cannot
    land between one file's alerts and another's (graded: same in-sample score, lower
    leave-one-file-out score). ``last_evidence`` keeps the newest point's evidence.
    O(1) a point, except the period estimate (an FFT of <= 4000 points every 1000 points).
    """

    name = "ensemble"

    def __init__(self, alert_level: float = 0.25, refractory: int = 288,
                 windows=(10, 20, 40, 80), long: int = 8640, learning: int = 288,
                 alpha: float = 0.5, scale_window: int = 1000, shift_short: int = 5,
                 shift_long: int = 1000, spatial_tol: float = 0.05, use_forecast: bool = True,
                 use_shift: bool = True, use_season: bool = True, use_spatial: bool = True):
        if not 0.0 < float(alert_level) <= 1.0:
            raise ValueError(f"alert_level must be in (0, 1], got {alert_level}")
        self.alert_level, self.refractory = float(alert_level), int(refractory)
        self.windows = tuple(int(w) for w in windows)
        self.long, self.learning = int(long), int(learning)
        self.alpha, self.scale_window = float(alpha), int(scale_window)
        self.shift_short, self.shift_long = int(shift_short), int(shift_long)
        self.spatial_tol = float(spatial_tol)
        self.use_forecast, self.use_shift = bool(use_forecast), bool(use_shift)
        self.use_season, self.use_spatial = bool(use_season), bool(use_spatial)
        self.reset()

    @property
    def learning_points(self) -> int:
        return self.learning  # the likelihoods and the spatial novelty wait for it

    @property
    def learnt(self) -> bool:
        """Past the learning period (this point counted): alerts may be raised."""
        return self.n > self.learning

    def _likelihood(self) -> MultiWindowLikelihood:
        return MultiWindowLikelihood(self.windows, self.long, self.learning)

    def reset(self) -> None:
        self.forecast = SmoothingResidual(self.alpha, self.scale_window)
        self.forecast_likelihood = self._likelihood()
        self.recent: deque[float] = deque(maxlen=self.shift_short)
        self.long_stats = RollingMoments(self.shift_long)
        self.shift_likelihood = self._likelihood()
        self.season = SeasonalResidual(scale_window=self.scale_window)
        self.season_likelihood = self._likelihood()
        self.season_changes = 0
        self.lo = self.hi = None
        self.n = 0
        self.last_alert = None
        self.last_evidence = 0.0

    def _shift_raw(self, value: float) -> float:
        self.recent.append(value)
        raw = 0.0
        if len(self.long_stats) >= 30:
            mean, std = self.long_stats.mean_std()
            z = abs(sum(self.recent) / len(self.recent) - mean) / max(std, 1e-9 * (abs(mean) + 1))
            raw = z / (z + 3.0)
        if len(self.recent) == self.shift_short:
            self.long_stats.add(self.recent[0])  # the long window ends where the short begins
        return raw

    def _evidence(self, value: float) -> float:
        parts = []
        if self.use_forecast:
            parts.append(self.forecast_likelihood.update(self.forecast.update(value)))
        if self.use_shift:
            parts.append(self.shift_likelihood.update(self._shift_raw(value)))
        if self.use_season:
            raw = self.season.update(value)
            if self.season.changes != self.season_changes:  # a new period: start afresh
                self.season_changes = self.season.changes
                self.season_likelihood = self._likelihood()
            if raw is not None:
                parts.append(self.season_likelihood.update(raw))
        if not parts:
            return 0.0
        return sum(map(max, zip(*parts))) / len(self.windows)

    def _update(self, value: float) -> float:
        self.n += 1
        evidence = self._evidence(value)
        if self.use_spatial:
            if self.learnt and self.hi > self.lo:
                tol = (self.hi - self.lo) * self.spatial_tol
                if value > self.hi + tol or value < self.lo - tol:
                    evidence = 1.0
            self.lo = value if self.lo is None else min(self.lo, value)
            self.hi = value if self.hi is None else max(self.hi, value)
        self.last_evidence = evidence
        alert = evidence >= self.alert_level
        if self.last_alert is not None and self.n - self.last_alert <= self.refractory:
            if alert:
                self.last_alert = self.n  # the episode goes on: the quiet period restarts
            return 0.0
        if alert:
            self.last_alert = self.n
            return 1.0
        return 0.5 * evidence / self.alert_level
