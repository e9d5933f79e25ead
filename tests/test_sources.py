"""The synthetic source: reproducible, labelled anomalies, shapes, timestamps, toggles."""

from __future__ import annotations

import numpy as np
import pytest

from granite_panel.sources.synthetic import DIP, LEVEL_SHIFT, NORMAL, SPIKE, Batch, SyntheticSource


def quiet(**overrides) -> SyntheticSource:
    """A source with no noise, trend, seasonality or anomalies unless asked for."""
    kwargs = dict(
        n_series=2,
        base_value=100.0,
        noise_level=0.0,
        trend=False,
        seasonality=False,
        anomaly_probability=0.0,
        season_length=12,
        seed=1,
    )
    kwargs.update(overrides)
    return SyntheticSource(**kwargs)


def test_same_seed_same_stream_different_seed_different():
    a = SyntheticSource(n_series=3, seed=5)
    b = SyntheticSource(n_series=3, seed=5)
    c = SyntheticSource(n_series=3, seed=6)
    for k in (10, 1, 1, 50):
        x, y, z = a.next_batch(k, now=1000.0), b.next_batch(k, now=1000.0), c.next_batch(k, now=1000.0)
        np.testing.assert_array_equal(x.values, y.values)
        np.testing.assert_array_equal(x.labels, y.labels)
        assert not np.allclose(x.values, z.values)


def test_reset_restarts_the_stream():
    source = SyntheticSource(n_series=2, seed=3)
    first = source.next_batch(40, now=0.0)
    source.next_batch(5)
    source.reset()
    again = source.next_batch(40, now=0.0)
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_array_equal(first.timestamps, again.timestamps)


def test_series_differ_from_each_other():
    values = SyntheticSource(n_series=3, seed=0, anomaly_probability=0).next_batch(100).values
    assert not np.allclose(values[0], values[1])
    assert not np.allclose(values[1], values[2])


@pytest.mark.parametrize("n_series, k", [(1, 1), (3, 1), (3, 17), (50, 4)])
def test_shapes(n_series, k):
    batch = SyntheticSource(n_series=n_series).next_batch(k, now=10.0)
    assert batch.timestamps.shape == (k,)
    assert batch.values.shape == (n_series, k)
    assert batch.labels.shape == (n_series, k)
    assert np.isfinite(batch.values).all()


def test_timestamps_end_at_now_and_are_spaced_by_interval():
    source = SyntheticSource(n_series=2, interval=2.5)
    first = source.next_batch(10, now=1_000.0)
    assert first.timestamps[-1] == 1_000.0
    np.testing.assert_allclose(np.diff(first.timestamps), 2.5)
    second = source.next_batch(3)
    np.testing.assert_allclose(second.timestamps, [1_002.5, 1_005.0, 1_007.5])


def test_batch_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        Batch(timestamps=np.arange(3.0), values=np.zeros((2, 4)))
    with pytest.raises(ValueError):
        Batch(timestamps=np.arange(3.0), values=np.zeros(3))


def test_flat_when_everything_is_off():
    batch = quiet().next_batch(200)
    np.testing.assert_array_equal(batch.values, 100.0)
    assert (batch.labels == NORMAL).all()


def test_trend_alone_is_a_straight_line():
    values = quiet(trend=True).next_batch(200).values
    slopes = np.diff(values, axis=1)
    np.testing.assert_allclose(slopes, slopes[:, :1] * np.ones_like(slopes), atol=1e-9)
    assert (np.abs(slopes[:, 0]) > 0).all()
    np.testing.assert_allclose(values[:, 0], 100.0)


def test_seasonality_alone_repeats_every_week_around_the_base():
    season = 12
    values = quiet(seasonality=True, season_length=season).next_batch(7 * season * 2).values
    week = 7 * season
    np.testing.assert_allclose(values[:, :week], values[:, week:], atol=1e-9)
    np.testing.assert_allclose(values[:, :week].mean(axis=1), 100.0, atol=1e-9)
    assert (values.std(axis=1) > 1.0).all()  # it does move


def test_noise_has_the_requested_spread():
    values = quiet(noise_level=5.0, n_series=4).next_batch(5_000).values
    assert values.std() == pytest.approx(5.0, rel=0.05)
    assert values.mean() == pytest.approx(100.0, abs=0.5)


def test_labels_mark_every_injected_anomaly_with_its_kind():
    # No noise: every point that is not at base_value must be labelled, and the other way round.
    batch = quiet(n_series=4, anomaly_probability=0.05, seed=11).next_batch(3_000)
    values, labels = batch.values, batch.labels
    assert {SPIKE, DIP, LEVEL_SHIFT} <= set(np.unique(labels))
    np.testing.assert_array_equal(values[labels == NORMAL], 100.0)
    # Size 6-10 noise units (noise 0 counts as 1), level shifts 0.8 of that.
    assert (values[labels == SPIKE] >= 106.0).all()
    assert (values[labels == DIP] <= 94.0).all()
    shifted = np.abs(values[labels == LEVEL_SHIFT] - 100.0)
    assert (shifted >= 4.8 - 1e-9).all() and (shifted <= 8.0 + 1e-9).all()


def test_level_shifts_last_5_to_12_points():
    labels = quiet(n_series=8, anomaly_probability=0.03, seed=2).next_batch(3_000).labels
    lengths = []
    for row in labels:
        run = 0
        for code in row:
            if code == LEVEL_SHIFT:
                run += 1
            elif run:
                lengths.append(run)
                run = 0
    assert lengths
    # Back-to-back shifts merge into one run, so only the lower bound is strict.
    assert min(lengths) >= 5
    assert np.median(lengths) <= 12


def test_stream_does_not_depend_on_batch_sizes():
    """Same seed, same points, however they are asked for (a backfill of k, then ones)."""
    make = dict(n_series=3, anomaly_probability=0.1, noise_level=5.0, trend=True, seed=4)
    whole = quiet(**make).next_batch(600)
    source = quiet(**make)
    parts = [source.next_batch(k) for k in (1, 7, 92, 250, 250)]
    np.testing.assert_array_equal(np.concatenate([p.labels for p in parts], axis=1), whole.labels)
    np.testing.assert_allclose(np.concatenate([p.values for p in parts], axis=1), whole.values)


@pytest.mark.parametrize("probability", [0.02, 0.1])
def test_rate_of_anomaly_starts_is_about_the_probability(probability):
    labels = quiet(n_series=20, anomaly_probability=probability, seed=9).next_batch(2_000).labels
    points = labels.size
    single = np.isin(labels, (SPIKE, DIP)).sum()
    # A level-shift start is a LEVEL_SHIFT point that does not continue one.
    previous = np.concatenate([np.zeros((labels.shape[0], 1), labels.dtype), labels[:, :-1]], axis=1)
    shift_starts = ((labels == LEVEL_SHIFT) & (previous != LEVEL_SHIFT)).sum()
    rate = (single + shift_starts) / points
    # Points inside a level shift cannot start another anomaly (about 2.5 p of them) and
    # back-to-back shifts count once, so the rate is a little below p.
    assert 0.7 * probability < rate < 1.1 * probability
    # Spikes, dips and shifts are equally likely kinds.
    kinds = np.array(
        [(labels == SPIKE).sum(), (labels == DIP).sum(), shift_starts], dtype=float
    )
    assert (kinds / kinds.sum() > 0.25).all()


def test_no_anomalies_when_probability_is_zero():
    labels = SyntheticSource(n_series=5, anomaly_probability=0.0).next_batch(2_000).labels
    assert (labels == NORMAL).all()
