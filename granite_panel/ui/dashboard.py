"""The dashboard layout: chart, controls, live statistics, model status and incident feed.

The same ``Dashboard`` object renders inline in JupyterLab and as the served app.
"""

from __future__ import annotations

import html

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import panel as pn
import param

from .controller import StreamController, score_text
from .display_time import DisplayClock
from .fleet import FleetView
from .history import HistoryView
from .live_chart import LiveChart
from ..detection.incidents import NO_DATA
from ..detection.live import SEVERITY_COLORS, SEVERITY_NAMES
from ..engine.core import Engine
from ..settings import Settings
from ..sources.local_time import time_zones
from ..sources.table_file import FILE_SUFFIXES

STYLE = """
.gp-stats td {padding: 2px 10px 2px 0;} .gp-stats td:first-child {color: #555;}
.gp-alerts {max-height: 320px; overflow-y: auto; font-size: 13px;}
.gp-incident {border-left: 6px solid; padding: 3px 8px; margin: 3px 0; background: #fafafa;}
.gp-incident.gp-ongoing {background: #fff7f0;}
.gp-badge {font-size: 11px; padding: 0 5px; border-radius: 3px; background: #d62728; color: white;}
.gp-badge.gp-ack {background: #2ca02c;} .gp-badge.gp-muted {background: #777;}
.gp-model {padding: 6px 10px; border-radius: 4px; background: #eef3f8;}
.gp-model.gp-fallback {background: #fff4e5;}
"""


def engine_for_frame(frame, name: str = "value", speed: str = "",
                     settings: Settings | None = None, **columns) -> Engine:
    """An engine whose source replays ``frame`` (notebooks; see ``Dashboard.from_frame``)."""
    from ..sources.replay import ReplaySource

    settings = settings or Settings.from_env()
    columns.setdefault("timezone", settings.timezone)
    source = ReplaySource.from_frame(
        frame, name, speed=speed, interval=settings.data_generation_interval, **columns
    )
    return Engine(settings, source=source)


def extension(inline: bool = False) -> None:
    """Load HoloViews/Panel front-end code; ``inline=True`` for offline JupyterLab."""
    hv.extension("bokeh", inline=inline, logo=False)
    pn.extension("tabulator", notifications=True, inline=inline, raw_css=[STYLE])  # the fleet table


def render_stats(status: dict) -> str:
    detection = status.get("detection") or {}

    def pct(value):
        return "n/a" if value is None else f"{100 * value:.0f}%"

    inference = status.get("last_inference_ms")
    rows = [
        ("State", "running" if status.get("running") else "stopped", "running"),
        ("Source", render_source(status.get("source") or {}), "source"),
        ("Series", f"{status.get('n_series', 0):,}", "n_series"),
        ("Points", f"{status.get('data_points', 0):,}", "data_points"),
        ("Bad points", f"{status.get('bad_points', 0):,}", "bad_points"),
        ("Gaps", f"{status.get('gap_points', 0):,}", "gap_points"),
        ("Anomalies", f"{status.get('anomaly_count', 0):,}", "anomaly_count"),
        ("Detector", render_detector(status.get("detector") or {}), "detector"),
        ("Predictions", f"{status.get('total_predictions', 0):,}", "total_predictions"),
        ("Active model", status.get("active_model") or "none yet", "active_model"),
        ("Last inference", "n/a" if inference is None else f"{inference:.1f} ms", "inference"),
        ("Precision", pct(detection.get("precision")), "precision"),
        ("Recall", pct(detection.get("recall")), "recall"),
    ]
    accuracy = status.get("accuracy") or {}
    if accuracy.get("coverage") is not None:
        rows.append(
            (
                f"Band coverage (nominal {accuracy['interval_level']:.0%})",
                f"{accuracy['coverage']:.0%} of {accuracy['coverage_points']:,} points",
                "coverage",
            )
        )
    notifications = status.get("notifications") or {}
    if notifications.get("enabled"):
        receivers = (notifications.get("receivers") or {}).values()
        sent = sum(r.get("sent", 0) for r in receivers)
        failed = sum(r.get("failed", 0) for r in receivers)
        rows.append(("Notifications", f"{sent:,} sent, {failed:,} failed", "notifications"))
    refused = status.get("refused_points", 0)
    if refused:
        rows.append(("Refused points", f"{refused:,} ({status.get('last_refusal') or 'see /api/ingest answers'})", "refused"))
    if status.get("errors"):
        rows.append(("Tick errors", f"{status['errors']} ({status.get('last_error')})", "errors"))
    body = "".join(
        f'<tr><td>{label}</td><td class="stat-{key}">{html.escape(str(value))}</td></tr>'
        for label, value, key in rows
    )
    return f'<table class="gp-stats">{body}</table>' + render_accuracy(accuracy)


