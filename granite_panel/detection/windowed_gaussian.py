"""Windowed Gaussian: NAB's sliding z-score baseline (``windowedGaussian``, 39.6 standard on
the full corpus, 37.7 on the 31 files in ../shared/data), written afresh from the reference
detector's description and its published defaults:

- a point is scored against the mean and standard deviation (population, ``ddof=0``) of the
  values seen *before* it; the very first point scores 0 (nothing to compare with);
- the score is ``1 - Q(|z|)``, ``Q`` the one-sided Gaussian tail probability (a value below
  the mean is mirrored about it), so it lies in [0.5, 1): 0.5 at the mean;
- the window grows to ``window`` (6400) values, the statistics refreshed after every point;
  once full, new values wait in a buffer and the window slides by ``step`` (100) values at
  once, the statistics refreshed only then (the reference's speed trade-off);
- a standard deviation of exactly 0 is replaced by ``std_floor`` (1e-6), as the reference
  does; any other small value is kept.

Mean and deviation are recomputed with numpy over the ordered window, as the reference does,
so the scores match it to the bit rather than to running-sum rounding. Memory: ``window`` +
``step`` doubles (about 52 KB a series at the defaults).
"""

from __future__ import annotations

import math

import numpy as np

from .base import OnlineDetector

SQRT2 = math.sqrt(2.0)


def tail_probability(x: float, mean: float, std: float) -> float:
    """Q-function of ``x``'s distance from ``mean``: the chance of a value further out on
    its side. Mirrored, then shifted, in the reference's order of operations (bit-equal)."""
    if x < mean:
        x = 2.0 * mean - x
    return 0.5 * math.erfc((x - mean) / std / SQRT2)


class WindowedGaussianDetector(OnlineDetector):
    """``1 - Q(|z|)`` of each point against a stepped sliding window of earlier values."""

    name = "windowed_gaussian"

    def __init__(self, window: int = 6400, step: int = 100, std_floor: float = 1e-6):
        self.size, self.step = int(window), int(step)
        if self.size < 1 or not 1 <= self.step <= self.size:
            raise ValueError(f"need window >= 1 and 1 <= step <= window, got {window}, {step}")
        if not float(std_floor) > 0.0:
            raise ValueError(f"std_floor must be > 0, got {std_floor}")
        self.std_floor = float(std_floor)
        self.reset()

    def reset(self) -> None:
        self.window = np.zeros(self.size)  # oldest first; the first `count` slots are used
        self.count = 0
        self.pending = np.zeros(self.step)  # values waiting for the next slide
        self.n_pending = 0
        self.mean, self.std = 0.0, 1.0

    def _refresh(self) -> None:
        data = self.window[: self.count]
        self.mean, self.std = float(np.mean(data)), float(np.std(data))
        if self.std == 0.0:
            self.std = self.std_floor

    def _update(self, value: float) -> float:
        score = 0.0
        if self.count:
            score = 1.0 - tail_probability(value, self.mean, self.std)
        if self.count < self.size:
            self.window[self.count] = value
            self.count += 1
            self._refresh()
        else:
            self.pending[self.n_pending] = value
            self.n_pending += 1
            if self.n_pending == self.step:
                step = self.step
                self.window[: self.size - step] = self.window[step:].copy()
                self.window[self.size - step :] = self.pending
                self.n_pending = 0
                self._refresh()
        return score
