"""One viewer's link to the engine: turns ticks into HoloViews stream updates.

The engine ticks in its own thread; each viewer (a browser session or a notebook) polls it
and streams only what is new: ``hv.streams.Buffer`` for history and anomaly markers (the
chart, ``live_chart.LiveChart``, streams just the new rows), ``hv.streams.Pipe`` for the
forecast, which is replaced whole. One batched update per poll, however many ticks it
covers. In a served page the engine's listener queues a poll on the page's event loop
right after each tick (point to pixel in tens of milliseconds, not a poll period later);
a periodic poll refreshes the status, and drives everything in a notebook.

The feed lists incidents (``engine.incidents``: flagged points grouped per series), not
points; a poll raises at most one toast per incident, when it opened or escalated at high
or critical severity, and none for a muted series (``IncidentEvent.toast``).

Every command checks this viewer's ``role`` itself (the buttons a role may not use are
disabled too, but a browser can send any event: a viewer's forged click changes nothing).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import threading
import time
import weakref
import zoneinfo
from collections import OrderedDict
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.io.state import set_curdoc

from .latency_probe import LatencyProbe
from .session_release import release_on_close
from ..detection.incidents import NO_DATA
from ..engine.core import Engine
from ..engine.records import Prediction, Tick, latest_forecast
from ..server import auth as auth_files
from ..server.auth import ACTIONS, ROLES, role_rank

log = logging.getLogger(__name__)

ALERTS_SHOWN = 50
INCIDENTS_SHOWN = 50
MARKERS_KEPT = 500
TOASTS_PER_POLL = 3
TOASTS_KEPT = 50


SECRET_SETTINGS = ("cookie_secret", "oauth_secret")  # never shown, only "set" or "empty"


def shown_settings(settings) -> list[tuple[str, str]]:
    """(ENV NAME, value) of every setting for the admin's screen: secrets as set/empty, a
    database URL without its password."""
    rows = []
    for name in settings.param:
        if name == "name":
            continue
        value = getattr(settings, name)
        if name in SECRET_SETTINGS:
            text = "(set)" if value else "(empty)"
        elif name == "database_url" and "://" in str(value):
            from sqlalchemy.engine import make_url

            text = make_url(value).render_as_string(hide_password=True)
        else:
            text = str(value)
        rows.append((name.upper(), text))
    return rows


def frame_times(seconds) -> np.ndarray:
    """Unix seconds as ``datetime64[ns]``, rounded to the nanosecond. ``pd.to_datetime(unit=
    "s")`` gave the same to within 0.2 microseconds but cost about 0.2 ms a call, and every
    viewer's poll made several."""
    nanoseconds = np.round(np.asarray(seconds, dtype=float) * 1e9)
    return nanoseconds.astype(np.int64).view("datetime64[ns]")


def history_frame(timestamps=(), values=()) -> pd.DataFrame:
    return pd.DataFrame({"time": frame_times(timestamps), "value": np.asarray(values, dtype=float)})


def marker_frame(timestamps=(), values=(), severity=()) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": frame_times(timestamps),
            "value": np.asarray(values, dtype=float),
            # 1 medium, 2 high, 3 critical
            "level": np.asarray(severity, dtype=int).astype(float),
        }
    )


def forecast_frame(prediction: Prediction | None, series: int) -> pd.DataFrame:
    """The forecast of one series with its band (lower = upper = value until calibrated)."""
    j = None if prediction is None else prediction.index_of(series)
    if j is None:
        timestamps, values = (), np.empty(0)
        lower = upper = values
    else:
        timestamps, values = prediction.timestamps, np.asarray(prediction.values[j], dtype=float)
        lower = values if prediction.lower is None else prediction.lower[j]
        upper = values if prediction.upper is None else prediction.upper[j]
    return pd.DataFrame({"time": frame_times(timestamps), "value": values,
                         "lower": np.asarray(lower, dtype=float),
                         "upper": np.asarray(upper, dtype=float)})


_FRAMES: OrderedDict = OrderedDict()  # (id(first tick), id(last tick), series) -> entry
_FRAMES_KEPT = 16
_FRAMES_LOCK = threading.Lock()


