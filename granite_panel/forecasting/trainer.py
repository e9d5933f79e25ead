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
    ):
        self.history = history
        self.service = service
        self.context_length, self.horizon = context_length, horizon
        self.season_length = season_length
        self.models_dir = models_dir
        self.threads, self.max_seconds = threads, max_seconds
        self.valid_fraction = valid_fraction
        self.step_seconds = step_seconds
        self.max_valid_windows = max_valid_windows
        self.seed = seed
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = training.TrainingProgress()
        self.last_card: dict | None = None
        self.last_error = ""
        self.finished_at: float | None = None
        service.trainer = self  # ForecastService.status() reports this trainer

    # ------------------------------------------------------------------ control

    def min_points(self) -> int:
        """Points per series before a run makes sense: windows to train on and to validate."""
        span = self.context_length + self.horizon
        return int(np.ceil((span + 4 * self.horizon) / self.valid_fraction))

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
        """Stop a run between two optimiser steps; nothing is saved or promoted."""
        self._cancel.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict:
        with self._lock:
            progress = self._progress.as_dict()
        progress.update(
            running=self.running,
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
        base = self.service.fine_tune_base()
        result = training.train_ttm(
            train, valid, length, horizon, base_model=base, max_seconds=self.max_seconds,
            threads=self.threads, seed=self.seed, cancel=self._cancel, progress=self._report,
        )  # fmt: skip
        self._set_phase("validating", "scoring against the serving model and seasonal naive")
        from .service import TTMForecaster

        label = store.FINE_TUNED_HERE if result.fine_tuned else store.TRAINED_HERE
        candidate = TTMForecaster(result.model, name=label, horizon=horizon)
        season = self.season_length
        scores = {"candidate": selection.score_on_windows(candidate.predict, valid, length, season)}
        serving_name, serving_predict = self.service.serving_predictor(n_valid=length)
        scores["serving"] = selection.score_on_windows(serving_predict, valid, length, season)
        valid_points = int(np.isfinite(history).sum(axis=1).max())
        card = {
            "label": label,
            "base": "random initialisation (get_random_ttm small)" if base is None else "TTM-R2",
            "series": int(history.shape[0]),
            "points_per_series": valid_points,
            "data_span": span_text(valid_points, self.step_seconds),
            "context_length": length,
            "horizon": horizon,
            "season_length": season,
            "training_seconds": round(result.seconds, 1),
            "epochs": result.epochs,
            "steps": result.steps,
            "train_windows": int(len(train)),
            "validation_windows": int(len(valid)),
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
        if live_mase is not None and live_mase >= 1.0 and since >= every_s / 4:
            return True  # live accuracy decayed: retrain early, but not in a loop
        return since >= every_s
