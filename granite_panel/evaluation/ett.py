"""IBM's ETT zero-shot protocol as small pure functions (splits, scaling, windows, scores).

The protocol behind the published TinyTimeMixer numbers (granite-tsfm's
``resources/data_config/ett*.yaml`` + ``toolkit.time_series_preprocessor.get_datasets``):

- splits by row, in 30-day months from the first row: train = the first 12 months,
  validation the next 4, test the 4 after that; later rows are unused. Hourly data gives
  train [0, 8640), validation [8640, 11520), test [11520, 14400); 15-minute data
  train [0, 34560), validation [34560, 46080), test [46080, 57600). The step is read from
  the timestamps, never from a file name.
- a standard scaler per channel (population std, as scikit-learn's ``StandardScaler``)
  fitted on the train rows only, applied to every row.
- the test segment starts ``context_length`` rows before the test split
  (``get_split_params`` offsets every non-train split by the context), so the first window's
  first forecast row is the first test row; stride 1. A segment of
  ``test_rows + context_length`` rows holds ``(rows - context_length - horizon) // stride + 1``
  windows, i.e. ``test_rows - horizon + 1`` at stride 1 (2,785 for ETTh at 512/96).
- every channel is a target, forecast on its own; MSE (and MAE) over
  windows x horizon x channels, on scaled values.

Nothing here knows about models: ``evaluate`` takes any ``predict(context) -> forecast``
with the project's ``Forecaster`` shapes ([n_series, time] -> [n_series, horizon]).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ONE_DAY = pd.Timedelta(days=1)
# Months of 30 days, as in granite-tsfm's ETT configs (12 * 30 * 24 and so on).
TRAIN_DAYS, VALID_DAYS, TEST_DAYS = 12 * 30, 4 * 30, 4 * 30
STEP_LABELS = {pd.Timedelta(hours=1): "hourly", pd.Timedelta(minutes=15): "15-minute"}


@dataclass(frozen=True)
class Splits:
    """Row ranges ``[start, end)`` of the three splits, and the step they were derived from."""

    step: pd.Timedelta
    train: tuple[int, int]
    valid: tuple[int, int]
    test: tuple[int, int]

    @property
    def rows_per_day(self) -> int:
        return int(ONE_DAY / self.step)

    @property
    def label(self) -> str:
        return STEP_LABELS.get(self.step, f"every {self.step}")

    @property
    def test_rows(self) -> int:
        return self.test[1] - self.test[0]


@dataclass(frozen=True)
class Scaler:
    """Per-channel standard scaling: ``(x - mean) / std``."""

    mean: np.ndarray
    std: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=float) - self.mean) / self.std

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=float) * self.std + self.mean


@dataclass(frozen=True)
class Windows:
    """Test windows as views into the scaled data (no copies of 11k x 7 x 512 values).

    ``contexts[w]`` is [channels, context_length], the rows just before ``starts[w]``;
    ``targets[w]`` is [channels, horizon], rows ``starts[w] .. starts[w] + horizon - 1``.
    """

    contexts: np.ndarray
    targets: np.ndarray
    starts: np.ndarray  # row of each window's first forecast step

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def channels(self) -> int:
        return self.contexts.shape[1]


@dataclass(frozen=True)
class Score:
    mse: float
    mae: float
    windows: int
    seconds: float


# --------------------------------------------------------------------------- reading


def read_ett(path: str | Path) -> tuple[pd.DatetimeIndex, np.ndarray, list[str]]:
    """Timestamps, values [rows, channels] and channel names of an ETT-format CSV.

    The timestamp column is ``date`` when there is one, else the first column; every other
    column is a target channel.
    """
    frame = pd.read_csv(path)
    time_column = "date" if "date" in frame.columns else frame.columns[0]
    timestamps = pd.DatetimeIndex(pd.to_datetime(frame.pop(time_column)))
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ValueError(f"{path}: columns {non_numeric} are not numeric; expected ETT format")
    return timestamps, frame.to_numpy(dtype=float), list(frame.columns)


# --------------------------------------------------------------------------- splits


def infer_step(timestamps) -> pd.Timedelta:
    """The (single) spacing of regular timestamps; raises when they are not regular."""
    index = pd.DatetimeIndex(timestamps)
    if len(index) < 2:
        raise ValueError("need at least two timestamps to infer their spacing")
    diffs = pd.Series(index[1:] - index[:-1])
    counts = diffs.value_counts()
    if len(counts) != 1:
        raise ValueError(
            f"timestamps are not regularly spaced: spacings {dict(counts.head(3))}; "
            "the ETT protocol splits by row and needs one spacing"
        )
    step = counts.index[0]
    if step <= pd.Timedelta(0) or ONE_DAY % step != pd.Timedelta(0):
        raise ValueError(f"spacing {step} does not divide one day; expected 1h or 15min")
    return step


def ett_splits(timestamps) -> Splits:
    """Train / validation / test rows of the ETT protocol for these timestamps.

    12, 4 and 4 months of 30 days, in rows of the inferred step: hourly gives
    (0, 8640), (8640, 11520), (11520, 14400); 15-minute gives four times those.
    """
    step = infer_step(timestamps)
    per_day = int(ONE_DAY / step)
    train_end = TRAIN_DAYS * per_day
    valid_end = train_end + VALID_DAYS * per_day
    test_end = valid_end + TEST_DAYS * per_day
    if len(timestamps) < test_end:
        raise ValueError(
            f"{len(timestamps)} rows at {step} spacing; the protocol needs {test_end} "
            f"({TRAIN_DAYS + VALID_DAYS + TEST_DAYS} days)"
        )
    return Splits(step, (0, train_end), (train_end, valid_end), (valid_end, test_end))


# --------------------------------------------------------------------------- scaling


def fit_scaler(values: np.ndarray, splits: Splits) -> Scaler:
    """Per-channel mean and population std of the train rows only (a zero std becomes 1)."""
    train = np.asarray(values, dtype=float)[splits.train[0] : splits.train[1]]
    if not np.isfinite(train).all():
        raise ValueError("train rows contain missing or non-finite values")
    mean = train.mean(axis=0)
    std = train.std(axis=0)  # ddof=0, as sklearn.preprocessing.StandardScaler
    return Scaler(mean, np.where(std > 0, std, 1.0))


# --------------------------------------------------------------------------- windows


def window_count(splits: Splits, context_length: int, horizon: int, stride: int = 1) -> int:
    """Windows of the test segment: ``(test_rows - horizon) // stride + 1``.

    The segment is ``test_rows + context_length`` rows (it starts ``context_length`` before
    the test split) and each window spans ``context_length + horizon`` rows.
    """
    _check_window_args(splits, context_length, horizon, stride)
    segment = splits.test_rows + context_length
    return max((segment - context_length - horizon) // stride + 1, 0)


def forecast_starts(
    splits: Splits, context_length: int, horizon: int, stride: int = 1
) -> np.ndarray:
    """Row of the first forecast step of every test window, in order."""
    count = window_count(splits, context_length, horizon, stride)
    return splits.test[0] + stride * np.arange(count)


def make_test_windows(
    scaled: np.ndarray,
    splits: Splits,
    context_length: int,
    horizon: int,
    stride: int = 1,
    max_windows: int | None = None,
) -> Windows:
    """The protocol's test windows over ``scaled`` [rows, channels] (the first ``max_windows``)."""
    _check_window_args(splits, context_length, horizon, stride)
    scaled = np.asarray(scaled)
    if scaled.ndim != 2 or scaled.shape[0] < splits.test[1]:
        raise ValueError(f"data of shape {scaled.shape} does not cover the test rows {splits.test}")
    starts = forecast_starts(splits, context_length, horizon, stride)
    if max_windows is not None:
        starts = starts[: max(int(max_windows), 0)]
    segment = scaled[splits.test[0] - context_length : splits.test[1]]
    # [windows, channels, context + horizon]; window w covers segment rows w .. w + L + H - 1
    spans = np.lib.stride_tricks.sliding_window_view(segment, context_length + horizon, axis=0)
    spans = spans[::stride][: len(starts)]
    return Windows(spans[..., :context_length], spans[..., context_length:], starts)


