"""The streaming engine: bounded per-series history, one forecast and detection per tick.

Plain Python and numpy. ``step()`` runs one tick synchronously (tests, notebooks,
benchmarks); ``start()`` runs ticks in a background thread every
``DATA_GENERATION_INTERVAL`` seconds, so model work never blocks a UI event loop. Readers
(dashboard sessions, REST) take ``snapshot()`` or ``ticks_since(seq)``; both are cheap and
never wait for a forecast to finish.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import deque

import numpy as np

from .accuracy import AccuracyTracker, mase_scale
from .persistence import OPEN, Persistence, restore_accuracy
from .records import Alert, IngestResult, Prediction, Snapshot, Tick, iso
from .ring import BAD, GAP, OK, Ring, coerce_points
from ..detection.incidents import FlaggedPoint, IncidentTracker
from ..detection.live import (
    OnlineDetectors,
    ZScoreDetector,
    configuration,
    detector_season,
    live_detector,
)
from ..forecasting.context import fill_gaps
from ..forecasting.selection import seasonal_naive
from ..forecasting.service import ForecastResult, ForecastService
from ..forecasting.statistical import StatisticalForecaster
from ..forecasting.ttm import tsfm_if_imported
from ..settings import Settings
from ..sources.points import Points
from ..sources import open_source
from ..sources.replay import ReplaySource
from ..sources.synthetic import Batch

log = logging.getLogger(__name__)

RECENT_TICKS = 256  # ticks kept for readers that poll (a slower reader resyncs from history)
ALERTS_KEPT = 200
TRAIN_HISTORY_SLOTS = 8192  # slots per series the trainer reads from a store (memory: fewer)
PREDICTIONS_KEPT = 10
CATCH_UP_TICKS = 30  # ticks the stream thread may run late and still catch up on


def _max_or_none(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else None


def _settings_for(source, settings: Settings) -> Settings:
    """``settings`` for points from ``source``: a replayed file's own season, unless set."""
    return settings.for_replay(source.step) if isinstance(source, ReplaySource) else settings


def _fallback_for(s: Settings) -> StatisticalForecaster:
    return StatisticalForecaster(model=s.fallback_model, horizon=s.forecast_horizon,
                                 season_length=s.season_length)


