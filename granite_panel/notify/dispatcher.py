"""Delivering incident events to webhooks without ever holding up the stream.

The engine hands each tick's incident events to ``Dispatcher.submit``, which only routes
them and appends to a bounded queue per receiver (a full queue drops its oldest delivery
and counts it): no network, no waiting on the tick thread. One worker thread per receiver
posts its queue in order (an ``opened`` goes out before its ``closed``), so a receiver that
hangs or fails holds up only itself.

- Retries: a connection error, a timeout, a 5xx, 408 or 429 is retried with exponential
  backoff and jitter (``BACKOFF_START_S`` doubling up to ``BACKOFF_CAP_S``, each wait drawn
  between half and all of it) until ``MAX_ATTEMPTS`` or ``MAX_AGE_S``; any other 4xx is a
  mistake in the config (a revoked Slack token) and fails at once. Failures are counted per
  receiver and shown in ``/api/status`` and on the dashboard, with the URL redacted.
- De-duplication: each receiver gets an incident's ``opened``, each ``escalated`` level and
  its ``closed`` (``resolved``) once. A ``closed`` goes only to receivers that were told the
  incident was firing. The ledger of what was sent is kept in memory and, with a store, in
  its ``engine_state`` table, so a restart sends nothing twice and still resolves what it
  announced before.
- The outbox: with a store, the deliveries still waiting (queued, or being retried) are
  written beside the ledger each time one is queued and at most every ``LEDGER_SAVE_S`` as
  they go out, so a restart, even after kill -9, sends what the last process had queued
  (unless it is older than ``MAX_AGE_S``). At least once: one sent in the last second
  before a kill may go out again.
- Muted series (and escalations of acknowledged incidents) notify nobody, as for toasts:
  the event's ``toast`` flag says so. Their incidents are still recorded.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from . import payloads
from ..detection.live import SEVERITY_NAMES
from .routing import NotifyConfig, Receiver, load_config

log = logging.getLogger(__name__)

QUEUE_PER_RECEIVER = 256  # deliveries waiting per receiver; past it the oldest is dropped
MAX_ATTEMPTS = 8  # tries of one delivery (about 2 minutes of backoff at the defaults)
MAX_AGE_S = 900.0  # a delivery older than this is given up (the incident is stale news)
BACKOFF_START_S = 1.0
BACKOFF_CAP_S = 60.0
LEDGER_KEPT = 20_000  # (receiver, incident, event) keys remembered for de-duplication
LEDGER_STATE_KEY = "notify_ledger"  # the store's engine_state row holding the ledger
LEDGER_SAVE_S = 1.0  # the ledger is written at most this often (and at close)
OUTBOX_STATE_KEY = "notify_outbox"  # the engine_state row holding deliveries not yet sent
RETRIED_STATUS = {408, 425, 429}  # 4xx that mean "later", not "wrong"
ERROR_CHARS = 200


@dataclass
class Delivery:
    receiver: Receiver
    kind: str
    incident: dict
    key: str
    queued_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    created: float = field(default_factory=time.time)  # wall clock: survives a restart

    def as_record(self) -> dict:
        return {"receiver": self.receiver.name, "kind": self.kind, "incident": self.incident,
                "key": self.key, "created": self.created}


@dataclass
class _ReceiverState:
    receiver: Receiver
    wake: threading.Condition
    queue: collections.deque = field(default_factory=collections.deque)
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retrying: int = 0  # deliveries between a failed attempt and their next one (0 or 1)
    failing: bool = False  # the last finished attempt failed and none succeeded since
    busy: bool = False  # a delivery is being tried (it has left the queue)
    current: Delivery | None = None  # the one being tried
    last_error: str | None = None
    last_error_at: str | None = None
    last_sent_at: str | None = None

    def as_status(self) -> dict:
        state = "retrying" if self.retrying else ("failing" if self.failing else "ok")
        return {"format": self.receiver.format, "url": self.receiver.shown_url, "state": state,
                "sent": self.sent, "failed": self.failed, "retrying": self.retrying,
                "queued": len(self.queue), "dropped": self.dropped,
                "last_error": self.last_error, "last_error_at": self.last_error_at,
                "last_sent_at": self.last_sent_at}


class Dispatcher:
    """Routes incident events to receivers and delivers them in the background."""

    def __init__(self, config: NotifyConfig, public_url: str, store=None,
                 queue_size: int = QUEUE_PER_RECEIVER, max_attempts: int = MAX_ATTEMPTS,
                 max_age: float = MAX_AGE_S, backoff_start: float = BACKOFF_START_S,
                 backoff_cap: float = BACKOFF_CAP_S):
        self.config = config
        self.public_url = public_url
        self.store = store if store is not None and not store.read_only else None
        self.queue_size, self.max_attempts, self.max_age = queue_size, max_attempts, max_age
        self.backoff_start, self.backoff_cap = backoff_start, backoff_cap
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._claimed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._delivered: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.suppressed = 0  # opened/escalated events of muted series (or acknowledged)
        self.duplicates = 0  # events already sent (or queued) to a receiver
        self._ledger_saved_at = -float("inf")
        self._ledger_dirty = False
        self._load_ledger()
        self._states = {name: _ReceiverState(r, threading.Condition(self._lock))
                        for name, r in config.receivers.items()}
        self.restored = self._load_outbox()
        self._threads = [threading.Thread(target=self._work, args=(s,), daemon=True,
                                          name=f"notify-{s.receiver.name}")
                         for s in self._states.values()]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ the tick's side

    def submit(self, events) -> int:
        """Queue what ``events`` (IncidentEvent) call for; returns deliveries queued.
        Never waits on the network: this runs on the engine's tick thread."""
        queued = 0
        with self._lock:
            for event in events:
                queued += self._route(event)
            outbox = self._outbox() if queued and self.store is not None else None
        if outbox is not None:  # a queued delivery is on its way to the store at once
            self._save_ledger(None, outbox)
        return queued

    def _route(self, event) -> int:
        incident = event.incident
        ident = incident["id"]
        if event.kind == "closed":
            targets = [s.receiver for s in self._states.values()
                       if _key(s.receiver.name, ident, "fired") in self._claimed]
        elif not event.toast:
            self.suppressed += 1
            return 0
        else:
            severity = SEVERITY_NAMES.index(incident["severity"])
            targets = self.config.receivers_for(incident["series"], severity)
        label = event.kind if event.kind != "escalated" else f"escalated:{incident['severity']}"
        queued = 0
        for receiver in targets:
            key = _key(receiver.name, ident, label)
            if key in self._claimed:
                self.duplicates += 1
                continue
            _remember(self._claimed, key)
            if event.kind != "closed":
                _remember(self._claimed, _key(receiver.name, ident, "fired"))
            state = self._states[receiver.name]
            if len(state.queue) >= self.queue_size:
                state.queue.popleft()
                state.dropped += 1
            state.queue.append(Delivery(receiver, event.kind, dict(incident), key))
            state.wake.notify()
            queued += 1
        return queued

    # ------------------------------------------------------------------ workers

    def _work(self, state: _ReceiverState) -> None:
        session = requests.Session()
        session.headers["User-Agent"] = "granite-panel"
        while not self._stop.is_set():
            late = delivery = None
            with self._lock:
                if not state.queue and not self._stop.is_set():
                    state.wake.wait(LEDGER_SAVE_S)
                    late = self._ledger_due() if self._ledger_dirty else None
                if state.queue and not self._stop.is_set():
                    delivery = state.queue.popleft()
                    state.busy, state.current = True, delivery
            if late is not None:  # the last deliveries' write, once the burst is over; encoded
                self._save_ledger(*late)  # outside the lock the tick's submit() takes
            if delivery is None:
                continue
            try:
                self._deliver(state, delivery, session)
            except Exception:  # a bug must not end the worker: the delivery counts as failed
                log.exception("notification to %s failed", state.receiver.name)
                with self._lock:
                    state.failed += 1
                    state.retrying, state.failing = 0, True
            finally:
                with self._lock:
                    state.busy, state.current = False, None
                    self._ledger_dirty = True  # the outbox lost one
        session.close()

    def _deliver(self, state: _ReceiverState, delivery: Delivery, session) -> None:
        """Try one delivery until it is sent, fails for good, or the dispatcher stops."""
        receiver = delivery.receiver
        body = payloads.build(
            receiver.format, delivery.kind, delivery.incident,
            payloads.series_link(self.public_url, delivery.incident["series"]),
            receiver.name, self.public_url)
        while not self._stop.is_set():
            delivery.attempts += 1
            error, permanent = self._post(session, receiver, body)
            with self._lock:
                if error is None:
                    state.sent += 1
                    state.retrying, state.failing = 0, False
                    state.last_sent_at = payloads.iso(time.time())
                    _remember(self._delivered, delivery.key)
                    if delivery.kind != "closed":
                        _remember(self._delivered, _key(receiver.name, delivery.incident["id"],
                                                        "fired"))
                    ledger = self._ledger_due()
                else:
                    state.last_error, state.last_error_at = error, payloads.iso(time.time())
                    state.failing = True
                    wait = self._backoff(delivery.attempts)
                    age = time.monotonic() - delivery.queued_at
                    if (permanent or delivery.attempts >= self.max_attempts
                            or age + wait > self.max_age):
                        state.failed += 1
                        state.retrying = 0
                        log.warning("notification to %s failed for good after %d attempt(s): %s",
                                    receiver.name, delivery.attempts, error)
                        return
                    state.retrying = 1
            if error is None:
                if ledger is not None:
                    self._save_ledger(*ledger)
                return
            self._stop.wait(wait)

    def _backoff(self, attempts: int) -> float:
        """Exponential, capped, with equal jitter: between half and all of the step."""
        step = min(self.backoff_cap, self.backoff_start * 2 ** (attempts - 1))
        return step / 2 + random.uniform(0, step / 2)

    @staticmethod
    def _post(session, receiver: Receiver, body: dict) -> tuple[str | None, bool]:
        """(None, _) when delivered; else (what went wrong, without secrets; permanent?)."""
        try:
            response = session.post(receiver.url, json=body, timeout=receiver.timeout)
        except requests.Timeout:
            return f"no answer within {receiver.timeout:g} s", False
        except requests.RequestException as exc:
            return scrub(f"{type(exc).__name__}: {exc}", receiver.url), False
        if response.status_code < 300:
            return None, False
        text = " ".join(response.text.split())[:80]
        error = scrub(f"HTTP {response.status_code} {response.reason or ''}".strip()
                      + (f": {text}" if text else ""), receiver.url)
        status = response.status_code
        return error, 400 <= status < 500 and status not in RETRIED_STATUS

    # ------------------------------------------------------------------ the ledger

    def _load_ledger(self) -> None:
        if self.store is None:
            return
        try:
            blob = self.store.load_state(LEDGER_STATE_KEY)
            keys = json.loads(blob) if blob else []
        except Exception as error:  # an unreadable ledger: risk a repeat, not a crash
            log.warning("notification ledger not readable (%s): starting empty", error)
            keys = []
        for key in keys[-LEDGER_KEPT:]:
            self._claimed[key] = None
            self._delivered[key] = None

    def _ledger_due(self, force: bool = False) -> tuple[list[str], list[dict]] | None:
        """(ledger keys, outbox) to write now (under the lock), or None: written at most
        every ``LEDGER_SAVE_S`` (a burst of deliveries is one write) and at close."""
        self._ledger_dirty = True
        if self.store is None:
            return None
        now = time.monotonic()
        if not force and now - self._ledger_saved_at < LEDGER_SAVE_S:
            return None
        self._ledger_saved_at, self._ledger_dirty = now, False
        return list(self._delivered), self._outbox()

    def _outbox(self) -> list[dict]:
        """Every delivery not yet sent, the ones being tried included (under the lock)."""
        return [d.as_record() for s in self._states.values()
                for d in ([s.current] if s.current is not None else []) + list(s.queue)]

    def _save_ledger(self, keys: list[str] | None, outbox: list[dict]) -> None:
        """Write the outbox, and the ledger unless ``keys`` is None (a queued delivery
        writes only the small outbox; the ledger can hold 20,000 keys)."""
        if self.store is None:
            return
        from ..store.store import Batch

        state = {OUTBOX_STATE_KEY: json.dumps(outbox, default=str).encode()}
        if keys is not None:
            state[LEDGER_STATE_KEY] = json.dumps(keys).encode()
        try:
            self.store.submit(Batch(state=state))
        except Exception as error:  # a closed store at shutdown: the next start may repeat
            log.warning("notification ledger not saved: %s", error)

    def _load_outbox(self) -> int:
        """Queue again what the last process had not delivered; returns how many."""
        if self.store is None:
            return 0
        try:
            blob = self.store.load_state(OUTBOX_STATE_KEY)
            records = json.loads(blob) if blob else []
        except Exception as error:  # unreadable: those deliveries are lost, say so
            log.warning("notification outbox not readable (%s): starting empty", error)
            return 0
        restored, now = 0, time.time()
        for record in records:
            state = self._states.get(record.get("receiver"))
            age = now - float(record.get("created", 0.0))
            if state is None or record["key"] in self._delivered or age > self.max_age:
                continue  # a receiver no longer configured, already sent, or stale news
            delivery = Delivery(state.receiver, record["kind"], record["incident"],
                                record["key"], queued_at=time.monotonic() - max(age, 0.0),
                                created=float(record["created"]))
            _remember(self._claimed, delivery.key)
            if delivery.kind != "closed":
                _remember(self._claimed, _key(state.receiver.name, record["incident"]["id"],
                                              "fired"))
            state.queue.append(delivery)
            restored += 1
        if restored:
            log.info("%d notification(s) queued again from the last run", restored)
        return restored

    # ------------------------------------------------------------------ readers

    def status(self) -> dict:
        """Per receiver: sent, failed, retrying, queued, dropped, last error (no secrets)."""
        with self._lock:
            receivers = {name: s.as_status() for name, s in self._states.items()}
            return {"enabled": True, "public_url": self.public_url,
                    "routes": len(self.config.routes), "receivers": receivers,
                    "failing": sorted(n for n, r in receivers.items() if r["state"] != "ok"),
                    "suppressed": self.suppressed, "duplicates": self.duplicates}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until every queue is empty and no delivery is being tried (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not any(s.queue or s.busy for s in self._states.values()):
                    return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 2.0) -> None:
        """Stop the workers; what is still queued is kept in the outbox (with a store)."""
        self._stop.set()
        with self._lock:
            for state in self._states.values():
                state.wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            ledger = self._ledger_due(force=True) if self._ledger_dirty else None
        if ledger is not None:  # what was delivered since the last write, what still waits
            self._save_ledger(*ledger)


