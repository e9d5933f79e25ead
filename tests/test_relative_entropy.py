"""NAB's relative entropy port (detection/relative_entropy.py): its threshold, binning and
hypothesis tests derived by hand on tiny windows, the running range against NAB's fixed one,
bad settings, pickling mid-stream and a change of distribution in a synthetic stream."""

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
from granite_panel.detection.relative_entropy import RelativeEntropyDetector

T = 13.276704135987625  # scipy.stats.chi2.isf(0.01, 4): the published threshold


def stat(a, b) -> float:
    """2 W KL(a / W || b / W) of two count vectors over the same W, written out."""
    w = sum(a)
    assert sum(b) == w
    return 2 * w * sum((x / w) * math.log((x / w) / (y / w)) if y else math.inf
                       for x, y in zip(a, b) if x)


def test_registered_with_the_published_defaults():
    det = make_detector("relative_entropy")
    assert DETECTORS["relative_entropy"] is RelativeEntropyDetector
    assert (det.window, det.n_bins, det.significance, det.c_threshold) == (52, 5, 0.01, 1)
    assert det.threshold == pytest.approx(T, abs=1e-12)
    assert (det.fixed, det.range_margin, det.max_hypotheses) == (False, 0.5, None)


def test_chi_squared_quantiles():
    """The threshold is the chi-squared quantile with n_bins - 1 degrees of freedom. Closed
    forms: dof 2 is -2 ln(alpha); dof 1 is the squared normal quantile."""
    def threshold(n_bins, significance):
        return RelativeEntropyDetector(n_bins=n_bins, significance=significance).threshold

    assert threshold(3, 0.01) == pytest.approx(-2 * math.log(0.01), rel=1e-13)
    assert threshold(2, 0.05) == pytest.approx(1.959963984540054**2, rel=1e-12)
    assert threshold(5, 0.01) == pytest.approx(T, rel=1e-14)


def test_bins_follow_the_reference_ceil_with_the_last_two_merged():
    """Range [0, 10], 5 bins, step 2: bin 0 is exactly the minimum, then (0, 2], (2, 4],
    (4, 6], and the last bin (6, 10]; a value outside a given range takes the nearest end."""
    det = RelativeEntropyDetector(input_min=0.0, input_max=10.0)
    values = [0.0, 1e-9, 2.0, 2.1, 4.0, 6.0, 6.1, 8.0, 10.0, -3.0, 13.0]
    assert det.bin_of(values).tolist() == [0, 1, 1, 2, 2, 3, 4, 4, 4, 0, 4]


def test_running_range_against_a_fixed_range():
    """Running: 0 then 10 widens the range past 10 by half the span, to [0, 15] (step 3), so
    5 lands in bin 2 where NAB's fixed [0, 10] (step 2) puts it in bin 3; margin 0 tracks
    the extremes exactly; a new minimum widens the range downwards."""
    running = RelativeEntropyDetector()
    running.update(0.0), running.update(10.0)
    assert (running.lo, running.hi) == (0.0, 15.0)
    assert running.bin_of([0.0, 2.0, 5.0, 10.0, 15.0]).tolist() == [0, 1, 2, 4, 4]
    fixed = RelativeEntropyDetector(input_min=0.0, input_max=10.0)
    fixed.update(0.0), fixed.update(10.0)
    assert (fixed.lo, fixed.hi) == (0.0, 10.0)
    assert fixed.bin_of([0.0, 2.0, 5.0, 10.0]).tolist() == [0, 1, 3, 4]
    tight = RelativeEntropyDetector(range_margin=0.0)
    tight.update(0.0), tight.update(10.0)
    assert (tight.lo, tight.hi) == (0.0, 10.0)
    down = RelativeEntropyDetector()
    down.update(10.0), down.update(0.0)
    assert (down.lo, down.hi) == (-5.0, 10.0)
    down.update(3.0)  # inside: nothing moves
    assert (down.lo, down.hi) == (-5.0, 10.0)


