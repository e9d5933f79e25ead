"""The ETT zero-shot protocol (granite_panel.evaluation) on small synthetic frames.

Window count, derived: the test segment starts ``L`` (context) rows before the test split,
so it has ``T + L`` rows for ``T`` test rows; a window spans ``L + H`` rows, so at stride 1
there are ``(T + L) - (L + H) + 1 = T - H + 1`` windows. ETTh: T = 14400 - 11520 = 2880,
H = 96 -> 2785 (IBM's count); ETTm: T = 57600 - 46080 = 11520 -> 11425.
"""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from granite_panel.evaluation.ett import (
    Splits,
    ett_splits,
    evaluate,
    fit_scaler,
    forecast_starts,
    infer_step,
    make_test_windows,
    read_ett,
    score,
    window_count,
)

HOUR = pd.Timedelta(hours=1)
SMALL = Splits(HOUR, (0, 100), (100, 140), (140, 200))  # 60 test rows


def ramp(rows: int, channels: int = 3) -> np.ndarray:
    """Channel c at row r is r + 1000 c: every value says which row it came from."""
    return np.arange(rows)[:, None] + 1000.0 * np.arange(channels)[None, :]


# --------------------------------------------------------------------------- splits


def test_hourly_split_edges_from_timestamps():
    splits = ett_splits(pd.date_range("2016-07-01", periods=17420, freq="h"))
    assert splits.label == "hourly" and splits.rows_per_day == 24
    assert (splits.train, splits.valid, splits.test) == ((0, 8640), (8640, 11520), (11520, 14400))


def test_15_minute_split_edges_from_timestamps():
    splits = ett_splits(pd.date_range("2016-07-01", periods=57600, freq="15min"))
    assert splits.label == "15-minute" and splits.rows_per_day == 96
    assert (splits.train, splits.valid, splits.test) == (
        (0, 34560),
        (34560, 46080),
        (46080, 57600),
    )


def test_frequency_comes_from_timestamps_not_the_file_name(tmp_path):
    path = tmp_path / "ETTh1.csv"  # an hourly name, 15-minute data
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=57600, freq="15min")})
    frame["OT"] = 1.0
    frame.to_csv(path, index=False)
    timestamps, values, channels = read_ett(path)
    assert channels == ["OT"] and values.shape == (57600, 1)
    assert ett_splits(timestamps).test == (46080, 57600)


def test_irregular_or_short_data_is_refused():
    stamps = pd.date_range("2020-01-01", periods=10, freq="h").delete(4)
    with pytest.raises(ValueError, match="not regularly spaced"):
        infer_step(stamps)
    with pytest.raises(ValueError, match="does not divide one day"):
        infer_step(pd.date_range("2020-01-01", periods=10, freq="7h"))
    with pytest.raises(ValueError, match="needs 14400"):
        ett_splits(pd.date_range("2020-01-01", periods=14399, freq="h"))


# --------------------------------------------------------------------------- scaling


def test_scaler_sees_train_rows_only():
    rng = np.random.default_rng(0)
    values = rng.normal(5, 3, size=(230, 4))
    scaler = fit_scaler(values, SMALL)
    np.testing.assert_allclose(scaler.mean, values[:100].mean(axis=0))
    np.testing.assert_allclose(scaler.std, values[:100].std(axis=0))  # population std

    peeked = values.copy()
    peeked[100:] = rng.normal(50, 30, size=(130, 4))  # validation, test and later rows
    other = fit_scaler(peeked, SMALL)
    np.testing.assert_array_equal(other.mean, scaler.mean)
    np.testing.assert_array_equal(other.std, scaler.std)

    peeked[99] += 1.0  # the last train row does count
    assert not np.array_equal(fit_scaler(peeked, SMALL).mean, scaler.mean)


def test_constant_channel_scales_by_one():
    values = np.ones((200, 2))
    values[:, 1] = np.arange(200)
    assert fit_scaler(values, SMALL).std[0] == 1.0


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    "freq, rows, expected", [("h", 14400, 2785), ("15min", 57600, 11425)]
)
def test_ibm_window_counts(freq, rows, expected):
    splits = ett_splits(pd.date_range("2016-07-01", periods=rows, freq=freq))
    assert window_count(splits, 512, 96) == expected == splits.test_rows - 96 + 1