def tick_frames(ticks: list[Tick], i: int) -> tuple:
    """(history, markers or None, forecast or None): the frames that ``ticks`` add to
    series ``i``'s streams. Every viewer of a series polls the same ticks, so the frames
    are made once and shared (ten viewers of a 10 Hz stream built them ten times a tick, a
    fifth of each poll); nobody changes a frame once it is made. An entry holds its ticks,
    and serves only those very objects."""
    first, last = ticks[0], ticks[-1]
    key = (id(first), id(last), i)
    with _FRAMES_LOCK:
        entry = _FRAMES.get(key)
    if entry is not None and entry[0] is first and entry[1] is last:
        return entry[2]
    frames = _make_tick_frames(ticks, i)
    with _FRAMES_LOCK:
        _FRAMES[key] = (first, last, frames)
        while len(_FRAMES) > _FRAMES_KEPT:
            _FRAMES.popitem(last=False)
    return frames


def _make_tick_frames(ticks: list[Tick], i: int) -> tuple:
    timestamps = np.concatenate([t.timestamps for t in ticks])
    # a series that appeared after a tick has a gap there
    values = np.concatenate(
        [t.values[i] if i < len(t.values) else np.full(len(t.timestamps), np.nan) for t in ticks]
    )
    severity = np.concatenate(
        [t.severity[i] if i < len(t.severity) else np.zeros(len(t.timestamps), np.int8)
         for t in ticks]
    )
    flagged = severity > 0
    markers = None
    if flagged.any():
        markers = marker_frame(timestamps[flagged], values[flagged], severity[flagged])
    predictions = [t.prediction for t in ticks
                   if t.prediction is not None and t.prediction.index_of(i) is not None]
    forecast = forecast_frame(predictions[-1], i) if predictions else None
    return history_frame(timestamps, values), markers, forecast


def score_text(alert: dict) -> str:
    """'z +4.1' for the z-score detector, 'score 0.62' for detectors scoring in [0, 1]."""
    if alert.get("score_label", "z") == "z":
        return f"z {alert['score']:+.1f}"
    return f"score {alert['score']:.2f}"