def _check_window_args(splits: Splits, context_length: int, horizon: int, stride: int) -> None:
    if context_length < 1 or horizon < 1 or stride < 1:
        raise ValueError(
            f"context_length={context_length}, horizon={horizon}, stride={stride}: all must be >= 1"
        )
    if context_length > splits.test[0]:
        raise ValueError(
            f"context_length {context_length} reaches before the first row "
            f"(the test split starts at row {splits.test[0]})"
        )


# --------------------------------------------------------------------------- scoring


def score(forecasts: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """MSE and MAE over every value (windows x horizon x channels)."""
    forecasts, targets = np.asarray(forecasts, dtype=float), np.asarray(targets, dtype=float)
    if forecasts.shape != targets.shape:
        raise ValueError(f"forecasts {forecasts.shape} and targets {targets.shape} differ in shape")
    errors = forecasts - targets
    return float(np.mean(errors**2)), float(np.mean(np.abs(errors)))


def evaluate(
    predict: Callable[[np.ndarray], np.ndarray],
    windows: Windows,
    windows_per_call: int = 64,
) -> Score:
    """Score ``predict`` on every window, ``windows_per_call`` windows per call.

    Each call gets ``context`` [k * channels, context_length] (window-major: window 0's
    channels, then window 1's, ...) and must return [k * channels, horizon]. A forecaster
    that keeps per-series state (fitted models by row) needs ``windows_per_call=1`` so that
    row i is always channel i.
    """
    n, channels = len(windows), windows.channels
    horizon = windows.targets.shape[-1]
    sse = sae = 0.0
    started = time.perf_counter()
    for first in range(0, n, max(int(windows_per_call), 1)):
        last = min(first + windows_per_call, n)
        k = last - first
        context = np.ascontiguousarray(windows.contexts[first:last]).reshape(k * channels, -1)
        forecast = np.asarray(predict(context), dtype=float)
        if forecast.shape != (k * channels, horizon):
            raise ValueError(
                f"forecaster returned shape {forecast.shape}; expected {(k * channels, horizon)}"
            )
        if not np.isfinite(forecast).all():
            raise ValueError(
                f"forecaster returned non-finite values for windows {first}..{last - 1}"
            )
        errors = forecast.reshape(k, channels, horizon) - windows.targets[first:last]
        sse += float(np.sum(errors**2))
        sae += float(np.sum(np.abs(errors)))
    seconds = time.perf_counter() - started
    values = n * channels * horizon
    if values == 0:
        return Score(float("nan"), float("nan"), 0, seconds)
    return Score(sse / values, sae / values, n, seconds)
