"""The history ring's newest-slots reads: contiguous slices must equal the slot order."""

import numpy as np
import pytest

from granite_panel.engine.ring import Ring


@pytest.mark.parametrize("capacity", [1, 5, 8])
def test_newest_slots_match_the_slot_order_across_wrap_around(capacity):
    rng = np.random.default_rng(capacity)
    for count in range(0, 3 * capacity + 2):
        ring = Ring(4, capacity)
        ring.count = count
        ring.timestamps[:] = rng.random(capacity)
        ring.values[:] = rng.random(ring.values.shape)
        ring.score[:] = rng.random(ring.score.shape)
        ring.severity[:] = rng.integers(0, 4, ring.severity.shape)
        ring.flag[:] = rng.integers(0, 3, ring.flag.shape)
        rows = np.array([3, 1])
        for last in (0, 1, capacity - 1, capacity, capacity + 3):
            order = np.arange(count - min(last, ring.size), count) % capacity
            np.testing.assert_array_equal(ring.last_values(last), ring.values[:, order])
            np.testing.assert_array_equal(
                ring.last_values(last, rows), ring.values[np.ix_(rows, order)])
            arrays = (ring.timestamps, ring.values, ring.score, ring.severity, ring.flag)
            for got, array in zip(ring.last(last), arrays):
                expected = array[..., order]
                assert got.dtype == expected.dtype and got.shape == expected.shape
                np.testing.assert_array_equal(got, expected)


def test_newest_slots_are_copies():
    ring = Ring(2, 4)
    ring.append(np.arange(3.0), np.ones((2, 3)), np.zeros((2, 3)),
                np.zeros((2, 3), np.int8), np.zeros((2, 3), np.int8))
    ring.last_values(3)[:] = 7.0
    ring.last(3)[1][:] = 7.0
    assert not (ring.values == 7.0).any()
