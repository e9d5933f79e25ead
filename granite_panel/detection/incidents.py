"""Incidents: consecutive flagged points of one series grouped into one thing to look at.

A detector flags points; a person looks at incidents. A level shift flags every point until
the detector adapts, a burst flags most of its points, and a point-per-alert feed then
scrolls past everything else. ``IncidentTracker`` is fed each tick's flagged points and
opens, extends, escalates and closes incidents; it knows no Panel, no store, no engine.

The gap rule (``INCIDENT_GAP``, default 5 slots): an incident stays open while its series
has at most ``gap`` unflagged slots since its last flagged point, and closes (its ``end`` is
that last flagged point) once one more slot passes unflagged. Why a gap at all: a detector's
score wanders around its threshold during one event (a level shift is flagged, then a few
points fall just under the cut-off, then flagged again), and one event must stay one
incident. Why about 5: on the replayed NAB files (``benchmarks/incidents.py``) the count of
incidents falls steeply from gap 0 to a few slots and only slowly after that, so a larger gap
mostly merges separate events. Slots are counted on the time grid (``step`` seconds each),
so slots where the series had no point (gaps, a silent source) count as unflagged too.

Severity follows the detector's score as documented (``live.SEVERITY_NAMES``): an
incident's severity is the highest of its points so far, its ``peak_score`` the score with
the largest magnitude (a z-score keeps its sign). ``escalated`` is raised when the severity
rises; ``opened`` when an incident starts; ``closed`` when the gap rule ends it. The UI raises
one toast per ``opened`` or ``escalated`` event whose ``toast`` is true: not while the series
is muted (``mute(series, seconds, now)``; a muted series still records its incidents), and
not for an escalation of an acknowledged incident (someone is on it already).

A live series that stops reporting is news too (``NO_DATA_AFTER``): ``no_data`` opens a
``no data`` incident (``kind``; severity high) for a series not heard from for longer than
that (the engine says when each was last heard), from its first slot after that, and
``data_returned`` closes it when a point comes back (its ``end`` the last slot without one;
``points`` the slots it missed). It is muted,
acknowledged, stored and sent like any incident; it has no score (``peak_score`` 0).

Thread-safe: the engine updates it on its tick thread while the REST API acknowledges and
mutes from the server's; every public method takes the tracker's lock.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .live import SEVERITY_NAMES

DEFAULT_GAP = 5  # INCIDENT_GAP's default, in slots (see the module docstring)
INCIDENTS_KEPT = 1000  # closed incidents kept in memory (the store keeps all of them)
MAX_MUTE_SECONDS = 30 * 86_400.0
ID_NAME_CHARS = 90  # the store's id column holds 128 characters: long names are hashed
ANOMALY, NO_DATA = "anomaly", "no data"  # an incident's kind
NO_DATA_SEVERITY = 2  # high: a silent feed is worth a look, not a page at night by itself


def iso(epoch_seconds: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, as the REST API writes every timestamp."""
    if epoch_seconds is None:
        return None
    return np.datetime64(int(round(epoch_seconds * 1000)), "ms").astype(str) + "Z"


def incident_id(series: str, start: float, kind: str = ANOMALY) -> str:
    """A stable id: the series' name (hashed when long), the incident's start time and, for
    a ``no data`` incident, ``#no-data``."""
    name = series
    if len(name) > ID_NAME_CHARS:
        digest = hashlib.sha1(series.encode()).hexdigest()[:10]
        name = f"{series[: ID_NAME_CHARS - 11]}~{digest}"
    return f"{name}@{iso(start)}" + ("#no-data" if kind == NO_DATA else "")


@dataclass(frozen=True)
class FlaggedPoint:
    """One flagged point as the engine sees it; ``band`` is the forecast at its time."""

    row: int
    timestamp: float
    score: float
    severity: int
    band: Mapping | None = None  # {"forecast": f, "lower": lo, "upper": hi}, any may be None


