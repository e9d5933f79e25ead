"""Replay of a table (a CSV, Parquet or spreadsheet file, or a pandas DataFrame) with its own
timestamps.

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

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import param

from .local_time import check_timezone, clock_to_utc, has_no_offset
from .points import SECONDS_LIMIT, InputError
from .synthetic import Batch
from .table_file import read_table, sheet_title, table_name, time_column, workbook_sheets
from .table_file import value_columns as find_value_columns
from .unpacked import DEFAULT_RECEIVED_MAX, unpack_received, unpacked_limit

logger = logging.getLogger(__name__)

LONG_LAYOUTS = (("series", "timestamp", "value"), ("unique_id", "ds", "y"))
LONE_VALUE_NAMES = ("value", "y")


def epoch_seconds(column: pd.Series, where: str, timezone: str = "", groups=None) -> np.ndarray:
    """Epoch seconds of a column of dates or epoch numbers (seconds, or ms above 1e11);
    ``InputError`` naming the first cell that is not a time, or not one in range. Dates
    without a UTC offset are UTC, or clock times of ``timezone`` (``local_time.py``;
    ``groups``: each row's series, for the hour that the end of summer time repeats)."""
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
    stamps = _dates(column)
    bad = stamps.isna().to_numpy()
    if bad.any():
        raise _bad_time(column, int(np.flatnonzero(bad)[0]), where, "is not a date/time")
    if timezone and has_no_offset(column):
        stamps = clock_to_utc(stamps, timezone, groups)
        skipped = stamps.isna().to_numpy()
        if skipped.any():
            raise _bad_time(column, int(np.flatnonzero(skipped)[0]), where,
                            f"never happened in {timezone} (the clock skipped it when summer "
                            "time began)")
    return (stamps.astype("int64").to_numpy() / 1e9).astype(float)


# formats pandas does not infer from a cell (12-hour clocks), tried after the inferred ones
CLOCK_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%d/%m/%Y %I:%M %p",
                 "%d/%m/%Y %I:%M:%S %p", "%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %I:%M %p")


def _dates(column: pd.Series) -> pd.Series:
    """UTC times of a column of dates, every cell read by one format where one fits them
    all, so ``03/04`` is not a month first in one row and a day first in the next (and a
    million rows parse in seconds, not minutes): the format pandas infers from the first
    cell (day first for dotted dates such as ``25.03.2024``, the European way of writing
    them), then the other order, then 12-hour clocks (``03/25/2024 01:00 PM``); failing
    those, each cell on its own (mixed formats); NaT where none reads."""
    import warnings

    sample = column.dropna().head(200).astype(str).str.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format", "dayfirst"
        return _one_format(column, sample) if len(sample) else _each_cell(column)


def _one_format(column: pd.Series, sample: pd.Series) -> pd.Series:
    """The column by the first format that reads the whole sample, if it then reads every
    cell; else cell by cell."""
    from pandas.tseries.api import guess_datetime_format

    dotted = bool(sample.str.match(r"\d{1,2}\.\d{1,2}\.\d{2,4}").all())
    guessed = [guess_datetime_format(sample.iloc[0], dayfirst=d) for d in (dotted, not dotted)]
    for form in dict.fromkeys([*filter(None, guessed), *CLOCK_FORMATS]):
        try:
            if pd.to_datetime(sample, format=form, errors="coerce", utc=True).notna().all():
                return pd.to_datetime(column, format=form, utc=True)
        except (ValueError, TypeError, OverflowError):
            continue  # a later cell does not fit: the next format, then cell by cell
    return _each_cell(column)


def _each_cell(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, errors="coerce", format="mixed", utc=True)


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
    timezone: str = "",
) -> Batch:
    """The whole table as one ``Batch``: rows = series (named), columns = timestamps.

    A pandas Series is a table of one column (named ``name`` when it has none); an index
    that is not the default one (a ``DatetimeIndex``, or ``series``/``ds`` levels) is read
    as columns, as pandas users keep times. ``timezone``: the zone of times written without
    a UTC offset (default UTC).
    """
    timezone = check_timezone(timezone)
    frame = _with_index_columns(frame, name)
    if frame.empty:
        raise InputError(f"{where}: no data rows")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    label = label_column if label_column in columns else ""
    for layout in LONG_LAYOUTS:
        if set(layout) <= set(columns) and not value_columns:
            return _long(frame, *layout, label, where, timezone)
    ts_col = time_column(frame, timestamp_column, where)
    value_columns = find_value_columns(frame, ts_col, value_columns, label, where)
    # in time order, by the times the cells mean (text such as "03/25/2024 01:00 PM" does not
    # sort as text); rows at one time keep their order
    timestamps = epoch_seconds(frame[ts_col], where, timezone)
    repeated = _tell_repeats(pd.Series(timestamps).duplicated(), where, timezone,
                             "each is replayed")
    if (np.diff(timestamps) < 0).any():
        order = np.argsort(timestamps, kind="stable")
        frame, timestamps = frame.iloc[order], timestamps[order]
    values = np.vstack([_numbers(frame[c]) for c in value_columns])
    missing = np.vstack([frame[c].isna().to_numpy() for c in value_columns])  # empty cells
    names = [name if c in LONE_VALUE_NAMES and len(value_columns) == 1 else c for c in value_columns]
    labels = None
    if label:
        flags = (_numbers(frame[label]) > 0).astype(np.int8)
        labels = np.tile(flags, (len(names), 1))
    return Batch(timestamps=timestamps, values=values, labels=labels, series=tuple(names),
                 missing=missing, repeated=repeated, clock_times=has_no_offset(frame[ts_col]))


