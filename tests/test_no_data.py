"""NO_DATA_AFTER: a live series that stops reporting opens a ``no data`` incident, closed
when it is heard again; stored, restored, shown, toasted and sent like any incident, even
when every series went silent and no slot closes."""

from __future__ import annotations

import time

import jsonschema
import numpy as np
import pytest

from granite_panel.detection.incidents import IncidentTracker, iso
from granite_panel.engine.core import Engine
from granite_panel.notify import payloads
from granite_panel.server.api import incidents_payload
from granite_panel.server.openapi import SCHEMAS
from granite_panel.settings import Settings
from granite_panel.sources.points import Points
from granite_panel.store import open_store
from granite_panel.ui.controller import StreamController
from granite_panel.ui.dashboard import render_incidents


def test_a_silent_series_opens_one_no_data_incident_closed_when_it_is_heard_again():
    tracker = IncidentTracker()
    changes = tracker.no_data({"meter": (0, 100.0)}, now=200.0, after=60.0, step=10.0)
    (event,) = changes.events
    assert event.kind == "opened" and event.toast
    opened = event.incident
    assert (opened["kind"], opened["severity"], opened["start"], opened["end"],
            opened["points"]) == ("no data", "high", iso(110.0), None, 10)
    assert opened["id"].endswith("#no-data")
    assert [i["kind"] for i in changes.incidents] == ["no data"]  # what the store keeps
    # still silent: nothing new; counted as open
    assert tracker.no_data({"meter": (0, 100.0)}, 260.0, 60.0, 10.0).events == ()
    assert tracker.summary(260.0)["open"] == 1 and tracker.silent() == {"meter"}
    (closed,) = tracker.data_returned({"meter": 300.0}, step=10.0).events
    assert closed.kind == "closed" and not closed.toast
    assert (closed.incident["end"], closed.incident["points"]) == (iso(290.0), 19)
    assert tracker.silent() == set() and tracker.summary(300.0)["open"] == 0
    # a series heard again that had no incident changes nothing
    assert tracker.data_returned({"other": 300.0}, 10.0).events == ()


def test_a_muted_series_records_its_no_data_incident_without_a_toast_and_a_restart_keeps_it():
    tracker = IncidentTracker()
    tracker.mute("meter", 3600, now=0.0)
    changes = tracker.no_data({"meter": (0, 100.0), "pump": (1, 100.0)}, 200.0, 60.0, 10.0)
    by_series = {e.incident["series"]: e for e in changes.events}
    assert not by_series["meter"].toast and by_series["meter"].incident["muted"]
    assert by_series["pump"].toast
    restored = IncidentTracker()
    assert restored.restore(changes.incidents) == 2
    assert restored.silent() == {"meter", "pump"}
    assert restored.no_data({"meter": (0, 100.0)}, 300.0, 60.0, 10.0).events == ()
    assert [i["kind"] for i in restored.recent()] == ["no data", "no data"]


def settings(**overrides) -> Settings:
    base = dict(source="push", data_generation_interval=1.0, no_data_after=5.0,
                model_name="/nonexistent/model-folder", fallback_model="SeasonalNaive",
                context_length=16, history_limit=256, forecast_horizon=4, detector="zscore")
    return Settings(**{**base, **overrides})


def push(engine, names, at):
    engine.ingest_points(Points(tuple(names), np.full(len(names), at), np.ones(len(names))),
                         now=at)


def test_the_engine_notices_one_series_going_silent_then_every_one_and_a_restart_keeps_it(
        tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'kept.db'}")
    engine = Engine(settings(), store=store)
    controller = StreamController(engine, role="operator")
    t0 = float(int(time.time()))
    try:
        push(engine, ["meter", "pump"], t0)
        for k in range(1, 8):  # the meter goes on; the pump falls silent after t0
            push(engine, ["meter"], t0 + k)
            engine.step(now=t0 + k)
        (silent,) = engine.incidents.ongoing()
        assert (silent["series"], silent["kind"], silent["start"]) == ("pump", "no data",
                                                                       iso(t0 + 1))
        controller.poll()
        assert controller.toasts[-1].startswith("pump: no data, HIGH (")
        assert "no data" in render_incidents(controller.incidents)
        # now nothing at all arrives: no slot closes, yet the meter's silence is told
        tick = engine.step(now=t0 + 20)
        assert tick is not None and len(tick.timestamps) == 0
        assert [(e.kind, e.incident["series"]) for e in tick.incident_events] == [
            ("opened", "meter")]
        controller.poll()  # a tick without slots leaves the chart alone
        assert controller.toasts[-1].startswith("meter: no data, HIGH (")
        assert len(controller.history.data) == len(engine.snapshot().timestamps)
        payload = incidents_payload(engine)
        jsonschema.validate(payload, {**SCHEMAS["Incidents"], "components": {"schemas": SCHEMAS}})
        assert sorted(i["series"] for i in payload["incidents"] if i["end"] is None) == [
            "meter", "pump"]
        engine.wait_stored(10)
        kept = {i["series"]: i for i in store.incidents()}
        assert kept["pump"]["kind"] == kept["meter"]["kind"] == "no data"
        assert kept["pump"]["end"] is None
    finally:
        engine.close()  # (closes its store)

    store = open_store(f"sqlite:///{tmp_path / 'kept.db'}")
    again = Engine(settings(), store=store)  # a restart: both are still silent
    try:
        assert again.incidents.silent() == {"meter", "pump"}
        assert again.step() is None  # at once: not taken for back
        assert again.step(now=time.time() + 60) is None  # nor opened twice
        back = time.time() + 61
        push(again, ["pump"], back)
        tick = again.step(now=back)
        (closed,) = [e for e in tick.incident_events if e.kind == "closed"]
        assert closed.incident["series"] == "pump" and closed.incident["end"] is not None
        assert again.incidents.silent() == {"meter"}
        again.wait_stored(10)
        assert {i["series"]: i["end"] is None for i in store.incidents()} == {
            "meter": True, "pump": False}
    finally:
        again.close()


def test_off_by_default_and_only_for_live_sources():
    engine = Engine(settings(no_data_after=0.0))
    try:
        push(engine, ["meter"], 1000.0)
        tick = engine.step(now=5000.0)  # (closes the pushed point's slot, nothing more)
        assert tick.incident_events == () and engine.incidents.ongoing() == []
    finally:
        engine.close()
    replay = Engine(Settings(source="synthetic", no_data_after=1.0, n_series=1,
                             model_name="/nonexistent", fallback_model="SeasonalNaive",
                             context_length=16, history_limit=256, forecast_horizon=4))
    try:
        replay.step()
        replay.step(now=time.time() + 3600)
        assert all(i["kind"] == "anomaly" for i in replay.incidents.recent())
    finally:
        replay.close()


@pytest.mark.parametrize("fmt", ["json", "slack", "alertmanager"])
def test_notifications_say_no_data_instead_of_a_peak_score(fmt):
    tracker = IncidentTracker()
    (event,) = tracker.no_data({"pump": (0, 100.0)}, 200.0, 60.0, 10.0).events
    body = payloads.build(fmt, "opened", event.incident, "http://x/?series=pump", "r", "http://x")
    text = str(body)
    assert "pump: no data, HIGH (10 slots missed)" in text
    assert "peak 0" not in text and "peak score" not in text
    if fmt == "alertmanager":
        assert body["alerts"][0]["labels"]["kind"] == "no data"