@dataclass
class Incident:
    id: str
    series: str
    row: int
    start: float
    last_flagged: float
    peak_score: float
    severity: int
    points: int = 1
    end: float | None = None  # None while ongoing
    acknowledged: bool = False
    muted: bool = False  # whether the series was muted when the incident opened
    band: dict | None = None  # the forecast band at the peak, when one covered that time
    kind: str = ANOMALY  # or NO_DATA: the series stopped reporting (``no_data``)

    @property
    def ongoing(self) -> bool:
        return self.end is None

    def as_record(self) -> dict:
        """Plain values (epoch seconds, severity 0-3): what the engine's Tick and the store carry."""
        return {
            "id": self.id,
            "series": self.series,
            "row": self.row,
            "start": self.start,
            "end": self.end,
            "last_flagged": self.last_flagged,
            "ongoing": self.ongoing,
            "peak_score": self.peak_score,
            "severity": self.severity,
            "points": self.points,
            "acknowledged": self.acknowledged,
            "muted": self.muted,
            "band": None if self.band is None else dict(self.band),
            "kind": self.kind,
        }

    def as_json(self) -> dict:
        """The same fields for the REST API and the dashboard: ISO times, severity by name."""
        record = self.as_record()
        for key in ("start", "end", "last_flagged"):
            record[key] = iso(record[key])
        record["severity"] = SEVERITY_NAMES[self.severity]
        record["peak_score"] = round(self.peak_score, 4)
        return record


@dataclass(frozen=True)
class IncidentEvent:
    """Something a person may want to hear about: ``opened``, ``escalated`` or ``closed``."""

    kind: str
    incident: dict  # as_json() right after the event
    toast: bool  # opened/escalated on a series not muted (and, escalations, not acknowledged)


@dataclass(frozen=True)
class IncidentChanges:
    """What one update did: incidents to persist (final state) and the events it raised."""

    incidents: tuple[dict, ...] = ()  # as_record() of every incident opened/extended/closed
    events: tuple[IncidentEvent, ...] = ()

    @property
    def toasts(self) -> tuple[IncidentEvent, ...]:
        return tuple(e for e in self.events if e.toast)


@dataclass
class _Mutes:
    until: dict[str, float] = field(default_factory=dict)  # series -> epoch seconds

    def active(self, series: str, now: float) -> bool:
        until = self.until.get(series)
        if until is None:
            return False
        if until <= now:
            del self.until[series]
            return False
        return True