def test_running_range_equals_the_fixed_one_once_it_holds_the_extremes():
    """With margin 0 and the stream's min and max as its first two points, the running range
    is the file's range from the second point on: the scores are NAB's, point for point."""
    rng = np.random.default_rng(4)
    x = np.concatenate([[-4.0, 9.0], rng.uniform(-3.0, 8.0, 3000)])
    x[2000:2100] = rng.uniform(5.0, 8.0, 100)  # a change, so that there is something to score
    fixed = RelativeEntropyDetector(input_min=-4.0, input_max=9.0).score_series(x)
    running = RelativeEntropyDetector(range_margin=0.0).score_series(x)
    assert fixed[2000:2100].max() == 1.0
    np.testing.assert_array_equal(running, fixed)
    # with the default margin the bins differ, and so do the scores
    assert not np.array_equal(RelativeEntropyDetector().score_series(x), fixed)


def test_a_window_that_matches_a_hypothesis_and_one_that_does_not():
    """W = 20, fixed [0, 10]: ten 1s (bin 1) then ten 3s (bin 2) make the first hypothesis
    H0 = [0, 10, 10, 0, 0] (score 0). Each further 3 replaces a 1: after k of them the window
    is [0, 10 - k, 10 + k, 0, 0], within T of H0 up to k = 7 (10.82) but not at k = 8 (14.72):
    that window scores 1 and becomes H1 = [0, 2, 18, 0, 0]; k = 9 and 10 agree with H1
    (0.67, 4.21) though not with H0 (19.79), and score 0."""
    det = RelativeEntropyDetector(window=20, input_min=0.0, input_max=10.0)
    out = det.score_series([1.0] * 10 + [3.0] * 10)
    assert out.tolist() == [0.0] * 20 and det.m == 1
    assert det.hyp_counts[0].tolist() == [0, 10, 10, 0, 0]
    h0 = [0, 10, 10, 0, 0]
    for k in range(1, 8):
        assert stat([0, 10 - k, 10 + k, 0, 0], h0) < T
    assert stat([0, 2, 18, 0, 0], h0) == pytest.approx(14.72, abs=0.01)
    assert stat([0, 2, 18, 0, 0], h0) > T
    scores = []
    for k in range(1, 11):
        window = [0, 10 - k, 10 + k, 0, 0]
        scores.append(det.update(3.0))
        assert det.counts.tolist() == window
        want = [stat(window, det.hyp_counts[i].tolist()) for i in range(det.m)]
        np.testing.assert_allclose(det.statistics(), want, rtol=1e-12)
    assert scores == [0.0] * 7 + [1.0, 0.0, 0.0]
    assert det.m == 2 and det.hyp_counts[1].tolist() == [0, 2, 18, 0, 0]
    assert det.hyp_seen[:2].tolist() == [8, 3]  # H0: created + 7 matches; H1: created + 2
    # back with 1s: [0, 3, 17, 0, 0] agrees with both (H0 10.82, H1 0.49): the smaller wins
    assert det.score_series([1.0, 1.0, 1.0]).tolist() == [0.0] * 3
    assert det.statistics() == pytest.approx([stat([0, 3, 17, 0, 0], h0), 0.49], abs=5e-3)
    assert det.statistics().max() < T and det.hyp_seen[:2].tolist() == [8, 6]


def test_an_empty_bin_of_every_hypothesis_rejects():
    """W = 4, fixed [0, 10]: 1, 1, 3, 3 make H0 = [0, 2, 2, 0, 0]; 1 keeps that histogram
    (statistic 0, score 0); 5 fills bin 3, empty in H0 (infinite statistic): score 1, H1;
    the next 5 gives [0, 1, 1, 2, 0], 2 ln 2 from H1: agreed, score 0."""
    det = RelativeEntropyDetector(window=4, input_min=0.0, input_max=10.0)
    assert det.score_series([1.0, 1.0, 3.0, 3.0, 1.0]).tolist() == [0.0] * 5
    assert det.update(5.0) == 1.0 and det.hyp_counts[1].tolist() == [0, 1, 2, 1, 0]
    assert math.isinf(det.statistics()[0])
    assert det.update(5.0) == 0.0
    assert det.statistics()[1] == pytest.approx(2 * math.log(2.0), rel=1e-12)
    assert det.hyp_seen[:2].tolist() == [2, 2]


