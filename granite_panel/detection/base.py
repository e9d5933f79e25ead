"""The interface every online detector shares (one object per series, strictly causal)."""

from __future__ import annotations

import math

import numpy as np


class OnlineDetector:
    """Base class: subclasses implement ``_update`` for finite values and ``reset``."""

    name = "base"

    def update(self, value: float) -> float:
        """Anomaly score in [0, 1] of ``value``, the newest point of this series."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            return 0.0
        if not math.isfinite(value):
            return 0.0
        return self._update(value)

    def update_many(self, values) -> np.ndarray:
        """Scores of a small batch of new points, oldest first (same as ``update`` each)."""
        return np.array([self.update(v) for v in np.asarray(values, dtype=float).ravel()])

    def score_series(self, values) -> np.ndarray:
        """Scores of a whole series from the current state; equal to ``update`` row by row."""
        return self.update_many(values)

    @property
    def learning_points(self) -> int:
        """Finite points a new series needs before this detector can raise an alert (its
        critical tier); 0 where it may alert from the start, as the published ports do."""
        return 0

    def reset(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _update(self, value: float) -> float:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
