"""Scoring detectors on streams whose anomalies are known (the synthetic source's labels).

A second check beside NAB (``nab_scoring``): NAB has 25 windows in 18 files; the synthetic
source injects thousands of spikes, dips and level shifts, densely (5% of points start one
by default), which is what the dashboard shows. Pure functions over arrays:

- an **event** is one injected anomaly: a single labelled point for a spike or a dip, a run
  of consecutive level-shift points for a level shift (``event_spans``);
- **event recall**: the fraction of events with at least one point scored ``>= threshold``
  (a detection must fall on the anomaly itself: the score of a point is known when it
  arrives, so no lag is allowed);
- **point precision**: of the points scored ``>= threshold``, the fraction that are labelled;
- **NAB-style score**: ``nab_scoring`` rules with one window per event (its own points), at
  the fixed threshold, normalised to null 0 / perfect 100;
- the first ``warmup`` points of every series are not scored: no event starting there
  counts, no flag there counts (the dashboard backfills ``context_length`` = 512 points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .nab import PROFILES, FileLabels, Profile, normalize, score_file

# label codes as in ``sources`` (kept numeric here: this module does not import sources)
_SPIKE, _DIP, _LEVEL_SHIFT = 1, 2, 3


def event_spans(labels) -> list[tuple[int, int]]:
    """``(first, last)`` rows (inclusive) of each labelled event of one series.

    Spikes and dips are one point each (two in a row are two events); a run of level-shift
    points is one event; any other non-zero code is grouped like a level shift.
    """
    labels = np.asarray(labels).ravel()
    spans: list[tuple[int, int]] = []
    i, n = 0, labels.size
    while i < n:
        code = labels[i]
        if code == 0:
            i += 1
            continue
        j = i
        if code not in (_SPIKE, _DIP):
            while j + 1 < n and labels[j + 1] == code:
                j += 1
        spans.append((i, j))
        i = j + 1
    return spans


@dataclass
class DetectionMetrics:
    """Counts and ratios of one detector at one threshold over a set of series."""

    threshold: float
    events: int
    detected: int
    flagged: int
    true_flagged: int
    labelled_points: int
    nab_raw: float
    nab_null: float
    nab_perfect: float

    @property
    def event_recall(self) -> float:
        return self.detected / self.events if self.events else float("nan")

    @property
    def point_precision(self) -> float:
        return self.true_flagged / self.flagged if self.flagged else float("nan")

    @property
    def point_recall(self) -> float:
        return self.true_flagged / self.labelled_points if self.labelled_points else float("nan")

    @property
    def nab_score(self) -> float:
        return normalize(self.nab_raw, self.nab_null, self.nab_perfect)

    def __add__(self, other: "DetectionMetrics") -> "DetectionMetrics":
        if other.threshold != self.threshold:
            raise ValueError("cannot add metrics taken at different thresholds")
        return DetectionMetrics(
            self.threshold,
            *(getattr(self, f) + getattr(other, f) for f in (
                "events", "detected", "flagged", "true_flagged", "labelled_points",
                "nab_raw", "nab_null", "nab_perfect",
            )),
        )


def detection_metrics(
    scores,
    labels,
    threshold: float,
    warmup: int = 0,
    profile: Profile | str = "standard",
) -> DetectionMetrics:
    """Event recall, point precision and a NAB-style score of ``scores`` against ``labels``.

    ``scores`` and ``labels`` are ``[n_series, n_points]`` (or one series, 1-D); a label is
    0 for a normal point and an anomaly code otherwise. NaN scores never count as flags.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    labels = np.atleast_2d(np.asarray(labels))
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    profile = PROFILES[profile] if isinstance(profile, str) else profile
    n_points = scores.shape[1]
    warmup = max(0, min(int(warmup), n_points))
    flags = np.nan_to_num(scores, nan=-np.inf) >= threshold
    truth = labels != 0
    events = detected = 0
    raw = null = perfect = 0.0
    for s_row, f_row, l_row in zip(scores, flags, labels):
        all_spans = event_spans(l_row)
        spans = [(a, b) for a, b in all_spans if a >= warmup]
        events += len(spans)
        detected += sum(bool(f_row[a : b + 1].any()) for a, b in spans)
        # NAB: probation = warmup; a window reaching past it is counted, as NAB does
        lab = FileLabels(n_points, all_spans, probation=warmup)
        raw += score_file(s_row, lab, threshold, profile).score
        null -= profile.a_fn * len(lab.scored_windows)
        perfect += profile.a_tp * len(lab.scored_windows)
    scored = np.zeros(n_points, dtype=bool)
    scored[warmup:] = True
    flagged = int((flags & scored).sum())
    true_flagged = int((flags & truth & scored).sum())
    return DetectionMetrics(
        float(threshold), events, detected, flagged, true_flagged,
        int((truth & scored).sum()), raw, null, perfect,
    )


def synthetic_stream(seed: int, n_series: int = 8, n_points: int = 3000, **source_kwargs):
    """``(values, labels)``, both ``[n_series, n_points]``, from ``SyntheticSource``."""
    from ..sources.synthetic import SyntheticSource

    batch = SyntheticSource(n_series=n_series, seed=seed, **source_kwargs).next_batch(n_points)
    return batch.values, batch.labels


def synthetic_metrics(
    detector: str,
    threshold: float | None = None,
    seeds=(0, 1, 2),
    n_series: int = 8,
    n_points: int = 3000,
    warmup: int = 512,
    anomaly_probability: float = 0.05,
    **detector_kwargs,
) -> DetectionMetrics:
    """``detection_metrics`` of a fresh ``detector`` per series over ``synthetic_stream``s of
    every seed (summed), at ``threshold`` (default: the detector's live threshold)."""
    from ..detection.detectors import LIVE_THRESHOLDS, make_detector

    if threshold is None:
        threshold = LIVE_THRESHOLDS.get(detector, 0.5)
    total = None
    for seed in seeds:
        values, labels = synthetic_stream(
            seed, n_series, n_points, anomaly_probability=anomaly_probability
        )
        scores = np.stack(
            [make_detector(detector, **detector_kwargs).score_series(row) for row in values]
        )
        m = detection_metrics(scores, labels, threshold, warmup)
        total = m if total is None else total + m
    return total
