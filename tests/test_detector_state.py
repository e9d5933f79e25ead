"""The detectors' compact state computes what the old layout computed, in less memory.

``HistoryLikelihood`` below is the anomaly likelihood as it was written before its state was
made compact: one ``long``-mean history (``RollingMoments``) per averaging window. The
compact ``MultiWindowLikelihood`` keeps raw scores (as float32) and replays the leaving mean.
Given the same float32-rounded raw scores the two must be *equal* (tolerance 0: the same
float operations), on random raw streams and through the whole hybrid on a NAB file and on a
synthetic stream, with histories that wrap around and get re-summed. Against the old
float64 raw scores: the ensemble's evidence within 1e-6 (measured 3e-8), the hybrid's
scores equal (its likelihoods only decide alerts; on all 31 NAB files none moved). About 15 s.
"""

from __future__ import annotations

import pickle
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from granite_panel.detection.detectors import (
    AnomalyLikelihood,
    HybridDetector,
    MultiWindowLikelihood,
    RollingMoments,
    make_detector,
    tail_score,
)
from granite_panel.evaluation.synthetic import synthetic_stream

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


class HistoryLikelihood:
    """The old layout: a ``RollingMoments(long)`` history of window means per window."""

    def __init__(self, windows=(10, 20, 40, 80), long=8640, learning=288, float32=True):
        self.windows, self.learning, self.float32 = tuple(windows), learning, float32
        self.recent: deque[float] = deque(maxlen=max(self.windows))
        self.sums = [0.0] * len(self.windows)
        self.history = [RollingMoments(long) for _ in self.windows]
        self.n = 0

    def update(self, raw):
        if self.float32:  # the raw score as the compact layout keeps it
            raw = float(np.float32(raw))
        recent, m = self.recent, len(self.recent)
        for k, w in enumerate(self.windows):
            self.sums[k] = self.sums[k] + raw - (recent[m - w] if m >= w else 0.0)
        recent.append(raw)
        self.n += 1
        out = []
        for k, w in enumerate(self.windows):
            avg = self.sums[k] / min(w, len(recent))
            score = 0.0
            if self.n > self.learning:
                mean, std = self.history[k].mean_std()
                score = tail_score((avg - max(mean, 0.03)) / max(std, 0.0173))
            self.history[k].add(avg)
            out.append(score)
        return out


class OldLayoutHybrid(HybridDetector):
    """The hybrid with the old likelihood histories (``float32``: raw scores rounded as the
    compact layout rounds them; False: the old float64 raw scores)."""

    def __init__(self, float32=True, **kwargs):
        self.float32 = float32
        super().__init__(**kwargs)

    def reset(self):
        super().reset()
        e = self.ensemble
        e._likelihood = lambda: HistoryLikelihood(e.windows, e.long, e.learning, self.float32)
        e.forecast_likelihood = e._likelihood()
        e.shift_likelihood = e._likelihood()
        e.season_likelihood = e._likelihood()


@pytest.mark.parametrize("windows,long,learning", [((3, 7), 50, 20), ((10, 20, 40, 80), 300, 0),
                                                   ((1,), 1, 0), ((5, 2), 64, 64)])
def test_compact_likelihood_equals_the_history_layout(windows, long, learning):
    rng = np.random.default_rng(long)
    # raw scores as the detectors make them: mostly small, bursts near 1, exact zeros
    raw = np.clip(rng.beta(0.5, 4.0, 1200) + (rng.random(1200) < 0.03), 0.0, 1.0)
    raw[100:130] = 0.0
    new, old = MultiWindowLikelihood(windows, long, learning), HistoryLikelihood(windows, long,
                                                                                 learning)
    got = np.array([new.update(float(r)) for r in raw])
    want = np.array([old.update(float(r)) for r in raw])
    assert np.array_equal(got, want)
    assert got.max() > 0.5  # the bursts do score: not a comparison of zeros
    for k in range(len(windows)):  # the replayed means are the history's, oldest first
        assert new.window_means(k) == list(old.history[k].values())