def render_detector(detector: dict) -> str:
    """Which detector scores, with which season, and from which value of a series it can
    raise an alert."""
    name, learning = detector.get("name") or "n/a", detector.get("learning_points") or 0
    season = detector.get("season")
    if season == "estimate":
        name += ", season estimated per series"
    elif season:
        name += f", season {season:,} points"
    if not learning:
        return name
    return f"{name} (learns each series for {learning:,} values before alerting)"


def render_source(source: dict) -> str:
    """'prometheus: ok', 'replay: 120 of 4,032 rows', 'prometheus: down (timeout)'."""
    kind, state = source.get("kind", "unknown"), source.get("state", "ok")
    if kind == "replay":
        text = f"replay of {source.get('file')}: {source.get('position', 0):,} of {source.get('rows', 0):,} rows"
        return text + (" (finished)" if state == "finished" else "")
    if state not in ("ok", None):
        return f"{kind}: {state}" + (f" ({source['error']})" if source.get("error") else "")
    return kind


def render_accuracy(accuracy: dict) -> str:
    """MAE and MASE of the live model beside seasonal naive, over matured forecasts."""
    if not accuracy.get("window"):
        return '<p class="gp-accuracy"><i>Accuracy appears when the first forecast matures.</i></p>'

    def num(value):
        return "n/a" if value is None else f"{value:.3g}"

    model, naive = accuracy["model"], accuracy["seasonal_naive"]
    return (
        f'<table class="gp-stats gp-accuracy"><tr><td>last {accuracy["window"]} forecasts</td>'
        "<td>MAE</td><td>MASE</td></tr>"
        f'<tr><td>{html.escape(str(model["name"]))}</td><td class="acc-model-mae">{num(model["mae"])}</td>'
        f'<td class="acc-model-mase">{num(model["mase"])}</td></tr>'
        f'<tr><td>seasonal naive</td><td class="acc-naive-mae">{num(naive["mae"])}</td>'
        f'<td class="acc-naive-mase">{num(naive["mase"])}</td></tr></table>'
    )


def render_model(status: dict) -> str:
    source = status.get("source") or {}
    trouble = ""
    if source.get("state") not in (None, "ok", "finished"):
        trouble = (
            f'<div class="gp-model gp-fallback gp-source-down">Source {html.escape(render_source(source))}'
            "; the stream keeps its history and resumes when it is back</div>"
        )
    storage = status.get("storage") or {}
    if storage.get("state") not in (None, "ok"):
        trouble += (
            f'<div class="gp-model gp-fallback gp-storage-down">Storage degraded: '
            f'{html.escape(str(storage.get("reason") or "unknown"))}; the stream goes on in '
            "memory and writes are retried; pushes get 503 until it recovers</div>"
        )
    return trouble + render_notifications(status) + _render_model(status) + render_serving(status)


def render_notifications(status: dict) -> str:
    """One line per webhook receiver that is failing (retrying, or its last try failed)."""
    notifications = status.get("notifications") or {}
    lines = []
    for name, receiver in (notifications.get("receivers") or {}).items():
        if receiver.get("state") in (None, "ok"):
            continue
        retry = " (retrying)" if receiver.get("retrying") else ""
        lines.append(
            f'<div class="gp-model gp-fallback gp-notify-failing">Notifications to '
            f"<b>{html.escape(name)}</b> ({html.escape(str(receiver.get('url')))}) failing"
            f"{retry}: {html.escape(str(receiver.get('last_error') or 'unknown'))}; "
            f"{receiver.get('sent', 0)} sent, {receiver.get('failed', 0)} failed, "
            f"{receiver.get('dropped', 0)} dropped</div>"
        )
    return "".join(lines)


