"""``granite-panel forecast INPUT -o OUT.csv --horizon H``: batch forecasts of many series.

Input: Nixtla's long format (``unique_id,ds,y``), or ``series,timestamp,value``, or a wide
file (a time column, then one numeric column per series); CSV, Parquet or a spreadsheet.
Output: one row per series per future step, ``unique_id,ds,forecast,lo,hi`` (``ds`` in UTC,
or with ``--timezone`` the input's clock times with their offset). ``--model
auto`` serves what the dashboard would: a TTM (trained here with ``--train``, or promoted
under MODELS_DIR, or MODEL_NAME) when it validates better, else the statistical model with
the lowest backtest MASE. Malformed input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LONG_NAMES = (("unique_id", "ds", "y"), ("series", "timestamp", "value"))
FALLBACK_CONTEXT = 512  # points a statistical model is fitted on, as in the backtest
LOCAL_CLUSTER = "local"  # --dask with no address: a LocalCluster on this machine


class InputError(ValueError):
    """The input cannot be forecast; the message is one line for the user."""


@dataclass
class Panel:
    """Series on one regular time grid: ``values`` [n_series, t] with NaN where missing."""

    ids: list[str]
    stamps: "object"  # pandas.DatetimeIndex
    values: np.ndarray
    step: "object"  # pandas.Timedelta

    @property
    def valid_points(self) -> np.ndarray:
        return np.isfinite(self.values).sum(axis=1)


def read_table(path: str, sheet: str = ""):
    """The file as the dashboard's replay reads it (``sources/table_file.py``)."""
    from ..sources.points import InputError as TableError
    from ..sources.table_file import read_table as read_file

    try:
        return read_file(path, sheet)
    except TableError as exc:
        raise InputError(str(exc)) from None


def read_times(column, path: str, timezone: str = "", groups=None) -> np.ndarray:
    """Epoch seconds of a file's time column, read as the replay source reads them: dates
    with or without UTC offsets (which may change mid-file at a DST switch), or epoch seconds
    / milliseconds, clock times of ``timezone`` where it is given; ``InputError`` naming the
    first bad cell by its data row."""
    from ..sources.points import InputError as TimeError
    from ..sources.replay import epoch_seconds

    try:
        return epoch_seconds(column.reset_index(drop=True), path, timezone, groups)
    except TimeError as exc:
        raise InputError(str(exc)) from None


def utc_times(column, path: str, timezone: str = "", groups=None):
    """``read_times`` as UTC (naive ``datetime64``, to the microsecond)."""
    import pandas as pd

    seconds = read_times(column, path, timezone, groups)
    return pd.to_datetime(np.round(seconds * 1e6).astype("int64"), unit="us")


def read_panel(path: str, timestamp_column: str = "", value_columns: str = "",
               timezone: str = "", sheet: str = "") -> Panel:
    """Long or wide input as a ``Panel``; ``InputError`` names what is wrong and where. A
    wide file's columns are found as the dashboard's replay finds them (or named); times
    without an offset are UTC, or clock times of ``timezone``."""
    import pandas as pd

    from ..sources.points import InputError as LayoutError
    from ..sources.table_file import time_column, value_columns as wide_columns

    frame = read_table(path, sheet)
    columns = list(map(str, frame.columns))
    frame.columns = columns
    long = None if timestamp_column or value_columns else next(
        (names for names in LONG_NAMES if set(names) <= set(columns)), None)
    if long is not None:
        ids, times, ys = long
        frame = frame[[ids, times, ys]].rename(columns={ids: "unique_id", times: "ds", ys: "y"})
    else:
        try:
            time = time_column(frame, timestamp_column, path)
            label = next((c for c in columns if c.lower() == "label"), "")
            series = wide_columns(frame, time, value_columns, label, path)
        except LayoutError as exc:
            raise InputError(f"{exc}; expected unique_id,ds,y or series,timestamp,value (long) "
                             "or a time column plus one numeric column per series (wide)") from None
        frame = frame[[time, *series]].melt(id_vars=[time], var_name="unique_id", value_name="y")
        frame = frame.rename(columns={time: "ds"})
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    y = pd.to_numeric(frame["y"], errors="coerce")
    bad = y.isna() & frame["y"].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: value {frame['y'].iloc[row]!r} on data row {row + 1} is not a number")
    ids = frame["unique_id"].astype(str).to_numpy()
    stamps = utc_times(frame["ds"], path, timezone, ids)
    frame = pd.DataFrame({"unique_id": ids, "ds": stamps, "y": y.to_numpy()})
    if frame.duplicated(["unique_id", "ds"]).any():
        dup = frame[frame.duplicated(["unique_id", "ds"])].iloc[0]
        hint = "" if timezone else (" (local clock times repeat an hour when summer time "
                                    "ends: name their zone with --timezone)")
        raise InputError(f"{path}: series {dup['unique_id']!r} has two rows at {dup['ds']}{hint}")
    wide = frame.pivot(index="ds", columns="unique_id", values="y").sort_index()
    if len(wide) < 3:
        raise InputError(f"{path}: {len(wide)} time steps; need at least 3 to forecast")
    step = pd.Series(wide.index[1:] - wide.index[:-1]).mode().iloc[0]
    grid = pd.date_range(wide.index[0], wide.index[-1], freq=step)
    if len(grid) > 4 * len(wide):
        raise InputError(
            f"{path}: timestamps are not on a regular grid (most common step {step}); "
            "resample the input first"
        )
    wide = wide.reindex(grid)
    return Panel(list(map(str, wide.columns)), grid, wide.to_numpy(dtype=float).T, step)


