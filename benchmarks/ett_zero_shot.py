"""ETT zero-shot benchmark: IBM's published TTM protocol, for every forecaster of the project.

    HF_HUB_OFFLINE=1 python benchmarks/ett_zero_shot.py ../shared/data/ett/ETTh1.csv \\
        ../shared/data/ett/ETTm1.csv [--forecaster NAME ...] [--context-length 512] \\
        [--horizon 96] [--max-windows N] [--model HUB_ID_OR_FOLDER]

The protocol (splits from the timestamps, train-only per-channel scaler, test windows from
``context_length`` rows before the test split at stride 1, MSE/MAE on scaled values) lives in
``granite_panel.evaluation.ett``; this file only builds forecasters and prints a table.

Forecasters (default: all that are available):
- ``seasonal-naive``: repeats the last day (season 24 hourly, 96 at 15 minutes).
- ``AutoETS``, ``AutoTheta`` (statsforecast, through the app's ``StatisticalForecaster``):
  a fit on 512 points takes ~0.045 s (AutoTheta) to ~0.11 s (AutoETS, 0.19 s at season 96)
  here, so refitting 7 channels on every window would take ~15 and ~36 min on ETTh
  (2,785 windows) and ~1 h and ~4 h on ETTm (11,425 windows). By default each channel is
  therefore fitted once, on the first test window's context, and every window is forecast
  with ``forward`` on its own context (the fitted-state approach of the live app: same
  parameters and initial states, filtered over the new context). On 30 evenly spaced ETTh1
  windows that gave MSE 0.932 vs 0.938 for per-window refits (AutoETS) and 0.498 vs 0.502
  (AutoTheta). ``--refit-every N`` refits every N windows (1 = a fresh fit on every window).
- ``TTM``: ``--model`` (default ``$MODEL_NAME`` or IBM's TTM-R2 hub id) through
  ``load_ttm``; windows x channels are batched, ``--batch-windows`` windows per call. When
  the weights cannot be loaded it says so and is skipped; nothing is substituted.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.evaluation import ett as evaluation  # noqa: E402
from granite_panel.forecasting.training import TRAIN_LOSSES  # noqa: E402
from granite_panel.settings import DEFAULT_MODEL_NAME  # noqa: E402

FORECASTERS = ("seasonal-naive", "AutoETS", "AutoTheta", "TTM", "trained", "linear")
TRAINED_LABEL = "TTM trained here"
LINEAR_LABEL = "linear (ridge) fitted here"
NEVER = 10**12  # refit_every that means "fit once"


@dataclass
class Row:
    forecaster: str
    dataset: str
    score: evaluation.Score


class FailureCounter(logging.Handler):
    """Counts the fallbacks ``StatisticalForecaster`` logs at debug level."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.fit = self.forward = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if message.startswith("fit failed"):
            self.fit += 1
        elif message.startswith("forward failed"):
            self.forward += 1


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="ETT zero-shot benchmark (IBM's TTM protocol) for the project's forecasters."
    )
    parser.add_argument("csv", nargs="+", type=Path, help="ETT-format CSV files (date + channels)")
    parser.add_argument(
        "--forecaster",
        action="append",
        help=f"one of {', '.join(FORECASTERS)} (repeatable; default: all available)",
    )
    parser.add_argument("--context-length", type=int, default=512)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument(
        "--max-windows", type=int, default=None, help="score only the first N test windows"
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("MODEL_NAME", DEFAULT_MODEL_NAME),
        help="TTM hub id or local folder (default: $MODEL_NAME or %(default)s)",
    )
    parser.add_argument("--device", choices=("cpu", "auto"), default="cpu", help="TTM device")
    parser.add_argument(
        "--batch-windows", type=int, default=128, help="windows per batched call (TTM, naive)"
    )
    parser.add_argument(
        "--refit-every",
        type=int,
        default=0,
        help="statistical models: refit every N windows (0: fit once on the first window)",
    )
    parser.add_argument(
        "--train-seconds",
        type=float,
        default=300.0,
        help="trained: training budget per file in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--train-threads", type=int, default=None, help="trained: torch CPU threads"
    )
    parser.add_argument(
        "--ema-decay", type=float, default=None,
        help="trained: keep an exponential moving average of the weights (e.g. 0.999)",
    )
    parser.add_argument(
        "--dropout", type=float, default=None,
        help="trained: dropout of the random-start TTM (default: get_random_ttm's 0.2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="trained: torch and shuffling seed")
    parser.add_argument(
        "--loss", choices=tuple(TRAIN_LOSSES), default=None,
        help="trained: the training step's loss (default: the product's, mae from a random "
             "start; validation is always MSE)",
    )
    args = parser.parse_args(argv)
    args.forecaster = [resolve_name(name, parser) for name in args.forecaster or FORECASTERS]
    return args


def resolve_name(name: str, parser: argparse.ArgumentParser) -> str:
    by_key = {f.lower().replace("_", "-"): f for f in FORECASTERS}
    by_key.update({"seasonalnaive": "seasonal-naive", "naive": "seasonal-naive"})
    by_key.update({"ttm-trained-here": "trained", "trained-here": "trained", "ridge": "linear"})
    key = name.lower().replace("_", "-")
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, by_key, n=1)
    hint = f" Did you mean {by_key[close[0]]!r}?" if close else ""
    parser.error(f"unknown forecaster {name!r}; allowed: {', '.join(FORECASTERS)}.{hint}")


