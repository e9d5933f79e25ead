"""Numenta's anomaly likelihood: how unusual the recent mean of a raw anomaly score is
against its own long-run distribution, as a log tail probability mapped to [0, 1]."""

from __future__ import annotations

import math
from array import array

LN_TAIL_FLOOR = math.log(1e-10)  # log-likelihood score 1.0 at a tail probability of 1e-10
SQRT2 = math.sqrt(2.0)


def tail_score(z: float) -> float:
    """Numenta's log-likelihood of a one-sided Gaussian tail: 0 at z <= 0, 1 at P <= 1e-10."""
    if z <= 0.0:
        return 0.0
    tail = 0.5 * math.erfc(z / SQRT2)
    if tail <= 1e-10:
        return 1.0
    return math.log(tail) / LN_TAIL_FLOOR if tail < 1.0 else 0.0


class MultiWindowLikelihood:
    """Numenta's anomaly likelihood of one raw stream at several averaging windows at once.

    For each window ``w`` the mean of the last ``w`` raw scores is compared with a Gaussian
    fitted to the last ``long`` such means (Numenta's floors: mean 0.03, sd 0.0173); the
    score is ``tail_score`` of that z; no opinion (0) during the first ``learning`` points.
    ``update`` returns one score per window. Several windows instead of one chosen window: a
    short burst and a slow drift both show at some scale.

    State layout (why it is small): the Gaussian needs, per window, the running sums of the
    last ``long`` means and of their squares, and each mean again when it leaves. Instead of
    a ``long``-value history per window (twelve 8640-value rings per hybrid series), one
    ring keeps the last ``long + max(windows) + 1`` *raw* scores as float32 (4 bytes; every
    raw score is used as so rounded, a change of at most 6e-8 of it, which moves no NAB
    figure: README's detector table), and per window a trailing
    copy of the window sum replays, ``long`` points late, the very same float operations
    that made the sum then: the mean leaving the history is recomputed bit for bit. Every
    ``long`` points the sums are recomputed exactly (``math.fsum``) from the means of the
    window, replayed the same way, so rounding error never accumulates.
    """

    __slots__ = ("windows", "learning", "long", "raw", "sums", "trail", "s1", "s2", "n")

    def __init__(self, windows=(10, 20, 40, 80), long: int = 8640, learning: int = 288):
        self.windows = tuple(int(w) for w in windows)
        if not self.windows or min(self.windows) < 1 or int(long) < 1:
            raise ValueError(f"windows and long must be >= 1, got {windows} and {long}")
        self.learning, self.long = int(learning), int(long)
        self.raw = array("f", bytes(4 * (self.long + max(self.windows) + 1)))
        k = len(self.windows)
        self.sums = [0.0] * k  # sum of the last w raw scores, per window
        self.trail = [0.0] * k  # the same sums as they were `long` points ago
        self.s1 = [0.0] * k  # sum of the last `long` window means
        self.s2 = [0.0] * k  # ... and of their squares
        self.n = 0  # raw scores seen

    def update(self, raw: float) -> list[float]:
        ring, size, long = self.raw, len(self.raw), self.long
        sums, trail, s1, s2 = self.sums, self.trail, self.s1, self.s2
        n = self.n + 1  # this raw score is the n-th (1-based); it sits at (n - 1) % size
        self.n = n
        ring[(n - 1) % size] = raw
        raw = ring[(n - 1) % size]  # the raw score as kept: rounded to float32
        held = n - 1 if n <= long else long  # means in the history before this one
        opinion = n > self.learning
        full = n > long
        if full:  # the raw score entering the trailing window sums
            entering = ring[(n - long - 1) % size]
        out = []
        for k, w in enumerate(self.windows):
            s = sums[k] + raw - (ring[(n - w - 1) % size] if n - 1 >= w else 0.0)
            sums[k] = s
            avg = s / (w if w < n else n)
            score = 0.0
            if opinion:
                mean = std = 0.0
                if held:
                    mean = s1[k] / held
                    var = s2[k] / held - mean * mean
                    std = 0.0 if var <= 1e-12 * (mean * mean + 1e-300) else math.sqrt(var)
                score = tail_score((avg - max(mean, 0.03)) / max(std, 0.0173))
            if full:  # the history is full: the mean of `long` points ago leaves it
                t = n - long
                old_sum = trail[k] + entering - (ring[(t - w - 1) % size] if t - 1 >= w else 0.0)
                trail[k] = old_sum
                old = old_sum / (w if w < t else t)
                s1[k] = s1[k] + avg - old
                s2[k] = s2[k] + avg * avg - old * old
            else:
                s1[k] += avg
                s2[k] += avg * avg
            out.append(score)
        if n % long == 0:
            self._resum()
        return out

    def window_means(self, k: int) -> list[float]:
        """The means of window ``k`` in the history now, oldest first (replayed)."""
        ring, size, w, n = self.raw, len(self.raw), self.windows[k], self.n
        first = max(n - self.long, 0) + 1
        s, means = self.trail[k], []
        for t in range(first, n + 1):
            s = s + ring[(t - 1) % size] - (ring[(t - w - 1) % size] if t - 1 >= w else 0.0)
            means.append(s / (w if w < t else t))
        return means

    def _resum(self) -> None:
        for k in range(len(self.windows)):
            means = self.window_means(k)
            self.s1[k] = math.fsum(means)
            self.s2[k] = math.fsum(v * v for v in means)


class AnomalyLikelihood:
    """Numenta's anomaly likelihood of a stream of raw scores in [0, 1].

    The recent mean of the raw scores (``short`` points) is compared with a Gaussian fitted
    to the long-run averaged scores (``long`` points); the score is the log of its upper tail
    probability mapped to [0, 1] (``tail_score``). No opinion (0) during the first
    ``learning`` points. Mean and variance have Numenta's lower bounds (0.03, 0.0003).
    ``MultiWindowLikelihood`` with the one window ``short`` (its compact state).
    """

    __slots__ = ("likelihood",)

    def __init__(self, long: int = 8640, short: int = 10, learning: int = 300):
        self.likelihood = MultiWindowLikelihood((short,), long, learning)

    def update(self, raw: float) -> float:
        return self.likelihood.update(raw)[0]
