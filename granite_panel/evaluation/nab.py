"""The Numenta Anomaly Benchmark (NAB) scoring rules, as pure functions.

Implemented from the rules in ``shared/data/README.md`` (they follow ``nab/sweeper.py``):

- the first ``min(floor(0.15 * rows), 750)`` rows of a file are probation: never scored;
- a detection is a row whose ``anomaly_score >= threshold``; one threshold for the whole
  corpus, chosen by a sweep over every distinct score to maximise the total raw score;
- inside a window only the best (earliest) detection counts: ``A_TP * s(y) / s(-1)`` with
  ``s(y) = 2 / (1 + exp(5 y)) - 1`` and ``y = -(right - i + 1) / width``;
- a window without a detection costs ``-A_FN`` (a window wholly inside probation is not
  counted, as in NAB);
- a detection outside every window costs ``A_FP * s(y)``, ``y = |i - prev_right| /
  (prev_width - 1)`` from the previous window (``s = -1`` for ``y > 3``), ``-A_FP`` before
  the first window;
- normalised score ``100 * (S - S_null) / (S_perfect - S_null)``, ``S_null = -A_FN * windows``,
  ``S_perfect = A_TP * windows``, summed over the corpus.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROBATION_FRACTION = 0.15
PROBATION_CAP = 750
OUTSIDE = -1  # window id of a row outside every window
PROBATION = -2  # window id of a probation row (never scored)


@dataclass(frozen=True)
class Profile:
    """NAB's application profile: weights of true positives, false negatives, false positives."""

    name: str
    a_tp: float
    a_fn: float
    a_fp: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 1.0, 0.11),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 1.0, 0.22),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 2.0, 0.11),
}


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray | float:
    """``2 / (1 + exp(5 y)) - 1``, and exactly -1 for ``y > 3`` (NAB's ``scaledSigmoid``)."""
    y_arr = np.asarray(y, dtype=float)
    with np.errstate(over="ignore"):
        out = np.where(y_arr > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * y_arr)) - 1.0)
    return float(out) if np.ndim(y) == 0 else out


def probation_length(n_rows: int) -> int:
    """Rows at the start of a file that are never scored."""
    return min(int(math.floor(PROBATION_FRACTION * n_rows)), PROBATION_CAP)


# --------------------------------------------------------------------------- labels


def load_windows(labels_path: str | Path) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    """``{"folder/file.csv": [(start, end), ...]}`` from ``combined_windows.json``.

    ``labels_path`` may be the JSON file or the folder holding it.
    """
    path = Path(labels_path)
    if path.is_dir():
        path = path / "combined_windows.json"
    raw = json.loads(path.read_text())
    return {
        name: [(np.datetime64(_iso(a)), np.datetime64(_iso(b))) for a, b in windows]
        for name, windows in raw.items()
    }


def _iso(text: str) -> str:
    return text.strip().replace(" ", "T")


def window_indices(timestamps, windows) -> list[tuple[int, int]]:
    """Row ranges ``(left, right)`` (inclusive) of each window: rows with start <= t <= end."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    out = []
    for start, end in windows:
        left = int(np.searchsorted(ts, np.datetime64(start, "ns"), side="left"))
        right = int(np.searchsorted(ts, np.datetime64(end, "ns"), side="right")) - 1
        if right >= left:
            out.append((left, right))
    return out


@dataclass
class FileLabels:
    """What the scorer needs to know about one file: its length and window rows."""

    n_rows: int
    windows: list[tuple[int, int]]
    probation: int = -1  # -1: NAB's default for n_rows
    name: str = ""

    def __post_init__(self):
        if self.probation < 0:
            self.probation = probation_length(self.n_rows)
        self.windows = sorted((int(a), int(b)) for a, b in self.windows)
        for a, b in self.windows:
            if not 0 <= a <= b < self.n_rows:
                raise ValueError(f"window {(a, b)} is outside rows 0..{self.n_rows - 1}")

    @property
    def scored_windows(self) -> list[int]:
        """Indices of windows with at least one row after probation (those NAB counts)."""
        return [k for k, (_, b) in enumerate(self.windows) if b >= self.probation]


@dataclass
class RowWeights:
    """Per row: which window it is in (OUTSIDE, PROBATION or an index) and its weighted score."""

    window_id: np.ndarray
    weight: np.ndarray


def row_weights(labels: FileLabels, profile: Profile) -> RowWeights:
    """NAB's sweep score of each row as if it were a detection (``calcSweepScore``)."""
    n = labels.n_rows
    window_id = np.full(n, OUTSIDE, dtype=np.int64)
    weight = np.full(n, -1.0 * profile.a_fp)
    max_tp = scaled_sigmoid(-1.0)
    idx = np.arange(n, dtype=float)
    prev_right = prev_width = None
    cursor = 0  # rows before the current window's left edge are outside windows
    for k, (left, right) in enumerate(labels.windows + [(n, n)]):
        # rows between the previous window and this one: false positives
        gap = slice(cursor, min(left, n))
        if prev_right is not None and gap.stop > gap.start:
            y = np.abs(idx[gap] - prev_right) / (prev_width - 1) if prev_width > 1 else np.inf
            weight[gap] = profile.a_fp * scaled_sigmoid(np.broadcast_to(y, idx[gap].shape))
        if left >= n:
            break
        width = float(right - left + 1)
        rows = slice(left, right + 1)
        window_id[rows] = k
        weight[rows] = profile.a_tp * scaled_sigmoid(-(right - idx[rows] + 1) / width) / max_tp
        prev_right, prev_width = right, width
        cursor = right + 1
    window_id[: labels.probation] = PROBATION
    return RowWeights(window_id, weight)