class TTMLoader:
    """Loads TTM once, on first use; remembers why it could not."""

    def __init__(self, model_name: str, context_length: int, horizon: int, device: str):
        self.model_name, self.context_length, self.horizon = model_name, context_length, horizon
        self.device = device
        self.forecaster = None
        self.error: str | None = None

    @property
    def label(self) -> str:
        from granite_panel.forecasting.service import is_hub_id, model_label

        return model_label(self.model_name) if is_hub_id(self.model_name) else "TTM"

    def get(self):
        if self.forecaster is None and self.error is None:
            from granite_panel.forecasting.service import describe_load_error, load_ttm, pick_device

            device = pick_device(self.device == "auto")
            try:
                self.forecaster = load_ttm(
                    self.model_name, self.context_length, self.horizon, device
                )
            except Exception as exc:  # no network, no folder, bad weights: skip, never fake
                self.error = describe_load_error(exc)
            else:
                if self.forecaster.min_context > self.context_length:
                    self.error = (
                        f"the model needs {self.forecaster.min_context} points of context, "
                        f"the benchmark gives {self.context_length}"
                    )
                    self.forecaster = None
        return self.forecaster


def run_dataset(path: Path, args, ttm: TTMLoader, rows: list[Row], skipped: set) -> None:
    from granite_panel.forecasting.service import StatisticalForecaster

    timestamps, values, channels = evaluation.read_ett(path)
    splits = evaluation.ett_splits(timestamps)
    scaler = evaluation.fit_scaler(values, splits)
    windows = evaluation.make_test_windows(
        scaler.transform(values), splits, args.context_length, args.horizon,
        max_windows=args.max_windows,
    )  # fmt: skip
    full = evaluation.window_count(splits, args.context_length, args.horizon)
    name, season = path.stem, splits.rows_per_day
    first = splits.test[0] - args.context_length
    print(
        f"\n{path}: {splits.label} steps (from the timestamps), {len(channels)} channels; "
        f"train {rows_text(splits.train)} valid {rows_text(splits.valid)} "
        f"test {rows_text(splits.test)}; "
        f"scaler fitted on the train rows; {len(windows)} of {full} test windows "
        f"(context {args.context_length} from row {first}, horizon {args.horizon}, stride 1)"
    )

    for forecaster in args.forecaster:
        if forecaster == "seasonal-naive":
            model = StatisticalForecaster("SeasonalNaive", args.horizon, season_length=season)
            print(f"  seasonal-naive: repeats the last {season} points (one day)")
            score = evaluation.evaluate(model.predict, windows, args.batch_windows)
        elif forecaster in ("AutoETS", "AutoTheta"):
            refit = args.refit_every if args.refit_every > 0 else NEVER
            model = StatisticalForecaster(
                forecaster, args.horizon, season_length=season,
                refit_every=refit, fit_budget_s=math.inf,
            )  # fmt: skip
            how = (
                f"fitted per channel on the first test window's context (rows {first}.."
                f"{splits.test[0] - 1}) only, then forward() on every window's own context"
                if refit == NEVER
                else f"refitted per channel on the context of every {refit}th window, "
                "forward() on the windows between"
            )
            print(f"  {forecaster} (season {season}): {how}")
            counter = FailureCounter()
            log = logging.getLogger("granite_panel.forecasting")
            level, propagate = log.level, log.propagate
            log.addHandler(counter)
            log.setLevel(logging.DEBUG)
            log.propagate = False
            try:
                score = evaluation.evaluate(model.predict, windows, windows_per_call=1)
            finally:
                log.removeHandler(counter)
                log.setLevel(level)
                log.propagate = propagate
            if counter.fit or counter.forward:
                print(
                    f"    {counter.fit} failed fits and {counter.forward} failed forwards "
                    "were served by seasonal naive (the app's fallback)"
                )
        elif forecaster == "trained":
            model = train_here(values, scaler, splits, args)
            score = evaluation.evaluate(model.predict, windows, args.batch_windows)
            forecaster = TRAINED_LABEL
        elif forecaster == "linear":
            model = fit_linear(values, scaler, splits, args)
            score = evaluation.evaluate(model.predict, windows, args.batch_windows)
            forecaster = LINEAR_LABEL
        else:  # TTM
            model = ttm.get()
            if model is None:
                if forecaster not in skipped:
                    print(
                        f"  {ttm.label} unavailable from {ttm.model_name}: {ttm.error}; "
                        "skipped (no substitute model is used)"
                    )
                skipped.add(forecaster)
                continue
            print(f"  {model.name} on {model.device}: {args.batch_windows} windows x "
                  f"{len(channels)} channels per call")  # fmt: skip
            score = evaluation.evaluate(model.predict, windows, args.batch_windows)
            forecaster = model.name
        print(f"    MSE {score.mse:.4f}  MAE {score.mae:.4f}  ({score.seconds:.1f} s)")
        rows.append(Row(forecaster, name, score))


