"""HybridBank (the hybrid for many series as shared arrays) scores what HybridDetector scores.

Tolerance 0 everywhere: the bank performs the same float operations per series. Checked on
NAB files of different lengths scored side by side (the shorter ones padded with NaN, which
leaves a series untouched), on synthetic streams with gaps, with the season told and
estimated, with short histories that wrap and get re-summed, when per-series detectors are
handed over mid-stream, after a pickle round trip, and through the live adapter as series
appear. About 15 s (30 s on a loaded machine).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from granite_panel.detection import live
from granite_panel.detection.bank import HybridBank
from granite_panel.detection.detectors import HybridDetector
from granite_panel.evaluation.synthetic import synthetic_stream

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab" / "data"


def scalar_scores(values, **kwargs):
    return np.stack([HybridDetector(**kwargs).score_series(row) for row in values])


def nab_side_by_side(names) -> np.ndarray:
    """NAB files as rows of one array, the shorter ones padded with NaN (skips without NAB)."""
    import pandas as pd

    if not all((NAB / n).exists() for n in names):
        pytest.skip("shared NAB data not present")
    rows = [pd.read_csv(NAB / n)["value"].to_numpy(float) for n in names]
    values = np.full((len(rows), max(map(len, rows))), np.nan)
    for i, row in enumerate(rows):
        values[i, : len(row)] = row
    return values


def test_bank_equals_per_series_detectors_on_nab_files():
    values = nab_side_by_side(["realTraffic/speed_7578.csv",
                               "realAdExchange/exchange-2_cpc_results.csv"])
    got = HybridBank(len(values), long=500).score_block(values)  # 500: histories wrap
    want = scalar_scores(values, long=500)
    assert np.array_equal(got, want)
    assert (want >= 1.0).sum() >= 3 and (want[:, 1000:] >= 0.25).sum() >= 10


@pytest.mark.parametrize("kwargs", [{"period": 24}, {}])
def test_bank_equals_per_series_detectors_on_synthetic_streams(kwargs):
    values, _ = synthetic_stream(4, 2, 1300)
    values[0, 700:720] = np.nan  # a gap
    values[1, 1000] = np.inf  # a bad point
    got = HybridBank(2, **kwargs).score_block(values)
    want = scalar_scores(values, **kwargs)
    assert np.array_equal(got, want)
    assert got[0, 700:720].tolist() == [0.0] * 20 and got[1, 1000] == 0.0
    assert (want >= 0.25).sum() > 50


def test_bank_equals_per_series_detectors_on_counts_and_rounded_readings():
    """Each series' resolution (the step of its last digit) is its own: counts, a reading to
    0.1, one that turns continuous midway, and plain noise side by side."""
    rng = np.random.default_rng(3)
    values = np.stack([rng.poisson(0.3, 1200).astype(float),
                       np.round(20 + 0.05 * rng.standard_normal(1200), 1),
                       np.round(5 + rng.standard_normal(1200), 0),
                       10 + rng.standard_normal(1200)])
    values[2, 600:] += 0.001 * rng.standard_normal(600)  # more digits from here on
    values[0, 900] = 9.0
    bank = HybridBank(len(values))
    got = bank.score_block(values)
    assert np.array_equal(got, scalar_scores(values))
    assert bank.decimals.tolist() == [0, 1, -1, -1] and got[0, 900] == 1.0


@pytest.mark.parametrize("kwargs", [{"period": 60}, {}])
def test_bank_equals_per_series_detectors_on_patterns_that_recur(kwargs):
    """The last cycle's values and surprises, per series and phase, with the season told and
    estimated (from 900 points; a new period starts the cycles afresh); the entropy bank
    on them too."""
    from granite_panel.detection.bank import HybridEntropyBank
    from granite_panel.detection.detectors import HybridEntropyDetector

    rng = np.random.default_rng(6)
    t = np.arange(2500)
    values = np.stack([np.round(100 + (t % 60) * 5 + rng.normal(0, 2, t.size), 1),
                       np.where(t % 60 < 5, 80.0, 10.0) + rng.normal(0, 1, t.size),
                       50 + 20 * np.sin(2 * np.pi * t / 60) + rng.normal(0, 2, t.size)])
    bank = HybridBank(len(values), **kwargs)
    got = bank.score_block(values)
    assert np.array_equal(got, scalar_scores(values, **kwargs))
    assert (got[:2, 1500:] >= 0.25).mean() < 0.01 < (got[:2, :300] >= 0.25).mean()
    entropy = HybridEntropyBank(len(values), **kwargs).score_block(values)
    want = np.stack([HybridEntropyDetector(**kwargs).score_series(v) for v in values])
    assert np.array_equal(entropy, want)


def test_a_bank_from_a_checkpoint_without_decimals_goes_on():
    """Checkpoints pickle the bank: one made before its resolution arrays still scores (they
    start afresh, as a per-series detector's do)."""
    rng = np.random.default_rng(4)
    values = rng.poisson(0.3, (3, 400)).astype(float)
    bank = HybridBank(3)
    bank.score_block(values[:, :200])
    state = pickle.loads(pickle.dumps(bank)).__dict__  # its own arrays
    for name in ("decimals", "prev", "change_rate", "cycle_value", "cycle_count"):
        del state[name]
    old = HybridBank.__new__(HybridBank)
    old.__setstate__(state)
    assert old.decimals.tolist() == [0, 0, 0] and old.change_rate.tolist() == [0.0] * 3
    scores = old.score_block(values[:, 200:])
    assert np.isfinite(scores).all() and old.change_rate.min() > 0.01


def test_adopted_detectors_go_on_identically_and_the_bank_pickles():
    values, _ = synthetic_stream(5, 2, 1500)
    values[1] = np.random.default_rng(5).poisson(0.3, 1500)  # its resolution carries over
    detectors = [HybridDetector(period=24, long=600) for _ in range(2)]
    for d, row in zip(detectors, values):
        d.score_series(row[:1200])
    bank = HybridBank(0, period=24, long=600)
    bank.adopt(detectors)
    bank = pickle.loads(pickle.dumps(bank, protocol=pickle.HIGHEST_PROTOCOL))
    want = scalar_scores(values, period=24, long=600)[:, 1200:]
    assert np.array_equal(bank.score_block(values[:, 1200:]), want)


def test_live_adapter_switches_to_the_bank_as_series_appear(monkeypatch):
    monkeypatch.setattr(live, "BANK_MIN_SERIES", 3)
    values, _ = synthetic_stream(6, 3, 1000)
    adapter = live.OnlineDetectors("hybrid", 2, period=24)
    first, _ = adapter.score_block(values[:2, :600])
    assert adapter.bank is None  # two series: per-series detectors
    adapter.grow(1)
    assert adapter.bank is not None and adapter.bank.n_series == 3
    block = np.vstack([values[:2, 600:], values[2:, :400]])
    second, severity = adapter.score_block(block)
    assert np.array_equal(np.hstack([first, second[:2]]), scalar_scores(values[:2], period=24))
    assert np.array_equal(second[2], scalar_scores(values[2:, :400], period=24)[0])
    assert severity.shape == (3, 400)
    adapter.reset(4)  # a reset at the bank's size builds a fresh bank directly
    assert adapter.bank.n_series == 4 and adapter.series.detectors == []


def test_bank_memory_per_series_is_bounded():
    """All state is allocated up front: bytes per series do not grow with points seen."""
    bank = HybridBank(8, period=24)
    per_series = len(pickle.dumps(bank, protocol=pickle.HIGHEST_PROTOCOL)) / 8
    assert per_series < 200_000  # 162 kB measured (894 kB for the old per-series layout)


def test_bank_refuses_wrong_shapes():
    bank = HybridBank(2)
    with pytest.raises(ValueError, match="n_series=2"):
        bank.score(np.zeros(3))
    with pytest.raises(ValueError, match="period must be >= 0"):
        HybridBank(1, period=-1)


def entropy_scores(values, **kwargs):
    from granite_panel.detection.detectors import make_detector

    return np.stack([make_detector("hybrid_entropy", **kwargs).score_series(r) for r in values])


def test_the_entropy_bank_equals_per_series_hybrid_entropy_detectors_on_nab_files():
    """hybrid_entropy's bank: the hybrid as a HybridBank plus per-series relative entropy
    and the rest rule on arrays, equal to the per-series detectors (tolerance 0), with
    alarms both raised and rested on these files."""
    from granite_panel.detection.bank import HybridEntropyBank

    values = nab_side_by_side(["realTraffic/speed_7578.csv", "realTraffic/TravelTime_387.csv",
                               "realAdExchange/exchange-4_cpc_results.csv"])
    values[0, 300:310] = np.nan  # a gap: nothing moves, the rest counts only points seen
    for rest_after in ("any", "own"):
        got = HybridEntropyBank(len(values), rest_after=rest_after).score_block(values)
        want = entropy_scores(values, rest_after=rest_after)
        assert np.array_equal(got, want)
        plain = entropy_scores(values, rest=0)
        assert (plain == 1.0).sum() > (want == 1.0).sum() > (scalar_scores(values) == 1.0).sum()


def test_the_live_adapter_runs_hybrid_entropy_as_a_bank_as_series_appear(monkeypatch):
    monkeypatch.setattr(live, "BANK_MIN_SERIES", 3)
    values, _ = synthetic_stream(7, 3, 1200)
    adapter = live.OnlineDetectors("hybrid_entropy", 2, period=24)
    first, _ = adapter.score_block(values[:2, :700])
    assert adapter.bank is None
    adapter.grow(1)  # the two detectors are adopted, state and all
    assert type(adapter.bank).__name__ == "HybridEntropyBank" and adapter.bank.n_series == 3
    adapter = pickle.loads(pickle.dumps(adapter, protocol=pickle.HIGHEST_PROTOCOL))
    second, _ = adapter.score_block(np.vstack([values[:2, 700:], values[2:, :500]]))
    assert np.array_equal(np.hstack([first, second[:2]]), entropy_scores(values[:2], period=24))
    assert np.array_equal(second[2], entropy_scores(values[2:, :500], period=24)[0])
    adapter.reset(4)
    assert adapter.bank.n_series == 4 and adapter.series.detectors == []
    with pytest.raises(ValueError, match="rest must be"):
        live.OnlineDetectors("hybrid_entropy", 4, rest=-1)
