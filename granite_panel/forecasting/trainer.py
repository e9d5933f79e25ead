"""A background trainer the engine creates and polls: train, validate, save, maybe promote.

``Trainer(history, service, ...)`` reads the stored history through ``history()``
([n_series, t] floats, NaN gaps), trains one global TTM on the windows of all series
(``training.train_ttm``) in a daemon thread with bounded torch threads, scores it on the
held-out end of the history against the serving model and seasonal naive, saves it with a
card under MODELS_DIR and hands it to ``service.promote``, which refuses a model that does
not validate better than the one serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from . import selection, store, training

log = logging.getLogger(__name__)


def span_text(points: int, step_seconds: float | None) -> str:
    """'14 days' (or '36 hours', or '500 points' when the step is unknown)."""
    if not step_seconds:
        return f"{points} points"
    seconds = points * step_seconds
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 60:.0f} minutes"


class Trainer:
    """One training run at a time, off the tick path; ``status()`` is safe from any thread."""

    def __init__(
        self,
        history: Callable[[], np.ndarray],
        service,
        *,
        context_length: int = 512,
        horizon: int = 96,
        season_length: int = 24,
        models_dir: str = "models",
        threads: int = 1,
        max_seconds: float = 300.0,
        valid_fraction: float = 0.2,
        step_seconds: float | None = None,
        max_valid_windows: int = 512,
        seed: int = 0,
        poll_seconds: float = 2.0,
        max_fallback_windows: int = 64,
        poll_history: Callable[[], np.ndarray] | None = None,
        isolation: str = "thread",
    ):
        """``history``: what a run trains on; ``poll_history``: the cheap view the per-tick
        readiness check reads (default: ``history``), e.g. memory while runs read a store.
        ``isolation``: "process" trains in a spawned child (``isolated``), "thread" here."""
        self.history = history
        self.poll_history = poll_history or history
        self.service = service
        self.context_length, self.horizon = context_length, horizon
        self.season_length = season_length
        self.models_dir = models_dir
        self.threads, self.max_seconds = threads, max_seconds
        self.valid_fraction = valid_fraction
        self.step_seconds = step_seconds
        self.max_valid_windows = max_valid_windows
        self.seed = seed
        if isolation not in ("process", "thread"):
            raise ValueError(f"isolation={isolation!r}: expected process or thread")
        self.isolation = isolation
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = training.TrainingProgress()
        self.last_card: dict | None = None
        self.last_error = ""
        self.finished_at: float | None = None
        self.poll_seconds = poll_seconds
        self.max_fallback_windows = max_fallback_windows
        self._polled_at = -np.inf
        self.last_trigger = ""
        service.trainer = self  # ForecastService.status() reports this trainer

    # ------------------------------------------------------------------ control

    def min_points(self) -> int:
        """Points per series before a run makes sense: windows to train on and to validate.

        The held-out end (``valid_fraction`` of the history) must hold two horizons, so at
        least a horizon of validation windows forecast points never trained on; the rest
        must hold one context + horizon window plus two horizons of starts. At context 512
        and horizon 96 that is 1,000 points (HISTORY_LIMIT keeps 2,048 by default); the
        older rule (context + 5 horizons in the held-out fifth: 4,960) could never be met
        by the in-memory history.
        """
        span = self.context_length + self.horizon
        held = np.ceil(2 * self.horizon / self.valid_fraction)
        trained = np.ceil((span + 2 * self.horizon) / (1 - self.valid_fraction))
        return int(max(held, trained))

    def ready(self, history: np.ndarray | None = None) -> bool:
        """Enough history (``min_points`` valid points in some series) for a useful run."""
        data = self.history() if history is None else history
        return bool(np.size(data)) and int(np.isfinite(data).sum(axis=1).max()) >= self.min_points()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start a run in the background; False when one is already running."""
        with self._lock:
            if self.running:
                return False
            self._cancel.clear()
            self._progress = training.TrainingProgress(phase="preparing")
            self._thread = threading.Thread(target=self._run, name="ttm-trainer", daemon=True)
            self._thread.start()
            return True

    def cancel(self, timeout: float | None = 30.0) -> None:
        """Stop a run between two optimiser steps; nothing is saved or promoted.

        ``timeout=0`` only asks (Engine.stop holds locks the run may need); the run ends
        at its next step."""
        self._cancel.set()
        thread = self._thread
        if thread is not None and timeout != 0 and thread is not threading.current_thread():
            thread.join(timeout)

    def reset(self) -> None:
        """Cancel any run and forget the schedule: the history it learnt from is gone.

        Waits at most 5 s (a run scoring a statistical model checks the flag only before it
        saves; it then ends without saving or promoting)."""
        self.cancel(timeout=5.0)
        self.finished_at = None
        self._polled_at = -np.inf
        with self._lock:
            if not self.running:
                self._progress = training.TrainingProgress()

    def maybe_start(self, every_s: float, live_ratio: float | None = None) -> bool:
        """Start a run when one is due (``should_retrain``) and the history is ready.

        Called on every tick, so it reads the history at most every ``poll_seconds``;
        until the history is long enough the status says how much is missing.
        """
        now = time.monotonic()
        if self.running or now - self._polled_at < self.poll_seconds:
            return False
        self._polled_at = now
        if not self.should_retrain(every_s, live_ratio):
            return False
        history = np.atleast_2d(np.asarray(self.poll_history(), dtype=float))
        if not self.ready(history):
            have = int(np.isfinite(history).sum(axis=1).max()) if history.size else 0
            with self._lock:
                if self._progress.phase in ("idle", "waiting"):
                    self._progress.phase = "waiting"
                    self._progress.message = (
                        f"training starts at {self.min_points()} points per series "
                        f"(the longest has {have})"
                    )
            return False
        self.last_trigger = "live accuracy decayed" if self._decayed(live_ratio) else (
            "first run" if self.finished_at is None else "schedule"
        )
        return self.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict:
        with self._lock:
            progress = self._progress.as_dict()
        progress.update(
            running=self.running,
            trigger=self.last_trigger or None,
            last_card=self.last_card,
            error=self.last_error or None,
        )
        return progress

    # ------------------------------------------------------------------ the run

    def _report(self, progress: training.TrainingProgress) -> None:
        with self._lock:
            self._progress = training.TrainingProgress(**progress.as_dict())

    def _set_phase(self, phase: str, message: str = "") -> None:
        with self._lock:
            self._progress.phase, self._progress.message = phase, message

    def _run(self) -> None:
        try:
            card = self.run_once()
        except training.TrainingCancelled:
            self._set_phase("cancelled", "cancelled; nothing saved")
            return  # a cancelled run does not count: the schedule may start one again
        except Exception as exc:
            log.exception("training failed")
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self._set_phase("failed", self.last_error)
        else:
            self._set_phase("done", card.get("decision", ""))
        self.finished_at = time.time()

    def run_once(self) -> dict:
        """Train, validate, save and offer for promotion (synchronously); returns the card."""
        history = np.atleast_2d(np.asarray(self.history(), dtype=float))
        if not self.ready(history):
            raise ValueError(
                f"{int(np.isfinite(history).sum(axis=1).max()) if history.size else 0} points "
                f"per series; training needs {self.min_points()}"
            )
        length, horizon = self.context_length, self.horizon
        train_part, valid_part = selection.validation_split(
            history, length, horizon, self.valid_fraction
        )
        train = training.cut_windows(train_part, length, horizon)
        valid = training.cut_windows(valid_part, length, horizon)
        if len(valid) > self.max_valid_windows:
            valid = valid[np.linspace(0, len(valid) - 1, self.max_valid_windows).astype(int)]
        base_name, base = self.service.fine_tune_base() or (None, None)
        train_ttm = training.train_ttm
        if self.isolation == "process":
            from .isolated import train_ttm_in_child as train_ttm
        result = train_ttm(
            train, valid, length, horizon, base_model=base, max_seconds=self.max_seconds,
            threads=self.threads, seed=self.seed, cancel=self._cancel, progress=self._report,
        )  # fmt: skip
        self._set_phase("validating", "scoring against the serving model and seasonal naive")
        from .ttm import TTMForecaster

        label = store.fine_tuned_label(base_name) if result.fine_tuned else store.TRAINED_HERE
        candidate = TTMForecaster(result.model, name=label, horizon=horizon)
        season = self.season_length
        serving_name, serving_predict = self.service.serving_predictor(n_valid=length)
        scored = valid
        if serving_name == self.service.fallback.name and len(valid) > self.max_fallback_windows:
            # A statistical model is fitted per window, in Python, holding the GIL: on 2
            # cores 100+ windows slowed the live ticks ~15x for tens of seconds. Both models
            # are scored on the same evenly spaced windows.
            scored = valid[np.linspace(0, len(valid) - 1, self.max_fallback_windows).astype(int)]
        scores = {
            "candidate": selection.score_on_windows(candidate.predict, scored, length, season),
            "serving": selection.score_on_windows(serving_predict, scored, length, season),
        }
        valid_points = int(np.isfinite(history).sum(axis=1).max())
        card = {
            "label": label,
            "base": "random initialisation (get_random_ttm small)" if base is None else base_name,
            "series": int(history.shape[0]),
            "points_per_series": valid_points,
            "data_span": span_text(valid_points, self.step_seconds),
            "context_length": length,
            "horizon": horizon,
            "season_length": season,
            "training_seconds": round(result.seconds, 1),
            "training_loss": result.loss,
            "epochs": result.epochs,
            "steps": result.steps,
            "train_windows": int(len(train)),
            "validation_windows": int(len(valid)),
            "scored_windows": int(len(scored)),
            "validation_loss": {
                "start": result.first_validation_loss,
                "best": result.best_validation_loss,
            },
            "validation": {**scores, "seasonal_naive": 1.0},
            "validation_metric": "MASE: MAE / seasonal naive's MAE on the same held-out windows",
            "compared_with": serving_name,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if self._cancel.is_set():
            raise training.TrainingCancelled("training cancelled")
        folder = store.save_model(result.model, self.models_dir, card)
        card["folder"] = folder.name
        promoted, decision = self.service.promote(candidate, card, folder=folder)
        card["promoted"], card["decision"] = promoted, decision
        store.write_card(folder, card)
        if promoted:
            store.mark_promoted(self.models_dir, folder)
        self.last_card = card
        return card

    def should_retrain(self, every_s: float, live_mase: float | None = None) -> bool:
        """Due on the schedule (``every_s`` since the last run), or early (after a quarter of it)
        when the live MASE of the serving model reaches 1 (no better than seasonal naive)."""
        if self.running:
            return False
        if self.finished_at is None:
            return True
        since = time.time() - self.finished_at
        if self._decayed(live_mase) and since >= every_s / 4:
            return True  # live accuracy decayed: retrain early, but not in a loop
        return since >= every_s

    @staticmethod
    def _decayed(live_ratio: float | None) -> bool:
        return live_ratio is not None and np.isfinite(live_ratio) and live_ratio >= 1.0


def live_trainer(settings, service, history: Callable[[], np.ndarray], step_seconds=None,
                 poll_history: Callable[[], np.ndarray] | None = None):
    """The trainer ``serve`` runs (TRAINING=auto): the engine's context, horizon, season and
    the TRAIN_* settings, writing under MODELS_DIR."""
    return Trainer(
        history,
        service,
        context_length=settings.context_length,
        horizon=settings.forecast_horizon,
        season_length=settings.season_length,
        models_dir=settings.models_dir,
        threads=settings.resolved_train_threads,
        max_seconds=settings.train_seconds,
        step_seconds=step_seconds,
        poll_history=poll_history,
        isolation=settings.train_isolation,
    )