class Engine:
    """Named series on one regular time grid, bounded history, forecasts, flags; thread-safe.

    Time grid: every column of the history is one slot, one per ``DATA_GENERATION_INTERVAL``
    (or the replayed file's own step). Points come two ways:

    - from the source each tick (``step``): a ``Batch`` of whole slots (synthetic, a file
      replay; the file's own timestamps), or ``Points`` (Prometheus);
    - pushed (``ingest_points``, ``/api/ingest``), whatever the source.

    Rules for named points (documented in the README, tested in tests/test_grid.py):

    - a point belongs to the slot nearest its timestamp; several points of a series in one
      slot: the last one wins;
    - the newest slots stay open: a slot is closed (scored, forecast) once a point at least
      one step newer arrives, or at a tick once the clock is a step past its end; a slot
      with no point of a series is a gap for that series (drawn as a gap, never scored, not a
      bad point; filled in the model's context like bad points);
    - late points (for a slot already closed and still in memory) are stored into their slot
      (last wins) but not scored, since the online detectors have moved on; older ones, and
      points more than ``MAX_AHEAD`` in the future of the clock, are refused with a reason;
    - a new name makes a new series, up to ``MAX_SERIES``; past it, refused with a reason and
      counted (``refused_series`` in ``/api/status``).
    """

    MAX_AHEAD = 86_400.0  # seconds a pushed point may be ahead of the clock (clock skew)

    def __init__(
        self,
        settings: Settings | None = None,
        source=None,
        forecasts: ForecastService | None = None,
        detector: ZScoreDetector | OnlineDetectors | None = None,
        store=None,
        notifier=None,
    ):
        """``store``: a ``granite_panel.store.Store`` to write every tick to and to resume
        from (None: nothing is kept, as in notebooks and tests that want memory only).
        ``notifier``: a ``granite_panel.notify.Dispatcher`` each tick's incident events are
        handed to (it only queues them: the tick never waits on a webhook)."""
        s = settings or Settings()
        self._configured = s  # before a replayed file's season (``replace_source``)
        self.source = source or open_source(s)
        self.settings = s = _settings_for(self.source, s)
        self.forecasts = forecasts or ForecastService(
            model_name=s.model_name,
            context_length=s.context_length,
            horizon=s.forecast_horizon,
            use_gpu=s.use_gpu,
            freq=s.freq,
            freq_prefix_tuning=s.freq_prefix_tuning,
            fallback=_fallback_for(s),
        )
        self._initial_names = tuple(getattr(self.source, "series_names", ()))
        self.detector = detector or live_detector(s, len(self._initial_names))
        self.accuracy = AccuracyTracker(
            s.forecast_horizon, level=s.interval_level, window=s.accuracy_window,
            share=s.forecast_every,
        )
        self.incidents = IncidentTracker(gap=s.incident_gap)  # thread-safe on its own
        self._state_lock = threading.RLock()  # guards every field readers see
        self._step_lock = threading.Lock()  # one tick at a time
        self._listeners: tuple = ()  # called after each tick, start, stop and reset
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.trainer = None  # forecasting.trainer.Trainer once use_trained_models(train=True)
        self.generation = 0
        self.store = store
        self.notifier = notifier
        self.persistence = (
            Persistence(store, s.forecast_horizon, s.history_limit)
            if store is not None and not store.read_only else None
        )
        self._last_commit = None  # Future of the newest submitted write
        self.restored: dict | None = None  # what the restart read back (None: no store)
        tsfm_if_imported()  # start importing the conformal processor's package now, off the tick
        self._clear()
        if self.persistence is not None:
            self._restore()
            self.incidents.on_mutes_changed = self.persistence.save_mutes

    @property
    def step_seconds(self) -> float:
        """Width of one slot of the grid: the source's own step, else the tick interval."""
        return float(getattr(self.source, "step", None) or self.settings.data_generation_interval)

    @property
    def n_series(self) -> int:
        return len(self.names)

    # ------------------------------------------------------------------ lifecycle

    def _clear(self) -> None:
        self.names: list[str] = list(self._initial_names)
        self.rows: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.ring = Ring(len(self.names), self.settings.history_limit)
        self._origin = 0.0  # time of slot 0, set by the first point
        self._pending: dict[int, dict[int, float]] = {}  # open slot -> row -> value
        self._pending_bad: set[tuple[int, int]] = set()
        # per row: wall-clock time its newest point arrived (NO_DATA_AFTER), NaN before one
        # arrives; silence is counted from the stream's start for those, so a feed dead at
        # start (or after a restart) is noticed too, and not taken for back
        self._cleared_at = time.time()
        self.heard_at = np.full(len(self.names), np.nan)
        self.accuracy.reset()
        self.incidents.reset()
        self.valid_count = np.zeros(len(self.names), dtype=np.int64)
        self.counters = dict.fromkeys(
            (
                "data_points",
                "bad_points",
                "gap_points",
                "late_points",
                "refused_points",
                "refused_series",
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
        self.last_refusal: str | None = None
        self._refused_names: set[str] = set()  # names refused past MAX_SERIES, counted once
        self.last_inference_ms: float | None = None
        self.last_error: str | None = None
        self.seq = 0
        self.recent_ticks: deque[Tick] = deque(maxlen=RECENT_TICKS)
        self.alerts: deque[Alert] = deque(maxlen=ALERTS_KEPT)
        # enough predictions that every series' newest forecast is among them
        self.predictions: deque[Prediction] = deque(
            maxlen=max(PREDICTIONS_KEPT, self.settings.forecast_every))
        self.naive_mask = np.zeros(0, dtype=bool)  # series that fell back to seasonal naive
        self.forecast_made_at = np.full(len(self.names), np.nan)  # per series: newest forecast
        self._forecast_turn = 0  # which share of the series the next tick forecasts

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
        self._announce()

    def stop(self) -> None:
        with self._state_lock:
            self._stop.set()
        if self.trainer is not None:
            self.trainer.cancel(timeout=0)  # Stop cancels training too (it ends at its next step)
        self._announce()

    # ------------------------------------------------------------------ listeners

    def add_listener(self, callback) -> None:
        """Call ``callback()`` after every tick, start, stop and reset, so a viewer can
        schedule its update at once instead of waiting for its next poll. It runs on the
        thread that ticked, so it must only schedule work and return."""
        with self._state_lock:
            self._listeners = (*self._listeners, callback)

    def remove_listener(self, callback) -> None:
        with self._state_lock:
            # ==, not is: a bound method is a new object at each access
            self._listeners = tuple(c for c in self._listeners if c != callback)

    def _announce(self) -> None:
        for callback in self._listeners:
            try:
                callback()
            except Exception:  # a viewer's trouble never stops the stream
                log.exception("an engine listener failed")

    def use_trained_models(self, train: bool = True) -> None:
        """Serve the model promoted under MODELS_DIR; with ``train``, train new ones in the
        background (serve with TRAINING=auto). Call before the model starts loading."""
        from ..forecasting.trainer import live_trainer

        if self.forecasts.models_dir is None:
            self.forecasts.models_dir = self.settings.models_dir
        if train and self.trainer is None:
            # The per-tick readiness check reads memory; only a run reads the store.
            self.trainer = live_trainer(
                self.settings, self.forecasts, self.history_for_training, self.step_seconds,
                poll_history=self.memory_history,
            )

    def memory_history(self) -> np.ndarray:
        """[n_series, T] values of the slots kept in memory (NaN gaps), oldest first."""
        with self._state_lock:
            return self.ring.last_values(self.ring.capacity).copy()

    def history_for_training(self) -> np.ndarray:
        """[n_series, T] values (NaN gaps), oldest first: what the trainer learns from.

        The in-memory history (HISTORY_LIMIT slots), or with a store its newest
        ``TRAIN_HISTORY_SLOTS`` slots per series when that is longer (a TTM trained from
        scratch on ETTh1 was refused with 2,048 points and promoted with 4,096)."""
        with self._state_lock:
            memory = self.memory_history()
            count, newest = self.ring.count, self._slot_time(self.ring.count - 1)
        if self.store is None or count == 0 or TRAIN_HISTORY_SLOTS <= memory.shape[1]:
            return memory
        stored = self.store.recent(TRAIN_HISTORY_SLOTS)
        step = self.step_seconds
        grid = newest - step * np.arange(TRAIN_HISTORY_SLOTS - 1, -1, -1)
        with self._state_lock:
            values = self._grid_columns(stored, grid)[0][: memory.shape[0]]
        first = np.flatnonzero(np.isfinite(values).any(axis=0))
        return values[:, first[0]:] if len(first) else memory

    def join(self, timeout: float | None = None) -> None:
        """Wait for the ticking thread to end (after ``stop``, or a replay that finished)."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop, checkpoint the detectors, commit what is queued and release the store."""
        self.stop()
        self.join(timeout)
        if self.notifier is not None:  # before the store: its last ledger write lands
            self.notifier.close()
        if self.persistence is not None:
            with self._step_lock, self._state_lock:
                self.persistence.final_checkpoint(self)
        if self.store is not None:
            self.store.close(timeout)

    def wait_stored(self, timeout: float | None = None) -> None:
        """Block until everything submitted to the store so far is committed (tests, CLI)."""
        if self.store is not None and not self.store.read_only:
            self.store.flush(timeout)

    def reset(self) -> None:
        """Stop, forget all history and counters, restart the source from its beginning.

        The store keeps what it has (acknowledged points are never deleted by a button);
        points the restarted source writes again at the same times replace the old ones.
        """
        self.stop()
        self.join()  # a tick already past its stop check must not land after the reset
        if self.trainer is not None:
            self.trainer.reset()  # cancels a run and waits for it to end
        with self._step_lock, self._state_lock:
            getattr(self.source, "reset", lambda: None)()
            self.forecasts.fallback.reset()
            self.detector.reset(len(self._initial_names))
            self.generation += 1
            self._clear()
        self._announce()

    def replace_source(self, source) -> None:
        """Take points from ``source`` from now on (a file opened in the dashboard): the
        stream stops and memory is cleared as by Reset, then the settings that follow a
        replayed file (its season) follow the new one, with detectors built for its series.
        The store keeps what it has; after a restart the configured SOURCE runs again."""
        self.stop()
        self.join()
        if self.trainer is not None:
            self.trainer.reset()
        with self._step_lock, self._state_lock:
            self.source = source
            self.settings = s = _settings_for(source, self._configured)
            self.forecasts.fallback = _fallback_for(s)
            self._initial_names = tuple(getattr(source, "series_names", ()))
            self.detector = live_detector(s, len(self._initial_names))
            self.generation += 1
            self._clear()
        log.info("now replaying %s (%d series)", getattr(source, "label", source),
                 len(self._initial_names))
        self._announce()

    def _run(self, stop: threading.Event) -> None:
        interval = getattr(self.source, "tick_seconds", self.settings.data_generation_interval)
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                self.step()
            except Exception as exc:  # the stream keeps running; the error is shown
                log.exception("tick failed")
                with self._state_lock:
                    self.counters["errors"] += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
            if getattr(self.source, "finished", False):
                with self._state_lock:
                    self._close_through(max(self._pending, default=-1), time.time())
                break
            if not interval:
                continue
            # Keep the schedule: after a slow tick the next ones start at once until the
            # stream is back on time (ticks then stay on the grid of slots); a stall longer
            # than CATCH_UP_TICKS intervals (a suspended host) restarts the schedule instead.
            next_at += interval
            if time.monotonic() - next_at > CATCH_UP_TICKS * interval:
                log.warning("engine %.1f s behind schedule: restarting it",
                            time.monotonic() - next_at)
                next_at = time.monotonic()
            stop.wait(max(0.0, next_at - time.monotonic()))

    # ------------------------------------------------------------------ ticks

    def step(self, now: float | None = None) -> Tick | None:
        """One tick: new points from the source, detection, one batched forecast."""
        with self._step_lock:
            now = time.time() if now is None else now
            if self.ring.count == 0 and not self._pending and self.settings.backfill:
                backfill = self.source.backfill(now, self.settings.context_length)
            else:
                backfill = None
            new = self.source.poll(now)
            if isinstance(new, Batch):
                # The backfill rides in the first tick so readers stream it like any
                # points, but only the newest points can raise alerts.
                live_from = 0
                if backfill is not None and backfill.values.shape[1]:
                    live_from = backfill.values.shape[1]
                    new = Batch.concat([backfill, new])
                if not new.values.shape[1]:
                    return None  # nothing new (a replay that has finished): no tick
                return self._tick(new, live_from=live_from)
            with self._state_lock:
                if backfill is not None and len(backfill):
                    self._place(backfill, now)
                    self._close_through(max(self._pending, default=-1), now, live=False)
                self._place(new, now)
                tick = self._close_due(now)
            return self._watch_silence(now) or tick

    def ingest(self, batch: Batch) -> Tick:
        """Take whole slots of every series (a Batch): validate, detect, forecast."""
        with self._step_lock:
            return self._tick(batch)

    # ------------------------------------------------------------------ silent series

    def _heard(self, rows: np.ndarray, now: float) -> None:
        """Rows a point of which just arrived (any point: a bad one still says the feed is
        alive); closes their ``no data`` incidents on the next watch."""
        self._grow_heard()
        if len(rows):
            self.heard_at[rows] = now

    def _grow_heard(self) -> None:
        """``heard_at`` for rows made since (restored ones): no point has arrived yet."""
        if len(self.heard_at) < self.n_series:
            grow = self.n_series - len(self.heard_at)
            self.heard_at = np.append(self.heard_at, np.full(grow, np.nan))

    def _watch_silence(self, now: float) -> Tick | None:
        """NO_DATA_AFTER: open a ``no data`` incident for each series not heard from for
        longer, close it once the series is heard again; the changes go out as a tick of
        their own (no slots), so a feed that went wholly silent, which closes no slot, is
        still stored, notified and shown."""
        after = self.settings.no_data_after
        if not after > 0:
            return None
        with self._state_lock:
            self._grow_heard()
            heard = self.heard_at
            last = np.where(np.isnan(heard), self._cleared_at, heard)
            names = self.names
            silent = self.incidents.silent()
            quiet = np.flatnonzero(last < now - after)
            newest = {names[row]: (int(row), float(last[row])) for row in quiet.tolist()
                      if names[row] not in silent}
            back = {name: float(heard[self.rows[name]]) for name in silent
                    if name in self.rows and heard[self.rows[name]] >= now - after}
        step = self.step_seconds
        opened = self.incidents.no_data(newest, now, after, step) if newest else None
        closed = self.incidents.data_returned(back, step) if back else None
        changes = [c for c in (closed, opened) if c is not None and c.incidents]
        if not changes:
            return None
        return self._incident_tick(
            tuple(i for c in changes for i in c.incidents),
            tuple(e for c in changes for e in c.events), now)

    def _incident_tick(self, incidents: tuple, events: tuple, now: float) -> Tick:
        """A tick that carries incident changes and no slots: stored, sent and shown as a
        tick's are."""
        n = self.n_series
        no_slots = np.empty((n, 0))
        with self._state_lock:
            self.seq += 1
            tick = Tick(self.seq, self.generation, np.empty(0), no_slots, no_slots.copy(),
                        np.empty((n, 0), dtype=np.int8), None, (), tuple(self.names),
                        incidents, events, now)
            self.recent_ticks.append(tick)
            if self.persistence is not None:
                self._last_commit = self.persistence.tick(
                    self, tick, np.empty((n, 0), dtype=np.int8), self.step_seconds)
        self._notify(tick)
        self._announce()
        return tick

    def _notify(self, tick: Tick) -> None:
        """Hand a tick's incident events to the notifier, which only queues them (bounded,
        dropping the oldest): never blocks the tick, and its trouble never stops it."""
        if self.notifier is not None and tick.incident_events:
            try:
                self.notifier.submit(tick.incident_events)
            except Exception:
                log.exception("incident events not handed to the notifier")

    def ingest_points(self, points: Points, now: float | None = None) -> IngestResult:
        """Pushed named points: place them on the grid, close the slots they complete."""
        now = time.time() if now is None else now
        with self._step_lock, self._state_lock:
            if self.persistence is None:
                result = self._place(points, now)
            else:
                result, rows = self._place(points, now, keep_rows=True)
                # Written before the slots close, so the scored rows of the closing tick land
                # after (and over) them; the push is acknowledged once this commits.
                committed = self.persistence.open_points(rows)
                result = dataclasses.replace(result, committed=committed)
            self._close_due(now)
            return result

    def newest_times(self, names) -> dict[str, float]:
        """{name: time of the newest slot holding a point of it} for the ``names`` the stream
        has (open slots first, then the kept history); what a pushed clock time of the hour
        that the end of summer time repeats is placed after (``?timezone=``)."""
        newest = {}
        with self._state_lock:
            rows = {name: self.rows[name] for name in names if name in self.rows}
            times, flags = self.ring.flags(np.array(list(rows.values()), dtype=int))
            for (name, row), row_flags in zip(rows.items(), flags):
                open_slots = [slot for slot, held in self._pending.items() if row in held]
                held = np.flatnonzero(row_flags != GAP)
                if open_slots:
                    newest[name] = self._slot_time(max(open_slots))
                elif len(held):
                    newest[name] = float(times[held[-1]])
        return newest

    def flush(self, now: float | None = None) -> Tick | None:
        """Close every open slot now (end of a push, tests, notebooks)."""
        with self._step_lock, self._state_lock:
            return self._close_through(max(self._pending, default=-1), now or time.time())

    # ------------------------------------------------------------------ the grid

    def _row(self, name: str) -> int | None:
        """The row of ``name``, made on first sight; None past MAX_SERIES (counted once a name)."""
        row = self.rows.get(name)
        if row is not None:
            return row
        if len(self.names) >= self.settings.max_series:
            if name not in self._refused_names:
                self._refused_names.add(name)
                self.counters["refused_series"] += 1
            self.last_refusal = (
                f"series {name!r} refused: MAX_SERIES={self.settings.max_series} reached"
            )
            return None
        row = len(self.names)
        self.names.append(name)
        self.rows[name] = row
        if self.ring.rows <= row:
            self.ring.add_rows(row + 1 - self.ring.rows)
        self.valid_count = np.append(self.valid_count, 0)
        self.detector.grow(1)
        return row

    def _slot_time(self, slot: int) -> float:
        """Time of an open (future) slot, counted from the newest closed one."""
        if self.ring.count == 0:
            return self._origin + slot * self.step_seconds
        newest = self.ring.timestamps[(self.ring.count - 1) % self.ring.capacity]
        return float(newest + (slot - self.ring.count + 1) * self.step_seconds)

    def _place(self, points: Points, now: float, keep_rows: bool = False):
        """Put named points into open slots, or late into kept ones; count the refused.

        With ``keep_rows`` also returns the placed points as store rows (open ones with
        severity ``OPEN``), else the IngestResult alone.
        """
        step = self.step_seconds
        values, bad = coerce_points(points.values)
        stamps = np.asarray(points.timestamps, dtype=float)
        refused, reasons, new_series = 0, {}, []

        def refuse(reason: str, n: int = 1) -> None:
            nonlocal refused
            refused += n
            if len(reasons) < 10:
                reasons.setdefault(reason, None)

        if len(points) and self.ring.count == 0 and not self._pending:
            finite = stamps[np.isfinite(stamps)]
            if len(finite):
                self._origin = float(finite.min())
        if self.ring.count:
            newest = self._slot_time(self.ring.count - 1)
            ahead = np.rint((stamps - newest) / step)
            slots = np.where(ahead >= 1, self.ring.count - 1 + ahead, -1).astype(np.int64)
            kept = self.ring.slots_of(stamps, step / 2)
        elif len(points):
            slots = np.rint((stamps - self._origin) / step).astype(np.int64)
            kept = np.full(len(points), -1)
        else:
            slots = kept = np.empty(0, dtype=np.int64)
        finite = np.isfinite(stamps)
        if not finite.all():
            refuse("a timestamp is not a finite number", int((~finite).sum()))
        far = finite & (stamps > now + self.MAX_AHEAD)
        if far.any():
            first = iso(float(stamps[far][0]))
            refuse(f"timestamp {first} is more than {self.MAX_AHEAD:.0f} s ahead of the clock",
                   int(far.sum()))
        valid = finite & ~far
        # the grid is shared, so whether a point has a slot does not depend on its series
        has_slot = valid & ((slots >= 0) | (kept >= 0))
        rows = np.full(len(points), -1, dtype=np.int64)
        known: dict[str, int] = {}
        names = points.series
        for j in np.flatnonzero(has_slot).tolist():  # one dictionary look-up per point
            name = names[j]
            row = known.get(name)
            if row is None:  # a name becomes a series only with a point to keep
                is_new = name not in self.rows
                row = self._row(name)
                if row is None:
                    row = -1
                    refuse(self.last_refusal, 0)
                elif is_new:
                    new_series.append(name)
                known[name] = row
            rows[j] = row
        placed = has_slot & (rows >= 0)
        refused += int((has_slot & (rows < 0)).sum())
        self._heard(rows[placed], now)
        into_open = placed & (slots >= 0)
        into_kept = placed & (slots < 0)
        sent_again = np.zeros_like(into_kept)
        if into_kept.any():  # a point sent again (a retry) changes nothing: its score stays
            where = np.maximum(kept, 0) % self.ring.capacity
            held = self.ring.values[np.maximum(rows, 0), where]
            flag = self.ring.flag[np.maximum(rows, 0), where]
            sent_again = into_kept & np.where(bad, flag == BAD, (flag == OK) & (held == values))
            into_kept &= ~sent_again
        too_old = valid & ~has_slot
        if too_old.any():
            refuse("older than the history kept in memory (HISTORY_LIMIT)", int(too_old.sum()))
        pending, pending_bad = self._pending, self._pending_bad
        for slot, row, value, is_bad in zip(
            slots[into_open].tolist(), rows[into_open].tolist(),
            values[into_open].tolist(), bad[into_open].tolist(),
        ):  # in order, so the last point of a series in a slot wins
            open_slot = pending.get(slot)
            if open_slot is None:
                open_slot = pending[slot] = {}
            open_slot[row] = value
            if is_bad:
                pending_bad.add((slot, row))
            elif pending_bad:
                pending_bad.discard((slot, row))
        for slot, row, value, is_bad in zip(
            kept[into_kept].tolist(), rows[into_kept].tolist(),
            values[into_kept].tolist(), bad[into_kept].tolist(),
        ):
            self._write_late(slot, row, value, is_bad)
        late = int(into_kept.sum())
        accepted = int(into_open.sum()) + late + int(sent_again.sum())
        n_bad = int(bad[into_open | into_kept | sent_again].sum())
        self.counters["refused_points"] += refused
        result = IngestResult(accepted, n_bad, late, refused, tuple(new_series), tuple(reasons))
        if not keep_rows:
            return result
        return result, self._placed_rows(points, values, bad, slots, kept, into_open, into_kept)

    def _placed_rows(self, points, values, bad, slots, kept, into_open, into_kept):
        """Store rows of the points just placed: (series, slot time, value, score, severity,
        flag); the last point of a series in a slot wins in the store as on the grid."""
        step, ring = self.step_seconds, self.ring
        if ring.count:
            newest = float(ring.timestamps[(ring.count - 1) % ring.capacity])
            open_times = newest + (slots - ring.count + 1) * step
        else:
            open_times = self._origin + slots * step
        times = np.where(into_open, open_times, ring.timestamps[np.maximum(kept, 0) % ring.capacity])
        chosen = np.flatnonzero(into_open | into_kept)
        names = np.asarray(points.series, dtype=object)[chosen].tolist()
        return list(zip(
            names, times[chosen].tolist(), np.where(bad, np.nan, values)[chosen].tolist(),
            np.where(into_open, np.nan, 0.0)[chosen].tolist(),
            np.where(into_open, OPEN, 0)[chosen].tolist(),
            np.where(bad, BAD, OK)[chosen].tolist(),
        ))

    def _write_late(self, slot: int, row: int, value: float, bad: bool) -> None:
        i = slot % self.ring.capacity
        was = self.ring.flag[row, i]
        self.ring.values[row, i] = value
        self.ring.flag[row, i] = BAD if bad else OK
        self.ring.score[row, i] = 0.0
        self.ring.severity[row, i] = 0
        self.counters["late_points"] += 1
        if was == GAP:
            self.counters["gap_points"] -= 1
        if not bad and was != OK:
            self.valid_count[row] += 1
            self.counters["data_points"] += 1
        if bad and was != BAD:
            self.counters["bad_points"] += 1

    def _close_due(self, now: float) -> Tick | None:
        """Close the open slots that are complete: a newer one has a point, or time passed."""
        if not self._pending:
            return None
        newest_open = max(self._pending)
        past = self._slot_time(newest_open) + self.step_seconds <= now
        return self._close_through(newest_open if past else newest_open - 1, now)

    def _close_through(self, last_slot: int, now: float, live: bool = True) -> Tick | None:
        """Close open slots up to ``last_slot`` into one tick (gaps where no point came)."""
        if last_slot < self.ring.count:
            return None
        first = self.ring.count
        k = last_slot - first + 1
        if k > self.ring.capacity:  # a long silence: slots that would scroll out at once
            skip = min(k - self.ring.capacity, min(self._pending) - first)
            if skip > 0:
                self._skip(skip)
                first, k = first + skip, k - skip
        timestamps = self._slot_time(first) + np.arange(k) * self.step_seconds
        values = np.full((self.n_series, k), np.nan)
        flags = np.full((self.n_series, k), GAP, dtype=np.int8)
        self._take_pending(values, flags, first, last_slot)
        return self._tick(
            Batch(timestamps=timestamps, values=values), live_from=0 if live else k, flags=flags
        )

    def _take_pending(self, values, flags, first: int, last_slot: int) -> None:
        """Move the pushed points of slots ``first..last_slot`` into [n_series, k] columns."""
        for slot in [s for s in self._pending if s <= last_slot]:
            for row, value in self._pending.pop(slot).items():
                values[row, slot - first] = value
                flags[row, slot - first] = BAD if (slot, row) in self._pending_bad else OK
                self._pending_bad.discard((slot, row))

    def _skip(self, n: int) -> None:
        """Advance the grid ``n`` empty slots without scoring them (only the last are kept)."""
        step, rows = self.step_seconds, self.ring.rows
        k = min(n, self.ring.capacity)
        newest = self._slot_time(self.ring.count - 1)
        stamps = newest + step * np.arange(n - k + 1, n + 1)
        self.ring.count += n - k
        self.ring.append(
            stamps,
            np.full((rows, k), np.nan),
            np.zeros((rows, k)),
            np.zeros((rows, k), dtype=np.int8),
            np.full((rows, k), GAP, dtype=np.int8),
        )

    def _forecast_rows(self, n: int) -> np.ndarray | None:
        """The rows this tick forecasts: every FORECAST_EVERY-th row, a different share each
        tick (round robin), so each series is forecast every FORECAST_EVERY ticks, plus the
        series with points that have no forecast yet (the first tick forecasts all, a new
        series is forecast at once); None: all of them (FORECAST_EVERY=1)."""
        every = self.settings.forecast_every
        if every <= 1:
            return None
        turn = self._forecast_turn % every
        self._forecast_turn += 1
        made = np.full(n, np.nan)
        made[: min(n, len(self.forecast_made_at))] = self.forecast_made_at[:n]
        never = np.isnan(made) & (self.valid_count[:n] > 0)
        never[turn::every] = True
        return np.flatnonzero(never)

    def _tick(self, batch: Batch, live_from: int = 0, flags: np.ndarray | None = None) -> Tick:
        received_at = time.time()
        values, score, severity, alerts, flags, incidents = self._ingest(batch, live_from, flags)
        with self._state_lock:
            n = self.n_series
            rows = self._forecast_rows(n)
            context = self.ring.last_values(self.settings.context_length, rows)
            n_valid = int(self.valid_count.max()) if len(self.valid_count) else 0
            start = self.ring.count
            serving = self.predictions[-1].model if self.predictions else ""
            self.naive_mask = self.accuracy.naive_better(n, serving)
            prefer_naive = self.naive_mask if rows is None else self.naive_mask[rows]
        prediction, error = None, None
        has_data = np.isfinite(context).any(axis=1) if context.size else np.zeros(0, bool)
        if context.shape[1] > 0 and has_data.any():
            try:
                # series with no point in the context yet get no forecast (NaN)
                result = self.forecasts.predict(
                    np.where(has_data[:, None], context, 0.0), n_valid, prefer_naive=prefer_naive,
                    rows=rows,
                )
            except Exception as exc:  # the points are stored already: the tick still goes out
                log.exception("forecast failed; the tick goes out without one")
                error = f"{type(exc).__name__}: {exc}"
            else:
                result.values[~has_data] = np.nan
                prediction = self._prediction(
                    batch.timestamps[-1], result, context, start, rows, n)
        with self._state_lock:
            if error is not None:
                self.counters["errors"] += 1
                self.last_error = error
            if prediction is not None:
                self.predictions.append(prediction)
                self.counters["total_predictions"] += int(has_data.sum())
                self.last_inference_ms = prediction.inference_ms
                made = self.forecast_made_at
                if len(made) < n:
                    made = self.forecast_made_at = np.append(made, np.full(n - len(made), np.nan))
                made[prediction.covered()[has_data]] = prediction.made_at
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
                tuple(self.names),
                incidents.incidents,
                incidents.events,
                received_at,
            )
            self.recent_ticks.append(tick)
            if self.persistence is not None:  # under the lock: the store sees engine order
                self._last_commit = self.persistence.tick(self, tick, flags, self.step_seconds)
        self._notify(tick)
        if self.trainer is not None:
            self.trainer.maybe_start(self.settings.retrain_hours * 3600, self._live_ratio())
        self._announce()
        return tick

    def _live_ratio(self) -> float | None:
        """The serving model's live MASE over seasonal naive's (>= 1: no better than naive)."""
        with self._state_lock:
            summary = self.accuracy.summary()
        model, naive = summary["model"]["mase"], summary["seasonal_naive"]["mase"]
        return model / naive if model is not None and naive else None

    def _prediction(
        self, last_time: float, result: ForecastResult, context: np.ndarray, start: int,
        rows: np.ndarray | None = None, n_series: int | None = None,
    ) -> Prediction:
        """The forecast of ``rows`` (None: all) with its band; kept to be scored when its
        horizon matures."""
        season = self.settings.season_length
        horizon = result.values.shape[1]
        naive = seasonal_naive(fill_gaps(context), horizon, season)
        with self._state_lock:
            lower, upper = self.accuracy.record(
                start, result.model, result.values, naive, mase_scale(context, season),
                result.own, rows=rows, n_series=n_series,
            )
        steps = np.arange(1, horizon + 1)
        return Prediction(
            made_at=float(last_time),
            timestamps=last_time + steps * self.step_seconds,
            values=result.values,
            model=result.model,
            reason=result.reason,
            inference_ms=result.inference_ms,
            lower=lower,
            upper=upper,
            rows=rows,
        )

    def _batch_rows(self, batch: Batch) -> tuple[Batch, np.ndarray]:
        """A source's whole slots as engine rows, with pushed points of the same slots merged.

        Returns the batch as [n_series, k] and its flags: a series the batch does not carry
        and nobody pushed to has a gap in those slots.
        """
        names = batch.series or self._initial_names
        if len(names) != batch.values.shape[0]:
            raise ValueError(
                f"batch has {batch.values.shape[0]} series, the source names {len(names)}"
            )
        k = len(batch.timestamps)
        values, bad = coerce_points(batch.values)
        out = np.full((self.n_series, k), np.nan)
        flags = np.full((self.n_series, k), GAP, dtype=np.int8)
        labels = None if batch.labels is None else np.zeros((self.n_series, k), batch.labels.dtype)
        if names is self._initial_names or list(names) == self.names[: len(names)]:
            # the source's series are the first rows, in order (a synthetic stream, a file):
            # whole arrays, no per-series look-up
            m = len(names)
            out[:m] = values
            flags[:m] = np.where(bad, BAD, OK)
            if batch.missing is not None:
                flags[:m][np.asarray(batch.missing, dtype=bool)] = GAP
            if labels is not None:
                labels[:m] = batch.labels
        else:
            for name in names:
                self._row(name)  # new names; None past MAX_SERIES (counted below)
            if self.n_series > out.shape[0]:
                grow = self.n_series - out.shape[0]
                out = np.vstack([out, np.full((grow, k), np.nan)])
                flags = np.vstack([flags, np.full((grow, k), GAP, dtype=np.int8)])
                if labels is not None:
                    labels = np.vstack([labels, np.zeros((grow, k), labels.dtype)])
            for j, name in enumerate(names):
                row = self.rows.get(name)
                if row is None:  # refused past MAX_SERIES (counted by _row)
                    continue
                out[row], flags[row] = values[j], np.where(bad[j], BAD, OK)
                if batch.missing is not None:
                    flags[row, batch.missing[j]] = GAP
                if labels is not None:
                    labels[row] = batch.labels[j]
        self._take_pending(out, flags, self.ring.count, self.ring.count + k - 1)
        return Batch(timestamps=batch.timestamps, values=out, labels=labels), flags

    def _ingest(self, batch: Batch, live_from: int = 0, flags: np.ndarray | None = None):
        """Validate, score and store ``batch``; points from ``live_from`` on raise alerts."""
        with self._state_lock:
            if flags is None:
                batch, flags = self._batch_rows(batch)
            values, _ = coerce_points(batch.values)
            bad, gap = flags == BAD, flags == GAP
            window_size = self.detector.window_size
            if hasattr(self.detector, "score_block"):  # online detectors: one call per series
                score, severity = self.detector.score_block(values)
                severity[bad | gap] = 0
            else:  # the z-score reads its window from the history
                score, severity = self.detector.score_many(
                    self.ring.last_values(window_size), values
                )
            severity[bad | gap] = 0
            score[bad | gap] = 0.0
            self.ring.append(batch.timestamps, values, score, severity, flags)
            alerts: list[Alert] = []
            flagged_points: list[FlaggedPoint] = []
            rows, cols = np.nonzero(severity[:, live_from:])
            for i, j in sorted(zip(cols.tolist(), rows.tolist())):
                i, j = j, i + live_from
                alert = Alert(
                    float(batch.timestamps[j]),
                    int(i),
                    float(values[i, j]),
                    float(score[i, j]),
                    int(severity[i, j]),
                    self.detector.score_label,
                    self.names[i],
                )
                alerts.append(alert)
                self.alerts.append(alert)
                flagged_points.append(FlaggedPoint(
                    alert.series, alert.timestamp, alert.score, alert.severity,
                    self._band_at(i, alert.timestamp)))
            incidents = self.incidents.update(
                batch.timestamps[live_from:], flagged_points, self.names, self.step_seconds,
                time.time(),  # mutes are wall-clock (a replay's own timestamps may be old)
            )
            good = ~(bad | gap)
            self.valid_count += good.sum(axis=1)
            flagged = severity > 0
            self.counters["data_points"] += int(good.sum())
            self.counters["bad_points"] += int(bad.sum())
            self.counters["gap_points"] += int(gap.sum())
            self.counters["anomaly_count"] += int(flagged.sum())
            if batch.labels is not None:
                truth = (batch.labels > 0) & good
                self.counters["true_positives"] += int((flagged & truth).sum())
                self.counters["false_positives"] += int((flagged & ~truth).sum())
                self.counters["false_negatives"] += int((~flagged & truth).sum())
            self.accuracy.mature(self.ring.count, self.ring.span)
        return values, score, severity, alerts, flags, incidents

    # ------------------------------------------------------------------ restart

    def _restore(self) -> None:
        """Resume from the store: the newest HISTORY_LIMIT slots back into memory, the
        detectors from their checkpoint plus a replay of the points stored after it, open
        slots back to open, counters and accuracy as checkpointed (see engine.persistence)."""
        started = time.perf_counter()
        checkpoint = self.persistence.load_checkpoint()
        stored = self.persistence.stored()
        if checkpoint is not None and (
            tuple(checkpoint.names[: len(self._initial_names)]) != self._initial_names
        ):
            log.warning("checkpoint of other series (%s...): detectors start fresh",
                        checkpoint.names[:3])
            checkpoint = None
        if checkpoint is not None and (configuration(checkpoint.detector)
                                       != configuration(self.detector)):
            log.warning("checkpoint of another detector (%s, now %s): detectors start fresh",
                        configuration(checkpoint.detector)[:2], configuration(self.detector)[:2])
            checkpoint = None
        if checkpoint is not None:
            self.detector = checkpoint.detector
            for name in checkpoint.names[len(self.names):]:
                self.names.append(name)
                self.rows[name] = len(self.names) - 1
            self.ring.add_rows(len(self.names) - self.ring.rows)
            self.valid_count = np.zeros(len(self.names), dtype=np.int64)
            self.valid_count[: len(checkpoint.valid_count)] = checkpoint.valid_count
            self.counters.update(checkpoint.counters)
            restore_accuracy(self.accuracy, checkpoint.accuracy)
        first_seen = {name: columns[0][0] for name, columns in stored.items()}
        for name in sorted(first_seen, key=first_seen.get):
            self._row(name)
        closed = [c[0][c[3] >= 0] for c in stored.values()]
        newest = max((float(t.max()) for t in closed if len(t)), default=None)
        step = self.step_seconds
        if newest is not None:
            oldest = min(float(t.min()) for t in closed if len(t))
            k = int(min(self.settings.history_limit, round((newest - oldest) / step) + 1))
            grid = newest - step * np.arange(k - 1, -1, -1)
            columns = self._grid_columns(stored, grid)
            self.ring.append(grid, *columns)
            through = -np.inf if checkpoint is None else checkpoint.through
            self._replay(stored, through, newest, grid, columns)
        else:
            self._origin = min((float(c[0].min()) for c in stored.values() if len(c[0])),
                               default=0.0)
        self._reopen(stored, newest)
        times = [float(c[0].max()) for c in stored.values() if len(c[0])]
        self.incidents.restore(self.store.incidents(), resume_at=max(times, default=None))
        self.incidents.restore_mutes(self.persistence.load_mutes(), now=time.time())
        # a replayed file resumes after its own stored rows, not after points of other
        # series (pushed, or another file opened in the dashboard) that may be newer
        own = [float(c[0].max()) for name, c in stored.items()
               if name in self._initial_names and len(c[0])]
        if own and hasattr(self.source, "resume_after"):
            self.source.resume_after(max(own))
        self.restored = {
            "series": len(stored), "points": int(sum(len(c[0]) for c in stored.values())),
            "checkpoint": None if checkpoint is None else checkpoint.saved_at,
            "seconds": round(time.perf_counter() - started, 3),
        }
        log.info("resumed from the store: %s", self.restored)

    def _grid_columns(self, stored, grid: np.ndarray):
        """[rows, len(grid)] values/score/severity/flag of the stored points on ``grid``
        (a point still marked OPEN inside the grid counts as a point not scored)."""
        n, k, step = self.ring.rows, len(grid), self.step_seconds
        values, score = np.full((n, k), np.nan), np.zeros((n, k))
        severity, flags = np.zeros((n, k), np.int8), np.full((n, k), GAP, np.int8)
        for name, (ts, value, sc, sev, flag) in stored.items():
            row = self.rows.get(name)
            if row is None or not len(ts):
                continue
            slot = np.rint((ts - grid[0]) / step).astype(np.int64) if k else ts.astype(int)
            keep = (slot >= 0) & (slot < k)
            slot = slot[keep]
            values[row, slot] = np.where(flag[keep] == OK, value[keep], np.nan)
            score[row, slot] = np.nan_to_num(sc[keep])
            severity[row, slot] = np.maximum(sev[keep], 0)
            flags[row, slot] = flag[keep]
        return values, score, severity, flags

    def _replay(self, stored, through: float, newest: float, grid, columns) -> None:
        """Warm the detectors on the closed slots after ``through`` (all, without a
        checkpoint), in order, exactly as the live stream fed them; count those points."""
        values, _, severity, flags = columns
        step = self.step_seconds
        if through >= grid[0] - step / 2 or not np.isfinite(through):
            start = 0 if not np.isfinite(through) else int(np.rint((through - grid[0]) / step)) + 1
            values, severity, flags = (a[:, max(start, 0):] for a in (values, severity, flags))
        else:  # the checkpoint is older than the slots kept: read the points in between
            m = int(round((newest - through) / step))
            span = newest - step * np.arange(m - 1, -1, -1)
            wanted = {name: self.store.history(name, through + step / 2, newest)
                      for name in self.rows}
            values, _, severity, flags = self._grid_columns(wanted, span)
        if values.shape[1] and hasattr(self.detector, "score_block"):
            self.detector.score_block(values)
        good, bad = flags == OK, flags == BAD
        self.valid_count += good.sum(axis=1)
        for key, count in (("data_points", good.sum()), ("bad_points", bad.sum()),
                           ("gap_points", (flags == GAP).sum()),
                           ("anomaly_count", (severity > 0).sum())):
            self.counters[key] += int(count)
        timestamps, kept, score, sev, _ = self.ring.last(self.ring.capacity)
        rows, cols = np.nonzero(sev)
        for j, i in sorted(zip(cols.tolist(), rows.tolist()))[-ALERTS_KEPT:]:
            self.alerts.append(Alert(float(timestamps[j]), i, float(kept[i, j]),
                                     float(score[i, j]), int(sev[i, j]),
                                     self.detector.score_label, self.names[i]))

    def _reopen(self, stored, newest: float | None) -> None:
        """Points written into slots that were still open at the crash go back to open."""
        step = self.step_seconds
        for name, (ts, value, _, sev, flag) in stored.items():
            row = self.rows.get(name)
            pending = sev == OPEN
            if row is None or not pending.any():
                continue
            for t, v, f in zip(ts[pending].tolist(), value[pending].tolist(),
                               flag[pending].tolist()):
                if newest is None:
                    slot = int(round((t - self._origin) / step))
                else:
                    slot = self.ring.count - 1 + int(round((t - newest) / step))
                if slot < self.ring.count:
                    continue  # its slot was closed after all: its scored row is stored
                self._pending.setdefault(slot, {})[row] = v if f == OK else np.nan
                if f == BAD:
                    self._pending_bad.add((slot, row))

    def _band_at(self, row: int, timestamp: float) -> dict | None:
        """The newest forecast made before ``timestamp`` that covers it, for ``row``."""
        for prediction in reversed(self.predictions):
            i = prediction.index_of(row)
            if prediction.made_at >= timestamp or i is None:
                continue
            where = np.flatnonzero(np.abs(prediction.timestamps - timestamp) <= self.step_seconds / 2)
            if not len(where):
                continue
            j = int(where[0])
            return {
                "forecast": float(prediction.values[i, j]),
                "lower": None if prediction.lower is None else float(prediction.lower[i, j]),
                "upper": None if prediction.upper is None else float(prediction.upper[i, j]),
            }
        return None

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
            model = self.forecasts.status(int(self.valid_count.max()) if self.n_series else 0)
            last = self.predictions[-1] if self.predictions else None
            source_status = getattr(self.source, "status", None)
            return {
                "running": self.running,
                **{k: self.counters[k] for k in ("data_points", "anomaly_count", "bad_points")},
                **{
                    k: self.counters[k]
                    for k in ("gap_points", "late_points", "refused_points", "refused_series")
                },
                "last_refusal": self.last_refusal,
                "source": source_status() if source_status else {"kind": "unknown"},
                "storage": self.storage_status(),
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
                "detector": {"name": self.detector.name, "score": self.detector.score_label,
                             "learning_points": self.detector.learning_points,
                             "season": detector_season(self.settings)},
                "incidents": self.incidents.summary(time.time()),
                "notifications": (self.notifier.status() if self.notifier is not None
                                  else {"enabled": False}),
                "accuracy": self.accuracy.summary(),
                "forecast_age_max_s": _max_or_none(self.forecast_ages()),
                "naive_series": [self.names[i] for i in np.flatnonzero(self.naive_mask)],
                "n_series": self.n_series,
                "series": list(self.names),
                "generation": self.generation,
                "config": {
                    "max_series": s.max_series,
                    "step_seconds": self.step_seconds,
                    "forecast_horizon": s.forecast_horizon,
                    "context_length": s.context_length,
                    "generation_interval": s.data_generation_interval,
                    "history_limit": s.history_limit,
                    "anomaly_window_size": s.anomaly_window_size,
                    "anomaly_threshold_multiplier": s.anomaly_threshold_multiplier,
                    "detector": s.detector,
                    "season_length": s.season_length,
                    "detector_season": s.detector_season,
                    "incident_gap": s.incident_gap,
                    "interval_level": s.interval_level,
                    "n_series": s.n_series,
                    "forecast_every": s.forecast_every,
                },
            }

    def series_accuracy(self) -> dict[str, np.ndarray]:
        """Per series over the accuracy window: live MASE of the serving model's own
        forecasts and of seasonal naive, and how many matured forecasts each has
        (``AccuracyTracker.series_summary``); cached until another forecast matures."""
        with self._state_lock:
            key = (self.generation, self.accuracy.scored, self.n_series)
            if getattr(self, "_series_accuracy", (None,))[0] != key:
                serving = self.predictions[-1].model if self.predictions else None
                self._series_accuracy = (
                    key, self.accuracy.series_summary(self.n_series, model=serving))
            return self._series_accuracy[1]

    def forecast_ages(self) -> np.ndarray:
        """Per series: seconds from its newest forecast to the newest closed slot (the
        grid's time, not the wall clock); NaN where a series has no forecast yet."""
        with self._state_lock:
            ages = np.full(self.n_series, np.nan)
            if self.ring.count:
                newest = self.ring.timestamps[(self.ring.count - 1) % self.ring.capacity]
                made = self.forecast_made_at[: self.n_series]
                ages[: len(made)] = newest - made
            return ages

    def recent_scores(self, rows, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, score [len(rows), k]) of ``rows`` over the newest slots within
        ``seconds`` (at most the kept history): a few rows over an hour, without copying
        every series' history as ``snapshot`` would."""
        slots = max(1, math.ceil(seconds / self.step_seconds))
        with self._state_lock:
            return self.ring.last_scores(slots, np.asarray(rows, dtype=int))

    def storage_status(self) -> dict:
        """Where points are kept and whether writes commit: {kind, state, reason, queued...}."""
        if self.store is None:
            return {"kind": "memory", "state": "ok", "reason": ""}
        return {"kind": self.store.kind, **self.store.status(), "restored": self.restored}

    def snapshot(self, last: int | None = None) -> Snapshot:
        """Status plus the last ``last`` points of history (all kept points by default)."""
        with self._state_lock:
            timestamps, values, score, severity, flag = self.ring.last(last or self.ring.capacity)
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
                names=tuple(self.names),
                flag=flag,
            )

    def row_of(self, series: str | int) -> int:
        """The row of a series given by name, or by index (the older form); KeyError if none."""
        with self._state_lock:
            if isinstance(series, str) and series in self.rows:
                return self.rows[series]
            # isdigit() alone takes '²' (a digit to Unicode, not to int())
            if isinstance(series, int) or (isinstance(series, str) and series.isascii()
                                           and series.isdigit()):
                index = int(series)
                if 0 <= index < self.n_series:
                    return index
            raise KeyError(series)
