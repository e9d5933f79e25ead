"""``granite-panel train INPUT --horizon H``: train a TTM on a file's history, as ``serve`` does.

One global model on the windows of every series; saved under MODELS_DIR with its card, and
promoted (``promoted.json``, loaded by ``serve`` at start) only when it validates better
than what would serve otherwise. Prints the card's decision.
"""

from __future__ import annotations

import json
import sys

from .forecast import InputError, add_layout_options, add_model_options, build_service
from .forecast import check_numbers, default_season, layout_timezone, read_panel, train_on


def add_train_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a TTM on a long or wide CSV/Parquet file and save it under MODELS_DIR",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("input", help="CSV, Parquet or .xlsx: unique_id,ds,y (or "
                        "series,timestamp,value, or wide)")
    parser.add_argument(
        "--horizon", type=int, default=None, help="horizon to validate at (default FORECAST_HORIZON)"
    )
    add_model_options(parser)
    add_layout_options(parser)
    parser.set_defaults(func=run_train)
    return parser


def run_train(args) -> int:
    from ..settings import Settings

    try:
        check_numbers(args)
        panel = read_panel(args.input, args.timestamp_column, args.value_columns,
                           layout_timezone(args), args.sheet)
        settings = Settings.from_env()
        horizon = args.horizon or settings.forecast_horizon
        season = args.season or default_season(panel.step)
        service = build_service(panel, args, settings, horizon, season)
        card = train_on(panel, service, args, settings, horizon, season)
    except InputError as exc:
        print(f"granite-panel train: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2, default=float))
    print(f"granite-panel train: {card['decision']}", file=sys.stderr)
    return 0
