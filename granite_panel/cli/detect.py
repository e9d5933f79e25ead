"""``granite-panel detect INPUT.csv [-o OUTPUT.csv] [--detector NAME] [--season N] [--dask]``.

Reads a wide file (a time column and one numeric column per series: NAB's
``timestamp,value``, or ``date,sales,returns``) or a long file of many series
(``unique_id,ds,y`` or ``series,timestamp,value``), read as the dashboard's replay reads
files (``sources/table_file.py``: CSV with any usual delimiter, compressed or not, Parquet
or a partitioned Parquet folder, JSON records or lines, an Excel or OpenDocument
spreadsheet), and writes the same rows with an ``anomaly_score`` column
in [0, 1] (a wide file of several series: ``<column>_anomaly_score`` beside each), scored
by a fresh online detector per series, point by point in time order (strictly causal; rows
out of order are scored where their time puts them, as the dashboard's replay does, and
written back where they were). Column names match in any case.
``--dask`` scores chunks of series on Dask distributed, with the same scores. Malformed
input gives a one-line error on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from ..detection.detectors import (
    DEFAULT_DETECTOR,
    DETECTORS,
    LIVE_THRESHOLDS,
    SEASONAL_DETECTORS,
    make_detector,
)

LONG_NAMES = (("unique_id", "ds", "y"), ("series", "timestamp", "value"))


class InputError(ValueError):
    """The input CSV cannot be scored; the message is one line for the user."""


def add_detect_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``detect`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "detect",
        help="score every row of a timestamp,value CSV (or a file of many series) "
        "with an online anomaly detector",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "input", help="a wide file (a time column and one numeric column per series, e.g. "
        "timestamp,value) or a long one (unique_id,ds,y / series,timestamp,value); CSV "
        "(any of , ; tab |, also compressed), Parquet or a partitioned Parquet folder"
    )
    parser.add_argument(
        "-o", "--output", default="-", help="where to write the scored CSV (default: stdout)"
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help=f"detector name, one of: {', '.join(DETECTORS)} (default: {DEFAULT_DETECTOR}); "
        "a row is flagged live when its score reaches the detector's LIVE_THRESHOLDS entry "
        f"({', '.join(f'{k} {v:.3g}' for k, v in LIVE_THRESHOLDS.items())})",
    )
    parser.add_argument(
        "--season",
        type=int,
        default=None,
        metavar="N",
        help="hybrid, hybrid_cad and hybrid_entropy only: rows per cycle when known (as the "
        "dashboard's SEASON_LENGTH); by default the detector estimates it from the rows seen "
        "so far",
    )
    from .forecast import add_dask_options, add_layout_options

    add_layout_options(parser)
    add_dask_options(parser)
    parser.set_defaults(func=run_detect)
    return parser


@dataclass
class Table:
    """A file's rows and what is scored: ``values`` with one series id per value (``ids``;
    None for one series) and its time in epoch seconds. A wide file of several columns is
    scored column by column (``columns``: their names, each ``len(frame)`` values in turn)."""

    frame: "object"  # pandas.DataFrame, as read
    values: np.ndarray
    ids: np.ndarray | None
    seconds: np.ndarray
    columns: list[str] | None = None


def read_series(path: str, timestamp_column: str = "", value_columns: str = "",
                timezone: str = "", sheet: str = "") -> Table:
    """The file as a ``Table``; ``InputError`` (one line) if it cannot be scored.

    Long files (``unique_id,ds,y`` or ``series,timestamp,value``) hold many series; a wide
    file has a time column and one numeric column per series, found as the dashboard's
    replay finds them (``--timestamp-column``/``--value-columns`` name them). Column names
    match in any case; times are dates (any UTC offsets, which may change mid-file at a DST
    switch; without one, UTC or clock times of ``timezone``) or epoch seconds / milliseconds.
    """
    import pandas as pd

    from ..sources.table_file import time_column, value_columns as wide_columns
    from .forecast import InputError as TableError, read_table, read_times

    try:
        frame = read_table(path, sheet)
        columns = list(map(str, frame.columns))
        named = {}  # lower-case name -> the file's own spelling (the first, if two differ by case)
        for column in columns:
            named.setdefault(column.strip().lower(), column)
        long = None if timestamp_column or value_columns else next(
            (names for names in LONG_NAMES if set(names) <= set(named)), None)
        if frame.empty:
            raise InputError(f"{path}: no data rows")
        if long is not None:
            id_column, time, value = (named[c] for c in long)
            scored = [value]
        else:
            id_column, time = None, time_column(frame, timestamp_column, path)
            scored = wide_columns(frame, time, value_columns, named.get("label", ""), path)
        for column in scored:
            numbers = pd.to_numeric(frame[column], errors="coerce")
            bad = numbers.isna() & frame[column].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"{path}: value {frame[column].iloc[row]!r} in column "
                                 f"{column!r} on data row {row + 1} is not a number")
        groups = None if id_column is None else frame[id_column].astype(str).to_numpy()
        # as the replay reads them: the same order
        seconds = read_times(frame[time], path, timezone, groups)
    except (TableError, ValueError) as exc:
        raise InputError(str(exc)) from None
    values = np.concatenate([pd.to_numeric(frame[c]).to_numpy(dtype=float) for c in scored])
    if long is not None:
        return Table(frame, values, frame[id_column].astype(str).to_numpy(), seconds)
    if len(scored) == 1:
        return Table(frame, values, None, seconds)
    ids = np.repeat(np.array(scored, dtype=object), len(frame))
    return Table(frame, values, ids, np.tile(seconds, len(scored)), scored)


def split_by_series(ids: np.ndarray) -> list[np.ndarray]:
    """Row positions of each series (first-seen order), each in file order."""
    import pandas as pd

    codes, uniques = pd.factorize(ids)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(uniques))
    return np.split(order, np.cumsum(counts)[:-1])


def score_chunk(series: list[np.ndarray], detector: str, options: dict) -> list[np.ndarray]:
    """Scores of each series by its own fresh detector: the unit a Dask task runs."""
    return [np.clip(make_detector(detector, **options).score_series(v), 0.0, 1.0) for v in series]


def time_order(rows: list[np.ndarray], seconds: np.ndarray) -> list[np.ndarray]:
    """Each series' row positions sorted by time (stable: rows at one time keep file order);
    a series already in order keeps its own array (``is`` tells which were reordered)."""
    return [r if (np.diff(seconds[r]) >= 0).all() else r[np.argsort(seconds[r], kind="stable")]
            for r in rows]


def score_all(values, ids, detector: str, options: dict, client=None, chunk=None,
              rows=None) -> np.ndarray:
    """Per-row scores, each series scored in the order of ``rows`` (its row positions;
    default: file order); on a Dask ``client`` the chunks of series are tasks, the same
    scores."""
    from ..forecasting.distributed import CHUNK_SERIES, chunk_bounds

    if rows is None:
        rows = [np.arange(len(values))] if ids is None else split_by_series(ids)
    chunks = [[values[r] for r in rows[a:b]] for a, b in chunk_bounds(len(rows), chunk or CHUNK_SERIES)]
    if client is None:
        scored = [score_chunk(chunk, detector, options) for chunk in chunks]
    else:
        from ..forecasting.distributed import run_partitioned

        scored = run_partitioned(chunks, score_chunk, client=client, detector=detector,
                                 options=options)
    out = np.empty(len(values))
    for positions, scores in zip(rows, (s for chunk in scored for s in chunk)):
        out[positions] = scores
    return out


def order_note(reordered: int, n_series: int, one_series: bool) -> str:
    """One line when rows are out of time order: they were scored in time order, and the
    output keeps the file's order (so its scores do not read as a stream top to bottom)."""
    if not reordered:
        return ""
    which = ("the rows are" if one_series
             else f"the rows of {reordered} of {n_series} series are")
    return (f"{which} not in time order: each series was scored in time order, and the "
            "output keeps the file's row order")


