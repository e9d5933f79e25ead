"""The streaming engine: bounded per-series history, one forecast and detection per tick.

Plain Python and numpy. ``step()`` runs one tick synchronously (tests, notebooks,
benchmarks); ``start()`` runs ticks in a background thread every
``DATA_GENERATION_INTERVAL`` seconds, so model work never blocks a UI event loop. Readers
(dashboard sessions, REST) take ``snapshot()`` or ``ticks_since(seq)``; both are cheap and
never wait for a forecast to finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .accuracy import AccuracyTracker, mase_scale
from ..detection.live import SEVERITY_NAMES, OnlineDetectors, ZScoreDetector, live_detector
from ..forecasting.service import (
    ForecastResult,
    ForecastService,
    StatisticalForecaster,
    fill_gaps,
    seasonal_naive,
)
from ..settings import Settings
from ..sources.synthetic import Batch, SyntheticSource

log = logging.getLogger(__name__)

RECENT_TICKS = 256  # ticks kept for readers that poll (a slower reader resyncs from history)
ALERTS_KEPT = 200
PREDICTIONS_KEPT = 10


@dataclass(frozen=True)
class Alert:
    timestamp: float
    series: int
    value: float
    score: float
    severity: int
    score_label: str = "z"  # what the score is: a z-score, or a detector's score in [0, 1]

    def as_dict(self) -> dict:
        return {
            "timestamp": iso(self.timestamp),
            "series": self.series,
            "value": self.value,
            "score": round(self.score, 3),
            "score_label": self.score_label,
            "severity": SEVERITY_NAMES[self.severity],
        }


@dataclass(frozen=True)
class Prediction:
    """One forecast of every series, made at ``made_at`` for ``timestamps`` ahead."""

    made_at: float
    timestamps: np.ndarray  # (horizon,)
    values: np.ndarray  # [n_series, horizon]
    model: str
    reason: str
    inference_ms: float
    lower: np.ndarray | None = None  # [n_series, horizon] conformal band, once calibrated
    upper: np.ndarray | None = None

    def as_dict(self, series: list[int]) -> dict:
        payload = {
            "made_at": iso(self.made_at),
            "model": self.model,
            "inference_ms": round(self.inference_ms, 3),
            "timestamps": iso_list(self.timestamps),
            "series": {str(i): finite_list(self.values[i]) for i in series},
        }
        if self.lower is not None:
            payload["lower"] = {str(i): finite_list(self.lower[i]) for i in series}
            payload["upper"] = {str(i): finite_list(self.upper[i]) for i in series}
        return payload


@dataclass(frozen=True)
class Tick:
    """What one tick added: the rows every reader streams into its charts."""

    seq: int
    generation: int
    timestamps: np.ndarray  # (k,)
    values: np.ndarray  # [n_series, k], NaN where a point was bad
    score: np.ndarray  # [n_series, k]
    severity: np.ndarray  # [n_series, k] int8
    prediction: Prediction | None
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the engine's state for readers (JSON-ready via ``status``)."""

    status: dict
    generation: int
    seq: int
    timestamps: np.ndarray  # (n,)
    values: np.ndarray  # [n_series, n]
    score: np.ndarray
    severity: np.ndarray
    predictions: tuple[Prediction, ...]
    alerts: tuple[Alert, ...] = field(default=())


def iso(epoch_seconds: float) -> str:
    return np.datetime64(int(round(epoch_seconds * 1000)), "ms").astype(str) + "Z"


