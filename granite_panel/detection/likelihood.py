"""Numenta's anomaly likelihood, as NAB's ``numenta`` detector applies it to a raw score.

Written from the published algorithm (Ahmad et al. 2017, "Unsupervised real-time anomaly
detection for streaming data"; nupic's ``anomaly_likelihood``) with NAB's settings:

- the raw scores (in [0, 1]) are averaged over the last ``averaging_window`` (10) points;
- a normal distribution is fitted to the averages of the last ``historic_window`` (8640)
  points, skipping the first ``learning_period`` ones while they are still in that window,
  re-estimated every ``reestimation_period`` (100) points; its mean is at least 0.03 and
  its variance at least 0.0003; when the *input values* of that history are flat (variance
  below 1.5e-5) the distribution is the null one (mean 0.5, sd 1000: nothing is unlikely);
- the tail probability of the newest average (distance from the mean on either side, as
  nupic's ``tailProbability`` reflects values below the mean) is filtered: a second
  consecutive value in the red zone (<= 1e-5) reads 1e-3, so that a run reports once;
- the likelihood is ``1 - tail`` (0.5 during the first ``learning_period +
  estimation_samples`` points) and the reported score its log form,
  ``log(1.0000000001 - likelihood) / log(1e-10)``, in [0, 1];
- NAB's numenta detector sets the score to 1 when a value leaves the range seen so far by
  more than 5% of it (``spatial_tolerance``, the "spatial anomaly").

NAB sets ``learning_period = probation // 2`` and ``estimation_samples = probation -
learning_period`` with the file's probation length; live the default probation is 750 (NAB's
cap). ``LikelihoodDetector`` is this over the CAD OSE context score (before CAD OSE's own
rest period), one of the raw scores the issue asks to try.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .base import OnlineDetector
from .cad_ose import CadOseDetector

LOG_FLOOR = math.log(1.0 - 0.9999999999)  # -23.02585...: score 1.0 at likelihood 1 - 1e-10
RED_ZONE = 1.0 - 0.99999
YELLOW_ZONE = 1.0 - 0.999


def tail_probability(x: float, mean: float, stdev: float) -> float:
    """P(a sample is further from the mean than ``x``), on x's side (nupic's reflection)."""
    if x < mean:
        x = 2.0 * mean - x
    return 0.5 * math.erfc((x - mean) / stdev / math.sqrt(2.0))


def log_likelihood(likelihood: float) -> float:
    """NAB's reported score of a likelihood: ``log(1.0000000001 - L) / log(1e-10)``."""
    return math.log(1.0000000001 - likelihood) / LOG_FLOOR


class NumentaLikelihood:
    """Anomaly likelihood of a stream of (value, raw score) pairs, one at a time."""

    def __init__(self, learning_period: int = 375, estimation_samples: int = 375,
                 historic_window: int = 8640, reestimation_period: int = 100,
                 averaging_window: int = 10):
        self.learning_period = int(learning_period)
        self.probation = self.learning_period + int(estimation_samples)
        self.reestimation_period = int(reestimation_period)
        self.window = int(averaging_window)
        self.values: deque[float] = deque(maxlen=int(historic_window))
        self.raws: deque[float] = deque(maxlen=int(historic_window))
        self.recent: deque[float] = deque(maxlen=self.window)
        self.iteration = 0
        self.distribution: tuple[float, float] | None = None
        self.previous_tail = 1.0

    def _estimate(self) -> None:
        shifted = max(0, self.iteration - self.raws.maxlen)
        skip = min(self.iteration, max(0, self.learning_period - shifted))
        raws = np.fromiter(self.raws, dtype=float)
        if raws.size <= skip:
            self.distribution = (0.5, 1e3)
            return
        # moving averages of the history, each over the window ending at it
        csum = np.concatenate([[0.0], np.cumsum(raws)])
        idx = np.arange(1, raws.size + 1)
        start = np.maximum(0, idx - self.window)
        averages = (csum[idx] - csum[start]) / (idx - start)
        sample = averages[skip:]
        mean, var = float(sample.mean()), float(sample.var())
        values = np.fromiter(self.values, dtype=float)[skip:]
        if values.var() < 1.5e-5:
            self.distribution = (0.5, 1e3)
        else:
            self.distribution = (max(mean, 0.03), math.sqrt(max(var, 0.0003)))
        # the filter compares with the previous average under the new distribution
        self.previous_tail = tail_probability(float(averages[-1]), *self.distribution)

    def update(self, value: float, raw: float) -> float:
        """Likelihood (``1 - tail probability``, filtered) of the newest raw score."""
        self.recent.append(raw)
        if self.iteration < self.probation:
            likelihood = 0.5
        else:
            if self.distribution is None or self.iteration % self.reestimation_period == 0:
                self._estimate()
            tail = tail_probability(sum(self.recent) / len(self.recent), *self.distribution)
            shown = tail
            if tail <= RED_ZONE and self.previous_tail <= RED_ZONE:
                shown = YELLOW_ZONE
            self.previous_tail = tail
            likelihood = 1.0 - shown
        self.values.append(value)
        self.raws.append(raw)
        self.iteration += 1
        return likelihood


class LikelihoodDetector(OnlineDetector):
    """NAB's numenta detector recipe over the CAD OSE context score: log-likelihood of the
    raw score, 1.0 on a spatial anomaly (a value beyond the range seen by ``spatial_tolerance``
    of it)."""

    name = "cad_likelihood"

    def __init__(self, probation: int = 750, spatial_tolerance: float = 0.05,
                 value_range: tuple[float, float] | None = None):
        self.probation = int(probation)
        if self.probation < 2:
            raise ValueError(f"probation must be at least 2 points, got {probation}")
        self.spatial_tolerance = float(spatial_tolerance)
        self.value_range = value_range
        self.reset()

    def reset(self) -> None:
        learning = self.probation // 2
        self.likelihood = NumentaLikelihood(learning, self.probation - learning)
        self.raw = CadOseDetector(value_range=self.value_range)
        self.lo = self.hi = None

    def _update(self, value: float) -> float:
        return self.score(value, self.raw.raw_score(value))

    def score(self, value: float, raw: float) -> float:
        """The recipe on any raw score in [0, 1] of ``value`` (``_update`` gives it CAD OSE's;
        ``benchmarks/nab_w1acas.py`` another)."""
        score = log_likelihood(self.likelihood.update(value, raw))
        if self.lo is not None and self.hi > self.lo:
            tol = (self.hi - self.lo) * self.spatial_tolerance
            if value > self.hi + tol or value < self.lo - tol:
                score = 1.0
        self.lo = value if self.lo is None else min(self.lo, value)
        self.hi = value if self.hi is None else max(self.hi, value)
        return score