@pytest.mark.parametrize("context, horizon", [(30, 10), (100, 1), (1, 60), (7, 13)])
def test_windows_cover_the_test_split_exactly(context, horizon):
    data = ramp(230)
    windows = make_test_windows(data, SMALL, context, horizon)
    assert len(windows) == window_count(SMALL, context, horizon) == 60 - horizon + 1
    assert windows.contexts.shape == (len(windows), 3, context)
    assert windows.targets.shape == (len(windows), 3, horizon)
    # the first forecast row is the first test row; the last target row is the last test row
    assert windows.starts[0] == 140 and windows.targets[0, 0, 0] == 140
    assert windows.targets[-1, 0, -1] == 199
    assert windows.contexts[0, 0, 0] == 140 - context
    np.testing.assert_array_equal(windows.starts, forecast_starts(SMALL, context, horizon))
    np.testing.assert_array_equal(np.diff(windows.starts), 1)  # stride 1


def test_context_ends_on_the_row_before_each_forecast():
    data = ramp(230)
    windows = make_test_windows(data, SMALL, 30, 10)
    for w, start in enumerate(windows.starts):
        np.testing.assert_array_equal(windows.contexts[w, 0], np.arange(start - 30, start))
        np.testing.assert_array_equal(windows.targets[w, 0], np.arange(start, start + 10))


def test_stride_and_max_windows():
    windows = make_test_windows(ramp(230), SMALL, 30, 10, stride=5)
    assert len(windows) == (60 - 10) // 5 + 1 == window_count(SMALL, 30, 10, stride=5)
    np.testing.assert_array_equal(windows.contexts[:, 0, -1] + 1, windows.starts)
    assert len(make_test_windows(ramp(230), SMALL, 30, 10, max_windows=4)) == 4


def test_context_before_the_first_row_is_refused():
    with pytest.raises(ValueError, match="reaches before the first row"):
        make_test_windows(ramp(230), SMALL, 141, 10)


# --------------------------------------------------------------------------- scoring


def test_score_is_mse_and_mae_over_every_value():
    targets = np.zeros((2, 3, 4))
    forecasts = targets.copy()
    forecasts[0, 0, 0] = 2.0
    forecasts[1, 2, 3] = -4.0
    assert score(forecasts, targets) == pytest.approx((20 / 24, 6 / 24))
    with pytest.raises(ValueError, match="differ in shape"):
        score(forecasts[:1], targets)


class RowOracle:
    """Knows the whole scaled data and reads the row a context ends on from its last value.

    ``shift=0`` is a perfect forecaster; ``shift=1`` forecasts the rows one step later, the
    kind of off-by-one a leaky window would reward.
    """

    def __init__(self, scaled, scaler, horizon, shift=0):
        self.scaled, self.scaler, self.horizon, self.shift = scaled, scaler, horizon, shift
        self.contexts = []

    def predict(self, context):
        self.contexts.append(context.copy())
        out = []
        for row in range(context.shape[0]):
            channel = row % self.scaled.shape[1]
            last = context[row, -1] * self.scaler.std[channel] + self.scaler.mean[channel]
            first = int(round(last - 1000 * channel)) + 1 + self.shift
            out.append(self.scaled[first : first + self.horizon, channel])
        return np.array(out)


def protocol(rows=230, channels=3, context=30, horizon=10):
    data = ramp(rows, channels)
    scaler = fit_scaler(data, SMALL)
    scaled = scaler.transform(data)
    return data, scaler, scaled, make_test_windows(scaled, SMALL, context, horizon)


def test_perfect_forecaster_scores_zero_and_a_shifted_one_does_not():
    _, scaler, scaled, windows = protocol()
    perfect = evaluate(RowOracle(scaled, scaler, 10).predict, windows, windows_per_call=7)
    assert perfect.windows == 51 and perfect.mse == 0.0 and perfect.mae == 0.0
    leaky = evaluate(RowOracle(scaled, scaler, 10, shift=1).predict, windows)
    assert leaky.mse > 0.0


@pytest.mark.parametrize("per_call", [1, 4, 64])
def test_each_context_passed_ends_just_before_its_first_forecast_row(per_call):
    data, scaler, scaled, windows = protocol()
    spy = RowOracle(scaled, scaler, 10)
    evaluate(spy.predict, windows, windows_per_call=per_call)
    seen = scaler.inverse(
        np.concatenate(spy.contexts).reshape(len(windows), 3, 30).transpose(0, 2, 1)
    )  # [windows, context, channels] in raw units
    for w, start in enumerate(windows.starts):
        np.testing.assert_allclose(seen[w], data[start - 30 : start], atol=1e-9)
        assert seen[w, -1, 0] == pytest.approx(start - 1)  # nothing from row `start` on