def iso_list(epoch_seconds: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings for many timestamps at once (JSON payloads)."""
    millis = np.round(np.asarray(epoch_seconds, dtype=float) * 1000).astype("int64")
    return [t + "Z" for t in np.datetime_as_string(millis.astype("datetime64[ms]"))]


def finite_list(values: np.ndarray) -> list:
    """Floats for JSON, with None where a value is NaN or infinite."""
    values = np.asarray(values, dtype=float)
    if np.isfinite(values).all():
        return values.tolist()
    return [v if np.isfinite(v) else None for v in values.tolist()]


def coerce_points(values) -> tuple[np.ndarray, np.ndarray]:
    """(floats with NaN where bad, mask of bad) from anything: NaN, inf, strings, None."""
    raw = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if raw.dtype.kind in "fiub":
        floats = raw.astype(float)
    else:
        floats = np.empty(raw.shape, dtype=float)
        flat_in, flat_out = raw.reshape(-1), floats.reshape(-1)
        for i, item in enumerate(flat_in):
            try:
                flat_out[i] = float(item)
            except (TypeError, ValueError):
                flat_out[i] = np.nan
    bad = ~np.isfinite(floats)
    floats[bad] = np.nan
    return floats, bad


class Ring:
    """Fixed-size per-series history: [n_series, capacity] arrays and a write position."""

    def __init__(self, n_series: int, capacity: int):
        self.capacity = capacity
        self.timestamps = np.full(capacity, np.nan)
        self.values = np.full((n_series, capacity), np.nan)
        self.score = np.zeros((n_series, capacity))
        self.severity = np.zeros((n_series, capacity), dtype=np.int8)
        self.count = 0  # points ever written

    @property
    def size(self) -> int:
        return min(self.count, self.capacity)

    def append(self, timestamp: float, values, score, severity) -> None:
        i = self.count % self.capacity
        self.timestamps[i] = timestamp
        self.values[:, i] = values
        self.score[:, i] = score
        self.severity[:, i] = severity
        self.count += 1

    def _order(self, last: int) -> np.ndarray:
        n = min(last, self.size)
        return (np.arange(self.count - n, self.count)) % self.capacity

    def span(self, start: int, length: int) -> np.ndarray | None:
        """Values of points ``start .. start+length-1`` (absolute), None if no longer kept."""
        if start < self.count - self.size or start + length > self.count:
            return None
        return self.values[:, np.arange(start, start + length) % self.capacity]

    def last_values(self, last: int) -> np.ndarray:
        return self.values[:, self._order(last)]

    def last(self, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        order = self._order(last)
        return (
            self.timestamps[order],
            self.values[:, order],
            self.score[:, order],
            self.severity[:, order],
        )


class Engine:
    """N series, bounded history, forecasts and anomaly flags, counters; thread-safe."""

    def __init__(
        self,
        settings: Settings | None = None,
        source: SyntheticSource | None = None,
        forecasts: ForecastService | None = None,
        detector: ZScoreDetector | OnlineDetectors | None = None,
    ):
        self.settings = s = settings or Settings()
        self.source = source or SyntheticSource(
            n_series=s.n_series,
            base_value=s.base_value,
            noise_level=s.noise_level,
            trend=s.trend_enabled,
            seasonality=s.seasonality_enabled,
            season_length=s.season_length,
            anomaly_probability=s.anomaly_probability,
            interval=s.data_generation_interval,
            seed=s.seed,
        )
        self.forecasts = forecasts or ForecastService(
            model_name=s.model_name,
            context_length=s.context_length,
            horizon=s.forecast_horizon,
            use_gpu=s.use_gpu,
            freq=s.freq,
            freq_prefix_tuning=s.freq_prefix_tuning,
            fallback=StatisticalForecaster(
                model=s.fallback_model, horizon=s.forecast_horizon, season_length=s.season_length
            ),
        )
        self.detector = detector or live_detector(s)
        self.n_series = s.n_series
        self.accuracy = AccuracyTracker(
            s.forecast_horizon, level=s.interval_level, window=s.accuracy_window
        )
        self._state_lock = threading.RLock()  # guards every field readers see
        self._step_lock = threading.Lock()  # one tick at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.generation = 0
        self._clear()

    # ------------------------------------------------------------------ lifecycle

    def _clear(self) -> None:
        self.ring = Ring(self.n_series, self.settings.history_limit)
        self.accuracy.reset()
        self.valid_count = np.zeros(self.n_series, dtype=np.int64)
        self.counters = dict.fromkeys(
            (
                "data_points",
                "bad_points",
                "anomaly_count",
                "total_predictions",
                "ticks",
                "errors",
                "true_positives",
                "false_positives",
                "false_negatives",
            ),
            0,
        )
        self.last_inference_ms: float | None = None
        self.last_error: str | None = None
        self.seq = 0
        self.recent_ticks: deque[Tick] = deque(maxlen=RECENT_TICKS)
        self.alerts: deque[Alert] = deque(maxlen=ALERTS_KEPT)
        self.predictions: deque[Prediction] = deque(maxlen=PREDICTIONS_KEPT)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> None:
        """Tick every ``DATA_GENERATION_INTERVAL`` seconds in a background thread."""
        with self._state_lock:
            if self.running:
                return
            self.forecasts.start_loading()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="granite-engine", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._state_lock:
            self._stop.set()

    def reset(self) -> None:
        """Stop, forget all history and counters, restart the source from its seed."""
        self.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()  # a tick already past its stop check must not land after the reset
        with self._step_lock, self._state_lock:
            self.source.reset()
            self.forecasts.fallback.reset()
            self.detector.reset()
            self.generation += 1
            self._clear()

    def _run(self, stop: threading.Event) -> None:
        interval = self.settings.data_generation_interval
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                self.step()
            except Exception as exc:  # the stream keeps running; the error is shown
                log.exception("tick failed")
                with self._state_lock:
                    self.counters["errors"] += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
            next_at = max(next_at + interval, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))

    # ------------------------------------------------------------------ ticks

    def step(self, now: float | None = None) -> Tick:
        """One tick: new points from the source, detection, one batched forecast."""
        with self._step_lock:
            now = time.time() if now is None else now
            backfill = self.settings.context_length if self._needs_backfill() else 0
            # The backfill rides in the first tick so readers stream it like any points,
            # but only the newest point can raise alerts.
            return self._tick(self.source.next_batch(backfill + 1, now=now), live_from=backfill)

    def _needs_backfill(self) -> bool:
        return self.ring.count == 0 and self.settings.backfill

    def ingest(self, batch: Batch) -> Tick:
        """Take points from any source (real feeds): validate, detect, forecast."""
        with self._step_lock:
            return self._tick(batch)

    def _tick(self, batch: Batch, live_from: int = 0) -> Tick:
        if batch.values.shape[0] != self.n_series:
            raise ValueError(f"batch has {batch.values.shape[0]} series, engine has {self.n_series}")
        values, score, severity, alerts = self._ingest(batch, live_from)
        with self._state_lock:
            context = self.ring.last_values(self.settings.context_length)
            n_valid = int(self.valid_count.min())
            start = self.ring.count
        prediction, error = None, None
        if context.shape[1] > 0 and np.isfinite(context).any(axis=1).all():
            try:
                result = self.forecasts.predict(context, n_valid)
            except Exception as exc:  # the points are stored already: the tick still goes out
                log.exception("forecast failed; the tick goes out without one")
                error = f"{type(exc).__name__}: {exc}"
            else:
                prediction = self._prediction(batch.timestamps[-1], result, context, start)
        with self._state_lock:
            if error is not None:
                self.counters["errors"] += 1
                self.last_error = error
            if prediction is not None:
                self.predictions.append(prediction)
                self.counters["total_predictions"] += self.n_series
                self.last_inference_ms = prediction.inference_ms
            self.counters["ticks"] += 1
            self.seq += 1
            tick = Tick(
                self.seq,
                self.generation,
                batch.timestamps,
                values,
                score,
                severity,
                prediction,
                tuple(alerts),
            )
            self.recent_ticks.append(tick)
        return tick

    def _prediction(
        self, last_time: float, result: ForecastResult, context: np.ndarray, start: int
    ) -> Prediction:
        """The forecast with its band; it is kept to be scored when its horizon matures."""
        season = self.settings.season_length
        horizon = result.values.shape[1]
        naive = seasonal_naive(fill_gaps(context), horizon, season)
        with self._state_lock:
            lower, upper = self.accuracy.record(
                start, result.model, result.values, naive, mase_scale(context, season)
            )
        steps = np.arange(1, horizon + 1)
        return Prediction(
            made_at=float(last_time),
            timestamps=last_time + steps * self.settings.data_generation_interval,
            values=result.values,
            model=result.model,
            reason=result.reason,
            inference_ms=result.inference_ms,
            lower=lower,
            upper=upper,
        )

    def _ingest(self, batch: Batch, live_from: int = 0):
        """Validate, score and store ``batch``; points from ``live_from`` on raise alerts."""
        values, bad = coerce_points(batch.values)
        k = values.shape[1]
        score = np.zeros_like(values)
        severity = np.zeros(values.shape, dtype=np.int8)
        alerts: list[Alert] = []
        window_size = self.detector.window_size
        with self._state_lock:
            for j in range(k):
                window = self.ring.last_values(window_size)
                score[:, j], severity[:, j] = self.detector.score(window, values[:, j])
                severity[bad[:, j], j] = 0
                self.ring.append(batch.timestamps[j], values[:, j], score[:, j], severity[:, j])
                if j >= live_from:
                    for i in np.flatnonzero(severity[:, j]):
                        alert = Alert(
                            float(batch.timestamps[j]),
                            int(i),
                            float(values[i, j]),
                            float(score[i, j]),
                            int(severity[i, j]),
                            self.detector.score_label,
                        )
                        alerts.append(alert)
                        self.alerts.append(alert)
            good = ~bad
            self.valid_count += good.sum(axis=1)
            flagged = severity > 0
            self.counters["data_points"] += int(good.sum())
            self.counters["bad_points"] += int(bad.sum())
            self.counters["anomaly_count"] += int(flagged.sum())
            if batch.labels is not None:
                truth = (batch.labels > 0) & good
                self.counters["true_positives"] += int((flagged & truth).sum())
                self.counters["false_positives"] += int((flagged & ~truth).sum())
                self.counters["false_negatives"] += int((~flagged & truth).sum())
            self.accuracy.mature(self.ring.count, self.ring.span)
        return values, score, severity, alerts

    # ------------------------------------------------------------------ readers

    def ticks_since(self, seq: int) -> list[Tick] | None:
        """Ticks after ``seq``; None when some were already dropped (the reader resyncs)."""
        with self._state_lock:
            if seq >= self.seq:
                return []
            ticks = [t for t in self.recent_ticks if t.seq > seq]
            if not ticks or ticks[0].seq != seq + 1:
                return None
            return ticks

    def detection_quality(self) -> dict:
        c = self.counters
        flagged = c["true_positives"] + c["false_positives"]
        actual = c["true_positives"] + c["false_negatives"]
        return {
            "precision": c["true_positives"] / flagged if flagged else None,
            "recall": c["true_positives"] / actual if actual else None,
        }

    def status(self) -> dict:
        """The JSON-ready status (the seed's shape plus model and stream details)."""
        with self._state_lock:
            s = self.settings
            model = self.forecasts.status(int(self.valid_count.min()))
            last = self.predictions[-1] if self.predictions else None
            return {
                "running": self.running,
                **{k: self.counters[k] for k in ("data_points", "anomaly_count", "bad_points")},
                "total_predictions": self.counters["total_predictions"],
                "ticks": self.counters["ticks"],
                "errors": self.counters["errors"],
                "last_error": self.last_error,
                "model_loaded": model["model_loaded"],
                "model_state": model["state"],
                "active_model": last.model if last else model["active_model"],
                "fallback_reason": (last.reason or None) if last else model["fallback_reason"],
                "model": model,
                "last_inference_ms": self.last_inference_ms,
                "detection": self.detection_quality(),
                "detector": {"name": self.detector.name, "score": self.detector.score_label},
                "accuracy": self.accuracy.summary(),
                "n_series": self.n_series,
                "generation": self.generation,
                "config": {
                    "forecast_horizon": s.forecast_horizon,
                    "context_length": s.context_length,
                    "generation_interval": s.data_generation_interval,
                    "history_limit": s.history_limit,
                    "anomaly_window_size": s.anomaly_window_size,
                    "anomaly_threshold_multiplier": s.anomaly_threshold_multiplier,
                    "detector": s.detector,
                    "interval_level": s.interval_level,
                    "n_series": s.n_series,
                },
            }

    def snapshot(self, last: int | None = None) -> Snapshot:
        """Status plus the last ``last`` points of history (all kept points by default)."""
        with self._state_lock:
            timestamps, values, score, severity = self.ring.last(last or self.ring.capacity)
            return Snapshot(
                status=self.status(),
                generation=self.generation,
                seq=self.seq,
                timestamps=timestamps,
                values=values,
                score=score,
                severity=severity,
                predictions=tuple(self.predictions),
                alerts=tuple(self.alerts),
            )
