"""Relative entropy: multiple-hypothesis testing of windowed value histograms (Wang, Talwar,
Schwan et al., "Statistical techniques for online anomaly detection in data centers", IFIP/IEEE
IM 2011), NAB's ``relativeEntropy`` detector (54.6 standard on the full corpus), written afresh
from the paper's algorithm and the defaults NAB publishes for it:

- values are quantised into ``n_bins`` (5) bins of the value range ``[lo, hi]``: with
  ``step = (hi - lo) / n_bins`` a value's bin is ``ceil((x - lo) / step)``, the last two
  indices merged (the reference histograms these indices over ``[0, n_bins]``). So bin 0 holds
  exactly the values equal to ``lo``, bins 1 .. n_bins - 2 the first steps above it, and the
  last bin everything above ``lo + (n_bins - 2) step``: the reference's binning, kept as is;
- the last ``window`` (52) values form the empirical distribution ``P_hat`` of each step,
  from the ``window``-th value on (earlier points score 0);
- ``P_hat`` is tested against every stored *hypothesis* ``P_i`` (an earlier window's
  distribution) with the relative entropy statistic ``2 W KL(P_hat || P_i)``, which under
  ``P_i`` tends to a chi-squared law with ``n_bins - 1`` degrees of freedom: ``P_i`` is
  accepted when the statistic is below ``T``, the chi-squared quantile at ``1 - significance``
  (0.01: ``T`` = 13.28). A bin that ``P_hat`` fills and ``P_i`` does not makes it infinite;
- the first window becomes the first hypothesis (score 0). Afterwards, when some hypotheses
  are accepted, the one with the smallest statistic (the first of equals) counts one more
  sighting, and the point scores 1 while that count is at most ``c_threshold`` (1), else 0;
  when none is accepted the point scores 1 and its window becomes a new hypothesis, seen
  once. With NAB's ``c_threshold`` of 1 a match is never anomalous (the match itself makes the
  count 2): the score is 1 exactly at the windows that start a new hypothesis;
- scores are 0 or 1, as the reference's.

Value range: NAB hands the detector the file's min and max before it starts (``input_min`` /
``input_max`` here; a range of zero width makes every score 0, the reference's flat-line
rule; a value outside it is counted in the nearest extreme bin, which the reference, given its
own file's range, never meets). A live stream has no such oracle, so by default the range is
the running min / max of the values seen so far, the new value included, and as in
``cad_ose`` a value outside it widens it past the value by ``range_margin`` (0.5) of the new
span, so that the bins move only now and then. When they move, the current window and every
hypothesis are binned again from their raw values, so that all the distributions compared
always share one binning. While every value seen is the same, all fall in bin 0.

Given NAB's inputs the scores are the reference's, point for point, on the 31 NAB files in
../shared/data (checked once against a transliteration of the reference, not shipped).

Memory: the last ``window`` values, and per hypothesis its counts and sightings plus, with a
running range only, its window's raw values (``window`` doubles, 416 B at the defaults) for
re-binning. Hypotheses are kept for good, as the reference does: one per new distribution
seen, which is few (14 after 10,000 rows of a noisy daily cycle: an 8 kB pickle, 2.4 kB with a
fixed range; at most 67 on a NAB file, a 33 kB pickle). Room for them grows ``HYPOTHESIS_ROWS``
at a time, not by doubling (a new one is rare, a spare row is 464 B per series); the table of
logs is shared by every detector with the same window. ``max_hypotheses`` (default unbounded)
caps them, the least seen one (the oldest of equals) making room for a new one.

Speed: when the point that leaves the window falls in the same bin as the one that enters
(and the bins did not move) the histogram is unchanged, so every statistic is too and the
previous step's best hypothesis is still the best: it is counted again without testing them
all. (After a new hypothesis the window *is* that hypothesis, statistic 0, and every older one
was rejected.) The scores are exactly those of testing every point.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .base import OnlineDetector

HYPOTHESIS_ROWS = 4  # hypotheses' room grows this many rows at a time
_LOG_COUNTS: dict[int, np.ndarray] = {}  # window -> log of every possible count, shared


@functools.lru_cache(maxsize=None)
def chi2_threshold(significance: float, dof: int) -> float:
    """``T``, the chi-squared quantile at ``1 - significance`` with ``dof`` degrees of freedom
    (as NAB's), once per setting rather than once per series' detector."""
    from scipy.stats import chi2  # here, not at import: only this detector needs it

    return float(chi2.isf(significance, dof))


def log_counts(window: int) -> np.ndarray:
    """``log(0 .. window)`` (log 0 = -inf: an empty hypothesis bin rejects), one read-only
    table per window size for every detector that uses it."""
    table = _LOG_COUNTS.get(window)
    if table is None:
        with np.errstate(divide="ignore"):
            table = np.log(np.arange(window + 1, dtype=float))
        table.flags.writeable = False
        table = _LOG_COUNTS.setdefault(window, table)
    return table


def whole_number(value, name: str, least: int) -> int:
    """``value`` as an int >= ``least``; ``ValueError`` naming ``name`` otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and number >= least):
        raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(number)


