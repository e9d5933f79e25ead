"""Surprise against a cheap one-step forecast (exponential smoothing), and the ``forecast``
detector: that surprise through Numenta's anomaly likelihood."""

from __future__ import annotations

from .anomaly_likelihood import AnomalyLikelihood
from .base import OnlineDetector
from .rolling import RollingMoments


class SmoothingResidual:
    """Raw surprise of each point against an exponential-smoothing forecast of it (level,
    ``alpha``): ``|r| / (|r| + typical)`` in [0, 1], ``typical`` the mean |residual| of the
    last ``scale_window`` points."""

    __slots__ = ("alpha", "level", "abs_res")

    def __init__(self, alpha: float = 0.5, scale_window: int = 1000):
        self.alpha = float(alpha)
        self.level = None
        self.abs_res = RollingMoments(scale_window)

    def update(self, value: float) -> float:
        if self.level is None:
            self.level = value
            return 0.0
        res = abs(value - self.level)
        self.level += self.alpha * (value - self.level)
        typical = self.abs_res.s1 / len(self.abs_res) if len(self.abs_res) else 0.0
        self.abs_res.add(res)
        if typical > 0.0:
            return res / (res + typical)
        return 1.0 if res > 0.0 else 0.0


class ForecastDetector(OnlineDetector):
    """Forecast-residual scoring turned into an anomaly likelihood.

    Before each point arrives a cheap online model (exponential smoothing of the level,
    ``alpha``) predicts it; the residual's size relative to the typical residual of the last
    ``scale_window`` points is the raw surprise (``SmoothingResidual``), and
    ``AnomalyLikelihood`` says how unusual the recent surprise is against its long-run
    distribution.
    """

    name = "forecast"

    def __init__(self, alpha: float = 0.5, scale_window: int = 1000, long: int = 8640,
                 short: int = 10, learning: int = 300):
        self.alpha = float(alpha)
        self.scale_window = int(scale_window)
        self.long, self.short, self.learning = int(long), int(short), int(learning)
        self.reset()

    def reset(self) -> None:
        self.residual = SmoothingResidual(self.alpha, self.scale_window)
        self.likelihood = AnomalyLikelihood(self.long, self.short, self.learning)

    def _update(self, value: float) -> float:
        return self.likelihood.update(self.residual.update(value))
