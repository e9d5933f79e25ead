"""How the engine's state maps onto the store's rows, and back after a restart.

Why a module of its own: the engine only hands each tick's columns here and asks for a
restore at start; what a stored row means (a slot's point, an open slot's point not scored
yet, a checkpoint of the detectors) is decided in one place.

- Every tick writes its slots' points (gaps are no row), a forecast once per horizon (so the
  stored forecasts tile the time axis without overlap), the model that served when it changes,
  and the incidents the tick opened or changed - in one transaction, in engine order.
- A pushed point is written at once into its open slot with severity ``OPEN`` (-1): the push
  is acknowledged after that commit; the tick that closes the slot overwrites the row with the
  score.
- A checkpoint (the detectors' state, counters, accuracy) rides in a tick's transaction every
  ``CHECKPOINT_SECONDS`` or ``HISTORY_LIMIT`` slots, and at a clean stop. A restart loads the
  checkpoint and replays the points stored after it, so the first live scores equal those
  the stream would have given without the restart.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from dataclasses import dataclass, field

import numpy as np

from ..store.store import OPEN, Batch as StoreBatch, Store

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "engine"
MUTES_KEY = "mutes"  # JSON {series: until}, written on every mute/unmute
CHECKPOINT_SECONDS = 60.0  # most wall time between checkpoints of the detectors' state
OK, BAD, GAP = 0, 1, 2  # the engine's flags (engine.core re-exports them)


def point_rows(names, timestamps, values, score, severity, flags) -> list[tuple]:
    """(series, ts, value, score, severity, flag) for every non-gap point of [n, k] columns."""
    rows, cols = np.nonzero(flags != GAP)
    if not len(rows):
        return []
    named = np.asarray(names, dtype=object)[rows]
    return list(zip(
        named.tolist(), np.asarray(timestamps, dtype=float)[cols].tolist(),
        values[rows, cols].tolist(), score[rows, cols].tolist(),
        severity[rows, cols].astype(int).tolist(), flags[rows, cols].astype(int).tolist(),
    ))


@dataclass
class Checkpoint:
    """What a restart cannot recompute from the stored points alone."""

    through: float  # time of the newest closed slot the detector state includes
    names: list[str]
    detector: object
    counters: dict
    valid_count: np.ndarray
    accuracy: dict = field(default_factory=dict)
    saved_at: float = field(default_factory=time.time)


def accuracy_state(tracker) -> dict:
    """The rolling scores and the conformal calibration (pending forecasts are not kept)."""
    bands = tracker.bands
    return {"scores": list(tracker.scores), "scored": tracker.scored,
            "actual": list(bands._actual), "predicted": list(bands._predicted),
            "half_width": bands.half_width}


def restore_accuracy(tracker, state: dict) -> None:
    if not state:
        return
    tracker.scores.extend(state["scores"])
    tracker.scored = state["scored"]
    tracker.bands._actual.extend(state["actual"])
    tracker.bands._predicted.extend(state["predicted"])
    tracker.bands.half_width = state["half_width"]


def memory_copy(engine) -> Store:
    """A throwaway in-memory store holding what the engine has in memory (points, the kept
    forecasts): how ``DATABASE_URL=memory`` still exports through the one export code path."""
    from ..store import open_store

    store = open_store("memory")
    snap = engine.snapshot()
    flags = snap.flag if snap.flag is not None else np.zeros(snap.values.shape, np.int8)
    forecasts = [row for p in snap.predictions
                 for row in forecast_rows(p, snap.names, np.arange(len(p.values)))]
    store.submit(StoreBatch(
        points=point_rows(snap.names, snap.timestamps, snap.values, snap.score, snap.severity,
                          flags), forecasts=forecasts)).result(60)
    return store


def forecast_rows(prediction, names, chosen: np.ndarray) -> list[dict]:
    """Store rows of the forecasts at positions ``chosen`` of ``prediction.values`` (the
    finite ones), named by the engine rows they forecast."""
    rows = prediction.covered()
    lower, upper = prediction.lower, prediction.upper
    return [
        {"series": names[rows[j]], "made_at": prediction.made_at, "model": prediction.model,
         "horizon": prediction.values[j],
         "lower": None if lower is None else lower[j],
         "upper": None if upper is None else upper[j]}
        for j in chosen.tolist()
        if rows[j] < len(names) and np.isfinite(prediction.values[j]).all()]


class Persistence:
    """The engine's link to its store: what each tick writes, and the restore at start."""

    def __init__(self, store: Store, horizon: int, history_limit: int):
        self.store = store
        self.horizon = horizon
        self.history_limit = history_limit
        # per engine row: made_at from which its next forecast is stored (one a horizon)
        self._forecast_due = np.full(0, -np.inf)
        self._model = None  # the model that served at the last stored model run
        self._checkpoint_at = time.monotonic()
        self._slots_since_checkpoint = 0

    # ------------------------------------------------------------------ writes

    def tick(self, engine, tick, flags, step: float):
        """Submit one tick's rows (called under the engine's locks, so in engine order)."""
        rows = point_rows(tick.names, tick.timestamps, tick.values, tick.score,
                          tick.severity, flags)
        batch = StoreBatch(points=rows)
        prediction = tick.prediction
        if prediction is not None:
            covered = prediction.covered()
            if len(covered) and covered.max() >= len(self._forecast_due):
                grow = covered.max() + 1 - len(self._forecast_due)
                self._forecast_due = np.append(self._forecast_due, np.full(grow, -np.inf))
            due = np.flatnonzero(prediction.made_at >= self._forecast_due[covered])
            if len(due):
                self._forecast_due[covered[due]] = prediction.made_at + self.horizon * step
                batch.forecasts = forecast_rows(prediction, tick.names, due)
            if prediction.model != self._model:
                self._model = prediction.model
                batch.model_runs = [{"model": prediction.model, "started": prediction.made_at,
                                     "reason": prediction.reason or None}]
        batch.incidents = [dict(i) for i in getattr(tick, "incidents", ()) or ()]
        self._slots_since_checkpoint += len(tick.timestamps)
        if (time.monotonic() - self._checkpoint_at >= CHECKPOINT_SECONDS
                or self._slots_since_checkpoint >= self.history_limit):
            batch.state = {CHECKPOINT_KEY: self.checkpoint(engine)}
        return self.store.submit(batch)

    def open_points(self, rows: list[tuple]):
        """Pushed points written into their open slots, before they are scored."""
        return self.store.submit(StoreBatch(points=rows))

    def checkpoint(self, engine) -> bytes:
        self._checkpoint_at = time.monotonic()
        self._slots_since_checkpoint = 0
        ring = engine.ring
        through = float(ring.timestamps[(ring.count - 1) % ring.capacity]) if ring.count else -np.inf
        return pickle.dumps(Checkpoint(
            through=through, names=list(engine.names), detector=engine.detector,
            counters=dict(engine.counters), valid_count=engine.valid_count.copy(),
            accuracy=accuracy_state(engine.accuracy)), protocol=pickle.HIGHEST_PROTOCOL)

    def save_mutes(self, until: dict[str, float]):
        """The incident tracker's mutes, written at once (not with the next checkpoint)."""
        return self.store.submit(StoreBatch(state={MUTES_KEY: json.dumps(until).encode()}))

    def load_mutes(self) -> dict[str, float]:
        blob = self.store.load_state(MUTES_KEY)
        try:
            return {} if blob is None else dict(json.loads(blob))
        except ValueError as error:
            log.warning("stored mutes not readable (%s); none restored", error)
            return {}

    def final_checkpoint(self, engine):
        """At a clean stop: the state as it is now (nothing to replay at the next start)."""
        return self.store.submit(StoreBatch(state={CHECKPOINT_KEY: self.checkpoint(engine)}))

    # ------------------------------------------------------------------ restore

    def load_checkpoint(self) -> Checkpoint | None:
        blob = self.store.load_state(CHECKPOINT_KEY)
        if blob is None:
            return None
        try:
            return pickle.loads(blob)
        except Exception as error:  # from another version: replay from the points instead
            log.warning("checkpoint not usable (%s); the detectors replay the stored points",
                        error)
            return None

    def stored(self) -> dict[str, tuple[np.ndarray, ...]]:
        """Each series' newest points: enough for the history and the replay after the
        checkpoint (a checkpoint is at most HISTORY_LIMIT slots and one tick old)."""
        return self.store.recent(self.history_limit)