def render_serving(status: dict) -> str:
    """The banner (exactly what serves and why), the series that fell back, training progress."""
    model = status.get("model") or {}
    parts = []
    if model.get("banner"):
        parts.append(f'<div class="gp-banner"><small>{html.escape(model["banner"])}</small></div>')
    naive = status.get("naive_series") or []
    if naive:
        names = ", ".join(naive[:10]) + (f" and {len(naive) - 10} more" if len(naive) > 10 else "")
        parts.append(
            f'<div class="gp-naive-series"><small>Seasonal naive for {len(naive)} series '
            f"(it beat the model's live MASE there): {html.escape(names)}</small></div>"
        )
    parts.append(render_training(model.get("training")))
    return "".join(parts)


def render_training(training: dict | None) -> str:
    """Phase, epoch, validation loss and ETA of the background trainer (nothing when off)."""
    if not training:
        return ""
    phase = training.get("phase", "idle")
    bits = [f"Training: {phase}"]
    if phase in ("training", "validating"):
        bits.append(f"epoch {training.get('epoch', 0)}, step {training.get('step', 0)}")
        if training.get("validation_loss") is not None:
            bits.append(f"validation loss {training['validation_loss']:.4g}")
        if training.get("eta_s") is not None:
            bits.append(f"ETA {training['eta_s']:.0f} s")
    elif training.get("message"):
        bits.append(str(training["message"]))
    card = training.get("last_card") or {}
    if card.get("decision") and phase not in ("done",):
        bits.append(f"last run {card['decision']}")
    return f'<div class="gp-training"><small>{html.escape("; ".join(bits))}</small></div>'


def _render_model(status: dict) -> str:
    model = status.get("model") or {}
    state = model.get("state", "not loaded")
    reason = status.get("fallback_reason")
    active = html.escape(str(status.get("active_model") or model.get("active_model") or ""))
    if state in ("loading", "not loaded"):
        text = f"&#8987; Loading model {html.escape(model.get('model_name', ''))} &hellip;"
        if reason:
            text += f" <br><small>{html.escape(reason)}</small>"
        return f'<div class="gp-model gp-fallback gp-loading">{text}</div>'
    if reason:
        return (
            f'<div class="gp-model gp-fallback">Forecasts by <b>{active}</b>'
            f"<br><small>{html.escape(reason)}</small></div>"
        )
    device = model.get("device") or "cpu"
    return f'<div class="gp-model">Forecasts by <b>{active}</b> on {html.escape(device)}</div>'


MUTE_DURATIONS = {"15 minutes": 900, "1 hour": 3600, "4 hours": 4 * 3600, "1 day": 86_400}
# REPLAY_SPEED values offered beside "Open a file"
REPLAY_SPEEDS = {"one row per tick": "", "10 rows/s": "10", "100 rows/s": "100",
                 "1,000 rows/s": "1000", "all at once (backtest)": "max"}


