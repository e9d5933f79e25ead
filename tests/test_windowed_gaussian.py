"""NAB's windowed Gaussian port (detection/windowed_gaussian.py): scores derived by hand on
small windows, its step behaviour and pickling (its published 37.7 on the 31 NAB files:
tests/test_nab_benchmark.py)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from granite_panel.detection.detectors import (
    DETECTORS,
    SEVERITY_CUTOFFS,
    make_detector,
    severity_from_score,
)
from granite_panel.detection.windowed_gaussian import WindowedGaussianDetector

def one_minus_q(z: float) -> float:
    """1 - the one-sided Gaussian tail probability at z >= 0."""
    return 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))


def test_registered_with_the_published_defaults():
    det = make_detector("windowed_gaussian")
    assert DETECTORS["windowed_gaussian"] is WindowedGaussianDetector
    assert (det.size, det.step, det.std_floor) == (6400, 100, 1e-6)


def test_first_point_zero_then_scored_against_the_earlier_values_only():
    """[0, 2] has mean 1 and (population) std 1: 3 and -1 are both |z| = 2 (mirrored);
    the first point has nothing to compare with."""
    det = WindowedGaussianDetector(window=10, step=2)
    assert det.update(0.0) == 0.0
    det.update(2.0)
    assert det.update(3.0) == pytest.approx(one_minus_q(2.0), abs=1e-15)
    det = WindowedGaussianDetector(window=10, step=2)
    det.update(0.0), det.update(2.0)
    assert det.update(-1.0) == pytest.approx(one_minus_q(2.0), abs=1e-15)


def test_constant_window_uses_the_std_floor():
    """A constant window has std 0, replaced by 1e-6: the mean itself scores 0.5 (z = 0), a
    value 1e-3 away is z = 1000 (score 1), 1e-6 away is z = 1 (the floor, not an epsilon)."""
    det = WindowedGaussianDetector(window=4, step=2)
    out = [det.update(5.0) for _ in range(4)]
    assert out == [0.0, 0.5, 0.5, 0.5]
    probe = pickle.loads(pickle.dumps(det))
    assert probe.update(5.0 + 1e-3) == 1.0 and det.update(5.0 - 1e-3) == 1.0
    det = WindowedGaussianDetector(window=4, step=2)
    for _ in range(3):
        det.update(5.0)
    assert det.update(5.0 + 1e-6) == pytest.approx(one_minus_q(1.0), abs=1e-9)


def test_statistics_move_only_every_step_once_the_window_is_full():
    """window 4, step 2: [0, 2, 0, 2] (mean 1, std 1); then 3, 3 are both scored against it
    (the first 3 waits in the buffer); the slide makes [0, 2, 3, 3] (mean 2); 2, 2 both sit at
    its mean (0.5); the slide makes [3, 3, 2, 2] (mean 2.5, std 0.5): 3.5 is z = 2."""
    det = WindowedGaussianDetector(window=4, step=2)
    out = det.score_series([0.0, 2.0, 0.0, 2.0, 3.0, 3.0, 2.0, 2.0, 3.5])
    z2 = one_minus_q(2.0)
    assert out[4] == pytest.approx(z2, abs=1e-15) and out[5] == pytest.approx(z2, abs=1e-15)
    assert out[6] == 0.5 and out[7] == 0.5
    assert out[8] == pytest.approx(z2, abs=1e-15)


def test_statistics_change_at_every_point_while_filling_then_every_step():
    """On noise: mean / std change after each of the first ``window`` points, then only after
    every ``step``-th point."""
    det = WindowedGaussianDetector(window=20, step=5)
    values = np.random.default_rng(1).standard_normal(80)
    changed = []
    for n, v in enumerate(values, start=1):
        before = (det.mean, det.std)
        det.update(v)
        if (det.mean, det.std) != before:
            changed.append(n)
    assert changed == list(range(1, 21)) + list(range(25, 81, 5))


def test_pickle_round_trip_mid_step_and_reset():
    """A detector pickled with values waiting in its step buffer goes on exactly like the
    original; reset starts over (first point 0 again)."""
    values = np.random.default_rng(2).normal(10.0, 2.0, 60)
    det = WindowedGaussianDetector(window=16, step=6)
    det.score_series(values[:33])  # 17 past full: 5 values pending
    assert det.n_pending == 5
    copy = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(copy.score_series(values[33:]), det.score_series(values[33:]))
    det.reset()
    assert det.update(100.0) == 0.0


def test_non_finite_values_and_bad_arguments():
    det = WindowedGaussianDetector(window=4, step=2)
    det.update(1.0), det.update(3.0)
    assert det.update(float("nan")) == 0.0 and det.count == 2  # state untouched
    for kwargs in ({"window": 0}, {"step": 0}, {"window": 4, "step": 5}, {"std_floor": 0.0}):
        with pytest.raises(ValueError):
            WindowedGaussianDetector(**kwargs)


def test_severity_cutoffs_are_tail_probabilities():
    """medium / high / critical at Q <= 10^-2.5, 10^-5, 10^-7.5: |z| 3 is medium, 5 high,
    6 critical (Q(5.41) = 10^-7.5)."""
    medium, high, critical = SEVERITY_CUTOFFS["windowed_gaussian"]
    assert 1.0 - medium == pytest.approx(10**-2.5) and 1.0 - critical == pytest.approx(10**-7.5)
    scores = [one_minus_q(z) for z in (2.0, 3.0, 5.0, 6.0)]
    assert severity_from_score(scores, medium, high, critical).tolist() == [0, 1, 2, 3]
