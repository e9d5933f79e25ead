"""Forecasters behind one interface: Granite TTM (tsfm_public) and a statsforecast fallback.

``ForecastService`` is what the engine talks to. It loads TTM lazily in a background
thread, serves the statistical fallback while TTM is loading, when it cannot be loaded
(no network, bad folder) or while a series is shorter than the model's context, and always
says which model produced a forecast and why.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

import numpy as np

from ..settings import DEFAULT_MODEL_NAME
from .selection import FALLBACK_CANDIDATES, choose_fallback, seasonal_naive

log = logging.getLogger(__name__)

_TSFM_IMPORT_LOCK = threading.Lock()
_TSFM: SimpleNamespace | None = None  # set once the toolkit is imported (and its logs quieted)
_TSFM_BACKGROUND: threading.Thread | None = None
_TSFM_STARTING = threading.Lock()


def import_tsfm():
    """Import tsfm_public's toolkit once, under a lock.

    The model loads in a background thread while the engine thread may need the conformal
    processor; two threads importing the same package at once can hit Python's import
    deadlock detection, which would look like a failed model load.
    """
    global _TSFM
    with _TSFM_IMPORT_LOCK:
        if _TSFM is None:
            from tsfm_public.toolkit.conformal import PostHocProbabilisticProcessor
            from tsfm_public.toolkit.get_model import get_model
            from tsfm_public.toolkit.time_series_preprocessor import DEFAULT_FREQUENCY_MAPPING

            quiet_tsfm_logging()  # once: each setLevel clears logging's caches (~40 ms a tick)
            _TSFM = SimpleNamespace(
                get_model=get_model,
                PostHocProbabilisticProcessor=PostHocProbabilisticProcessor,
                frequency_tokens=DEFAULT_FREQUENCY_MAPPING,
            )
    return _TSFM


def tsfm_if_imported() -> SimpleNamespace | None:
    """The toolkit if it is imported already; else None, and its import starts in the
    background. For the tick thread, which holds the engine's locks: importing tsfm there
    (or waiting for the model loader's import) held every push and status call for 30 s
    and more on a loaded machine (found by the fault tests)."""
    global _TSFM_BACKGROUND
    if _TSFM is not None:
        return _TSFM
    with _TSFM_STARTING:
        if _TSFM_BACKGROUND is None or not _TSFM_BACKGROUND.is_alive():
            _TSFM_BACKGROUND = threading.Thread(target=import_tsfm, name="tsfm-import",
                                                daemon=True)
            _TSFM_BACKGROUND.start()
    return None


def quiet_tsfm_logging() -> None:
    """tsfm_public logs every model choice at INFO; keep its warnings, drop the chatter."""
    if log.isEnabledFor(logging.DEBUG):
        return
    for name in list(logging.root.manager.loggerDict):
        if "tsfm_public" in name:
            logging.getLogger(name).setLevel(logging.WARNING)
        if "tsfm_public" in name and name.endswith("get_model.py"):
            # It warns at every load whose horizon is not one of TTM's own lengths; asking
            # for such a horizon (prediction_filter_length) is what the engine means to do.
            # Printed from the loader thread, it landed in whatever notebook cell ran then.
            logging.getLogger(name).setLevel(logging.ERROR)


class Forecaster(Protocol):
    """Forecasts every series of a batch in one call."""

    name: str
    horizon: int
    min_context: int  # fewer valid points than this and the forecaster cannot run

    def predict(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """[n_series, horizon] forecasts from ``context`` [n_series, time] (no NaNs).

        ``rows``: the engine rows of ``context`` when it holds a share of the series
        (FORECAST_EVERY > 1); a forecaster with per-series state keys it by them."""


def context_scale(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of each row of ``window`` [series, time], std 1 where the row is flat:
    each series scaled by its own context, as IBM's preprocessor does per channel."""
    mean = window.mean(axis=1, keepdims=True)
    std = window.std(axis=1, keepdims=True)
    return mean, np.where(std > 1e-8, std, 1.0)


def fill_gaps(context: np.ndarray) -> np.ndarray:
    """Bad points (NaN) replaced by the last good value before them (or the first after)."""
    context = np.asarray(context, dtype=float)
    if np.isfinite(context).all():
        return context
    import pandas as pd

    frame = pd.DataFrame(np.where(np.isfinite(context), context, np.nan))
    return frame.ffill(axis=1).bfill(axis=1).to_numpy()


# --------------------------------------------------------------------------- statistical


class StatisticalForecaster:
    """statsforecast models per series; fitted rarely, applied every call with ``forward``.

    ``model="auto"`` (the default, as ``FALLBACK_MODEL``) chooses the model by backtest on the series' own history
    (``selection.choose_fallback`` among SeasonalNaive, AutoTheta, AutoETS, MSTL: lowest MASE
    on the last two horizons of up to 8 series), once, in a background thread, as soon as a
    context holds two horizons plus two seasons; seasonal naive serves until then. A fixed
    AutoTheta lost to seasonal naive on ETTh1/ETTm1 (MSE 0.644 / 0.580 vs 0.512 / 0.423).

    A fit takes 70-400 ms per series, far too slow for every tick of many series. Each call
    refits the stalest series until ``fit_budget_s`` is spent; fitted
    series are forecast from their fitted state (``forward``, ~0.1 ms); series not yet
    fitted get a seasonal-naive forecast until their turn comes.
    """

    def __init__(
        self,
        model: str = "auto",
        horizon: int = 96,
        season_length: int = 24,
        refit_every: int = 200,
        fit_budget_s: float = 0.25,
    ):
        self.requested = model
        self.model = "SeasonalNaive" if model == "auto" else model
        self.name = self.model
        self.backtest: dict[str, float] = {}
        self._selection: threading.Thread | None = None
        self.horizon = horizon
        self.season_length = season_length
        self.refit_every = refit_every
        self.fit_budget_s = fit_budget_s
        self.min_context = 1
        self.reset()

    def reset(self) -> None:
        if self.requested == "auto" and (self._selection is None or not self._selection.is_alive()):
            self.model, self.name, self.backtest, self._selection = "SeasonalNaive", "SeasonalNaive", {}, None
        self._fitted: dict[int, object] = {}
        self._fitted_at: dict[int, int] = {}
        self._calls = 0

    @property
    def fitted_series(self) -> int:
        return len(self._fitted)

    def _new_model(self, season_length: int):
        from statsforecast import models

        return getattr(models, self.model)(season_length=season_length)

    def _season_for(self, n_points: int) -> int:
        return self.season_length if n_points >= 2 * self.season_length else 1

    def predict(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """[n_series, horizon] forecasts of ``context``'s series.

        ``rows``: the engine rows of ``context`` when it holds a share of the series
        (FORECAST_EVERY > 1), so each series is forecast with its own fitted state; None:
        row i is series i. (Keyed by position, a tick of rows 3, 13, 23 used the states
        fitted on the rows of an earlier tick's positions: another series' parameters.)
        """
        context = fill_gaps(context)
        n_series, n_points = context.shape
        keys = range(n_series) if rows is None else [int(r) for r in rows]
        if len(keys) != n_series:
            raise ValueError(f"rows names {len(keys)} series; the context has {n_series}")
        self._calls += 1
        season = self._season_for(n_points)
        self._maybe_select(context, season)
        if self.model == "SeasonalNaive" or n_points < 3:
            return seasonal_naive(context, self.horizon, season)
        self._refit_stalest(context, keys, season)
        out = seasonal_naive(context, self.horizon, season)
        for i, key in enumerate(keys):
            fitted = self._fitted.get(key)
            if fitted is None:
                continue
            try:
                out[i] = fitted.forward(y=context[i], h=self.horizon)["mean"]
            except Exception as exc:  # a numerically odd window: keep the naive one
                log.debug("forward failed for series %s: %s", key, exc)
        return out

    def _maybe_select(self, context: np.ndarray, season: int) -> None:
        """Start the backtest once there is enough history (``model="auto"`` only)."""
        if self.requested != "auto" or self._selection is not None:
            return
        if context.shape[1] < 2 * self.horizon + 2 * season + 2:
            return
        history = context.copy()

        def select():
            try:
                best, scores = choose_fallback(history, self.horizon, season, FALLBACK_CANDIDATES)
            except Exception as exc:  # keep seasonal naive, say why in the log
                log.warning("fallback backtest failed: %s", exc)
                return
            self.backtest = scores
            self._fitted, self._fitted_at = {}, {}
            self.model = self.name = best

        self._selection = threading.Thread(target=select, name="fallback-backtest", daemon=True)
        self._selection.start()

    def wait_for_selection(self, timeout: float | None = None) -> str:
        """Block until the backtest ended (CLI, tests); returns the chosen model's name."""
        if self._selection is not None:
            self._selection.join(timeout)
        return self.name

    def _refit_stalest(self, context: np.ndarray, keys, season: int) -> None:
        """Fit the series of ``context`` (``keys``: their rows) never fitted or fitted
        ``refit_every`` calls ago, the stalest first, until ``fit_budget_s`` is spent."""
        due = [
            (i, key)
            for i, key in enumerate(keys)
            if key not in self._fitted or self._calls - self._fitted_at[key] >= self.refit_every
        ]
        due.sort(key=lambda item: self._fitted_at.get(item[1], -1))
        deadline = time.perf_counter() + self.fit_budget_s
        for i, key in due:
            try:
                self._fitted[key] = self._new_model(season).fit(context[i])
            except Exception as exc:
                log.debug("fit failed for series %s: %s", key, exc)
            self._fitted_at[key] = self._calls
            if time.perf_counter() >= deadline:
                break


# --------------------------------------------------------------------------- TTM


def pick_device(use_gpu: bool) -> str:
    """``cuda`` when a GPU is present and allowed, else ``cpu``."""
    import torch

    return "cuda" if use_gpu and torch.cuda.is_available() else "cpu"


def is_hub_id(model_name: str) -> bool:
    """``owner/name`` that is not a folder here (paths starting with / . ~ are folders)."""
    if model_name.startswith(("/", ".", "~")) or Path(model_name).exists():
        return False
    return model_name.count("/") == 1


class TTMForecaster:
    """A loaded TinyTimeMixer: per-series standard scaling, all series in one batch."""

    def __init__(
        self, model, name: str, horizon: int, device: str = "cpu", freq_token: int | None = None
    ):
        import torch

        self._torch = torch
        self.model = model.to(device).eval()
        self.name = name
        self.device = device
        self.horizon = horizon
        # Revisions trained with frequency prefix tuning expect a token for the data's
        # resolution (tsfm_public's DEFAULT_FREQUENCY_MAPPING); the others take none.
        uses_token = bool(getattr(model.config, "resolution_prefix_tuning", False))
        self.freq_token = freq_token if uses_token else None
        self.min_context = int(model.config.context_length)
        self.model_horizon = int(
            getattr(model.config, "prediction_filter_length", None)
            or model.config.prediction_length
        )

    def predict(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``rows`` is not used: a TTM forecasts each window from that window alone."""
        torch = self._torch
        window = fill_gaps(context)[:, -self.min_context :]
        mean, std = context_scale(window)
        scaled = (window - mean) / std
        with torch.no_grad():
            past = torch.as_tensor(scaled[:, :, None], dtype=torch.float32, device=self.device)
            extra = {}
            if self.freq_token is not None:
                extra["freq_token"] = torch.full(
                    (past.shape[0],), self.freq_token, dtype=torch.long, device=self.device
                )
            output = self.model(past_values=past, **extra).prediction_outputs
        return output[:, : self.horizon, 0].float().cpu().numpy() * std + mean


def choose_revision(
    model_name: str,
    context_length: int,
    horizon: int,
    freq: str | None = None,
    freq_prefix_tuning: bool = False,
) -> str:
    """The TTM revision ``get_model`` picks for this context and horizon (no download).

    IBM's rules (tsfm_public ``get_model``): among the revisions whose context fits in
    ``context_length`` prefer the longest context (``prefer_longer_context``), then the
    shortest horizon >= ``horizon`` (a longer one is cut with ``prediction_filter_length``);
    ``freq_prefix_tuning`` prefers revisions trained with a frequency token; daily or
    slower data (``freq``) only gets the r2.1 revisions. A context shorter than the
    shortest revision (52) or a horizon longer than any revision is an error.
    """
    return _get_model(model_name, context_length, horizon, freq, freq_prefix_tuning, True)


def _get_model(model_name, context_length, horizon, freq, freq_prefix_tuning, key_only=False):
    """``get_model`` with our selection rules; ``key_only`` names the revision, loads nothing."""
    return import_tsfm().get_model(
        model_name,
        context_length=context_length,
        prediction_length=horizon,
        freq=freq,
        freq_prefix_tuning=freq_prefix_tuning,
        prefer_longer_context=True,
        return_model_key=key_only,
    )


def load_ttm(
    model_name: str,
    context_length: int,
    horizon: int,
    device: str = "cpu",
    freq: str | None = None,
    freq_prefix_tuning: bool = False,
) -> TTMForecaster:
    """Load a TTM through ``tsfm_public.toolkit.get_model``: a hub id or a local folder.

    For a hub id ``get_model`` picks the revision (see ``choose_revision``); the weights
    come from the Hugging Face cache or the hub (``HF_HUB_OFFLINE=1``: the cache only).
    For a local folder granite-tsfm 0.3.11 needs an explicit revision (it crashes on
    ``None``), so ``main`` is passed; a folder holds a single revision anyway.
    """
    tsfm = import_tsfm()
    token = tsfm.frequency_tokens.get(freq) if freq else None
    if is_hub_id(model_name):
        revision, model = hub_model(model_name, context_length, horizon, freq, freq_prefix_tuning)
        label = f"{model_label(model_name)} ({revision})"
    else:
        folder = Path(model_name).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {model_name!r} does not exist")
        check_folder_fits(folder, context_length, horizon)
        model = tsfm.get_model(
            str(folder), context_length=context_length, prediction_length=horizon,
            model_revision="main",
        )
        label = f"TTM (local: {folder.name})"
    return TTMForecaster(model, name=label, horizon=horizon, device=device, freq_token=token)


def hub_model(model_name, context_length, horizon, freq=None, freq_prefix_tuning=False):
    """(revision, model) of a hub id, chosen by ``get_model`` (see ``choose_revision``)."""
    revision = choose_revision(model_name, context_length, horizon, freq, freq_prefix_tuning)
    return revision, _get_model(model_name, context_length, horizon, freq, freq_prefix_tuning)


def check_folder_fits(folder: Path, context_length: int, horizon: int) -> None:
    """A saved TTM must see no more context than we keep and forecast at least the horizon."""
    import json

    config = json.loads((folder / "config.json").read_text())
    needs, reaches = config.get("context_length"), config.get("prediction_length")
    if needs is not None and needs > context_length:
        raise ValueError(
            f"the model in {folder.name} needs {needs} points of context; "
            f"CONTEXT_LENGTH is {context_length}"
        )
    if reaches is not None and reaches < horizon:
        raise ValueError(
            f"the model in {folder.name} forecasts {reaches} points; FORECAST_HORIZON is {horizon}"
        )


def fetch_model(
    model_name: str,
    dest: str | Path,
    context_length: int,
    horizon: int,
    freq: str | None = None,
    freq_prefix_tuning: bool = False,
) -> tuple[str, Path]:
    """Download the revision ``get_model`` picks and save it to ``dest`` for offline use."""
    revision, model = hub_model(model_name, context_length, horizon, freq, freq_prefix_tuning)
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    return revision, dest


IBM_RELEASES = {
    "ibm-granite/granite-timeseries-ttm-r2": "TTM-R2",
    "ibm-granite/granite-timeseries-ttm-r1": "TTM-R1",
}


def model_label(model_name: str) -> str:
    """What the UI calls a hub model: TTM-R2 only for IBM's R2 repository itself."""
    return IBM_RELEASES.get(model_name.rstrip("/"), f"TTM ({model_name})")


def describe_load_error(exc: BaseException) -> str:
    """A short reason for the UI: 'no network' for hub failures, else the error's first line."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 6:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain).lower()
    markers = ("couldn't connect", "offline", "connection", "name resolution", "timed out")
    if any(marker in text for marker in markers):
        return "no network (Hugging Face hub unreachable)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:200]


# --------------------------------------------------------------------------- service


@dataclass(frozen=True)
class ForecastResult:
    values: np.ndarray  # [n_series, horizon]
    model: str  # the model that produced it
    reason: str  # why this model (empty when TTM served as intended)
    inference_ms: float
    naive_series: int = 0  # series served by seasonal naive through ``prefer_naive``
    own: np.ndarray | None = None  # the model's forecast before ``prefer_naive`` (scored per series)


class ForecastService:
    """TTM when it is loaded and the context is long enough; otherwise the fallback.

    A model trained here (``trainer.Trainer``) is handed over with ``promote``, which
    refuses it unless its validation MASE beats the serving model's; with ``models_dir``
    the last promoted model is loaded at start (before the hub model), and a saved model
    that cannot be loaded is reported (``status()["saved_model_error"]``) and skipped.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL_NAME,
        context_length: int = 512,
        horizon: int = 96,
        use_gpu: bool = True,
        fallback: StatisticalForecaster | None = None,
        loader=load_ttm,
        freq: str | None = None,
        freq_prefix_tuning: bool = False,
        models_dir: str | None = None,
    ):
        self.model_name = model_name
        self.models_dir = models_dir
        self.card: dict | None = None  # the card of the model trained here that serves
        self.last_refusal = ""
        self.saved_model_error = ""
        self.trainer = None  # set by trainer.Trainer
        self.freq = freq
        self.freq_prefix_tuning = freq_prefix_tuning
        self.context_length = context_length
        self.horizon = horizon
        self.use_gpu = use_gpu
        self.fallback = fallback or StatisticalForecaster(horizon=horizon)
        self._loader = loader
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.ttm: TTMForecaster | None = None
        self.state = "not loaded"  # -> loading -> ready | failed
        self.error = ""
        self.device = ""
        self.load_seconds: float | None = None

    @property
    def wanted_label(self) -> str:
        return model_label(self.model_name) if is_hub_id(self.model_name) else "TTM"

    def start_loading(self) -> None:
        """Begin loading TTM in a background thread (once); returns at once."""
        with self._lock:
            if self.state != "not loaded":
                return
            self.state = "loading"
            self._thread = threading.Thread(target=self._load, name="ttm-loader", daemon=True)
            self._thread.start()

    def wait_until_loaded(self, timeout: float | None = None) -> str:
        """Block until loading ends (tests, notebooks, benchmarks); returns the state."""
        self.start_loading()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def _load(self) -> None:
        started = time.perf_counter()
        if self._load_promoted():
            with self._lock:
                self.load_seconds = time.perf_counter() - started
            return
        try:
            device = pick_device(self.use_gpu)
            options = {}
            if self._loader is load_ttm:
                options = {"freq": self.freq, "freq_prefix_tuning": self.freq_prefix_tuning}
            ttm = self._loader(self.model_name, self.context_length, self.horizon, device, **options)
        except Exception as exc:  # any failure means: fall back and say why
            log.warning("TTM could not be loaded from %s: %s", self.model_name, exc)
            with self._lock:
                self.error = describe_load_error(exc)
                if self.card is None:  # a model promoted meanwhile keeps serving
                    self.state = "failed"
            return
        with self._lock:
            if self.card is None:  # a model promoted meanwhile won on evidence; keep it
                self.ttm, self.device, self.state = ttm, device, "ready"
            self.load_seconds = time.perf_counter() - started

    def _load_promoted(self) -> bool:
        """Serve the model last promoted under ``models_dir``; False (and why) when none loads."""
        from . import store

        try:
            forecaster, card = store.load_promoted(
                self.models_dir, self.context_length, self.horizon, pick_device(self.use_gpu)
            )
        except Exception as exc:
            folder = store.promoted_folder(self.models_dir)
            self.saved_model_error = (
                f"saved model {folder.name if folder else '?'} could not be loaded "
                f"({describe_load_error(exc)}); not used"
            )
            log.warning("%s", self.saved_model_error)
            return False
        if forecaster is None:
            return False
        with self._lock:
            self.ttm, self.card, self.device, self.state = forecaster, card, forecaster.device, "ready"
        return True

    def fine_tune_base(self) -> tuple[str, object] | None:
        """(name, model) of the pretrained TTM to fine-tune, or None: then a TTM is trained
        from random weights. Pretrained means what ``MODEL_NAME`` loaded (TTM-R2 from the
        hub, or a local folder such as ``fetch-model`` writes), not a model trained here."""
        with self._lock:
            if self.ttm is None or self.card is not None or self.state != "ready":
                return None
            return self.ttm.name, self.ttm.model

    def serving_predictor(self, n_valid: int | None = None):
        """(name, predict) of what serves now, for scoring a candidate against it."""
        with self._lock:
            ttm, reason = self.ttm, self.reason(n_valid)
        if ttm is not None and not reason:
            return ttm.name, ttm.predict
        fallback = self.fallback
        name = fallback.name
        season = fallback.season_length

        def predict(context):
            from .selection import fit_forecast

            return fit_forecast(name, fill_gaps(context), self.horizon, season)

        return name, predict

    def promote(self, forecaster: TTMForecaster, card: dict, folder=None) -> tuple[bool, str]:
        """Serve ``forecaster`` if ``card["validation"]`` shows it beats the serving model.

        ``card["validation"]`` holds ``candidate`` and ``serving`` MASE (against seasonal
        naive, on held-out windows at the live horizon). Returns (promoted, why).
        """
        from .selection import promotion_decision

        validation = card.get("validation", {})
        if "candidate" not in validation or "serving" not in validation:
            return False, "not promoted: the card has no validation scores"
        serving = card.get("compared_with", "the serving model")
        promoted, why = promotion_decision(validation["candidate"], validation["serving"], serving)
        with self._lock:
            if promoted:
                self.ttm, self.card, self.state = forecaster, dict(card), "ready"
                self.device, self.error, self.last_refusal = forecaster.device, "", ""
            else:
                self.last_refusal = why
        return promoted, why

    def banner(self, n_valid: int | None = None) -> str:
        """One line saying exactly what serves and why (the dashboard shows it as is)."""
        from .store import describe_card

        reason = self.reason(n_valid)
        if not reason and self.card is not None:
            return describe_card(self.card)
        if not reason:
            return f"{self.ttm.name} from {self.model_name} (zero-shot)"
        fallback = self.fallback
        scores = getattr(fallback, "backtest", {}) or {}
        text = fallback.name
        if scores:
            others = "; ".join(
                f"{n} {v:.2f}" for n, v in sorted(scores.items(), key=lambda kv: kv[1])
                if n != fallback.name and n != "SeasonalNaive"
            )
            text += f" chosen by backtest (MASE {scores.get(fallback.name, 1.0):.2f}"
            text += f"; {others}" if others else ""
            text += "; seasonal naive 1.00)"
        return f"{text}: {reason}"

    def reason(self, n_valid: int | None = None) -> str:
        """Why the fallback serves now (empty when TTM serves)."""
        fallback = self.fallback.name
        if self.state in ("not loaded", "loading"):
            return f"loading {self.wanted_label} from {self.model_name}; using {fallback} meanwhile"
        if self.state == "failed":
            return f"{self.wanted_label} unavailable: {self.error}; using {fallback}"
        if n_valid is not None and n_valid < self.ttm.min_context:
            return (
                f"{n_valid} of {self.ttm.min_context} points of context so far; "
                f"using {fallback} until {self.ttm.name} has a full context"
            )
        return ""

    def status(self, n_valid: int | None = None) -> dict:
        reason = self.reason(n_valid)
        return {
            "state": self.state,
            "model_loaded": self.state == "ready",
            "active_model": self.fallback.name if reason else self.ttm.name,
            "ttm_model": self.ttm.name if self.ttm else None,
            "model_name": self.model_name,
            "device": self.device or None,
            "fallback_reason": reason or None,
            "load_error": self.error or None,
            "banner": self.banner(n_valid),
            "model_card": self.card,
            "saved_model_error": self.saved_model_error or None,
            "last_refusal": self.last_refusal or None,
            "training": self.trainer.status() if self.trainer is not None else None,
        }

    def predict(
        self, context: np.ndarray, n_valid: int, prefer_naive: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> ForecastResult:
        """Forecast every series of ``context`` [n_series, time].

        ``prefer_naive`` ([n_series] booleans, optional): those series get seasonal naive
        (season ``fallback.season_length``), e.g. where the live MASE shows seasonal naive
        beating the served model over the accuracy window. ``rows``: the engine rows of
        ``context`` when it is a share of the series (the fallback keeps a fitted state
        per row); None: all of them, in order.
        """
        self.start_loading()
        reason = self.reason(n_valid)
        forecaster = self.fallback if reason else self.ttm
        started = time.perf_counter()
        try:
            values = forecaster.predict(context, rows=rows)
        except Exception as exc:
            if forecaster is self.fallback:
                raise
            log.exception("TTM forecast failed; using the fallback for this tick")
            reason = f"{forecaster.name} failed ({describe_load_error(exc)}); using fallback"
            forecaster = self.fallback
            values = forecaster.predict(context, rows=rows)
        naive, own = 0, values
        if prefer_naive is not None:
            mask = np.asarray(prefer_naive, dtype=bool)
            if mask.shape != (len(values),):
                raise ValueError(
                    f"prefer_naive has shape {mask.shape}; expected ({len(values)},) booleans"
                )
            naive = int(mask.sum())
            if naive:
                values = np.array(values, dtype=float, copy=True)
                season = self.fallback.season_length
                season = season if context.shape[1] >= 2 * season else 1
                values[mask] = seasonal_naive(fill_gaps(context[mask]), self.horizon, season)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return ForecastResult(values, forecaster.name, reason, elapsed_ms, naive, own)