def _key(receiver: str, incident_id: str, event: str) -> str:
    return f"{receiver}\x1f{incident_id}\x1f{event}"


def _remember(ledger: collections.OrderedDict, key: str) -> None:
    ledger[key] = None
    ledger.move_to_end(key)
    while len(ledger) > LEDGER_KEPT:
        ledger.popitem(last=False)


def scrub(text: str, url: str) -> str:
    """``text`` (an error) on one line, without the URL's path, query or credentials."""
    parts = urlsplit(url)
    secrets = [url, parts.path if parts.path not in ("", "/") else "", parts.query,
               parts.password or "", parts.username or ""]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "…")
    return " ".join(text.split())[:ERROR_CHARS]


def open_notifier(settings, store=None) -> Dispatcher | None:
    """The dispatcher NOTIFY_CONFIG describes (None when it is empty: notifications off).
    A bad file raises NotifyConfigError: one line, exit 2 at start."""
    path = settings.notify_config.strip()
    if not path:
        return None
    config = load_config(path)
    public = settings.public_url.strip() or f"http://{settings.address}:{settings.port}/"
    log.info("notifications: %d receiver(s) (%s), %d route(s); links to %s",
             len(config.receivers), ", ".join(r.shown_url for r in config.receivers.values()),
             len(config.routes), public)
    return Dispatcher(config, public, store)