def test_a_hypothesis_becomes_normal_after_more_than_c_sightings():
    """The stream of the W = 20 example with c_threshold 2: matches score 1 while the matched
    hypothesis has been seen at most twice (its creation counts once). H0's first match
    (k = 1) and H1's first (k = 9) now score 1, the later ones 0; NAB's c_threshold 1 never
    flags a match (0 and 1 behave alike)."""
    stream = [1.0] * 10 + [3.0] * 20
    want = {1: [0.0] * 7 + [1.0, 0.0, 0.0],
            2: [1.0] + [0.0] * 6 + [1.0, 1.0, 0.0],
            3: [1.0, 1.0] + [0.0] * 5 + [1.0, 1.0, 1.0]}
    for c, tail in want.items():
        det = RelativeEntropyDetector(window=20, c_threshold=c, input_min=0.0, input_max=10.0)
        assert det.score_series(stream).tolist() == [0.0] * 20 + tail
    zero = RelativeEntropyDetector(window=20, c_threshold=0, input_min=0.0, input_max=10.0)
    assert zero.score_series(stream).tolist() == [0.0] * 20 + want[1]


def test_hypotheses_are_binned_again_when_the_running_range_moves():
    """Margin 0, W = 4: 0, 0, 10, 10 span [0, 10] (step 2): H0 = [2, 0, 0, 0, 2]. Then 20
    widens it to [0, 20] (step 4): from its raw values H0 becomes [2, 0, 0, 2, 0] (10 is now
    bin 3), and the window 0, 10, 10, 20 is [1, 0, 0, 2, 1]: nothing agrees, score 1."""
    det = RelativeEntropyDetector(window=4, range_margin=0.0)
    assert det.score_series([0.0, 0.0, 10.0, 10.0]).tolist() == [0.0] * 4
    assert det.hyp_counts[0].tolist() == [2, 0, 0, 0, 2]
    assert det.update(20.0) == 1.0
    assert (det.lo, det.hi) == (0.0, 20.0)
    assert det.hyp_counts[0].tolist() == [2, 0, 0, 2, 0]
    assert det.counts.tolist() == [1, 0, 0, 2, 1] == det.hyp_counts[1].tolist()


def test_flat_stream():
    """A fixed range of zero width scores 0 and learns nothing (NAB's flat-line rule); a
    running range that has only seen one value puts it in bin 0, so a later step is seen."""
    fixed = RelativeEntropyDetector(input_min=3.0, input_max=3.0)
    assert fixed.score_series(np.full(200, 3.0)).max() == 0.0 and fixed.m == 0
    running = RelativeEntropyDetector()
    out = running.score_series(np.concatenate([np.full(200, 3.0), np.full(60, 4.0)]))
    assert out[:200].max() == 0.0 and running.hyp_counts[0].tolist() == [52, 0, 0, 0, 0]
    assert out[200] == 1.0  # the first window holding the new level


def test_max_hypotheses_replaces_the_least_seen():
    """Cap 2, W = 4, fixed [0, 10]: six 1s make H0 (seen 3); 5 makes H1 = [0, 3, 0, 1, 0]
    (seen 1); 9 gives [0, 2, 0, 1, 1], rejected by both: H1, the least seen, makes room."""
    det = RelativeEntropyDetector(window=4, input_min=0.0, input_max=10.0, max_hypotheses=2)
    assert det.score_series([1.0] * 6 + [5.0, 9.0]).tolist() == [0.0] * 6 + [1.0, 1.0]
    assert det.m == 2
    assert det.hyp_counts[:2].tolist() == [[0, 4, 0, 0, 0], [0, 2, 0, 1, 1]]
    assert det.hyp_seen[:2].tolist() == [3, 1]
    free = RelativeEntropyDetector(window=4, input_min=0.0, input_max=10.0)
    free.score_series([1.0] * 6 + [5.0, 9.0])
    assert free.m == 3
    # the least seen need not be the newest: four 1s (H0, seen once), 5 (H1), two 1s (H1's
    # [0, 3, 0, 1, 0] again: seen 3), 9 ([0, 2, 0, 1, 1]): H0 makes room, H1 stays
    det = RelativeEntropyDetector(window=4, input_min=0.0, input_max=10.0, max_hypotheses=2)
    out = det.score_series([1.0] * 4 + [5.0, 1.0, 1.0, 9.0])
    assert out.tolist() == [0.0] * 4 + [1.0, 0.0, 0.0, 1.0]
    assert det.hyp_counts[:2].tolist() == [[0, 3, 0, 1, 0], [0, 2, 0, 1, 1]]
    assert det.hyp_seen[:2].tolist() == [3, 1]


