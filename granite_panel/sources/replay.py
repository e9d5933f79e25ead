"""Replay of a table (a CSV/Parquet file or a pandas DataFrame) with its own timestamps.

Two layouts, detected from the column names:

- **long**: one row per point, ``series,timestamp,value`` or Nixtla's ``unique_id,ds,y``;
- **wide**: a timestamp column and one numeric column per series (NAB's ``timestamp,value``
  is wide with one series; a lone ``value``/``y`` column is named after the file).

Each distinct timestamp is one slot of the engine's grid, drawn at the file's own time, so
irregular files replay row for row as they are (the live scores then equal ``granite-panel
detect`` on the same file). A series with no value at a timestamp has a gap there. An
optional 0/1 label column feeds the live precision/recall. An empty cell is a gap; a
cell that is not a number (a string, inf) is a bad point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import param

from .points import SECONDS_LIMIT, InputError
from .synthetic import Batch

LONG_LAYOUTS = (("series", "timestamp", "value"), ("unique_id", "ds", "y"))
TIMESTAMP_NAMES = ("timestamp", "ds", "date", "datetime", "time")
LONE_VALUE_NAMES = ("value", "y")


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; ``InputError`` with one line if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv", ""):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except Exception as exc:  # parser errors of pandas/pyarrow: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a readable {suffix.lstrip('.') or 'CSV'} file ({first})") from None
    raise InputError(f"{path}: unknown file type {suffix!r}; expected .csv or .parquet")


def epoch_seconds(column: pd.Series, where: str) -> np.ndarray:
    """Epoch seconds of a column of dates or epoch numbers (seconds, or ms above 1e11);
    ``InputError`` naming the first cell that is not a time, or not one in range."""
    if pd.api.types.is_numeric_dtype(column):
        numbers = column.to_numpy(dtype=float)
        seconds = np.where(np.abs(numbers) > 1e11, numbers / 1000.0, numbers)
        blank = ~np.isfinite(numbers)  # an empty cell reads as NaN in a column of numbers
        if blank.any():
            raise _bad_time(column, int(np.flatnonzero(blank)[0]), where, "is not a date/time")
        far = np.flatnonzero(~(np.abs(seconds) < SECONDS_LIMIT))
        if len(far):
            raise _bad_time(column, int(far[0]), where,
                            "is out of range: expected a time in the years 1 to 5138")
        return seconds
    stamps = pd.to_datetime(column, errors="coerce", format="mixed", utc=True)
    bad = stamps.isna().to_numpy()
    if bad.any():
        raise _bad_time(column, int(np.flatnonzero(bad)[0]), where, "is not a date/time")
    return (stamps.astype("int64").to_numpy() / 1e9).astype(float)


def _bad_time(column: pd.Series, position: int, where: str, why: str) -> InputError:
    """The error for one cell; a file's row by its place in the file (the frame may have
    been sorted by time since), a DataFrame's by its index."""
    value, label = column.iloc[position], column.index[position]
    value = value.item() if isinstance(value, np.generic) else value
    at = f"data row {label + 1}" if isinstance(label, (int, np.integer)) else f"index {label!r}"
    return InputError(f"{where}: timestamp {value!r} on {at} {why}")