def default_season(step) -> int:
    """Rows per day when the step divides a day (24 hourly, 96 at 15 min; ``rows_per_day``,
    as a replay of the file chooses it), else 1 (no season)."""
    from ..settings import rows_per_day

    return rows_per_day(step.total_seconds()) or 1


def add_forecast_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "forecast",
        help="forecast every series of a long or wide CSV/Parquet/Excel file",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("input", help="CSV, Parquet or .xlsx: unique_id,ds,y (or "
                        "series,timestamp,value, or wide)")
    parser.add_argument("-o", "--output", default="-", help="output CSV (default: stdout)")
    parser.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    add_model_options(parser)
    parser.add_argument(
        "--model",
        default="auto",
        help="auto (default: what the dashboard would serve), ttm, seasonal-naive, or a "
        "statsforecast model: AutoTheta, AutoETS, MSTL",
    )
    parser.add_argument("--train", action="store_true", help="train a TTM on the input first")
    parser.add_argument("--level", type=float, default=0.8, help="band coverage (default 0.8)")
    add_layout_options(parser)
    add_dask_options(parser)
    parser.set_defaults(func=run_forecast)
    return parser


def add_layout_options(parser) -> None:
    """``--timestamp-column``, ``--value-columns``, ``--sheet`` and ``--timezone``, as
    ``serve`` takes them for a replay."""
    parser.add_argument("--timestamp-column", default="", metavar="NAME",
                        help="the time column (default: found by name, then by its cells)")
    parser.add_argument("--value-columns", default="", metavar="A,B",
                        help="a wide file's series, comma-separated (default: every numeric "
                        "column but the time and label columns)")
    parser.add_argument("--sheet", default="", metavar="SHEET",
                        help="a workbook's sheet, by name or number (default: the first)")
    parser.add_argument("--timezone", default=None, metavar="ZONE",
                        help="the IANA zone (Europe/Berlin) of times written without a UTC "
                        "offset, converted to UTC (default: TIMEZONE, else UTC)")


def layout_timezone(args) -> str:
    """``--timezone``, else TIMEZONE from the environment or .env, checked: the zone the
    dashboard would read the same file's clock times in."""
    from ..settings import Settings, SettingsError
    from ..sources.local_time import check_timezone
    from ..sources.points import InputError as ZoneError

    try:
        if getattr(args, "timezone", None) is not None:
            return check_timezone(args.timezone)
        return Settings.from_env().timezone
    except (ZoneError, SettingsError) as exc:
        raise InputError(f"--timezone: {exc}" if isinstance(exc, ZoneError) else str(exc)) from None


def add_dask_options(parser) -> None:
    """``--dask [ADDRESS]`` and ``--dask-workers N``, shared by forecast and detect."""
    parser.add_argument(
        "--dask", nargs="?", const=LOCAL_CLUSTER, default=None, metavar="SCHEDULER_ADDRESS",
        help="run the series in chunks on Dask distributed: alone, a LocalCluster with one "
        "single-threaded worker per core; with an address (tcp://host:8786), that cluster",
    )
    parser.add_argument(
        "--dask-workers", type=int, default=None, metavar="N",
        help="workers of the local cluster (default: one per core); ignored with an address",
    )
    parser.add_argument(
        "--chunk-series", type=int, default=None, metavar="N",
        help="series per chunk, the unit of work with or without --dask (default 128)",
    )