@pytest.mark.parametrize("kwargs", [
    {"window": 1}, {"window": 52.5}, {"window": "x"}, {"n_bins": 1}, {"significance": 0.0},
    {"significance": 1.0}, {"significance": float("nan")}, {"significance": "x"},
    {"c_threshold": -1}, {"c_threshold": 1.5}, {"input_min": 0.0}, {"input_max": 1.0},
    {"input_min": 2.0, "input_max": 1.0}, {"input_min": 0.0, "input_max": math.inf},
    {"range_margin": -0.1}, {"range_margin": math.nan}, {"max_hypotheses": 0},
])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        RelativeEntropyDetector(**kwargs)


def test_bad_settings_name_the_knob():
    with pytest.raises(ValueError, match="both input_min and input_max"):
        RelativeEntropyDetector(input_min=1.0)
    with pytest.raises(ValueError, match="window must be a whole number >= 2"):
        make_detector("relative_entropy", window=0)


@pytest.mark.parametrize("fixed", [False, True])
def test_pickle_mid_stream_goes_on_identically(fixed):
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 1, 700), rng.normal(4, 1, 300), rng.normal(0, 3, 500)])
    kwargs = {"input_min": float(x.min()), "input_max": float(x.max())} if fixed else {}
    det = RelativeEntropyDetector(**kwargs)
    det.score_series(x[:1030])  # hypotheses made, mid-window, the running range moved
    assert det.m > 1
    copy = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(copy.score_series(x[1030:]), det.score_series(x[1030:]))
    det.reset()
    assert det.m == 0 and det.count == 0 and det.update(1.0) == 0.0


@pytest.mark.parametrize("fixed", [False, True])
def test_pickled_before_its_first_hypothesis_it_goes_on(fixed):
    """A pickle keeps only the hypotheses in use: none before the first full window. The
    copy must still make room for them (it raised IndexError at its first hypothesis)."""
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 1.0, 400)
    kwargs = {"input_min": float(x.min()), "input_max": float(x.max())} if fixed else {}
    det = RelativeEntropyDetector(**kwargs)
    det.score_series(x[:30])
    assert det.m == 0
    copy = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(copy.score_series(x[30:]), det.score_series(x[30:]))
    assert copy.m == det.m >= 1


def test_state_is_small():
    """After 10,000 rows of a noisy daily cycle (288 points) the pickle holds only the used
    hypotheses: under 20 kB (8 kB measured, 14 hypotheses)."""
    t = np.arange(10_000)
    x = 10 + np.sin(2 * np.pi * t / 288) + 0.1 * np.random.default_rng(0).standard_normal(10_000)
    det = RelativeEntropyDetector()
    det.score_series(x)
    blob = pickle.dumps(det)
    assert len(blob) < 20_000
    again = pickle.loads(blob)
    assert again.hyp_counts.shape == (det.m, 5) and again.hyp_values.shape == (det.m, 52)


class NoShortcut(RelativeEntropyDetector):
    """The detector without its unchanged-histogram shortcut: every point tests every
    hypothesis."""

    def _update(self, value: float) -> float:
        self.best = -1
        return super()._update(value)