def _numbers(column: pd.Series) -> np.ndarray:
    """Floats; anything that is not a number (a string, empty) becomes NaN, a bad point."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def frame_to_batch(
    frame: pd.DataFrame,
    name: str = "value",
    timestamp_column: str = "",
    value_columns: str | list[str] = "",
    label_column: str = "label",
    where: str = "frame",
) -> Batch:
    """The whole table as one ``Batch``: rows = series (named), columns = timestamps."""
    if frame.empty:
        raise InputError(f"{where}: no data rows")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    label = label_column if label_column in columns else ""
    for layout in LONG_LAYOUTS:
        if set(layout) <= set(columns) and not value_columns:
            return _long(frame, *layout, label, where)
    ts_col = timestamp_column or next((c for c in columns if c.lower() in TIMESTAMP_NAMES), "")
    if ts_col and ts_col not in columns:
        raise InputError(f"{where}: no column {ts_col!r}; found {', '.join(columns)}")
    if not ts_col:
        ts_col = next((c for c in columns if _looks_like_time(frame[c])), "")
    if not ts_col:
        raise InputError(
            f"{where}: no timestamp column found among {', '.join(columns)}; name it with "
            "--timestamp-column (or use the long layout series,timestamp,value)"
        )
    if isinstance(value_columns, str):
        value_columns = [c.strip() for c in value_columns.split(",") if c.strip()]
    if value_columns:
        missing = [c for c in value_columns if c not in columns]
        if missing:
            raise InputError(f"{where}: no column(s) {', '.join(missing)}; found {', '.join(columns)}")
    else:
        value_columns = [
            c for c in columns
            if c not in (ts_col, label) and pd.api.types.is_numeric_dtype(frame[c])
        ]
    if not value_columns:
        raise InputError(f"{where}: no numeric value column besides {ts_col!r}")
    frame = frame.sort_values(ts_col, kind="stable") if not frame[ts_col].is_monotonic_increasing else frame
    timestamps = epoch_seconds(frame[ts_col], where)
    values = np.vstack([_numbers(frame[c]) for c in value_columns])
    missing = np.vstack([frame[c].isna().to_numpy() for c in value_columns])  # empty cells
    names = [name if c in LONE_VALUE_NAMES and len(value_columns) == 1 else c for c in value_columns]
    labels = None
    if label:
        flags = (_numbers(frame[label]) > 0).astype(np.int8)
        labels = np.tile(flags, (len(names), 1))
    return Batch(timestamps=timestamps, values=values, labels=labels, series=tuple(names),
                 missing=missing)


def _looks_like_time(column: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if column.dtype != object:
        return False
    sample = column.dropna().head(20)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
    return len(sample) > 0 and parsed.notna().all()


def _long(frame: pd.DataFrame, series: str, ts: str, value: str, label: str, where: str) -> Batch:
    stamps = epoch_seconds(frame[ts], where)
    tidy = pd.DataFrame(
        {"series": frame[series].astype(str), "t": stamps, "v": _numbers(frame[value])}
    )
    if label:
        tidy["label"] = (_numbers(frame[label]) > 0).astype(np.int8)
    # several points of a series at one timestamp: the last one wins (the engine's rule)
    tidy = tidy.drop_duplicates(["series", "t"], keep="last")
    tidy["present"] = True
    wide = tidy.pivot(index="series", columns="t", values="v")
    missing = tidy.pivot(index="series", columns="t", values="present").isna().to_numpy()
    names = tuple(wide.index)
    labels = None
    if label:
        labels = tidy.pivot(index="series", columns="t", values="label").fillna(0).to_numpy(np.int8)
    return Batch(
        timestamps=wide.columns.to_numpy(dtype=float),
        values=wide.to_numpy(dtype=float),
        labels=labels,
        series=names,
        missing=missing,
    )


class ReplaySource(param.Parameterized):
    """Replays a table slot by slot: ``rows_per_tick`` each tick, or all at once (``max``)."""

    speed = param.String(
        default="",
        doc="Rows per second; 'max' for as fast as the engine takes them; empty: one per tick.",
    )
    chunk = param.Integer(
        default=4096, bounds=(1, None), doc="Rows per tick with speed 'max'."
    )
    interval = param.Number(default=2.0, bounds=(0, None), doc="Seconds between ticks.")

    def __init__(self, batch: Batch, label: str = "frame", **params):
        super().__init__(**params)
        self.batch = batch
        self.label = label
        self.series_names = tuple(batch.series)
        diffs = np.diff(batch.timestamps)
        self.step = float(np.median(diffs)) if len(diffs) else self.interval
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path, timestamp_column="", value_columns="",
                  label_column="label", **params) -> ReplaySource:
        path = Path(path)
        frame = read_table(path)
        batch = frame_to_batch(frame, path.stem, timestamp_column, value_columns, label_column,
                               where=str(path))
        return cls(batch, label=path.name, **params)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "value", **params) -> ReplaySource:
        options = {k: params.pop(k) for k in ("timestamp_column", "value_columns", "label_column")
                   if k in params}
        return cls(frame_to_batch(frame, name, **options), label="DataFrame", **params)

    @property
    def rows(self) -> int:
        return len(self.batch.timestamps)

    @property
    def tick_seconds(self) -> float:
        """Seconds the engine waits between ticks (0: no wait, a backtest)."""
        return 0.0 if self.speed == "max" else self.interval

    @property
    def rows_per_tick(self) -> float:
        if self.speed == "max":
            return float(self.chunk)
        if self.speed:
            return float(self.speed) * self.interval
        return 1.0

    @property
    def finished(self) -> bool:
        return self.position >= self.rows

    def reset(self) -> None:
        self.position = 0
        self._due = 0.0

    def resume_after(self, timestamp: float) -> None:
        """Continue after a restart: skip the rows the store already has (up to ``timestamp``)."""
        self.position = int(np.searchsorted(self.batch.timestamps, timestamp, side="right"))

    def status(self) -> dict:
        return {
            "kind": "replay",
            "state": "finished" if self.finished else "ok",
            "file": self.label,
            "rows": self.rows,
            "position": self.position,
            "speed": self.speed or "one row per tick",
        }

    def _take(self, n: int) -> Batch:
        start, stop = self.position, min(self.rows, self.position + n)
        self.position = stop
        b = self.batch
        return Batch(
            timestamps=b.timestamps[start:stop],
            values=b.values[:, start:stop],
            labels=None if b.labels is None else b.labels[:, start:stop],
            series=b.series,
            missing=None if b.missing is None else b.missing[:, start:stop],
        )

    def backfill(self, now: float, points: int) -> Batch:
        """The first ``points`` rows at once, so the first tick already has a context."""
        return self._take(points)

    def poll(self, now: float) -> Batch:
        self._due += self.rows_per_tick
        n = int(self._due)
        self._due -= n
        return self._take(n)
