"""``granite-panel detect INPUT.csv [-o OUTPUT.csv] [--detector NAME] [--season N]``.

Reads a CSV with ``timestamp,value`` columns (NAB's format) and writes the same rows with
an ``anomaly_score`` column in [0, 1], scored by an online detector row by row (strictly
causal). Malformed input gives a one-line error on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..detection.detectors import DEFAULT_DETECTOR, DETECTORS, LIVE_THRESHOLDS, make_detector

REQUIRED_COLUMNS = ("timestamp", "value")


class InputError(ValueError):
    """The input CSV cannot be scored; the message is one line for the user."""


def add_detect_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``detect`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "detect",
        help="score every row of a timestamp,value CSV with an online anomaly detector",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("input", help="CSV file with timestamp,value columns")
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
        help="hybrid only: rows per cycle when known (as the dashboard's SEASON_LENGTH); "
        "by default the detector estimates it from the rows seen so far",
    )
    parser.set_defaults(func=run_detect)
    return parser


def read_series(path: str):
    """The CSV as a DataFrame plus its values as floats; ``InputError`` if malformed."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable CSV ({first})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns)) or 'none'}, need timestamp,value"
        )
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = values.isna() & frame["value"].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}: value {frame['value'].iloc[row]!r} on data row {row + 1} is not a number"
        )
    stamps = pd.to_datetime(frame["timestamp"], errors="coerce", format="mixed")
    bad = stamps.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}: timestamp {frame['timestamp'].iloc[row]!r} on data row {row + 1} "
            "is not a date/time"
        )
    return frame, values.to_numpy(dtype=float)


def run_detect(args) -> int:
    """Run the ``detect`` subcommand; 0 on success, 2 on bad input or a bad detector name."""
    try:
        season = getattr(args, "season", None)
        if season is not None and args.detector != "hybrid":
            raise ValueError(f"--season is for the hybrid detector, not {args.detector!r}")
        if season is not None and season < 1:
            raise ValueError(f"--season must be a whole number >= 1, got {season}")
        detector = make_detector(args.detector, **({} if season is None else {"period": season}))
        frame, values = read_series(args.input)
    except (InputError, ValueError) as exc:
        print(f"granite-panel detect: error: {exc}", file=sys.stderr)
        return 2
    frame = frame.copy()
    frame["anomaly_score"] = np.clip(detector.score_series(values), 0.0, 1.0)
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