class IncidentTracker:
    """Groups flagged points into incidents per series (see the module docstring)."""

    def __init__(self, gap: int = DEFAULT_GAP, kept: int = INCIDENTS_KEPT):
        if int(gap) != gap or gap < 0:
            raise ValueError(f"incident gap={gap!r} is not allowed: expected a whole number >= 0")
        self.gap = int(gap)
        self.kept = int(kept)
        self._lock = threading.RLock()
        self._mutes = _Mutes()
        # Called with {series: until} after every mute/unmute (the engine's store keeps
        # them: a mute is a person's choice and survives a restart).
        self.on_mutes_changed: Callable[[dict[str, float]], None] | None = None
        self.version = 0  # rises on every change readers may want to redraw
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    def reset(self, n_series: int | None = None) -> None:
        """Forget every incident (an engine reset). Mutes stay: they are a person's choice
        with their own expiry, not part of the stream's history."""
        with self._lock:
            self._incidents: OrderedDict[str, Incident] = OrderedDict()  # by start, oldest first
            self._open: dict[str, Incident] = {}  # series -> its ongoing incident
            self._silent: dict[str, Incident] = {}  # series -> its ongoing no-data incident
            self._dirty: dict[str, Incident] = {}  # changed outside update (ack), to persist
            self.total = 0  # incidents ever opened since the last reset (restored ones count)
            self.version += 1

    def grow(self, n: int) -> None:
        """Incidents are keyed by series name: new series need nothing."""

    def restore(self, incidents: Iterable[Mapping], resume_at: float | None = None) -> int:
        """Rebuild from stored incidents (dicts as ``as_record`` or the store's export gives
        them: times as epoch seconds or ISO strings, severity as 0-3 or a name, ``end``
        empty/None/NaN while ongoing). Returns how many were restored; an id already kept is
        replaced. An ongoing one goes on where it left off: the gap rule counts from its
        ``last_flagged``; the store keeps no such column, so without one it counts from
        ``resume_at`` (e.g. the newest stored point of the series) or else from its start."""
        restored = [self._from_mapping(item, resume_at) for item in incidents]
        restored.sort(key=lambda i: i.start)
        with self._lock:
            self.total += sum(1 for i in restored if i.id not in self._incidents)
            for incident in restored:
                self._incidents[incident.id] = incident
                self._incidents.move_to_end(incident.id)
                if incident.ongoing:
                    ongoing = self._silent if incident.kind == NO_DATA else self._open
                    previous = ongoing.get(incident.series)
                    if previous is None or previous.start <= incident.start:
                        ongoing[incident.series] = incident
            self.version += 1
            self._trim()
        return len(restored)

    # ------------------------------------------------------------------ one tick

    def update(
        self,
        timestamps: np.ndarray,
        points: Sequence[FlaggedPoint],
        names: Sequence[str],
        step: float,
        now: float,
    ) -> IncidentChanges:
        """Feed one tick: its slot ``timestamps`` (oldest first), its flagged ``points`` (any
        order), the series' ``names`` by row, the grid's ``step`` in seconds, and the wall
        clock ``now`` (for mutes). Incidents whose series stayed unflagged for more than
        ``gap`` slots by the tick's last slot are closed."""
        if step <= 0 or not math.isfinite(step):
            raise ValueError(f"step={step!r} is not allowed: expected seconds > 0")
        changed: dict[str, Incident] = {}
        events: list[IncidentEvent] = []
        with self._lock:
            changed.update(self._dirty)
            self._dirty.clear()
            for point in sorted(points, key=lambda p: (p.timestamp, p.row)):
                series = names[point.row]
                current = self._open.get(series)
                if current is not None and self._quiet(current, point.timestamp, step) > self.gap:
                    self._close(current, changed, events)
                    current = None
                if current is None:
                    current = self._start(series, point, now)
                    changed[current.id] = current
                    events.append(IncidentEvent("opened", current.as_json(), not current.muted))
                    continue
                changed[current.id] = current
                if self._extend(current, point):
                    toast = not current.acknowledged and not self._mutes.active(series, now)
                    events.append(IncidentEvent("escalated", current.as_json(), toast))
            if len(timestamps):
                newest = float(timestamps[-1])
                for incident in list(self._open.values()):
                    if self._unflagged_through(incident, newest, step) > self.gap:
                        self._close(incident, changed, events)
            self._trim()
            if changed:
                self.version += 1
            return IncidentChanges(tuple(i.as_record() for i in changed.values()), tuple(events))

    @staticmethod
    def _unflagged_through(incident: Incident, newest: float, step: float) -> int:
        """Unflagged slots after the incident's last flagged point, up to ``newest``."""
        return max(0, int(round((newest - incident.last_flagged) / step)))

    @staticmethod
    def _quiet(incident: Incident, timestamp: float, step: float) -> int:
        """Unflagged slots between the incident's last flagged point and ``timestamp``."""
        return max(0, int(round((timestamp - incident.last_flagged) / step)) - 1)

    def _start(self, series: str, point: FlaggedPoint, now: float) -> Incident:
        incident = Incident(
            id=incident_id(series, point.timestamp),
            series=series,
            row=point.row,
            start=point.timestamp,
            last_flagged=point.timestamp,
            peak_score=float(point.score),
            severity=int(point.severity),
            muted=self._mutes.active(series, now),
            band=_band(point.band),
        )
        self._incidents[incident.id] = incident
        self._open[series] = incident
        self.total += 1
        return incident

    @staticmethod
    def _extend(incident: Incident, point: FlaggedPoint) -> bool:
        """Add a flagged point; True when it raised the incident's severity."""
        incident.points += 1
        incident.last_flagged = max(incident.last_flagged, point.timestamp)
        if abs(point.score) > abs(incident.peak_score):
            incident.peak_score = float(point.score)
            incident.band = _band(point.band)
        if point.severity > incident.severity:
            incident.severity = int(point.severity)
            return True
        return False

    def _close(self, incident: Incident, changed: dict, events: list) -> None:
        incident.end = incident.last_flagged
        self._open.pop(incident.series, None)
        changed[incident.id] = incident
        events.append(IncidentEvent("closed", incident.as_json(), False))

    def _trim(self) -> None:
        """Keep at most ``kept`` closed incidents (the oldest go first); open ones stay."""
        closed = len(self._incidents) - len(self._open) - len(self._silent)
        if closed <= self.kept:
            return
        for key in list(self._incidents):
            if closed <= self.kept:
                break
            if self._incidents[key].ongoing:
                continue
            del self._incidents[key]
            closed -= 1

    # ------------------------------------------------------------------ silent series

    def no_data(self, newest: Mapping[str, tuple[int, float]], now: float, after: float,
                step: float) -> IncidentChanges:
        """Open a ``no data`` incident for each series of ``newest`` ({name: (row, time of
        its newest point)}) whose newest point is more than ``after`` seconds before
        ``now`` and that has none open: from its first slot without a point, with the slots
        missed so far as ``points``. Raises ``opened`` (a toast unless muted)."""
        changed: dict[str, Incident] = {}
        events: list[IncidentEvent] = []
        with self._lock:
            changed.update(self._dirty)
            self._dirty.clear()
            for series, (row, last) in newest.items():
                if now - last <= after or series in self._silent:
                    continue
                start = last + step
                missed = max(1, int((now - last) // step))
                incident = Incident(
                    id=incident_id(series, start, NO_DATA), series=series, row=int(row),
                    start=start, last_flagged=start, peak_score=0.0,
                    severity=NO_DATA_SEVERITY, points=missed,
                    muted=self._mutes.active(series, now), kind=NO_DATA)
                self._incidents[incident.id] = incident
                self._silent[series] = incident
                self.total += 1
                changed[incident.id] = incident
                events.append(IncidentEvent("opened", incident.as_json(), not incident.muted))
            if changed:
                self.version += 1
                self._trim()
            return IncidentChanges(tuple(i.as_record() for i in changed.values()), tuple(events))

    def data_returned(self, returned: Mapping[str, float], step: float) -> IncidentChanges:
        """Close the ``no data`` incident of each series of ``returned`` ({name: time of the
        first point back}): its end is the last slot without a point."""
        changed: dict[str, Incident] = {}
        events: list[IncidentEvent] = []
        with self._lock:
            for series, back in returned.items():
                incident = self._silent.pop(series, None)
                if incident is None:
                    continue
                incident.end = max(incident.start, back - step)
                incident.last_flagged = incident.end
                incident.points = max(1, int(round((incident.end - incident.start) / step)) + 1)
                changed[incident.id] = incident
                events.append(IncidentEvent("closed", incident.as_json(), False))
            if changed:
                self.version += 1
                self._trim()
            return IncidentChanges(tuple(i.as_record() for i in changed.values()), tuple(events))

    def silent(self) -> set[str]:
        """Series with an ongoing ``no data`` incident."""
        with self._lock:
            return set(self._silent)

    # ------------------------------------------------------------------ people

    def acknowledge(self, incident_id: str) -> dict:
        """Mark an incident acknowledged (KeyError if it is not kept); its as_json()."""
        with self._lock:
            incident = self._incidents.get(incident_id)
            if incident is None:
                raise KeyError(incident_id)
            if not incident.acknowledged:
                incident.acknowledged = True
                self._dirty[incident.id] = incident  # persisted with the next update
                self.version += 1
            return incident.as_json()

    def mute(self, series: str, seconds: float, now: float) -> float:
        """No toasts for ``series`` for ``seconds`` from ``now``; returns when it ends."""
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            seconds = float("nan")
        if not 0 < seconds <= MAX_MUTE_SECONDS:
            raise ValueError(
                f"seconds={seconds!r} is not allowed: expected a number of seconds above 0 and "
                f"at most {MAX_MUTE_SECONDS:.0f} (30 days)"
            )
        with self._lock:
            self._mutes.until[series] = float(now) + seconds
            self.version += 1
            until = self._mutes.until[series]
        self._mutes_changed()
        return until

    def unmute(self, series: str) -> bool:
        """Toasts again for ``series``; False if it was not muted."""
        with self._lock:
            self.version += 1
            was_muted = self._mutes.until.pop(series, None) is not None
        self._mutes_changed()
        return was_muted

    def mute_state(self) -> dict[str, float]:
        """Every mute and when it ends (epoch seconds), as the store keeps it."""
        with self._lock:
            return dict(self._mutes.until)

    def restore_mutes(self, until: dict[str, float], now: float) -> None:
        """Mutes read back at a restart; those already over are dropped."""
        with self._lock:
            self._mutes.until.update(
                {str(s): float(u) for s, u in until.items() if float(u) > now}
            )
            self.version += 1

    def _mutes_changed(self) -> None:
        if self.on_mutes_changed is not None:
            self.on_mutes_changed(self.mute_state())

    def muted(self, series: str, now: float) -> bool:
        with self._lock:
            return self._mutes.active(series, now)

    def mutes(self, now: float) -> dict[str, str]:
        """Muted series and when each mute ends (ISO)."""
        with self._lock:
            return {s: iso(u) for s, u in sorted(self._mutes.until.items()) if u > now}

    # ------------------------------------------------------------------ readers

    def recent(self, n: int | None = None, series: str | None = None,
               ongoing_only: bool = False) -> list[dict]:
        """The newest ``n`` incidents (of ``series``; only ongoing ones), newest first."""
        with self._lock:
            found = []
            for incident in reversed(self._incidents.values()):
                if series is not None and incident.series != series:
                    continue
                if ongoing_only and not incident.ongoing:
                    continue
                found.append(incident.as_json())
                if n is not None and len(found) >= n:
                    break
            return found

    def ongoing(self) -> list[dict]:
        return self.recent(ongoing_only=True)

    def summary(self, now: float) -> dict:
        with self._lock:
            return {
                "open": len(self._open) + len(self._silent),
                "total": self.total,
                "kept": len(self._incidents),
                "gap": self.gap,
                "muted": self.mutes(now),
            }

    # ------------------------------------------------------------------ restore helpers

    @staticmethod
    def _from_mapping(item: Mapping, resume_at: float | None = None) -> Incident:
        try:
            start = _time(item["start"])
            series = str(item["series"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"stored incident {dict(item)!r} cannot be restored: {exc}") from None
        end = _time(item.get("end"))
        last = _time(item.get("last_flagged"))
        if last is None and end is None and resume_at is not None:
            last = max(start, float(resume_at))
        return Incident(
            id=str(item.get("id") or incident_id(series, start, str(item.get("kind")))),
            series=series,
            row=int(_number(item.get("row"), -1)),
            start=start,
            end=end,
            last_flagged=last if last is not None else (end if end is not None else start),
            peak_score=_number(item.get("peak_score"), 0.0),
            severity=_severity(item.get("severity")),
            points=int(_number(item.get("points"), 1)),
            acknowledged=_flag(item.get("acknowledged")),
            muted=_flag(item.get("muted")),
            band=_band(_json(item.get("band"))),
            kind=NO_DATA if item.get("kind") == NO_DATA else ANOMALY,
        )


def _band(band) -> dict | None:
    if not band:
        return None
    return {k: _finite(band.get(k)) for k in ("forecast", "lower", "upper")}


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _number(value, default: float) -> float:
    value = _finite(value)
    return default if value is None else value


def _time(value) -> float | None:
    """Epoch seconds from a number, a numeric string or an ISO string; None when empty."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "nan")):
        return None
    number = _finite(value)
    if number is not None:
        return number
    if isinstance(value, float):  # NaN: an ongoing incident's end
        return None
    text = str(value).strip().removesuffix("Z")
    return float(np.datetime64(text, "ms").astype("int64")) / 1000.0


def _severity(value) -> int:
    if isinstance(value, str) and value in SEVERITY_NAMES:
        return SEVERITY_NAMES.index(value)
    return int(_number(value, 0))


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value) if value is not None and value == value else False


def _json(value):
    if isinstance(value, str):
        import json

        try:
            return json.loads(value) if value.strip() else None
        except ValueError:
            return None
    return value