def learning_note(values, ids, detector: str, learning: int) -> str:
    """One line when some series are shorter than the detector's learning period (they are
    flagged but raise no alert, which a short file would otherwise leave unexplained)."""
    if learning <= 0:
        return ""
    import pandas as pd

    finite = np.isfinite(values)
    counts = (np.array([finite.sum()]) if ids is None
              else np.bincount(pd.factorize(ids)[0], weights=finite))  # finite values a series
    short = int((counts < learning).sum())
    if not short:
        return ""
    which = "the series has" if len(counts) == 1 else f"{short} of {len(counts)} series have"
    return (f"{which} fewer than {learning} values, the {detector} detector's learning "
            f"period: there it flags points (score >= {LIVE_THRESHOLDS[detector]:.3g}) but "
            "raises no alert (score 1)")


def run_detect(args) -> int:
    """Run the ``detect`` subcommand; 0 on success, 2 on bad input, a bad detector name or
    an unreachable Dask scheduler."""
    from .forecast import layout_timezone

    workers, chunk = getattr(args, "dask_workers", None), getattr(args, "chunk_series", None)
    try:
        season = getattr(args, "season", None)
        if season is not None and args.detector not in SEASONAL_DETECTORS:
            raise ValueError(f"--season is for the {', '.join(sorted(SEASONAL_DETECTORS))} "
                             f"detectors, not {args.detector!r}")
        if season is not None and season < 1:
            raise ValueError(f"--season must be a whole number >= 1, got {season}")
        for flag, number in (("--dask-workers", workers), ("--chunk-series", chunk)):
            if number is not None and number < 1:
                raise ValueError(f"{flag} must be a whole number >= 1, got {number}")
        options = {} if season is None else {"period": season}
        learning = make_detector(args.detector, **options).learning_points  # a bad name fails here
        table = read_series(args.input, getattr(args, "timestamp_column", "") or "",
                            getattr(args, "value_columns", "") or "", layout_timezone(args),
                            getattr(args, "sheet", "") or "")
    except (InputError, ValueError) as exc:
        print(f"granite-panel detect: error: {exc}", file=sys.stderr)
        return 2
    values, ids = table.values, table.ids
    in_file = [np.arange(len(values))] if ids is None else split_by_series(ids)
    in_time = time_order(in_file, table.seconds)
    reordered = sum(t is not f for t, f in zip(in_time, in_file))
    try:
        from .forecast import dask_client_for

        with dask_client_for(args) as client:
            scores = score_all(values, ids, args.detector, options, client, chunk, in_time)
    except RuntimeError as exc:  # DaskUnavailable: no scheduler at the address
        print(f"granite-panel detect: error: {exc}", file=sys.stderr)
        return 2
    for note in (order_note(reordered, len(in_file), ids is None),
                 learning_note(values, ids, args.detector, learning)):
        if note:
            print(f"granite-panel detect: note: {note}", file=sys.stderr)
    frame = table.frame.copy()
    if table.columns is None:
        frame["anomaly_score"] = scores
    else:  # a wide file: a score column beside each value column's
        for column, part in zip(table.columns, np.split(scores, len(table.columns))):
            frame[f"{column}_anomaly_score"] = part
    if args.output in ("-", None):
        try:
            frame.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into `head`: not an error
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        try:
            frame.to_csv(args.output, index=False)
        except OSError as exc:
            print(f"granite-panel detect: error: cannot write {args.output}: {exc}", file=sys.stderr)
            return 2
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="granite-panel")
    add_detect_parser(parser.add_subparsers(dest="command", required=True))
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] != ["detect"]:
        args_list = ["detect", *args_list]
    args = parser.parse_args(args_list)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
