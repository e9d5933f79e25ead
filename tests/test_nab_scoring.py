"""NAB scorer on tiny hand-made files whose scores can be worked out by hand.

With ``s(y) = 2 / (1 + exp(5 y)) - 1 = -tanh(2.5 y)``:
- a file of 100 rows has probation min(floor(15.0), 750) = 15 rows;
- a window on rows 50..59 has width 10: a detection on row 50 has y = -10/10 = -1 and is
  worth A_TP exactly; one on row 59 has y = -1/10 and is worth tanh(0.25) / tanh(2.5);
- a false positive on row 64 has y = |64 - 59| / (10 - 1) = 5/9 and costs A_FP * tanh(25/18);
  one on row 90 has y = 31/9 > 3 and costs A_FP; one before any window costs A_FP.
"""

import json
import math

import numpy as np
import pytest

from granite_panel.evaluation.nab import (
    PROFILES,
    FileLabels,
    load_windows,
    normalize,
    probation_length,
    row_weights,
    scaled_sigmoid,
    score_file,
    sweep_threshold,
    window_indices,
)

STD = PROFILES["standard"]
LOW_FP = PROFILES["reward_low_FP_rate"]
LOW_FN = PROFILES["reward_low_FN_rate"]
LABELS = FileLabels(n_rows=100, windows=[(50, 59)])
TP_LATE = math.tanh(0.25) / math.tanh(2.5)
FP_NEAR = math.tanh(25 / 18)


def scores_with(*rows, n=100, value=1.0):
    s = np.zeros(n)
    s[list(rows)] = value
    return s


def test_scaled_sigmoid_matches_the_formula_and_saturates_beyond_three():
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(-1.0) == pytest.approx(math.tanh(2.5))
    assert scaled_sigmoid(1.0) == pytest.approx(-math.tanh(2.5))
    assert scaled_sigmoid(3.0) == pytest.approx(-math.tanh(7.5))
    assert scaled_sigmoid(3.01) == -1.0


def test_probation_length():
    assert probation_length(100) == 15
    assert probation_length(4032) == 604
    assert probation_length(22695) == 750


def test_earliest_detection_in_window_is_worth_a_tp():
    assert score_file(scores_with(50), LABELS, 0.5, STD).score == pytest.approx(1.0)


def test_late_detection_is_worth_less_and_only_the_best_counts():
    assert score_file(scores_with(59), LABELS, 0.5, STD).score == pytest.approx(TP_LATE)
    both = score_file(scores_with(55, 59), LABELS, 0.5, STD)
    assert both.score == pytest.approx(math.tanh(1.25) / math.tanh(2.5))  # row 55: y = -0.5
    assert (both.tp, both.fn, both.fp) == (1, 0, 0)


def test_missed_window_costs_a_fn_per_profile():
    assert score_file(np.zeros(100), LABELS, 0.5, STD).score == -1.0
    assert score_file(np.zeros(100), LABELS, 0.5, LOW_FN).score == -2.0


def test_false_positives_before_near_and_far_after_the_window():
    s = score_file(scores_with(20), LABELS, 0.5, STD)
    assert s.score == pytest.approx(-0.11 - 1.0) and s.fp == 1
    s = score_file(scores_with(64), LABELS, 0.5, STD)
    assert s.score == pytest.approx(-0.11 * FP_NEAR - 1.0)
    s = score_file(scores_with(90), LABELS, 0.5, LOW_FP)
    assert s.score == pytest.approx(-0.22 - 1.0)
    s = score_file(scores_with(50, 20, 64, 90), LABELS, 0.5, STD)
    assert s.score == pytest.approx(1.0 - 0.11 - 0.11 * FP_NEAR - 0.11)
    assert (s.tp, s.fn, s.fp) == (1, 0, 3)


def test_probation_rows_are_never_scored():
    assert score_file(scores_with(3, 14), LABELS, 0.5, STD).score == -1.0
    s = score_file(scores_with(15), LABELS, 0.5, STD)  # first scored row
    assert s.score == pytest.approx(-1.11)