# --------------------------------------------------------------------------- scoring


@dataclass
class FileScore:
    """Raw score of one file at one threshold, and its parts."""

    score: float
    tp: int
    fn: int
    fp: int
    fp_cost: float


def score_file(
    scores: np.ndarray, labels: FileLabels, threshold: float, profile: Profile
) -> FileScore:
    """NAB's raw score of one file's ``anomaly_score`` column at ``threshold``."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (labels.n_rows,):
        raise ValueError(f"{scores.shape[0]} scores for a file of {labels.n_rows} rows")
    rw = row_weights(labels, profile)
    detected = np.nan_to_num(scores, nan=-np.inf) >= threshold
    fp_rows = detected & (rw.window_id == OUTSIDE)
    fp_cost = float(rw.weight[fp_rows].sum())
    total, tp, fn = fp_cost, 0, 0
    for k in labels.scored_windows:
        hits = detected & (rw.window_id == k)
        if hits.any():
            total += float(rw.weight[hits].max())
            tp += 1
        else:
            total -= profile.a_fn
            fn += 1
    return FileScore(total, tp, fn, int(fp_rows.sum()), fp_cost)


def _events(scores: np.ndarray, labels: FileLabels, profile: Profile):
    """(score, change of total) of each row once the threshold falls to its score."""
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    rw = row_weights(labels, profile)
    outside = rw.window_id == OUTSIDE
    ev_scores = [scores[outside]]
    ev_deltas = [rw.weight[outside]]
    for k in labels.scored_windows:
        rows = np.flatnonzero(rw.window_id == k)
        order = rows[np.argsort(-scores[rows], kind="stable")]
        running = np.maximum.accumulate(np.concatenate([[-profile.a_fn], rw.weight[order]]))
        ev_scores.append(scores[order])
        ev_deltas.append(np.diff(running))
    return np.concatenate(ev_scores), np.concatenate(ev_deltas)


@dataclass
class SweepResult:
    """The corpus-wide best threshold of one profile and what it scores."""

    profile: Profile
    threshold: float
    raw: float
    null: float
    perfect: float
    files: dict[str, FileScore] = field(default_factory=dict)

    @property
    def normalized(self) -> float:
        return normalize(self.raw, self.null, self.perfect)


def normalize(raw: float, null: float, perfect: float) -> float:
    """``100 * (raw - null) / (perfect - null)``; 0 for a corpus without windows."""
    span = perfect - null
    return 100.0 * (raw - null) / span if span > 0 else 0.0


def sweep_threshold(
    corpus: dict[str, tuple[np.ndarray, FileLabels]], profile: Profile
) -> SweepResult:
    """The single threshold (one of the scores, or +inf: no detections) that maximises the
    corpus's total raw score, and the per-file scores there. Ties go to the higher threshold.
    """
    all_scores, all_deltas = [], []
    n_windows = 0
    for scores, labels in corpus.values():
        s, d = _events(scores, labels, profile)
        all_scores.append(s)
        all_deltas.append(d)
        n_windows += len(labels.scored_windows)
    base = -profile.a_fn * n_windows
    s = np.concatenate(all_scores) if all_scores else np.empty(0)
    d = np.concatenate(all_deltas) if all_deltas else np.empty(0)
    keep = np.isfinite(s)
    s, d = s[keep], d[keep]
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    totals = base + np.cumsum(d)
    # the total at threshold t counts every row with score >= t: the last row of each tie group
    group_end = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if s.size else np.empty(0, int)
    cand_thresholds = np.concatenate([[np.inf], s[group_end]])
    cand_totals = np.concatenate([[base], totals[group_end]])
    best = int(np.argmax(np.round(cand_totals, 9)))
    threshold = float(cand_thresholds[best])
    files = {
        name: score_file(scores, labels, threshold, profile)
        for name, (scores, labels) in corpus.items()
    }
    return SweepResult(
        profile=profile,
        threshold=threshold,
        raw=float(sum(f.score for f in files.values())),
        null=base,
        perfect=profile.a_tp * n_windows,
        files=files,
    )


def score_corpus(
    corpus: dict[str, tuple[np.ndarray, FileLabels]],
    profiles: dict[str, Profile] | None = None,
) -> dict[str, SweepResult]:
    """The sweep of every profile (each picks its own threshold, as NAB does)."""
    profiles = PROFILES if profiles is None else profiles
    return {name: sweep_threshold(corpus, p) for name, p in profiles.items()}