def test_batching_does_not_change_the_score():
    _, _, _, windows = protocol()

    def wobbly_last_value(context):  # a forecast that depends on the row's own context only
        return context[:, -1:] + np.sin(context[:, -2:-1] * 1e3 + np.arange(10))

    one = evaluate(wobbly_last_value, windows, windows_per_call=1)
    many = evaluate(wobbly_last_value, windows, windows_per_call=50)
    assert one.mse > 0 and one.windows == many.windows == 51
    assert one.mse == pytest.approx(many.mse) and one.mae == pytest.approx(many.mae)


def test_bad_forecasts_are_refused():
    _, _, _, windows = protocol()
    with pytest.raises(ValueError, match="expected"):
        evaluate(lambda c: c[:, -5:], windows)
    with pytest.raises(ValueError, match="non-finite"):
        evaluate(lambda c: np.full((c.shape[0], 10), np.nan), windows)


# --------------------------------------------------------------------------- the CLI


def load_cli():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ett_zero_shot.py"
    spec = importlib.util.spec_from_file_location("ett_zero_shot", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_cli_scores_a_daily_cycle_perfectly_and_skips_missing_ttm(tmp_path, capsys):
    stamps = pd.date_range("2020-01-01", periods=14400, freq="h")
    cycle = np.sin(2 * np.pi * np.arange(14400) / 24)
    path = tmp_path / "daily.csv"
    pd.DataFrame({"date": stamps, "a": cycle, "b": 3 * cycle + 1}).to_csv(path, index=False)
    cli = load_cli()
    argv = [str(path), "--forecaster", "seasonal-naive", "--forecaster", "TTM"]
    argv += ["--model", str(tmp_path / "no-such-model"), "--max-windows", "50"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "hourly steps (from the timestamps)" in out and "50 of 2785 test windows" in out
    assert "TTM unavailable" in out and "skipped (no substitute model is used)" in out
    row = [line for line in out.splitlines() if line.startswith("seasonal-naive  daily")]
    assert row and row[0].split()[2:5] == ["0.0000", "0.0000", "50"]


def test_cli_linear_baseline_learns_a_cycle_that_seasonal_naive_misses(tmp_path, capsys):
    """The ridge baseline is fitted on the train split's windows and forecasts a 37-step
    cycle (not the daily season seasonal naive repeats) almost exactly."""
    stamps = pd.date_range("2020-01-01", periods=14400, freq="h")
    noise = np.random.default_rng(0).normal(0, 0.01, 14400)
    cycle = np.sin(2 * np.pi * np.arange(14400) / 37) + noise
    path = tmp_path / "cycle.csv"
    pd.DataFrame({"date": stamps, "a": cycle}).to_csv(path, index=False)
    argv = [str(path), "--forecaster", "linear", "--forecaster", "naive", "--max-windows", "50"]
    assert load_cli().main(argv) == 0
    out = capsys.readouterr().out
    assert "linear (ridge) fitted here: 512 -> 96 on 8033 train windows (stride 1)" in out
    rows = [re.split(r"\s{2,}", line) for line in out.splitlines()]
    mse = {row[0]: float(row[2]) for row in rows if len(row) == 6 and row[1] == "cycle"}
    assert mse["linear (ridge) fitted here"] < 0.01 < mse["seasonal-naive"]


def test_cli_suggests_a_forecaster_name(capsys):
    with pytest.raises(SystemExit):
        load_cli().parse_args(["x.csv", "--forecaster", "autoets2"])
    assert "Did you mean 'AutoETS'" in capsys.readouterr().err


# --------------------------------------------------------------------------- against IBM's code

ETTH1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ett" / "ETTh1.csv"


@pytest.mark.skipif(not ETTH1.exists(), reason="shared ETT data not present")
def test_windows_match_granite_tsfm_load_dataset():
    """Same windows, same scaled values as granite-tsfm's own ETTh1 benchmark loader."""
    load_dataset = pytest.importorskip("tsfm_public.toolkit.data_handling").load_dataset
    _, _, ibm_test = load_dataset("etth1", 512, 96, dataset_path=str(ETTH1))
    timestamps, values, _ = read_ett(ETTH1)
    splits = ett_splits(timestamps)
    windows = make_test_windows(fit_scaler(values, splits).transform(values), splits, 512, 96)
    assert len(ibm_test) == len(windows) == 2785
    for w in (0, 1, 1000, 2784):
        item = ibm_test[w]
        np.testing.assert_allclose(item["past_values"].numpy(), windows.contexts[w].T, atol=1e-5)
        np.testing.assert_allclose(item["future_values"].numpy(), windows.targets[w].T, atol=1e-5)