def test_single_window_likelihood_is_the_multiwindow_one():
    raw = np.random.default_rng(1).random(700) ** 4
    a, b = AnomalyLikelihood(long=100, short=10, learning=50), HistoryLikelihood((10,), 100, 50)
    raw = raw.tolist()
    assert [a.update(r) for r in raw] == [b.update(r)[0] for r in raw]


def _nab_values(name):
    import pandas as pd

    path = NAB / "data" / name
    if not path.exists():
        pytest.skip(f"shared NAB data not present ({path})")
    return pd.read_csv(path)["value"].to_numpy(float)


@pytest.mark.parametrize("source", ["nab", "synthetic"])
def test_hybrid_scores_equal_the_old_layout(source):
    if source == "nab":  # 2,500 rows; histories of 1,000 means wrap and are re-summed twice
        values, kwargs = _nab_values("realTraffic/speed_6005.csv"), {"long": 1000}
    else:  # the live setting: season told, default 8,640-mean histories, wrapped once
        values, kwargs = synthetic_stream(5, 1, 9000)[0][0], {"period": 24}
    new = make_detector("hybrid", **kwargs).score_series(values)
    old = OldLayoutHybrid(**kwargs).score_series(values)
    assert np.array_equal(new, old)
    assert (new >= 1.0).sum() >= 2  # alerts happen: the likelihood tier is exercised


def test_float32_raw_scores_move_nothing_that_matters():
    """Against the old float64 raw scores, on a NAB file: the hybrid's scores are equal, the
    ensemble's evidence (continuous below its alerts) within 1e-6, its alerts the same."""
    values = _nab_values("realTraffic/speed_6005.csv")
    old = OldLayoutHybrid(float32=False, long=1000)
    new = make_detector("hybrid", long=1000)
    evidence_old, evidence_new, hybrid_old, hybrid_new = [], [], [], []
    for v in values:
        hybrid_old.append(old.update(v))
        hybrid_new.append(new.update(v))
        evidence_old.append(old.ensemble.last_evidence)
        evidence_new.append(new.ensemble.last_evidence)
    assert hybrid_new == hybrid_old
    diff = np.abs(np.array(evidence_new) - np.array(evidence_old))
    assert 0.0 < diff.max() < 1e-6  # the rounding does act, and by little


def test_hybrid_state_is_small_and_pickles():
    """Full histories (9,000 points): the pickle a checkpoint stores is under 200 kB (162 kB
    measured; 894 kB with the old layout), and a restored detector goes on identically."""
    values = synthetic_stream(6, 1, 9200)[0][0]
    det = make_detector("hybrid", period=24)
    det.score_series(values[:9000])
    blob = pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 200_000
    again = pickle.loads(blob)
    assert np.array_equal(again.score_series(values[9000:]), det.score_series(values[9000:]))


FROZEN = Path(__file__).resolve().parent / "data" / "detectors_before_split.pickle.gz"


def test_detectors_pickled_before_the_modules_were_split_resume_unchanged():
    """A checkpoint names each detector's class by module. ``detectors_before_split``
    (written at f1a6c82, when every detector lived in ``detectors.py``) holds one detector of
    each kind that module defined, and a ``HybridEntropyBank``, after 400 points, with the
    scores they gave the next 20. Loaded by today's code they must give the same scores:
    a restart after an upgrade goes on where it stopped."""
    import gzip

    frozen = pickle.loads(gzip.decompress(FROZEN.read_bytes()))
    state = pickle.loads(frozen["state"])
    nxt, expected = frozen["next"], frozen["expected"]
    assert set(state["detectors"]) == {"zscore", "forecast", "ensemble", "hybrid",
                                       "hybrid_cad", "hybrid_entropy"}
    for name, detector in state["detectors"].items():
        assert type(detector) is type(make_detector(name)), name
        np.testing.assert_array_equal(detector.score_series(nxt), expected[name], err_msg=name)
    bank = state["bank"]
    np.testing.assert_array_equal(bank.score_block(np.stack([nxt, nxt + 1])), expected["bank"])
    assert expected["hybrid_entropy"].max() > 0.0  # the frozen scores are not all zero