def render_incidents(incidents: list[dict], score_label: str = "score",
                     clock: DisplayClock | None = None) -> str:
    """The feed: one line per incident, newest first; ongoing ones marked; times in the
    clock's zone (default UTC)."""
    clock = clock or DisplayClock()
    if not incidents:
        return '<div class="gp-alerts"><i>No incidents yet.</i></div>'
    items = []
    for incident in incidents:
        severity = incident["severity"]
        colour = SEVERITY_COLORS[SEVERITY_NAMES.index(severity)]
        end = incident["end"]
        when = clock.span(incident["start"], end)
        if end is None:
            when += ' &rarr; now <span class="gp-badge">ONGOING</span>'
        points = incident["points"]
        if incident.get("kind") == NO_DATA:  # the series stopped reporting
            what = f'<b>no data</b> &middot; {points} slot{"s" if points != 1 else ""} missed'
        else:
            peak = score_text({"score": incident["peak_score"], "score_label": score_label})
            what = f'{points} point{"s" if points != 1 else ""} &middot; peak {peak}'
        band = incident.get("band") or {}
        band_text = ""
        if band.get("lower") is not None and band.get("upper") is not None:
            band_text = f" &middot; band {band['lower']:.2f} to {band['upper']:.2f}"
        elif band.get("forecast") is not None:
            band_text = f" &middot; forecast {band['forecast']:.2f}"
        badges = ""
        if incident.get("acknowledged"):
            badges += ' <span class="gp-badge gp-ack">ACK</span>'
        if incident.get("muted"):
            badges += ' <span class="gp-badge gp-muted">MUTED</span>'
        ongoing = " gp-ongoing" if end is None else ""
        items.append(
            f'<div class="gp-incident incident-{severity}{ongoing}" style="border-color:{colour}" '
            f'title="{html.escape(incident["id"])}">'
            f'<b style="color:{colour}">{severity.upper()}</b> '
            f'{html.escape(str(incident["series"]))} &middot; {when} &middot; '
            f'{what}{band_text}{badges}</div>'
        )
    return f'<div class="gp-alerts">{"".join(items)}</div>'


def render_mutes(muted: dict, clock: DisplayClock | None = None) -> str:
    if not muted:
        return ""
    clock = clock or DisplayClock()
    text = ", ".join(f"{html.escape(s)} until {clock.clock_time(u)}" for s, u in muted.items())
    return f'<div class="gp-mutes"><small>Muted (no toasts): {text}</small></div>'