def add_model_options(parser) -> None:
    parser.add_argument("--season", type=int, default=None, metavar="N", help="rows per cycle")
    parser.add_argument(
        "--context-length", type=int, default=None, help="TTM context (default CONTEXT_LENGTH)"
    )
    parser.add_argument(
        "--train-seconds", type=float, default=None, help="training budget (default TRAIN_SECONDS)"
    )
    parser.add_argument("--models-dir", default=None, help="where models are saved (MODELS_DIR)")


STATISTICAL = {"seasonal-naive": "SeasonalNaive", "seasonalnaive": "SeasonalNaive"}


def resolve_model(name: str) -> str:
    from ..forecasting.selection import FALLBACK_CANDIDATES

    key = name.lower()
    if key in ("auto", "ttm"):
        return key
    if key in STATISTICAL:
        return STATISTICAL[key]
    for candidate in FALLBACK_CANDIDATES:
        if key == candidate.lower():
            return candidate
    allowed = "auto, ttm, seasonal-naive, " + ", ".join(c for c in FALLBACK_CANDIDATES if c != "SeasonalNaive")
    raise InputError(f"--model {name!r} is not allowed: expected one of {allowed}")


def check_numbers(args) -> None:
    if args.horizon is not None and args.horizon < 1:
        raise InputError(f"--horizon must be a whole number >= 1, got {args.horizon}")
    if args.season is not None and args.season < 1:
        raise InputError(f"--season must be a whole number >= 1, got {args.season}")
    if args.context_length is not None and args.context_length < 16:
        raise InputError(f"--context-length must be >= 16, got {args.context_length}")
    workers = getattr(args, "dask_workers", None)
    chunk = getattr(args, "chunk_series", None)
    for flag, number in (("--dask-workers", workers), ("--chunk-series", chunk)):
        if number is not None and number < 1:
            raise InputError(f"{flag} must be a whole number >= 1, got {number}")
    level = getattr(args, "level", 0.8)
    if not 0 < level < 1:
        raise InputError(f"--level must be between 0 and 1 (exclusive), got {level}")


def build_service(panel: Panel, args, settings, horizon: int, season: int):
    """The dashboard's ForecastService over this file's history (fallback by backtest)."""
    from ..forecasting.selection import choose_fallback
    from ..forecasting.service import ForecastService, StatisticalForecaster

    best, scores = choose_fallback(panel.values, horizon, season)
    fallback = StatisticalForecaster(best, horizon, season_length=season)
    fallback.backtest = scores
    service = ForecastService(
        model_name=settings.model_name,
        context_length=args.context_length or settings.context_length,
        horizon=horizon,
        use_gpu=settings.use_gpu,
        fallback=fallback,
        freq=settings.freq,
        models_dir=args.models_dir or settings.models_dir,
    )
    service.wait_until_loaded(timeout=120)
    return service


def train_on(panel: Panel, service, args, settings, horizon: int, season: int) -> dict:
    """Train a global TTM on every series of ``panel`` exactly as the server does."""
    from ..forecasting.trainer import Trainer

    trainer = Trainer(
        lambda: panel.values,
        service,
        context_length=args.context_length or settings.context_length,
        horizon=horizon,
        season_length=season,
        models_dir=args.models_dir or settings.models_dir,
        threads=settings.resolved_train_threads,
        max_seconds=args.train_seconds or settings.train_seconds,
        step_seconds=panel.step.total_seconds(),
    )
    if not trainer.ready(panel.values):
        raise InputError(
            f"{args.input}: {int(panel.valid_points.max())} points in the longest series; "
            f"--train needs {trainer.min_points()} (context {trainer.context_length}, "
            f"horizon {horizon}, 20% held out)"
        )
    return trainer.run_once()


