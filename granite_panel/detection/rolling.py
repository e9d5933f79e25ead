"""Fixed windows over a stream, O(1) a point: the last values in a ring of C doubles, and
their running mean and standard deviation (the detectors' building blocks)."""

from __future__ import annotations

import math
from array import array

import numpy as np


class RollingMoments:
    """Mean and standard deviation of the last ``size`` values (running sums, O(1) a point).

    The values sit in a preallocated ring of C doubles (8 bytes each, not a deque of Python
    floats at 32: the hybrid keeps twelve 8640-value histories per series). The sums are
    recomputed from the window every ``size`` additions, so rounding error never
    accumulates.
    """

    __slots__ = ("size", "ring", "count", "head", "s1", "s2", "_since")

    def __init__(self, size: int):
        self.size = int(size)
        self.ring = array("d", bytes(8 * self.size))
        self.count = 0  # values held, up to size
        self.head = 0  # where the next value goes (the oldest value once full)
        self.s1 = self.s2 = 0.0
        self._since = 0

    def __len__(self) -> int:
        return self.count

    def values(self) -> np.ndarray:
        """The values held, oldest first."""
        ring = np.frombuffer(self.ring, dtype=float)
        if self.count < self.size:
            return ring[: self.count].copy()
        return np.concatenate([ring[self.head :], ring[: self.head]])

    def add(self, x: float) -> None:
        head = self.head
        if self.count == self.size:
            old = self.ring[head]
            self.s1 = self.s1 + x - old
            self.s2 = self.s2 + x * x - old * old
        else:
            self.count += 1
            self.s1 += x
            self.s2 += x * x
        self.ring[head] = x
        self.head = head + 1 if head + 1 < self.size else 0
        self._since += 1
        if self._since >= self.size:
            self._since = 0
            window = self.ring if self.count == self.size else self.ring[: self.count]
            self.s1 = math.fsum(window)
            self.s2 = math.fsum(v * v for v in window)

    def mean_std(self) -> tuple[float, float]:
        n = self.count
        if n == 0:
            return 0.0, 0.0
        mean = self.s1 / n
        var = self.s2 / n - mean * mean
        if var <= 1e-12 * (mean * mean + 1e-300):
            var = 0.0
        return mean, math.sqrt(var)


class ValueRing:
    """The last ``size`` values of a stream in a preallocated ring of C doubles (8 bytes a
    value, not a deque of Python floats at 32)."""

    __slots__ = ("ring", "count", "head")

    def __init__(self, size: int):
        self.ring = array("d", bytes(8 * int(size)))
        self.count = 0
        self.head = 0  # where the next value goes

    def __len__(self) -> int:
        return self.count

    def append(self, x: float) -> None:
        ring, head = self.ring, self.head
        ring[head] = x
        self.head = head + 1 if head + 1 < len(ring) else 0
        if self.count < len(ring):
            self.count += 1

    def back(self, lag: int) -> float:
        """The value ``lag`` places back (1: the newest); ``lag`` <= ``len(self)``."""
        return self.ring[(self.head - lag) % len(self.ring)]

    def values(self) -> np.ndarray:
        """The values held, oldest first."""
        ring = np.frombuffer(self.ring, dtype=float)
        if self.count < ring.size:
            return ring[: self.count].copy()
        return np.concatenate([ring[self.head :], ring[: self.head]])