def clock_times_hint(first: float, shown_in: str) -> str:
    """What to say when a file's times, written without an offset, were read as UTC while
    the page shows another zone: the chart shows them shifted by that zone's offset, which
    is right for UTC times and wrong for the page's own clock times. Empty in UTC."""
    if not shown_in or shown_in == "UTC":
        return ""
    moment = dt.datetime.fromtimestamp(first, dt.timezone.utc)
    offset = zoneinfo.ZoneInfo(shown_in).utcoffset(moment)
    minutes = int(offset.total_seconds() // 60)
    shift = "" if not minutes else (f", {'+' if minutes > 0 else '-'}{abs(minutes) // 60}"
                                    + (f":{abs(minutes) % 60:02d}" if minutes % 60 else "")
                                    + " h from what the file says")
    return (f" Its times carry no UTC offset and were read as UTC; this page shows them in "
            f"{shown_in}{shift}. If they are {shown_in} clock times, choose that time zone "
            "and open it again.")


class StreamController(param.Parameterized):
    """Start/Stop/Reset, the selected series, and the streams the chart draws from."""

    series = param.Integer(default=0, bounds=(0, None), doc="Index of the series in the chart.")
    names = param.List(default=[], doc="Names of the engine's series, row by row.")
    running = param.Boolean(default=False, doc="Whether the shared engine is ticking.")
    status = param.Dict(default={}, doc="The engine's latest status: counters, model, quality.")
    alerts = param.List(default=[], doc="Alerts (flagged points) this viewer has seen, newest first.")
    incidents = param.List(default=[], doc="Incidents of every series, newest first (the feed).")
    muted = param.Dict(default={}, doc="Muted series and when each mute ends (ISO).")
    poll_period = param.Integer(
        default=250, bounds=(20, 60_000),
        doc="Milliseconds between periodic polls of the engine (the chart's updates in a "
        "notebook; a served page gets each tick pushed and polls only every status_period).",
    )
    status_period = param.Integer(
        default=1000, bounds=(20, 60_000),
        doc="Milliseconds between refreshes of the statistics, model and feed (at once "
        "when the stream starts or stops, after a command, and the feed when an incident "
        "opens, escalates or closes).",
    )
    role = param.Selector(
        default="admin", objects=list(ROLES), constant=True,
        doc="What this viewer may do (viewer: watch and export; operator: also Start/Stop/"
        "Reset, open a file, acknowledge and mute); admin where there is no auth (notebooks, AUTH=none).",
    )
    refused = param.Integer(
        default=0, doc="Commands refused to this viewer's role (forged events included)."
    )

    def __init__(self, engine: Engine, **params):
        super().__init__(**params)
        self.engine = engine
        # Each stream names its own keyword, so one poll triggers them together (one
        # refresh of the chart, not one per stream; HoloViews warns when names clash).
        self.history = hv.streams.Buffer(
            history_frame(), length=engine.settings.history_limit, index=False,
            rename={"data": "history"},
        )
        self.markers = hv.streams.Buffer(
            marker_frame(), length=MARKERS_KEPT, index=False, rename={"data": "markers"}
        )
        self.forecast = hv.streams.Pipe(data=forecast_frame(None, 0), rename={"data": "forecast"})
        # LATENCY_PROBE: the ticks' server times ride along with each poll's points
        self.probe = LatencyProbe() if engine.settings.latency_probe else None
        self._seq = 0
        self._generation = None
        self._incidents_version = None
        self._callback = None
        self._doc = None  # the served page's document, while ticks are pushed to it
        self._poll_queued = False
        self._status_at = -float("inf")
        self.toasts: list[str] = []  # the texts of the toasts raised, newest last (tests)
        self.sync()

    # ------------------------------------------------------------ commands

    def permits(self, action: str) -> bool:
        """Whether this viewer's role may ``action`` (an ``auth.ACTIONS`` key)."""
        return role_rank(self.role) >= role_rank(ACTIONS[action])

    def _allowed(self, action: str) -> bool:
        if self.permits(action):
            return True
        self.refused += 1
        log.warning("refused %s to a %s session", action, self.role)
        if pn.state.notifications is not None:
            pn.state.notifications.error(f"A {self.role} may not {action}.", duration=4000)
        return False

    def start(self, *_):
        if self._allowed("control"):
            self.engine.start()
            self.poll()

    def stop(self, *_):
        if self._allowed("control"):
            self.engine.stop()
            self.poll()

    def reset(self, *_):
        if self._allowed("control"):
            self.engine.reset()
            self.poll()

    def open_file(self, filename: str, content: bytes, speed: str = "",
                  timezone: str | None = None, sheet: str = "", shown_in: str = "") -> str:
        """Replay a file received from the page instead of the current source (see
        ``Engine.replace_source``), and start it; ``speed`` as REPLAY_SPEED, ``timezone``
        the zone of its times written without an offset (None: TIMEZONE; "": UTC), ``sheet``
        a workbook's sheet by name or number (empty: the first that can be replayed; other
        files ignore it), ``shown_in`` the zone the page shows times in (to say so when
        clock times read as UTC will look shifted there). Returns what happened, in one
        line, also shown as a toast. A file that cannot be read changes nothing: the stream
        goes on with its series."""
        if not self._allowed("control"):
            return f"A {self.role} may not open a file."
        return self._replay(self._read_file(filename, content, speed, timezone, sheet),
                            shown_in)

    async def open_file_aside(self, filename: str, content: bytes, speed: str = "",
                              timezone: str | None = None, sheet: str = "",
                              shown_in: str = "") -> str:
        """``open_file`` for a served page: the file is read on a worker thread, so the
        page's event loop (every viewer's updates, the REST answers) goes on meanwhile;
        only the switch to it runs on the loop."""
        import asyncio

        if not self._allowed("control"):
            return f"A {self.role} may not open a file."
        doc = pn.state.curdoc
        read = await asyncio.to_thread(self._read_file, filename, content, speed, timezone,
                                       sheet)
        with set_curdoc(doc):
            return self._replay(read, shown_in)

    def _read_file(self, filename: str, content: bytes, speed: str, timezone: str | None,
                   sheet: str = ""):
        """The ``ReplaySource`` of a received file and the zone its times were read in, or a
        one-line refusal (a string); it touches neither the engine nor the page, so it may
        run on any thread."""
        from ..sources.local_time import check_timezone
        from ..sources.points import InputError
        from ..sources.replay import ReplaySource
        from ..sources.table_file import file_kind
        from ..sources.unpacked import unpacked_limit

        s = self.engine.settings
        if len(content) > s.ingest_max_bytes:
            return (f"Not opened: {filename} is {len(content):,} bytes, over "
                    f"INGEST_MAX_BYTES ({s.ingest_max_bytes:,})")
        try:
            zone = check_timezone(s.timezone if timezone is None else timezone)
            source = ReplaySource.from_upload(
                filename, content, max_unpacked=unpacked_limit(s.ingest_max_bytes),
                label_column=s.label_column, timezone=zone,
                sheet=sheet.strip() if file_kind(Path(filename)) == "spreadsheet" else "",
                speed=speed, interval=s.data_generation_interval)
            return source, zone
        except InputError as exc:
            log.warning("refused a file opened from the dashboard: %s", exc)
            return f"Not opened: {exc}"
        except OSError as exc:  # the temporary folder is full or gone: the stream goes on
            log.error("could not keep a file opened from the dashboard to read it: %s", exc)
            return (f"Not opened: {filename} could not be kept to read it "
                    f"({exc.strerror or exc}); the server's temporary folder may be full")

    def _replay(self, read, shown_in: str = "") -> str:
        """Switch the stream to a source ``_read_file`` made, or tell its refusal."""
        if isinstance(read, str):
            return self._tell(read, error=True)
        source, zone = read
        self.engine.replace_source(source)
        self.engine.start()
        self.series = 0
        self.poll()
        names = ", ".join(source.series_names[:3]) + (", ..." if len(source.series_names) > 3 else "")
        said = (f"Replaying {source.label}: {source.rows:,} time steps of "
                f"{len(source.series_names)} series ({names}).")
        if source.batch.repeated:  # the page's user sees no log: say it, with the fix
            said += (f" {source.batch.repeated:,} row(s) repeat an earlier time of their series"
                     + ("." if zone else "; if its times are local clock times, choose their "
                        "time zone and open it again."))
        elif source.batch.clock_times and not zone:
            said += clock_times_hint(source.batch.timestamps[0], shown_in)
        return self._tell(said)

    def _tell(self, text: str, error: bool = False) -> str:
        self.toasts = (self.toasts + [text])[-TOASTS_KEPT:]
        if pn.state.notifications is not None:  # notyf shows a message as HTML: escaped
            toast = pn.state.notifications.error if error else pn.state.notifications.info
            toast(html.escape(text), duration=8000)
        return text

    def step(self):
        """Run one engine tick now and show it (notebooks, tests)."""
        self.engine.step()
        self.poll()

    def select_series(self, name: str | None) -> bool:
        """Show the series called ``name`` (a notification's link: ``?series=NAME``);
        False, and nothing changes, when there is no such series."""
        if name in self.names:
            self.series = self.names.index(name)
            return True
        return False

    @property
    def series_name(self) -> str | None:
        return self.names[self.series] if self.series < len(self.names) else None

    def acknowledge(self, *_) -> int:
        """Acknowledge the selected series' unacknowledged incidents; how many there were."""
        tracker, name = self.engine.incidents, self.series_name
        if name is None or not self._allowed("acknowledge"):
            return 0
        pending = [i["id"] for i in tracker.recent(series=name) if not i["acknowledged"]]
        for incident_id in pending:
            tracker.acknowledge(incident_id)
        self._refresh_incidents()
        return len(pending)

    def mute(self, seconds: float) -> None:
        """No toasts for the selected series for ``seconds`` (its incidents still show)."""
        if self.series_name is not None and self._allowed("mute"):
            self.engine.incidents.mute(self.series_name, seconds, time.time())
            self._refresh_incidents()

    def unmute(self, *_) -> None:
        if self.series_name is not None and self._allowed("mute"):
            self.engine.incidents.unmute(self.series_name)
            self._refresh_incidents()

    # ------------------------------------------------------------ admin: tokens, settings

    def tokens(self) -> dict[str, dict]:
        """API_TOKENS' entries, name -> {role, scopes} (never a digest); admin only."""
        path = self.engine.settings.api_tokens
        if not path or not self.permits("tokens"):
            return {}
        return {name: {"role": entry["role"], "scopes": list(entry["scopes"])}
                for name, entry in auth_files.list_tokens(path).items()}

    def create_token(self, name: str, role: str, scopes=()) -> tuple[str | None, str]:
        """(token, message): a new API token, shown to the admin once; only its sha256 is
        stored (the same file and code as ``granite-panel token create``). The server reads
        the file again at the next request, so the token works at once."""
        if not self._allowed("tokens"):
            return None, f"a {self.role} may not manage tokens"
        path = self.engine.settings.api_tokens
        if not path:
            return None, "API_TOKENS is not set: start serve with API_TOKENS=tokens.json"
        if not name.strip():
            return None, "a token needs a name (who or what will use it)"
        try:
            token = auth_files.create_token(path, name.strip(), role, scopes)
        except auth_files.AuthError as error:
            return None, str(error)
        log.info("token %r created (role %s) from the dashboard", name.strip(), role)
        return token, f"token {name.strip()!r} created; copy it now, it is not shown again"

    def revoke_token(self, name: str) -> str:
        if not self._allowed("tokens"):
            return f"a {self.role} may not manage tokens"
        path = self.engine.settings.api_tokens
        try:
            auth_files.revoke_token(path, name)
        except auth_files.AuthError as error:
            return str(error)
        log.info("token %r revoked from the dashboard", name)
        return f"token {name!r} revoked"

    def settings_rows(self) -> list[tuple[str, str]]:
        """(ENV NAME, value) of every setting, secrets shown only as set/empty; admin only."""
        if not self.permits("settings"):
            return []
        return shown_settings(self.engine.settings)

    # ------------------------------------------------------------ polling

    def attach(self) -> None:
        """Follow the engine: a periodic poll (status, and the chart in a notebook) and, in
        a served page, a poll pushed on this page's event loop right after each tick."""
        if self._callback is None:
            doc = pn.state.curdoc
            served = doc is not None and doc.session_context is not None
            # a served page gets each tick pushed: its periodic poll only refreshes the status
            period = max(self.poll_period, self.status_period) if served else self.poll_period
            self._callback = pn.state.add_periodic_callback(self._background_poll, period=period)
            if served:
                self._doc = doc
                self.engine.add_listener(self._schedule_poll)
                # however the page was served: a closed page leaves no listener behind
                pn.state.on_session_destroyed(lambda _context: self.detach())
                release_on_close()  # nor a page that Panel would keep (session_release)

    def detach(self) -> None:
        """Stop polling: a closed browser tab must leave no callback behind."""
        if self._doc is not None:
            self.engine.remove_listener(self._schedule_poll)
            self._doc = None
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    @property
    def attached(self) -> bool:
        return self._callback is not None

    def _schedule_poll(self) -> None:
        """(On the ticking thread.) Queue one poll on this page's event loop, unless one is
        queued already: a page that falls behind catches up in one batched update. The
        queued callback holds this controller weakly: a page that closes before it runs
        must not keep the controller (and its buffers) alive."""
        doc = self._doc
        if doc is None or self._poll_queued:
            return
        self._poll_queued = True
        poll = weakref.WeakMethod(self._pushed_poll)

        def queued_poll() -> None:
            method = poll()
            if method is not None:
                with set_curdoc(doc):
                    method()

        try:  # Bokeh's add_next_tick_callback is thread-safe
            doc.add_next_tick_callback(queued_poll)
        except Exception:  # the page's session is closing: its detach follows
            self._poll_queued = False
            log.debug("no poll queued for a closing page", exc_info=True)

    def _pushed_poll(self) -> None:
        self._poll_queued = False
        try:
            self._background_poll()
        except Exception:  # logged, and the next tick queues the next poll
            log.exception("a pushed poll failed")

    def _background_poll(self) -> None:
        """A poll nobody asked for (pushed or periodic): the status only when due."""
        self.poll(status=False)

    def poll(self, status: bool = True) -> None:
        """Bring this viewer up to date with the engine in one batched update.

        The chart gets every new tick; the statistics, model and feed (HTML re-rendered
        from ``status``) at most once per ``status_period``, or at once when the stream
        started or stopped (the feed also when an incident opened, escalated or closed),
        since re-rendering them on every tick of a 10 Hz stream cost more than the chart.
        ``status=False`` (pushed and periodic polls) leaves them to
        that rule; the commands (and a direct call) refresh them."""
        ticks = None
        if self._generation == self.engine.generation:
            ticks = self.engine.ticks_since(self._seq)
        now = time.monotonic()
        refresh = (status or ticks is None or self.running != self.engine.running
                   or now - self._status_at >= self.status_period / 1000)
        with pn.io.hold():
            if ticks is None:
                self.sync()
            elif ticks:
                self._apply(ticks)
            if refresh:
                self._status_at = now
                status = self.engine.status()
                self.param.update(status=status, running=status["running"])
                if len(status["series"]) != len(self.names):
                    self.names = status["series"]
            # The feed: at once when an incident opened, escalated or closed; an incident
            # that only grew by a point waits for the status refresh (re-rendering the feed
            # on every tick of a 10 Hz stream, in every viewer, cost more than the chart).
            opened_or_closed = bool(ticks) and any(t.incident_events for t in ticks)
            if (self._incidents_version != self.engine.incidents.version
                    and (refresh or opened_or_closed)):
                self._refresh_incidents()

    def _refresh_incidents(self) -> None:
        """The feed and the mutes from the engine's tracker (every viewer sees the same)."""
        tracker = self.engine.incidents
        self._incidents_version = tracker.version
        self.param.update(
            incidents=tracker.recent(INCIDENTS_SHOWN), muted=tracker.mutes(time.time())
        )

    @param.depends("series", watch=True)
    def sync(self) -> None:
        """Reload everything for the selected series from an engine snapshot."""
        snap = self.engine.snapshot()
        i = self.series
        self.history.clear()
        self.markers.clear()
        if i < len(snap.names):
            flagged = snap.severity[i] > 0
            self.history.send(history_frame(snap.timestamps, snap.values[i]))
            self.markers.send(
                marker_frame(
                    snap.timestamps[flagged], snap.values[i][flagged], snap.severity[i][flagged]
                )
            )
        last = latest_forecast(snap.predictions, i)  # FORECAST_EVERY > 1: maybe an older one
        self.forecast.send(forecast_frame(last[0] if last else None, i))
        alerts = [a.as_dict() for a in reversed(snap.alerts)][:ALERTS_SHOWN]
        self.param.update(
            alerts=alerts, status=snap.status, running=snap.status["running"],
            names=list(snap.names),
        )
        self._refresh_incidents()
        self._seq, self._generation = snap.seq, snap.generation

    def _apply(self, ticks: list[Tick]) -> None:
        slotted = [t for t in ticks if len(t.timestamps)]  # (a tick of incidents has none)
        if slotted:
            self._stream(slotted)
        new_alerts = [a for t in ticks for a in t.alerts]
        if new_alerts:
            fresh = [a.as_dict() for a in reversed(new_alerts)]
            self.alerts = (fresh + self.alerts)[:ALERTS_SHOWN]
        self._toast([e for t in ticks for e in t.incident_events])
        self._seq = ticks[-1].seq

    def _stream(self, ticks: list[Tick]) -> None:
        """The points of ``ticks`` into the selected series' chart streams."""
        history, markers, forecast = tick_frames(ticks, self.series)
        # Every stream updated first, then triggered once: one event per poll for whatever
        # subscribes (the live chart; a user's own DynamicMaps refresh once, not per stream).
        changed = [self.history]
        self.history.update(data=history)
        if markers is not None:
            self.markers.update(data=markers)
            changed.append(self.markers)
        if forecast is not None:  # this series' forecast was refreshed (FORECAST_EVERY: not each tick)
            self.forecast.update(data=forecast)
            changed.append(self.forecast)
        hv.streams.Stream.trigger(changed)
        if self.probe is not None:
            self.probe.send(ticks)

    def _toast(self, events) -> None:
        """One toast per incident that opened or escalated to high or critical (the last
        event of each incident in this poll), at most ``TOASTS_PER_POLL``."""
        latest: dict[str, object] = {}
        for event in events:
            if event.toast and event.incident["severity"] in ("high", "critical"):
                latest.pop(event.incident["id"], None)
                latest[event.incident["id"]] = event
        chosen = list(latest.values())[-TOASTS_PER_POLL:]
        notifications = pn.state.notifications
        for event in chosen:
            incident = event.incident
            verb = "escalated to" if event.kind == "escalated" else "incident:"
            points = incident["points"]
            if incident.get("kind") == NO_DATA:
                text = (f"{incident['series']}: no data, {incident['severity'].upper()} "
                        f"({points} slot{'s' if points != 1 else ''} missed)")
            else:
                peak = score_text({"score": incident["peak_score"],
                                   "score_label": self._score_label})
                text = (f"{incident['series']} {verb} {incident['severity'].upper()} "
                        f"({points} point{'s' if points != 1 else ''}, peak {peak})")
            self.toasts = (self.toasts + [text])[-TOASTS_KEPT:]
            if notifications is None:
                continue
            # notyf shows a message as HTML, and a series is named by whoever pushes it
            shown = html.escape(text)
            if incident["severity"] == "critical":
                notifications.error(shown, duration=6000)
            else:
                notifications.warning(shown, duration=4000)

    @property
    def _score_label(self) -> str:
        return (self.status.get("detector") or {}).get("score", "score")