def train_here(values, scaler, splits, args):
    """A TTM trained from random weights on the train split, checkpoint chosen on validation.

    Knobs (fixed before looking at any test split, the same for every file; the loss chosen
    on the validation splits after the others, see ``training.TRAIN_LOSSES``): AdamW 1e-3,
    batches of 112 windows, per-window context scaling, train windows at stride 1 up to
    60,000 windows (a larger split is strided evenly), 4,096 evenly spaced validation
    windows, validation every 30 s and per epoch, patience 5, ``--train-seconds`` budget.
    """
    from granite_panel.forecasting.service import TTMForecaster
    from granite_panel.forecasting.training import train_ttm

    length, horizon = args.context_length, args.horizon
    train, valid, stride = train_and_valid_windows(values, scaler, splits, args)
    result = train_ttm(
        train, valid, length, horizon, max_seconds=args.train_seconds,
        threads=args.train_threads, ema_decay=args.ema_decay, dropout=args.dropout,
        loss=args.loss, seed=args.seed,
    )  # fmt: skip
    print(
        f"  {TRAINED_LABEL}: get_random_ttm({length}, {horizon}, 'small'), dropout "
        f"{0.2 if args.dropout is None else args.dropout}, {result.loss} loss, seed {args.seed}, "
        f"trained {result.seconds:.0f} s on {len(train)} train windows (stride {stride}), "
        f"{result.epochs} epochs / {result.steps} steps; validation MSE "
        f"{result.first_validation_loss:.4f} -> {result.best_validation_loss:.4f}"
    )
    return TTMForecaster(result.model, name=TRAINED_LABEL, horizon=horizon)