class RelativeEntropyDetector(OnlineDetector):
    """1 when the window's value histogram agrees with no known hypothesis, else 0."""

    name = "relative_entropy"

    def __init__(self, window: int = 52, n_bins: int = 5, significance: float = 0.01,
                 c_threshold: int = 1, input_min: float | None = None,
                 input_max: float | None = None, range_margin: float = 0.5,
                 max_hypotheses: int | None = None):
        self.window = whole_number(window, "window", 2)
        self.n_bins = whole_number(n_bins, "n_bins", 2)
        self.c_threshold = whole_number(c_threshold, "c_threshold", 0)
        try:
            self.significance = float(significance)
        except (TypeError, ValueError):
            self.significance = math.nan
        if not 0.0 < self.significance < 1.0:
            raise ValueError(f"significance must lie strictly between 0 and 1, got {significance!r}")
        if (input_min is None) != (input_max is None):
            raise ValueError("give both input_min and input_max (a fixed range) or neither "
                             f"(the running range), got {input_min!r}, {input_max!r}")
        self.fixed = input_min is not None
        if self.fixed:
            lo, hi = float(input_min), float(input_max)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi >= lo):
                raise ValueError(f"input_min / input_max must be finite with max >= min, "
                                 f"got {input_min!r}, {input_max!r}")
            self.input_min, self.input_max = lo, hi
        else:
            self.input_min = self.input_max = None
        try:
            margin = float(range_margin)
        except (TypeError, ValueError):
            margin = math.nan
        if not (math.isfinite(margin) and margin >= 0.0):
            raise ValueError(f"range_margin must be a finite number >= 0, got {range_margin!r}")
        self.range_margin = margin
        self.max_hypotheses = (None if max_hypotheses is None
                               else whole_number(max_hypotheses, "max_hypotheses", 1))
        self.threshold = chi2_threshold(self.significance, self.n_bins - 1)
        self._log = log_counts(self.window)
        self.reset()

    def reset(self) -> None:
        w, n = self.window, self.n_bins
        self.values = np.zeros(w)  # the last `window` values, a ring (order is irrelevant)
        self.bins = np.zeros(w, dtype=np.int64)  # their bins
        self.counts = np.zeros(n, dtype=np.int64)  # the window's histogram
        self.head = 0  # where the next value goes
        self.count = 0  # values held, up to `window`
        self.lo, self.hi = (self.input_min, self.input_max) if self.fixed else (None, None)
        self.m = 0  # hypotheses held
        rows = HYPOTHESIS_ROWS
        self.hyp_counts = np.zeros((rows, n), dtype=np.int64)
        self.hyp_seen = np.zeros(rows, dtype=np.int64)  # windows that agreed with each (c)
        self.hyp_values = None if self.fixed else np.zeros((rows, w))  # raw, to re-bin
        self.best = -1  # the hypothesis the current histogram matched (-1: test them all)

    # ----------------------------------------------------------------- state (trimmed)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        m = self.m
        state["hyp_counts"] = self.hyp_counts[:m].copy()
        state["hyp_seen"] = self.hyp_seen[:m].copy()
        if self.hyp_values is not None:
            state["hyp_values"] = self.hyp_values[:m].copy()
        state.pop("_log", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("best", -1)  # a checkpoint from before the shortcut: test them all
        self.__dict__.update(state)
        self._log = log_counts(self.window)

    # ----------------------------------------------------------------- binning

    @property
    def step(self) -> float:
        """Width of one bin step, ``(hi - lo) / n_bins`` (0 before a range exists)."""
        return 0.0 if self.lo is None else (self.hi - self.lo) / self.n_bins

    def bin_of(self, values) -> np.ndarray:
        """Bins of ``values`` under the current range (the reference's ``ceil``, clipped)."""
        values = np.asarray(values, dtype=float)
        step = self.step
        if step == 0.0:  # a running range of zero width: every value seen equals lo
            return np.zeros(values.shape, dtype=np.int64)
        return np.clip(np.ceil((values - self.lo) / step), 0, self.n_bins - 1).astype(np.int64)

    def _extend_range(self, value: float) -> bool:
        """Running min / max, widened past a new extreme by ``range_margin`` of the new span;
        True when it moved."""
        if self.lo is None:
            self.lo = self.hi = value
            return True
        if self.lo <= value <= self.hi:
            return False
        lo, hi = min(self.lo, value), max(self.hi, value)
        pad = self.range_margin * (hi - lo)
        self.lo, self.hi = (lo - pad, hi) if value < self.lo else (lo, hi + pad)
        return True

    def _histograms(self, rows: np.ndarray) -> np.ndarray:
        """Bin counts of each row of raw values (shape ``[k, window]`` -> ``[k, n_bins]``)."""
        k, n = rows.shape[0], self.n_bins
        flat = self.bin_of(rows) + n * np.arange(k)[:, None]
        return np.bincount(flat.ravel(), minlength=k * n).reshape(k, n)

    def _rebin(self) -> None:
        """The range moved: bin the window and every hypothesis again from raw values."""
        held = self.values if self.count == self.window else self.values[: self.count]
        self.bins[: held.size] = self.bin_of(held)
        self.counts = np.bincount(self.bins[: held.size], minlength=self.n_bins)
        if self.m:
            self.hyp_counts[: self.m] = self._histograms(self.hyp_values[: self.m])

    # ----------------------------------------------------------------- hypotheses

    def statistics(self) -> np.ndarray:
        """``2 W KL(P_hat || P_i)`` of the current window against each hypothesis ``i``
        (``2 sum_k a_k log(a_k / b_k)`` over the window's counts ``a`` and the hypothesis'
        ``b``, both summing to W); inf where the hypothesis misses a bin the window fills."""
        filled = np.flatnonzero(self.counts)
        a = self.counts[filled]
        b = self.hyp_counts[: self.m, filled]
        log = self._log
        return 2.0 * ((log[a] - log[b]) * a).sum(axis=1)

    def _add_hypothesis(self) -> None:
        m = self.m
        if self.max_hypotheses is not None and m >= self.max_hypotheses:
            i = int(np.argmin(self.hyp_seen[:m]))  # least seen, oldest of equals: replaced
        else:
            if m == self.hyp_seen.size:  # full (or trimmed to m by a pickle): room for more
                more = HYPOTHESIS_ROWS
                self.hyp_counts = np.concatenate(
                    [self.hyp_counts, np.zeros((more, self.n_bins), dtype=np.int64)])
                self.hyp_seen = np.concatenate([self.hyp_seen, np.zeros(more, dtype=np.int64)])
                if self.hyp_values is not None:
                    self.hyp_values = np.concatenate(
                        [self.hyp_values, np.zeros((more, self.window))])
            i, self.m = m, m + 1
        if i < m:  # keep creation order: the replaced one's slot closes, the new one goes last
            for arr in (self.hyp_counts, self.hyp_seen, self.hyp_values):
                if arr is not None:
                    arr[i : m - 1] = arr[i + 1 : m].copy()
            i = m - 1
        self.hyp_counts[i] = self.counts
        self.hyp_seen[i] = 1
        if self.hyp_values is not None:
            self.hyp_values[i] = self.values
        self.best = i  # the window is this hypothesis now (statistic 0)

    # ----------------------------------------------------------------- one point

    def _update(self, value: float) -> float:
        if self.fixed:
            if self.step == 0.0:  # the reference's flat-line rule: nothing to quantise
                return 0.0
            moved = False
        else:
            moved = self._extend_range(value)
        head = self.head
        full = self.count == self.window
        leaving = self.bins[head] if full else -1
        if full:
            self.counts[leaving] -= 1
        else:
            self.count += 1
        self.values[head] = value
        self.head = head + 1 if head + 1 < self.window else 0
        if moved:
            self._rebin()
            unchanged = False
        else:
            step = self.step
            b = 0 if step == 0.0 else min(max(math.ceil((value - self.lo) / step), 0),
                                          self.n_bins - 1)
            self.bins[head] = b
            self.counts[b] += 1
            unchanged = b == leaving
        if self.count < self.window:
            return 0.0
        if self.m == 0:
            self._add_hypothesis()
            return 0.0
        if not (unchanged and self.best >= 0):  # else same histogram: the same match
            stat = self.statistics()
            i = int(np.argmin(stat))
            if stat[i] >= self.threshold:  # no hypothesis explains the window
                self._add_hypothesis()
                return 1.0
            self.best = i
        self.hyp_seen[self.best] += 1
        return 1.0 if self.hyp_seen[self.best] <= self.c_threshold else 0.0
