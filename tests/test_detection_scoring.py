"""Synthetic-stream scoring (granite_panel.evaluation.synthetic) on hand-made cases."""

import numpy as np
import pytest

from granite_panel.evaluation.synthetic import (
    detection_metrics,
    event_spans,
    synthetic_metrics,
    synthetic_stream,
)
from granite_panel.sources.synthetic import DIP, LEVEL_SHIFT, SPIKE


def test_event_spans_split_points_and_group_shifts():
    labels = [0, SPIKE, SPIKE, 0, LEVEL_SHIFT, LEVEL_SHIFT, LEVEL_SHIFT, DIP, 0, LEVEL_SHIFT]
    assert event_spans(labels) == [(1, 1), (2, 2), (4, 6), (7, 7), (9, 9)]
    assert event_spans(np.zeros(5)) == []


def test_recall_precision_by_hand():
    # series 0: a spike at 3 (flagged), a 3-point shift at 6..8 (flagged on 8 only),
    #           a false flag at 1 (inside warm-up: ignored) and at 10 (counted)
    # series 1: a dip at 5 (missed), a spike at 0 (inside warm-up: not an event),
    #           a false flag at 7
    labels = np.zeros((2, 12), dtype=np.int8)
    labels[0, 3] = SPIKE
    labels[0, 6:9] = LEVEL_SHIFT
    labels[1, 5] = DIP
    labels[1, 0] = SPIKE
    scores = np.zeros((2, 12))
    scores[0, [1, 3, 8, 10]] = [0.9, 0.6, 0.5, 0.7]
    scores[1, [0, 7]] = [1.0, 0.5]
    scores[1, 5] = 0.49  # just below the threshold
    m = detection_metrics(scores, labels, threshold=0.5, warmup=2)
    assert (m.events, m.detected) == (3, 2)
    assert m.event_recall == pytest.approx(2 / 3)
    # flags after warm-up: (0,3) (0,8) (0,10) (1,7); true ones: (0,3) (0,8)
    assert (m.flagged, m.true_flagged) == (4, 2)
    assert m.point_precision == pytest.approx(0.5)
    # labelled points after warm-up: 1 + 3 + 1 = 5, two flagged
    assert m.point_recall == pytest.approx(2 / 5)


def test_nab_style_score_perfect_and_null():
    labels = np.zeros((1, 100), dtype=np.int8)
    labels[0, 40] = SPIKE
    labels[0, 60:65] = LEVEL_SHIFT
    perfect = np.zeros((1, 100))
    perfect[0, [40, 60]] = 1.0
    assert detection_metrics(perfect, labels, 0.5, warmup=10).nab_score == pytest.approx(100.0)
    assert detection_metrics(np.zeros((1, 100)), labels, 0.5, 10).nab_score == pytest.approx(0.0)
    # an extra false flag costs A_FP = 0.11 of a window of 2 -> 100 * (2 - 0.11 + 2) / 4
    noisy = perfect.copy()
    noisy[0, 20] = 1.0
    assert detection_metrics(noisy, labels, 0.5, 10).nab_score == pytest.approx(
        100 * (2 - 0.11 + 2) / 4
    )


def test_nan_scores_never_flag_and_shapes_must_match():
    labels = np.array([[0, SPIKE, 0]])
    m = detection_metrics(np.array([[np.nan, np.nan, np.nan]]), labels, 0.0)
    assert (m.flagged, m.detected) == (0, 0)
    assert np.isnan(m.point_precision)
    with pytest.raises(ValueError, match="shape"):
        detection_metrics(np.zeros((1, 4)), labels, 0.5)


def test_metrics_add_up_over_series():
    values, labels = synthetic_stream(3, n_series=3, n_points=400)
    scores = np.abs(values - values.mean(axis=1, keepdims=True)) / 100
    whole = detection_metrics(scores, labels, 0.3, warmup=50)
    parts = [detection_metrics(scores[i], labels[i], 0.3, 50) for i in range(3)]
    total = parts[0] + parts[1] + parts[2]
    assert (total.events, total.detected, total.flagged, total.true_flagged) == (
        whole.events, whole.detected, whole.flagged, whole.true_flagged)
    assert total.nab_score == pytest.approx(whole.nab_score)


def test_default_detector_finds_dense_synthetic_anomalies():
    """A regression guard for the dashboard's default at its live threshold."""
    m = synthetic_metrics("hybrid", seeds=(5,), n_series=4, n_points=2000)
    assert m.events > 200
    assert m.event_recall >= 0.8 and m.point_precision >= 0.7
    z = synthetic_metrics("zscore", seeds=(5,), n_series=4, n_points=2000)
    assert m.event_recall > z.event_recall