class Dashboard(pn.viewable.Viewer):
    """Live forecasting and anomaly dashboard for one viewer of an engine."""

    controller = param.ClassSelector(class_=StreamController, doc="This viewer's controller.")
    user = param.String(default="", doc="Who is signed in (empty without auth).")

    def __init__(self, engine: Engine | None = None, autopoll: bool = True,
                 role: str = "admin", **params):
        if "controller" not in params:
            params["controller"] = StreamController(engine or Engine(Settings.from_env()),
                                                    role=role)
        super().__init__(**params)
        # the zone this viewer reads times in (DISPLAY_TIMEZONE; by default the browser's)
        self.clock = DisplayClock.for_session(self.engine.settings.display_timezone)
        if autopoll:
            self.controller.attach()
        self._layout = self._build()

    @classmethod
    def from_frame(cls, frame, name: str = "value", speed: str = "", autopoll: bool = True,
                   settings: Settings | None = None, **columns) -> Dashboard:
        """A dashboard replaying a pandas DataFrame (wide or long, as a file would be).

        ``speed``: rows per second, ``"max"``, or empty for one row per tick; ``columns``:
        ``timestamp_column``, ``value_columns``, ``label_column``, ``timezone`` (default
        TIMEZONE) as for files.
        """
        return cls(engine=engine_for_frame(frame, name, speed, settings, **columns),
                   autopoll=autopoll)

    @property
    def engine(self) -> Engine:
        return self.controller.engine

    @property
    def band_label(self) -> str:
        return f"{self.engine.settings.interval_level:.0%} band"

    def chart(self) -> pn.pane.Bokeh:
        """The live chart of the selected series (``LiveChart``: Bokeh sources fed by the
        controller's streams)."""
        self.live_chart = LiveChart(self.controller, self.band_label, self.clock)
        return self.live_chart.pane

    def _series_select(self) -> pn.widgets.Select:
        """The series in the chart, by name; new series join the options as they appear."""
        c = self.controller
        select = pn.widgets.Select.from_param(
            c.param.series, options=self._options(c.names), label="Series", width=220
        )

        def refresh(event):
            select.options = self._options(event.new)

        c.param.watch(refresh, "names")
        return select

    @staticmethod
    def _options(names: list[str]) -> dict:
        return {name: i for i, name in enumerate(names)} or {"(no series yet)": 0}

    def _incident_controls(self) -> pn.Row:
        """Acknowledge and mute, both for the series selected in the chart."""
        c = self.controller
        locked = not c.permits("mute")  # the controller refuses anyway: this is for the eye
        acknowledge = pn.widgets.Button(label="Acknowledge", color="primary", width=120,
                                        disabled=not c.permits("acknowledge"))
        duration = pn.widgets.Select(
            label="Mute for", options=MUTE_DURATIONS, value=MUTE_DURATIONS["1 hour"], width=120,
            disabled=locked,
        )
        mute = pn.widgets.Button(label="Mute series", width=110, disabled=locked)
        unmute = pn.widgets.Button(label="Unmute", width=90, disabled=locked)
        acknowledge.on_click(c.acknowledge)
        mute.on_click(lambda _: c.mute(duration.value))
        unmute.on_click(c.unmute)
        return pn.Row(acknowledge, duration, mute, unmute, align="end")

    def _zone_picker(self) -> pn.widgets.AutocompleteInput:
        """"Times in": the zone this page shows times in (DISPLAY_TIMEZONE's, or the
        browser's until the viewer picks another)."""
        clock = self.clock
        picker = pn.widgets.AutocompleteInput(
            label="Times in", options=list(time_zones()), value=clock.zone, restrict=False,
            case_sensitive=False, search_strategy="includes", min_characters=1, width=200,
            css_classes=["gp-display-zone"])

        def picked(event):
            zone = next((z for z in time_zones() if z.lower() == event.new.strip().lower()), "")
            if zone and zone != clock.zone:
                clock.choose(zone)
            picker.value = clock.zone  # an unknown or empty name: the zone shown stays

        picker.param.watch(picked, "value")
        clock.param.watch(lambda event: setattr(picker, "value", event.new), "zone")
        return picker

    def _file_controls(self) -> pn.Row:
        """Open a file: the stream replays it instead of its source (operators; the
        controller refuses anyone else anyway), at the speed chosen beside it, its times
        without an offset in the zone typed beside it, a workbook from the sheet named. The
        options come first: choosing the file opens it."""
        c = self.controller
        locked = not c.permits("control")
        speeds = dict(REPLAY_SPEEDS)
        if c.engine.settings.replay_speed not in speeds.values():
            speeds[f"{c.engine.settings.replay_speed} rows/s"] = c.engine.settings.replay_speed
        speed = pn.widgets.Select(label="Replay speed", options=speeds, width=170,
                                  value=c.engine.settings.replay_speed, disabled=locked)
        # the zone of times written without an offset (a logger's or a spreadsheet's clock
        # times); TIMEZONE by default, empty: UTC
        zone = pn.widgets.AutocompleteInput(
            label="Time zone", options=list(time_zones()), value=c.engine.settings.timezone,
            placeholder="UTC", restrict=False, case_sensitive=False, search_strategy="includes",
            min_characters=1, width=200, disabled=locked, css_classes=["gp-open-zone"])
        # a workbook's sheet, by name or number; empty: the first one that can be replayed
        sheet = pn.widgets.TextInput(label="Sheet (workbooks)", placeholder="first that replays",
                                     width=150, disabled=locked, css_classes=["gp-open-sheet"])
        chooser = pn.widgets.FileInput(accept=",".join(FILE_SUFFIXES), width=240, align="end",
                                       disabled=locked, css_classes=["gp-open-file"])
        outcome = pn.pane.HTML("", css_classes=["gp-open-outcome"], sizing_mode="stretch_width")

        async def opened(event):  # read aside: the page's loop serves every viewer meanwhile
            if event.new is None:
                return
            name = chooser.filename or ""
            chooser.disabled = True
            outcome.object = f"<small>Reading {html.escape(name)} ...</small>"
            try:
                said = await c.open_file_aside(name, event.new, speed.value, zone.value or "",
                                               sheet.value_input or sheet.value,
                                               shown_in=self.clock.zone)
            finally:
                # emptied: the page and the session let go of the file's bytes, and the
                # same file can be chosen again (a browser reports no change otherwise)
                chooser.clear()
                chooser.disabled = False
            outcome.object = f"<small>{html.escape(said)}</small>"

        chooser.param.watch(opened, "value")
        return pn.Row(pn.pane.HTML("<b>Open a file</b>", align="center", margin=(5, 10)),
                      speed, zone, sheet, chooser, outcome, align="end",
                      sizing_mode="stretch_width")

    def _build(self) -> pn.viewable.Viewable:
        c = self.controller
        locked = not c.permits("control")  # the controller refuses anyway: this is for the eye
        start = pn.widgets.Button(label="Start", color="success", width=90, disabled=locked)
        stop = pn.widgets.Button(label="Stop", color="warning", width=90, disabled=locked)
        reset = pn.widgets.Button(label="Reset", color="danger", width=90, disabled=locked)
        start.on_click(c.start)
        stop.on_click(c.stop)
        reset.on_click(c.reset)
        controls = [start, stop, reset, self._series_select()]
        stats = pn.pane.HTML(pn.bind(render_stats, c.param.status), width=320)
        model = pn.pane.HTML(pn.bind(render_model, c.param.status), sizing_mode="stretch_width")
        feed = pn.pane.HTML(
            pn.bind(lambda incidents, status, _zone: render_incidents(
                incidents, (status.get("detector") or {}).get("score", "score"), self.clock),
                c.param.incidents, c.param.status, self.clock.param.zone),
            sizing_mode="stretch_width",
        )
        mutes = pn.pane.HTML(pn.bind(lambda muted, _zone: render_mutes(muted, self.clock),
                                     c.param.muted, self.clock.param.zone),
                             sizing_mode="stretch_width")
        feed_title = pn.pane.Markdown(pn.bind(
            lambda zone: f"#### Incidents (newest first, times in {zone})", self.clock.param.zone))
        # every series at a glance; a row click opens it above. Built into the page only
        # once opened (a hidden fleet costs neither the page build nor its refreshes).
        self.fleet = FleetView(c, active=False)
        fleet_card = pn.Card(title="Fleet", collapsed=True, sizing_mode="stretch_width")

        def open_fleet(event):
            if not event.new and not fleet_card.objects:
                fleet_card.objects = [self.fleet]
            self.fleet.active = not event.new

        fleet_card.param.watch(open_fleet, "collapsed")
        title = "## granite-panel · live forecast and anomalies"
        signed_in = []
        if self.user:
            signed_in = [pn.pane.HTML(
                f'<span class="gp-user">{html.escape(self.user)} ({c.role})</span> &middot; '
                '<a href="./logout">log out</a>', align="center", margin=(0, 10))]
        probe = [c.probe.panel()] if c.probe is not None else []  # LATENCY_PROBE=on only
        return pn.Column(
            pn.Row(pn.pane.Markdown(title, margin=(0, 10)), *signed_in, pn.HSpacer(),
                   self._zone_picker(), sizing_mode="stretch_width"),
            *probe,
            pn.Row(*controls, model, sizing_mode="stretch_width"),
            self._file_controls(),
            self.chart(),
            fleet_card,
            pn.Row(
                pn.Column("#### Statistics", stats),
                pn.Column(
                    feed_title,
                    self._incident_controls(),
                    mutes,
                    feed,
                    sizing_mode="stretch_width",
                ),
                sizing_mode="stretch_width",
            ),
            pn.Card(HistoryView(c, clock=self.clock), title="Stored history and downloads",
                    collapsed=True,
                    sizing_mode="stretch_width"),
            *self._admin_card(),
            sizing_mode="stretch_width",
        )

    def _admin_card(self) -> list:
        """The admin's tokens and settings, only in an admin's page (the controller refuses
        the commands to any other role anyway)."""
        self.admin = None
        if not self.controller.permits("tokens"):
            return []
        from .admin import AdminView

        self.admin = AdminView(self.controller)
        return [pn.Card(self.admin, title="Admin: API tokens and settings", collapsed=True,
                        sizing_mode="stretch_width", css_classes=["gp-admin"])]

    def __panel__(self):
        return self._layout
