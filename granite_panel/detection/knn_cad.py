"""KNN-CAD: conformal k-nearest-neighbour anomaly detection (Burnaev & Ishimtsev, 2016).

NAB's ``knncad`` detector (58.0 standard on the full corpus), written afresh from the paper
(arXiv:1608.04585) and the defaults NAB publishes for it:

- each point is represented by the window of the last ``dim`` (19) values;
- the *non-conformity* of a window is the sum of its squared Mahalanobis distances to its
  ``k`` (27) nearest training windows, the metric ``inv(X^T X)`` of the training windows ``X``
  (re-estimated every half ``probation`` points);
- the windows of the first ``probation`` points are the training set; the following
  windows are the calibration set, each with its non-conformity, and once ``2 * probation``
  points are seen the oldest calibration window moves into the training set as the oldest
  training window leaves (a sliding split);
- the score of a new window is its conformal rank: the share of calibration
  non-conformities below its own (a p-value's complement). At the first scored point the
  calibration scores are those of the training windows themselves (leave-one-in, k + 1
  neighbours including the window itself, as the reference starts);
- after a score >= ``alarm`` (0.9965) the next ``probation / 5`` points score 0.5 (one alarm
  per episode, the reference's constant).

``probation``: NAB gives the file's probation length (15% of its rows, at most 750); live the
detector cannot know a stream's length, so the default is 750. Memory: the training windows
(``probation - dim`` x ``dim`` doubles) and the calibration windows.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .base import OnlineDetector


class KnnCadDetector(OnlineDetector):
    """Conformal kNN anomaly score of each point's window of ``dim`` values, in [0, 1]."""

    name = "knn_cad"

    def __init__(self, probation: int = 750, dim: int = 19, k: int = 27, alarm: float = 0.9965):
        self.probation, self.dim, self.k = int(probation), int(dim), int(k)
        self.alarm = float(alarm)
        if self.probation - self.dim <= self.k + 1:
            raise ValueError(f"probation ({probation}) must exceed dim + k + 1 "
                             f"({self.dim + self.k + 1}): too few training windows")
        self.reset()

    def reset(self) -> None:
        self.buf: deque[float] = deque(maxlen=self.dim)
        self.n = 0  # points seen (the reference's record count)
        self.training = np.zeros((self.probation - self.dim, self.dim))
        self.n_train = 0
        self.oldest = 0  # ring position of the oldest training window
        self.calibration: deque[np.ndarray] = deque()
        self.scores = np.zeros(0)  # calibration non-conformities, a ring (oldest at head)
        self.head = 0
        self.sigma = np.eye(self.dim)
        self.quiet = 0  # points left to report 0.5 after an alarm

    def nonconformity(self, window: np.ndarray, includes_itself: bool = False) -> float:
        """Sum of the ``k`` smallest squared distances (``k + 1`` when the window is one of
        the training windows, so that its zero distance to itself is counted)."""
        diff = self.training - window
        d = np.einsum("ij,ij->i", diff @ self.sigma, diff)
        kk = self.k + (1 if includes_itself else 0)
        return float(np.partition(d, kk)[:kk].sum())

    def _update(self, value: float) -> float:
        self.buf.append(value)
        self.n += 1
        if len(self.buf) < self.dim:
            return 0.0
        window = np.fromiter(self.buf, dtype=float, count=self.dim)
        p = self.probation
        if self.n < p:
            self.training[self.n_train] = window
            self.n_train += 1
            return 0.0
        phase = self.n % p
        if phase == 0 or phase == p // 2:
            try:
                self.sigma = np.linalg.inv(self.training.T @ self.training)
            except np.linalg.LinAlgError:
                pass  # a singular training set keeps the previous metric, as the reference
        if not self.scores.size:
            self.scores = np.array([self.nonconformity(w, True) for w in self.training])
        new = self.nonconformity(window)
        result = int(np.count_nonzero(self.scores < new)) / self.scores.size
        if self.n >= 2 * p:
            self.training[self.oldest] = self.calibration.popleft()
            self.oldest = (self.oldest + 1) % self.training.shape[0]
        self.scores[self.head] = new  # the oldest leaves, the newest joins
        self.head = (self.head + 1) % self.scores.size
        self.calibration.append(window)
        if self.quiet > 0:
            self.quiet -= 1
            return 0.5
        if result >= self.alarm:
            self.quiet = p // 5
        return result
