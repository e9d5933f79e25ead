"""CAD OSE: the Contextual Anomaly Detector, Open Source Edition (Smirnov & Tarasov, 2016).

NAB's ``contextOSE`` detector (69.9 standard on the full corpus), written afresh from its
published algorithm:

- each value is quantised into ``2 ** bits - 1`` steps of the value range and written as
  ``bits`` binary digits; digit ``s`` with value ``b`` is the *fact* ``2 s + b``;
- the facts of a step (the current value's facts plus the "neurons": the contexts that were
  active in it) form the *left* half of a context whose *right* half is the next value's
  facts. Contexts live in a memory of left and right semi-contexts (fact sets) with an index
  from fact to semi-context, so that one step only touches what shares a fact with it;
- a context is *selected* when its left half was entirely in the previous step and *active*
  when its right half is also entirely in the current value. New contexts: the zero-level
  pair (previous step, current value) when it was never seen, plus, only in such a step, the
  crossings of the zero-level contexts partly matched by the two steps (left parts of at
  most ``max_left_semi_contexts`` facts);
- the score ``(1 - active / selected + added / new_candidates) / 2`` is high when few of the
  contexts that the previous step predicted came true and many new contexts had to be
  stored; after a score of ``base_threshold`` or more the detector reports 0 for
  ``rest_period`` steps (one alarm per episode);
- the ``max_active_neurons`` most often active contexts (ties by their halves' hashes, as
  the reference does) become the neuron facts of the step.

Value range: NAB hands the detector the file's min and max before it starts (``value_range``
here). A live stream has no such oracle, so by default (``value_range=None``) the range is the
running min / max of the values seen so far, the new value included: the quantisation then
sharpens as the range settles, and a value outside everything seen so far lands on an extreme
bin. NAB's ``rest_period`` is the file's probation length / 5 (150 rows for files of 5,000
rows and more); 150 is the default here.

Memory grows with the number of distinct contexts (a few thousand on a NAB file);
``max_contexts`` (default unbounded, as the reference) stops storing new contexts past that
many, so that a live series cannot grow without bound.
"""

from __future__ import annotations

import math

import numpy as np

from .base import OnlineDetector

NEURON_BASE = 1 << 31  # neuron facts are this plus the context id (the reference's numbering)


class _Semis:
    """One side's semi-contexts (fact tuples), numbered in creation order, with an index
    from fact to the semi-contexts holding it (numpy arrays, rebuilt only when it grew)."""

    def __init__(self):
        self.ids: dict[tuple, int] = {}
        self.facts: list[tuple] = []
        self.size = np.zeros(64, dtype=np.int64)
        self.index: dict[int, list[int]] = {}
        self.arrays: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.facts)

    def get(self, facts: tuple) -> int:
        """The id of the semi-context ``facts``, created when new."""
        sid = self.ids.get(facts)
        if sid is None:
            sid = self.ids[facts] = len(self.facts)
            self.facts.append(facts)
            if sid >= self.size.size:
                self.size = np.concatenate([self.size, np.zeros_like(self.size)])
            self.size[sid] = len(facts)
            for fact in facts:
                self.index.setdefault(fact, []).append(sid)
                self.arrays.pop(fact, None)
        return sid

    def matches(self, facts) -> np.ndarray:
        """How many of ``facts`` each semi-context holds (one count per semi-context)."""
        parts = []
        for fact in facts:
            arr = self.arrays.get(fact)
            if arr is None:
                ids = self.index.get(fact)
                if ids is None:
                    continue
                arr = self.arrays[fact] = np.array(ids, dtype=np.int64)
            parts.append(arr)
        n = len(self.facts)
        if not parts:
            return np.zeros(n, dtype=np.int64)
        return np.bincount(np.concatenate(parts), minlength=n)