@pytest.mark.parametrize("kwargs", [{}, {"fixed": True}, {"max_hypotheses": 3}])
def test_the_unchanged_histogram_shortcut_scores_as_testing_every_point(kwargs):
    """Same scores and the same hypotheses with and without the shortcut, on a stream with
    plateaus (histogram unchanged), shifts (new hypotheses), a widening range (re-binning)
    and, capped, replaced hypotheses; and the shortcut is taken (fewer tests)."""
    rng = np.random.default_rng(11)
    x = np.concatenate([np.round(rng.normal(0, 1, 900)), rng.normal(5, 1, 400),
                        np.full(200, 2.0), rng.normal(0, 8, 600), rng.normal(0, 1, 500)])
    if kwargs.pop("fixed", False):
        kwargs = {"input_min": float(x.min()), "input_max": float(x.max())}
    tests = {"fast": 0, "slow": 0}

    def counting(det, key):
        statistics = det.statistics

        def counted():
            tests[key] += 1
            return statistics()
        det.statistics = counted
        return det

    fast = counting(RelativeEntropyDetector(**kwargs), "fast")
    slow = counting(NoShortcut(**kwargs), "slow")
    np.testing.assert_array_equal(fast.score_series(x), slow.score_series(x))
    assert fast.m == slow.m >= 3
    np.testing.assert_array_equal(fast.hyp_seen[: fast.m], slow.hyp_seen[: slow.m])
    assert tests["fast"] < 0.8 * tests["slow"]


def test_a_checkpoint_from_before_the_shortcut_goes_on_identically():
    """A state pickled before ``best`` existed (no such key) restores, tests every
    hypothesis at its next point and then scores as the detector that was never stopped."""
    rng = np.random.default_rng(13)
    x = np.concatenate([rng.normal(0, 1, 600), rng.normal(3, 1, 400)])
    det = RelativeEntropyDetector()
    det.score_series(x[:700])
    before = pickle.loads(pickle.dumps(det))
    del before.best  # as a detector of the earlier code held no such attribute
    old = pickle.loads(pickle.dumps(before))
    assert old.best == -1
    np.testing.assert_array_equal(old.score_series(x[700:]), det.score_series(x[700:]))


def test_room_for_hypotheses_grows_a_few_rows_at_a_time():
    """Spare rows cost per series: fewer than ``HYPOTHESIS_ROWS`` of them, whatever the
    count; and every detector of one window shares one read-only table of logs."""
    from granite_panel.detection.relative_entropy import HYPOTHESIS_ROWS

    rng = np.random.default_rng(12)
    det = RelativeEntropyDetector()
    for level in range(40):  # a new level every 60 points: about one hypothesis each
        det.score_series(rng.normal(10.0 * level, 1.0, 60))
        assert det.m <= det.hyp_seen.size < det.m + HYPOTHESIS_ROWS
        assert det.hyp_values.shape[0] == det.hyp_counts.shape[0] == det.hyp_seen.size
    assert det.m > 20
    other = pickle.loads(pickle.dumps(det))
    assert other._log is det._log is RelativeEntropyDetector()._log
    assert not det._log.flags.writeable


def test_a_change_of_distribution_raises_the_score():
    """Uniform noise on [0, 10], then the same range but concentrated near 8: the range never
    moves, only the histogram does. The stationary stretch is nearly quiet once its
    hypotheses are learnt; the change is flagged within one window."""
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, 10.0, 4000)
    x[0], x[1] = 0.0, 10.0  # the range is known from the start
    x[3000:3300] = rng.normal(8.0, 0.3, 300)
    s = RelativeEntropyDetector().score_series(x)
    quiet = s[1000:3000].mean()
    assert quiet < 0.01
    assert s[3000:3052].max() == 1.0
    assert s[3000:3100].mean() > 5 * quiet


def test_severity_is_the_alarm():
    """Scores are 0 or 1: every cut-off is the published alarm, so an alarm is critical."""
    assert SEVERITY_CUTOFFS["relative_entropy"] == (1.0, 1.0, 1.0)
    assert severity_from_score([0.0, 1.0], *SEVERITY_CUTOFFS["relative_entropy"]).tolist() == [0, 3]
