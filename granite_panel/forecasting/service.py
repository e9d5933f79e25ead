"""Forecasters behind one interface: Granite TTM (tsfm_public) and a statsforecast fallback.

``ForecastService`` is what the engine talks to. It loads TTM lazily in a background
thread, serves the statistical fallback while TTM is loading, when it cannot be loaded
(no network, bad folder) or while a series is shorter than the model's context, and always
says which model produced a forecast and why. The models themselves: ``ttm`` (TTM through
tsfm_public) and ``statistical`` (the fallback); ``context`` fills and scales their input.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..settings import DEFAULT_MODEL_NAME
from .context import context_scale, fill_gaps
from .selection import seasonal_naive
from .statistical import StatisticalForecaster
from .ttm import (IBM_RELEASES, TTMForecaster, check_folder_fits, choose_revision,
                  describe_load_error, fetch_model, hub_model, import_tsfm, is_hub_id, load_ttm,
                  model_label, pick_device, quiet_tsfm_logging, tsfm_if_imported)

# What callers imported from here before the TTM loader, the statistical fallback and the
# context helpers had modules of their own.
__all__ = [
    "Forecaster", "ForecastResult", "ForecastService", "StatisticalForecaster",
    "TTMForecaster", "IBM_RELEASES", "check_folder_fits", "choose_revision", "context_scale",
    "describe_load_error", "fetch_model", "fill_gaps", "hub_model", "import_tsfm", "is_hub_id",
    "load_ttm", "model_label", "pick_device", "quiet_tsfm_logging", "seasonal_naive",
    "tsfm_if_imported",
]

log = logging.getLogger(__name__)


class Forecaster(Protocol):
    """Forecasts every series of a batch in one call."""

    name: str
    horizon: int
    min_context: int  # fewer valid points than this and the forecaster cannot run

    def predict(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """[n_series, horizon] forecasts from ``context`` [n_series, time] (no NaNs).

        ``rows``: the engine rows of ``context`` when it holds a share of the series
        (FORECAST_EVERY > 1); a forecaster with per-series state keys it by them."""


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