def test_window_inside_probation_is_not_counted():
    labels = FileLabels(n_rows=100, windows=[(2, 5), (50, 59)])
    s = score_file(scores_with(50), labels, 0.5, STD)
    assert s.score == pytest.approx(1.0) and s.fn == 0
    # an FP after it is still measured from the window: y = (20 - 5) / 3 > 3 -> full cost
    assert score_file(scores_with(20, 50), labels, 0.5, STD).score == pytest.approx(1 - 0.11)


def test_row_weights_between_two_windows_use_the_previous_window():
    labels = FileLabels(n_rows=100, windows=[(20, 24), (60, 69)])
    rw = row_weights(labels, STD)
    # row 26: y = |26 - 24| / (5 - 1) = 0.5
    assert rw.weight[26] == pytest.approx(-0.11 * math.tanh(1.25))
    assert rw.weight[60] == pytest.approx(1.0)
    assert rw.weight[75] == pytest.approx(-0.11 * math.tanh(2.5 * 6 / 9))
    assert list(rw.window_id[[0, 15, 20, 25, 60, 99]]) == [-2, -1, 0, -1, 1, -1]


def test_threshold_is_inclusive():
    s = scores_with(50, value=0.7)
    assert score_file(s, LABELS, 0.7, STD).tp == 1
    assert score_file(s, LABELS, 0.70001, STD).tp == 0


def test_sweep_picks_the_corpus_wide_best_threshold():
    # file a: a TP scored 0.8 and an FP scored 0.9; file b: a TP scored 0.6, FPs scored 0.5.
    a = scores_with(50, value=0.8)
    a[20] = 0.9
    b = scores_with(50, value=0.6)
    b[[20, 21, 22]] = 0.5
    corpus = {"a": (a, LABELS), "b": (b, LABELS)}
    res = sweep_threshold(corpus, STD)
    # t = 0.6: 1 - 0.11 + 1 = 1.89 is the best (t=0.8: 0.89 - 1; t=0.5: 1.89 - 0.33)
    assert res.threshold == 0.6
    assert res.raw == pytest.approx(1.89)
    assert (res.null, res.perfect) == (-2.0, 2.0)
    assert res.normalized == pytest.approx(100 * 3.89 / 4)
    # FPs cost twice as much in reward_low_FP_rate, but 0.6 still wins: 2 - 0.22 = 1.78
    assert sweep_threshold(corpus, LOW_FP).raw == pytest.approx(1.78)


def test_sweep_with_nothing_worth_detecting_detects_nothing():
    s = scores_with(20, 30, value=0.9)
    res = sweep_threshold({"a": (s, LABELS)}, STD)
    assert res.threshold == math.inf and res.raw == -1.0 and res.normalized == 0.0


def test_sweep_equals_brute_force_on_random_files():
    rng = np.random.default_rng(0)
    corpus = {}
    for k in range(4):
        n = int(rng.integers(80, 200))
        labels = FileLabels(n_rows=n, windows=[(n // 3, n // 3 + 9), (2 * n // 3, 2 * n // 3 + 5)])
        corpus[str(k)] = (np.round(rng.random(n), 2), labels)
    res = sweep_threshold(corpus, STD)
    thresholds = np.unique(np.concatenate([s for s, _ in corpus.values()]))
    brute = max(sum(score_file(s, lab, t, STD).score for s, lab in corpus.values()) for t in thresholds)
    assert res.raw == pytest.approx(max(brute, -8.0))


def test_normalize():
    assert normalize(-25, -25, 25) == 0.0
    assert normalize(25, -25, 25) == 100.0
    assert normalize(9, -25, 25) == pytest.approx(68.0)


def test_load_windows_and_window_indices(tmp_path):
    path = tmp_path / "combined_windows.json"
    path.write_text(
        json.dumps({"x/f.csv": [["2020-01-01 00:10:00.000000", "2020-01-01 00:20:00.000000"]]})
    )
    windows = load_windows(tmp_path)
    ts = np.arange("2020-01-01T00:00", "2020-01-01T01:00", np.timedelta64(5, "m"), dtype="datetime64[ns]")
    assert window_indices(ts, windows["x/f.csv"]) == [(2, 4)]