def train_and_valid_windows(values, scaler, splits, args):
    """(train windows, validation windows, stride): train windows at stride 1 up to 60,000
    (a larger split is strided evenly); validation windows forecast the validation rows
    from the context just before them."""
    from granite_panel.forecasting.training import cut_windows

    scaled = scaler.transform(values).T  # [channels, rows]
    length, horizon = args.context_length, args.horizon
    train_rows = scaled[:, splits.train[0] : splits.train[1]]
    per_channel = max(train_rows.shape[1] - length - horizon + 1, 1)
    stride = max(1, math.ceil(per_channel * scaled.shape[0] / 60_000))
    train = cut_windows(train_rows, length, horizon, stride)
    valid = cut_windows(scaled[:, splits.valid[0] - length : splits.valid[1]], length, horizon)
    return train, valid, stride


class WindowRidge:
    """A baseline, not a product model: ridge regression (scikit-learn's, default alpha)
    from a window's standardised context to its standardised horizon, fitted on the same
    train windows, scaled the same way, as "TTM trained here" (an RLinear-style model).
    It says how much of the trained TTM's score a linear map already reaches."""

    def __init__(self, train, valid, context_length: int, horizon: int):
        from sklearn.linear_model import Ridge

        from granite_panel.forecasting.training import scale_windows

        self.length, self.horizon = context_length, horizon
        started = time.perf_counter()
        scaled = scale_windows(train, context_length)
        self.model = Ridge().fit(scaled[:, :context_length], scaled[:, context_length:])
        self.seconds = time.perf_counter() - started
        if len(valid) > 4096:  # as train_ttm validates: 4,096 evenly spaced windows
            valid = valid[np.linspace(0, len(valid) - 1, 4096).astype(int)]
        held = scale_windows(valid, context_length)
        errors = self.model.predict(held[:, :context_length]) - held[:, context_length:]
        self.validation_mse = float(np.mean(errors**2))

    def predict(self, context: np.ndarray) -> np.ndarray:
        from granite_panel.forecasting.service import context_scale

        window = np.asarray(context, dtype=float)[:, -self.length :]
        mean, std = context_scale(window)  # as TTMForecaster.predict scales
        return self.model.predict((window - mean) / std) * std + mean


def fit_linear(values, scaler, splits, args) -> WindowRidge:
    train, valid, stride = train_and_valid_windows(values, scaler, splits, args)
    model = WindowRidge(train, valid, args.context_length, args.horizon)
    print(
        f"  {LINEAR_LABEL}: {args.context_length} -> {args.horizon} on {len(train)} train "
        f"windows (stride {stride}) in {model.seconds:.1f} s; validation MSE "
        f"{model.validation_mse:.4f} (per-window scale, as the trained TTM's)"
    )
    return model


def rows_text(span: tuple[int, int]) -> str:
    return f"[{span[0]}, {span[1]})"


def print_table(rows: list[Row]) -> None:
    header = ("forecaster", "data set", "MSE", "MAE", "windows", "seconds")
    lines = [
        (r.forecaster, r.dataset, f"{r.score.mse:.4f}", f"{r.score.mae:.4f}",
         str(r.score.windows), f"{r.score.seconds:.1f}")
        for r in rows
    ]  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print()
    for line in [header, tuple("-" * w for w in widths), *lines]:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        print("  ".join(cells).rstrip())


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    ttm = TTMLoader(args.model, args.context_length, args.horizon, args.device)
    rows: list[Row] = []
    skipped: set[str] = set()
    print(
        f"ETT zero-shot protocol (IBM TTM benchmarks): context {args.context_length}, "
        f"horizon {args.horizon}; MSE/MAE over windows x horizon x channels on train-scaled values"
    )
    for path in args.csv:
        run_dataset(path, args, ttm, rows, skipped)
    print_table(rows)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