@dataclass(frozen=True)
class ChunkForecaster:
    """How one chunk of series is forecast: picklable, so a Dask worker runs the same code.

    ``use_ttm``: the TTM forecasts series with enough points, ``fallback`` the rest; else
    the statistical ``fallback`` forecasts every series from its last FALLBACK_CONTEXT points.
    """

    use_ttm: bool
    fallback: str
    horizon: int
    season: int
    level: float

    def predict(self, history: np.ndarray, ttm=None) -> np.ndarray:
        from ..forecasting.selection import fit_forecast
        from ..forecasting.context import fill_gaps

        horizon, season = self.horizon, self.season
        if not self.use_ttm:
            return fit_forecast(self.fallback, fill_gaps(history[:, -FALLBACK_CONTEXT:]), horizon, season)
        enough = np.isfinite(history).sum(axis=1) >= ttm.min_context
        out = np.empty((len(history), horizon))
        if enough.any():
            out[enough] = ttm.predict(history[enough][:, -ttm.min_context :])
        if (~enough).any():  # too short for the model's context: the fallback
            out[~enough] = fit_forecast(self.fallback, fill_gaps(history[~enough]), horizon, season)
        return out

    def forecast_chunk(self, values: np.ndarray, ttm=None) -> tuple[np.ndarray, np.ndarray]:
        """(forecasts [rows, horizon], band half-widths [rows]) of one chunk of series.

        In a Dask task ``ttm`` is None and the worker's plugin supplies the loaded TTM.
        """
        if self.use_ttm and ttm is None:
            from ..forecasting.distributed import worker_ttm

            ttm = worker_ttm()
            if ttm is None:
                raise RuntimeError("this Dask worker has no TTM loaded (plugin missing)")
        predict = lambda history: self.predict(history, ttm)  # noqa: E731
        return predict(values), band_halfwidth(predict, values, self.horizon, self.level)


def forecast_function(service, model: str, horizon: int, season: int, level: float = 0.8,
                      trained=None):
    """(label, ChunkForecaster, ttm or None) for ``model`` over this service."""
    ttm = service.ttm if service.state == "ready" else None
    if model == "ttm":
        ttm = trained or ttm
        if ttm is None:
            why = service.error or "no model loaded"
            raise RuntimeError(f"no TTM to forecast with ({why}); add --train")
    if model in ("auto", "ttm") and ttm is not None:
        return ttm.name, ChunkForecaster(True, service.fallback.name, horizon, season, level), ttm
    name = service.fallback.name if model in ("auto", "ttm") else model
    return name, ChunkForecaster(False, name, horizon, season, level), None


def ttm_plugin(service, ttm, trained_folder, args, settings, horizon: int):
    """A WorkerPlugin that loads on each Dask worker the TTM this process forecasts with."""
    from ..forecasting.distributed import TTMWorkerPlugin
    from ..forecasting.store import promoted_folder

    models_dir = args.models_dir or settings.models_dir
    options = {}
    if trained_folder is not None:
        source = str(trained_folder)
    elif service.card is not None:
        source = str(promoted_folder(models_dir))
    else:
        source = service.model_name
        options = {"freq": service.freq, "freq_prefix_tuning": service.freq_prefix_tuning}
    return TTMWorkerPlugin(source, service.context_length, horizon, label=ttm.name, **options)


def band_halfwidth(predict, values: np.ndarray, horizon: int, level: float) -> np.ndarray:
    """Per series: the ``level`` quantile of absolute errors on the last ``horizon`` points."""
    if values.shape[1] <= horizon + 2:
        return np.full(len(values), np.nan)
    past, actual = values[:, :-horizon], values[:, -horizon:]
    keep = np.isfinite(past).sum(axis=1) > 0
    width = np.full(len(values), np.nan)
    if keep.any():
        errors = np.abs(predict(past[keep]) - actual[keep])
        width[keep] = np.nanquantile(np.where(np.isfinite(errors), errors, np.nan), level, axis=1)
    return width


