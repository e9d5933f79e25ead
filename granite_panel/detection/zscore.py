"""The seed's rolling z-score detector (``zscore``): the lightest, under 1 kB a series."""

from __future__ import annotations

import warnings

import numpy as np

from .base import OnlineDetector
from .rolling import RollingMoments


class ZScoreDetector(OnlineDetector):
    """The seed's rolling z-score: |z| of a point against the ``window`` finite points before
    it, mapped to a score ``|z| / (|z| + multiplier)`` (0.5 at the seed's alert threshold).
    """

    name = "zscore"

    def __init__(self, window: int = 50, multiplier: float = 3.0, min_points: int = 3):
        self.window = int(window)
        self.multiplier = float(multiplier)
        self.min_points = int(min_points)
        self.reset()

    def reset(self) -> None:
        self.stats = RollingMoments(self.window)

    def _score(self, value: float, mean: float, std: float) -> float:
        dev = abs(value - mean)
        if std > 0.0:
            z = dev / std
            return z / (z + self.multiplier)
        return 1.0 if dev > 0.0 else 0.0

    def _update(self, value: float) -> float:
        score = 0.0
        if len(self.stats) >= self.min_points:
            mean, std = self.stats.mean_std()
            score = self._score(value, mean, std)
        self.stats.add(value)
        return score

    def score_series(self, values) -> np.ndarray:
        """Vectorised, for benchmarks and the CLI; continues from (and updates) the state."""
        values = np.asarray(values, dtype=float).ravel()
        finite = np.isfinite(values)
        past = self.stats.values()
        seq = np.concatenate([past, values[finite]])
        w, m = self.window, self.min_points
        out_finite = np.zeros(int(finite.sum()))
        if seq.size > m:
            # windows of the w values before each new point (fewer at the very start)
            padded = np.concatenate([np.full(w, np.nan), seq])
            windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], w)[-out_finite.size :]
            count = np.isfinite(windows).sum(axis=1)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(windows, axis=1) if out_finite.size else np.empty(0)
                var = np.nanmean(windows * windows, axis=1) - mean * mean
            var = np.where(var <= 1e-12 * (mean * mean + 1e-300), 0.0, var)
            std = np.sqrt(var)
            new = seq[-out_finite.size :] if out_finite.size else seq[:0]
            dev = np.abs(new - mean)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = dev / std
                score = np.where(std > 0, z / (z + self.multiplier), (dev > 0).astype(float))
            out_finite = np.where(count >= m, np.nan_to_num(score, nan=0.0), 0.0)
        # bring the running state to where update() would have left it
        for v in values[finite][-w:]:
            self.stats.add(float(v))
        out = np.zeros(values.size)
        out[finite] = out_finite
        return out