class ContextMemory:
    """The store of contexts (pairs of a left and a right semi-context) and the crossing of
    a step's facts with it, vectorised over all contexts."""

    def __init__(self, max_left_semi_contexts: int = 7, max_contexts: int | None = None):
        self.max_left = int(max_left_semi_contexts)
        self.max_contexts = max_contexts
        self.left, self.right = _Semis(), _Semis()
        self.table: dict[tuple[int, int], int] = {}  # (left id, right id) -> context id
        self.n = 0
        cap = 256
        self.ctx_left = np.zeros(cap, dtype=np.int64)
        self.ctx_right = np.zeros(cap, dtype=np.int64)
        self.ctx_count = np.zeros(cap, dtype=np.int64)  # times the context was active
        self.ctx_zero = np.zeros(cap, dtype=bool)  # ever stored as a zero-level context
        self.ctx_lhash = np.zeros(cap, dtype=np.int64)  # tie-breaks, as the reference sorts
        self.ctx_rhash = np.zeros(cap, dtype=np.int64)
        self.left_count = np.zeros(0, dtype=np.int64)  # left matches of the previous step
        self.left_step: frozenset = frozenset()
        self.new_context_id = -1

    def _grow(self) -> None:
        for attr in ("ctx_left", "ctx_right", "ctx_count", "ctx_zero", "ctx_lhash", "ctx_rhash"):
            arr = getattr(self, attr)
            setattr(self, attr, np.concatenate([arr, np.zeros_like(arr)]))

    def store(self, pairs, zero_level: bool = False):
        """Store the (left facts, right facts) pairs that are new. Zero level (one pair): True
        when it was new; otherwise the number of pairs actually added."""
        added = 0
        for left, right in pairs:
            key = (self.left.get(left), self.right.get(right))
            cid = self.table.get(key)
            if cid is None:
                if self.max_contexts is not None and self.n >= self.max_contexts:
                    if zero_level:
                        return False
                    continue
                cid = self.table[key] = self.n
                if cid >= self.ctx_left.size:
                    self._grow()
                self.n += 1
                self.ctx_left[cid], self.ctx_right[cid] = key
                self.ctx_zero[cid] = zero_level
                self.ctx_lhash[cid], self.ctx_rhash[cid] = hash(left), hash(right)
                added += 1
                if zero_level:
                    self.new_context_id = cid
                    return True
            elif zero_level:
                self.ctx_zero[cid] = True
                return False
        return added

    def cross_right(self, facts, new_flag: bool):
        """Match the current value's facts against the contexts the previous step selected.

        Returns (ids of the active contexts, oldest-ranked first by times active, then the
        halves' hashes; number selected; candidate new contexts, in the reference's order).
        """
        n = self.n
        lids, rids = self.ctx_left[:n], self.ctx_right[:n]
        lc = self.left_count
        if lc.size < len(self.left):  # left semi-contexts made since the previous step
            lc = np.concatenate([lc, np.zeros(len(self.left) - lc.size, dtype=np.int64)])
        n_left = lc[lids]
        full_left = (n_left == self.left.size[lids]) & (n_left > 0)
        if 0 <= self.new_context_id < n:
            full_left[self.new_context_id] = False
        n_right = self.right.matches(facts)[rids]
        full_right = n_right == self.right.size[rids]
        selected = int(full_left.sum())
        active = np.flatnonzero(full_left & full_right)
        self.ctx_count[active] += 1
        counts = self.ctx_count[active]
        active = active[np.lexsort((self.ctx_rhash[active], self.ctx_lhash[active], counts))]
        candidates = []
        if new_flag:
            pick = (self.ctx_zero[:n] & (n_right > 0) & (n_left > 0) & (n_left <= self.max_left)
                    & ~(full_left & full_right))
            if 0 <= self.new_context_id < n:
                pick[self.new_context_id] = False
            cids = np.flatnonzero(pick)
            cids = cids[np.argsort(lids[cids], kind="stable")]  # left creation order, then id
            now, before = set(facts), self.left_step
            for cid in cids.tolist():
                left = tuple(f for f in self.left.facts[lids[cid]] if f in before)
                right = tuple(f for f in self.right.facts[rids[cid]] if f in now)
                candidates.append((left, right))
        self.new_context_id = -1
        return active, selected, candidates

    def cross_left(self, facts, candidates) -> int:
        """Store the candidates, then match this step's facts for the next step."""
        added = self.store(candidates) if candidates else 0
        self.left_count = self.left.matches(facts)
        self.left_step = frozenset(facts)
        return added


