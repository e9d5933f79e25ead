"""The engine's bounded history on the time grid: one slot a tick shared by every series,
and each point's flag (a value, a bad point, or no point at all)."""

from __future__ import annotations

import numpy as np


def coerce_points(values) -> tuple[np.ndarray, np.ndarray]:
    """(floats with NaN where bad, mask of bad) from anything: NaN, inf, strings, None."""
    raw = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if raw.dtype.kind in "fiub":
        floats = raw.astype(float)
    else:
        floats = np.empty(raw.shape, dtype=float)
        flat_in, flat_out = raw.reshape(-1), floats.reshape(-1)
        for i, item in enumerate(flat_in):
            try:
                flat_out[i] = float(item)
            except (TypeError, ValueError):
                flat_out[i] = np.nan
    bad = ~np.isfinite(floats)
    floats[bad] = np.nan
    return floats, bad


OK, BAD, GAP = 0, 1, 2  # per point: a value; a bad point (NaN, inf, string); no point at all


class Ring:
    """Fixed-size history on the time grid: [n_series, capacity] arrays and a write position.

    Every column is one slot of the grid, shared by all series; a series with no point in a
    slot has a gap there (NaN, flag ``GAP``). Rows are added when new series appear.
    """

    def __init__(self, n_series: int, capacity: int):
        self.capacity = capacity
        self.timestamps = np.full(capacity, np.nan)
        self.values = np.full((n_series, capacity), np.nan)
        self.score = np.zeros((n_series, capacity))
        self.severity = np.zeros((n_series, capacity), dtype=np.int8)
        self.flag = np.full((n_series, capacity), GAP, dtype=np.int8)
        self.count = 0  # slots ever written

    @property
    def size(self) -> int:
        return min(self.count, self.capacity)

    @property
    def rows(self) -> int:
        return self.values.shape[0]

    def add_rows(self, n: int) -> None:
        """Room for ``n`` more series: gaps in every slot kept so far."""
        c = self.capacity
        self.values = np.vstack([self.values, np.full((n, c), np.nan)])
        self.score = np.vstack([self.score, np.zeros((n, c))])
        self.severity = np.vstack([self.severity, np.zeros((n, c), dtype=np.int8)])
        self.flag = np.vstack([self.flag, np.full((n, c), GAP, dtype=np.int8)])

    def append(self, timestamps, values, score, severity, flag) -> None:
        """Write ``k`` slots: ``timestamps`` (k,), the others [rows, k]."""
        k = len(timestamps)
        if k > self.capacity:  # only the newest ``capacity`` slots can be kept
            self.count += k - self.capacity
            timestamps, values, score, severity, flag = (
                a[..., -self.capacity :] for a in (timestamps, values, score, severity, flag)
            )
            k = self.capacity
        where = np.arange(self.count, self.count + k) % self.capacity
        self.timestamps[where] = timestamps
        self.values[:, where] = values
        self.score[:, where] = score
        self.severity[:, where] = severity
        self.flag[:, where] = flag
        self.count += k

    def slots_of(self, timestamps: np.ndarray, tolerance: float) -> np.ndarray:
        """Absolute index of the kept slot nearest each timestamp, -1 where none is that near."""
        times = self.timestamps[self._order(self.size)]
        found = np.full(len(timestamps), -1, dtype=np.int64)
        if not len(times):
            return found
        right = np.clip(np.searchsorted(times, timestamps), 0, len(times) - 1)
        left = np.clip(right - 1, 0, len(times) - 1)
        nearest = np.where(
            np.abs(times[left] - timestamps) <= np.abs(times[right] - timestamps), left, right
        )
        near = np.abs(times[nearest] - timestamps) <= tolerance
        found[near] = self.count - self.size + nearest[near]
        return found

    def _order(self, last: int) -> np.ndarray:
        n = min(last, self.size)
        return (np.arange(self.count - n, self.count)) % self.capacity

    def span(self, start: int, length: int) -> np.ndarray | None:
        """Values of points ``start .. start+length-1`` (absolute), None if no longer kept."""
        if start < self.count - self.size or start + length > self.count:
            return None
        return self.values[:, np.arange(start, start + length) % self.capacity]

    def _newest(self, array: np.ndarray, last: int, rows: np.ndarray | None = None):
        """A copy of ``array``'s newest ``last`` slots, oldest first (rows: a subset).

        At most two contiguous column slices, copied row by row: a fancy index over the
        columns of a [1000, capacity] array costs ~7x as much, every tick.
        """
        n = min(last, self.size)
        start, end = (self.count - n) % self.capacity, self.count % self.capacity
        pick = () if array.ndim == 1 else (slice(None),) if rows is None else (rows,)
        if n == 0:
            return array[pick + (slice(0, 0),)].copy()
        if start < end or end == 0:
            return array[pick + (slice(start, end or self.capacity),)].copy()
        return np.concatenate(
            [array[pick + (slice(start, None),)], array[pick + (slice(None, end),)]], axis=-1)

    def last_values(self, last: int, rows: np.ndarray | None = None) -> np.ndarray:
        """[rows, last] newest values (all rows by default), oldest first."""
        return self._newest(self.values, last, rows)

    def last_scores(self, last: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, score [rows, last]) of the newest ``last`` slots, oldest first."""
        return self._newest(self.timestamps, last), self._newest(self.score, last, rows)

    def flags(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, flag [rows, kept]) of every kept slot, oldest first."""
        return self._newest(self.timestamps, self.size), self._newest(self.flag, self.size, rows)

    def last(self, last: int):
        """(timestamps, values, score, severity, flag) of the newest ``last`` slots."""
        return tuple(
            self._newest(a, last)
            for a in (self.timestamps, self.values, self.score, self.severity, self.flag)
        )