def run_forecast(args) -> int:
    from ..settings import Settings

    started = time.perf_counter()
    try:
        check_numbers(args)
        model = resolve_model(args.model)
        zone = layout_timezone(args)
        panel = read_panel(args.input, args.timestamp_column, args.value_columns, zone,
                           args.sheet)
        if args.train and model not in ("auto", "ttm"):
            raise InputError(f"--train trains a TTM; it does not go with --model {args.model}")
    except InputError as exc:
        print(f"granite-panel forecast: error: {exc}", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    season = args.season or default_season(panel.step)
    try:
        with dask_client_for(args) as client:  # first, so a wrong address fails at once
            label, frame, decision = forecast_with(panel, model, args, settings, season, client)
    except InputError as exc:
        print(f"granite-panel forecast: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"granite-panel forecast: error: {exc}", file=sys.stderr)
        return 2 if type(exc).__name__ == "DaskUnavailable" else 1
    try:
        write(in_zone(frame, zone), args.output)
    except OSError as exc:
        print(f"granite-panel forecast: error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    summary = f"{label} forecast {len(panel.ids)} series x {args.horizon} steps in {seconds:.1f} s"
    print(f"granite-panel forecast: {summary}" + (f"; {decision}" if decision else ""), file=sys.stderr)
    return 0


def dask_client_for(args):
    """``--dask``: a context giving a ``distributed.Client``; without it, one giving None."""
    from contextlib import nullcontext

    if getattr(args, "dask", None) is None:
        return nullcontext(None)
    from ..forecasting.distributed import dask_client

    address = None if args.dask == LOCAL_CLUSTER else args.dask
    return dask_client(address, args.dask_workers)


def forecast_with(panel: Panel, model: str, args, settings, season: int, client=None):
    """(label, output frame, training decision): the forecast itself, on ``client`` if given."""
    horizon = args.horizon
    if model not in ("auto", "ttm"):  # a named statistical model: no TTM, no backtest
        forecaster = ChunkForecaster(False, model, horizon, season, args.level)
        return model, forecast_frame(panel, forecaster, client=client, chunk=args.chunk_series), ""
    service = build_service(panel, args, settings, horizon, season)
    trained, decision, trained_folder = None, "", None
    if args.train:
        card = train_on(panel, service, args, settings, horizon, season)
        decision = card["decision"]
        if model == "ttm" and not card["promoted"]:  # asked for TTM: use it anyway
            from ..forecasting.ttm import load_ttm

            trained_folder = Path(args.models_dir or settings.models_dir) / card["folder"]
            trained = load_ttm(str(trained_folder), service.context_length, horizon)
            trained.name = card["label"]
    label, forecaster, ttm = forecast_function(service, model, horizon, season, args.level, trained)
    plugin = None
    if client is not None and ttm is not None:
        plugin = ttm_plugin(service, ttm, trained_folder, args, settings, horizon)
    frame = forecast_frame(panel, forecaster, ttm, client=client, plugin=plugin,
                           chunk=args.chunk_series)
    return label, frame, decision


def forecast_frame(panel: Panel, forecaster: ChunkForecaster, ttm=None, client=None,
                   plugin=None, chunk=None):
    """The output frame; chunks of CHUNK_SERIES series run here or, on ``client``, as tasks.

    Both paths call ``forecaster.forecast_chunk`` on the same chunks, so they agree.
    """
    import pandas as pd

    from ..forecasting.distributed import CHUNK_SERIES, chunk_bounds

    values, horizon = panel.values, forecaster.horizon
    chunks = [values[start:stop] for start, stop in chunk_bounds(len(values), chunk or CHUNK_SERIES)]
    if client is None:
        parts = [forecaster.forecast_chunk(chunk, ttm) for chunk in chunks]
    else:
        from ..forecasting.distributed import run_partitioned

        parts = run_partitioned(chunks, _forecast_task, client=client,
                                plugin=plugin if forecaster.use_ttm else None,
                                forecaster=forecaster)
    forecasts = np.vstack([p[0] for p in parts])
    width = np.concatenate([p[1] for p in parts])
    future = panel.stamps[-1] + panel.step * np.arange(1, horizon + 1)
    return pd.DataFrame(
        {
            "unique_id": np.repeat(panel.ids, horizon),
            "ds": np.tile(future, len(panel.ids)),
            "forecast": forecasts.ravel(),
            "lo": (forecasts - width[:, None]).ravel(),
            "hi": (forecasts + width[:, None]).ravel(),
        }
    )


def _forecast_task(chunk: np.ndarray, forecaster: ChunkForecaster):
    """One Dask task: a chunk's forecasts with the worker's TTM (module-level: picklable)."""
    return forecaster.forecast_chunk(chunk)


def in_zone(frame, zone: str):
    """The output's times (UTC) as clock times of ``zone`` with their offset, when the input
    was read in it: the forecast speaks the input's clock, without an ambiguous hour."""
    if not zone:
        return frame
    import pandas as pd

    stamps = pd.to_datetime(frame["ds"]).dt.tz_localize("UTC").dt.tz_convert(zone)
    return frame.assign(ds=stamps)


def write(frame, output: str) -> None:
    if output in ("-", None):
        frame.to_csv(sys.stdout, index=False)
    else:
        frame.to_csv(output, index=False)