class CadOseDetector(OnlineDetector):
    """Contextual Anomaly Detector (OSE), NAB's ``contextOSE``, as an online detector.

    Score in [0, 1]: the share of predicted contexts that failed plus the share of new
    contexts stored, halved; 0 for ``rest_period`` steps after a score >= ``base_threshold``
    (and for the first ``rest_period`` steps, as the reference starts its history at 1.0).
    """

    name = "cad_ose"

    def __init__(self, value_range: tuple[float, float] | None = None,
                 base_threshold: float = 0.75, rest_period: float = 150,
                 max_left_semi_contexts: int = 7, max_active_neurons: int = 15,
                 bits: int = 3, max_contexts: int | None = None, range_margin: float = 0.5):
        if value_range is not None:
            lo, hi = (float(v) for v in value_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi >= lo):
                raise ValueError(f"value_range must be finite (min, max) with max >= min, "
                                 f"got {value_range!r}")
            value_range = (lo, hi)
        if int(bits) < 1:
            raise ValueError(f"bits must be at least 1, got {bits}")
        if int(rest_period) < 1:
            raise ValueError(f"rest_period must be at least 1 step, got {rest_period}")
        self.value_range = value_range
        self.base_threshold = float(base_threshold)
        self.rest_period = int(rest_period)  # the reference slices history[-int(rest):]
        self.max_left_semi_contexts = int(max_left_semi_contexts)
        self.max_active_neurons = int(max_active_neurons)
        self.bits = int(bits)
        self.max_bin = 2 ** self.bits - 1
        self.max_contexts = None if max_contexts is None else int(max_contexts)
        if not float(range_margin) >= 0.0:
            raise ValueError(f"range_margin must be >= 0, got {range_margin}")
        self.range_margin = float(range_margin)
        self.reset()

    def reset(self) -> None:
        self.memory = ContextMemory(self.max_left_semi_contexts, self.max_contexts)
        self.left_facts: tuple = ()
        self.lo, self.hi = self.value_range if self.value_range else (None, None)
        self.since_alarm = 0  # steps since the last score >= base_threshold (history: [1.0])

    def _extend_range(self, value: float) -> None:
        """Running min / max; a value outside it widens it past the value by
        ``range_margin`` of the new span, so that the bins move only now and then."""
        if self.lo is None:
            self.lo = self.hi = value
            return
        if self.lo <= value <= self.hi:
            return
        lo, hi = min(self.lo, value), max(self.hi, value)
        pad = self.range_margin * (hi - lo)
        self.lo, self.hi = (lo - pad, hi) if value < self.lo else (lo, hi + pad)

    def facts_of(self, value: float) -> tuple[int, ...]:
        """The value's sensory facts: bin in [0, 2**bits - 1], one fact per binary digit."""
        span = self.hi - self.lo
        step = (span if span > 0.0 else self.max_bin) / self.max_bin
        k = int((value - self.lo) / step)
        k = min(max(k, 0), self.max_bin)  # only a value outside a given range is clipped
        return tuple(2 * s + ((k >> s) & 1) for s in range(self.bits))

    def raw_score(self, value: float) -> float:
        """The context score of ``value`` before the rest period is applied; learns."""
        if self.value_range is None:
            self._extend_range(value)
        facts = self.facts_of(value)
        memory = self.memory
        new_flag = False
        n_candidates = 0
        if self.left_facts:
            new_flag = memory.store([(self.left_facts, facts)], zero_level=True)
            n_candidates = 1
        active, selected, candidates = memory.cross_right(facts, new_flag)
        n_candidates = len(set(candidates) | ({(self.left_facts, facts)} if n_candidates else set()))
        share_active = len(active) / selected if selected else 0.0
        neurons = {NEURON_BASE + int(c) for c in active[-self.max_active_neurons:]}
        self.left_facts = tuple(sorted(set(facts) | neurons))
        added = memory.cross_left(self.left_facts, candidates) + (1 if new_flag else 0)
        share_added = added / n_candidates if new_flag and n_candidates else 0.0
        return (1.0 - share_active + share_added) / 2.0

    def _update(self, value: float) -> float:
        raw = self.raw_score(value)
        resting = self.since_alarm < self.rest_period
        self.since_alarm = 0 if raw >= self.base_threshold else self.since_alarm + 1
        return 0.0 if resting else raw