def _with_index_columns(frame, name: str) -> pd.DataFrame:
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(name if frame.name is None else frame.name)
    dates = isinstance(frame.index, pd.DatetimeIndex)
    if not dates and all(n is None for n in frame.index.names):
        return frame  # row numbers
    names = [n if n is not None else "timestamp" if dates else f"level_{i}"
             for i, n in enumerate(frame.index.names)]
    if any(str(n) in map(str, frame.columns) for n in names):
        return frame  # the index repeats a column: keep the columns
    return frame.rename_axis(names).reset_index()


def _long(frame: pd.DataFrame, series: str, ts: str, value: str, label: str, where: str,
          timezone: str = "") -> Batch:
    names = frame[series].astype(str)
    stamps = epoch_seconds(frame[ts], where, timezone, names.to_numpy())
    tidy = pd.DataFrame({"series": names, "t": stamps, "v": _numbers(frame[value])})
    if label:
        tidy["label"] = (_numbers(frame[label]) > 0).astype(np.int8)
    # several points of a series at one timestamp: the last one wins (the engine's rule)
    repeated = _tell_repeats(tidy.duplicated(["series", "t"]), where, timezone,
                             "the last of each is kept")
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
        repeated=repeated,
        clock_times=has_no_offset(frame[ts]),
    )


def _tell_repeats(repeated: pd.Series, where: str, timezone: str, outcome: str) -> int:
    """Log rows that repeat an earlier time of their series, and what becomes of them: a
    file of local clock times read as UTC does this each autumn (the hour that the end of
    summer time repeats interleaves with the first run, or overwrites it), unless TIMEZONE
    names its zone. Returns their count."""
    count = int(repeated.sum())
    if count:
        hint = "" if timezone else (
            "; if the times are local clock times, set TIMEZONE (--timezone) to their zone so "
            "the hour repeated when summer time ends keeps its order")
        logger.warning("%s: %d row(s) repeat an earlier time of their series (%s)%s",
                       where, count, outcome, hint)
    return count


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
                  label_column="label", timezone="", sheet="", **params) -> ReplaySource:
        path = Path(path)
        frame = read_table(path, sheet)
        batch = frame_to_batch(frame, table_name(path), timestamp_column, value_columns, label_column,
                               where=str(path), timezone=timezone)
        return cls(batch, label=path.name, **params)

    @classmethod
    def from_upload(cls, filename: str, content: bytes,
                    max_unpacked: int = unpacked_limit(DEFAULT_RECEIVED_MAX),
                    **params) -> ReplaySource:
        """A file received as bytes (opened in the dashboard), read as ``from_file`` reads a
        path: by its name's suffix, named after it, in a temporary folder that is removed
        once it is read. Packed content is refused past ``max_unpacked`` bytes before it is
        read (``unpacked.py``). Without a ``sheet``, a workbook whose first sheet cannot be
        replayed (a cover or notes) is read from the first sheet that can; a sheet read is
        named in the label. ``InputError`` (one line, naming the file) if it cannot be."""
        import tempfile

        name = Path(str(filename).replace("\\", "/")).name.strip() or "unnamed"
        with tempfile.TemporaryDirectory(prefix="granite-panel-upload-") as folder:
            received = Path(folder) / name
            received.write_bytes(content)
            path = received
            try:  # errors name the file as the page named it (not its unpacked copy)
                path = unpack_received(received, max_unpacked)
                return cls._first_replayable(path, name, params)
            except InputError as exc:
                raise InputError(str(exc).replace(str(path), name)
                                 .replace(str(received), name)) from None

    @classmethod
    def _first_replayable(cls, path: Path, name: str, params: dict) -> ReplaySource:
        """``from_file``, or, for a workbook without a sheet asked for, its first sheet that
        can be replayed; the first sheet's error if none can. A sheet read is in the label."""
        params = dict(params)
        asked = params.pop("sheet", "")
        if asked:
            source = cls.from_file(path, sheet=asked, **params)
            source.label = f"{name}, sheet {sheet_title(path, asked)!r}"
            return source
        try:
            source = cls.from_file(path, **params)
        except InputError as first:
            for sheet in workbook_sheets(path)[1:]:
                try:
                    source = cls.from_file(path, sheet=sheet, **params)
                except InputError:
                    continue
                source.label = f"{name}, sheet {sheet!r}"
                return source
            raise first
        source.label = name
        return source

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "value", **params) -> ReplaySource:
        options = {k: params.pop(k) for k in ("timestamp_column", "value_columns", "label_column",
                                              "timezone") if k in params}
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
