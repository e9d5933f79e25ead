"""Incidents: flagged points grouped per series; escalation, acknowledgement, mute, restart."""

import csv
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from granite_panel.detection.incidents import FlaggedPoint, IncidentTracker, iso
from granite_panel.settings import Settings
from granite_panel.ui.controller import StreamController
from granite_panel.ui.dashboard import engine_for_frame, render_incidents

from .serving import running_server, status, wait_for

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab" / "data"
STEP = 60.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NAMES = ("cpu", "mem")


def flagged(slots, severity=1, row=0, score=None):
    """Flagged points of ``row`` at the given grid slots."""
    return [FlaggedPoint(row, T0 + s * STEP, 0.3 if score is None else score, severity)
            for s in slots]


def feed(tracker, slots, flags, now=0.0):
    """Feed ``slots`` (grid indices) one tick a slot, as a live stream does; the changes."""
    by_slot = {}
    for point in flags:
        by_slot.setdefault(round((point.timestamp - T0) / STEP), []).append(point)
    return [tracker.update(np.array([T0 + s * STEP]), by_slot.get(s, []), NAMES, STEP, now)
            for s in slots]


def shift_frame(n=700, start=650, length=10, size=12.0):
    rng = np.random.default_rng(0)
    values = 100 + rng.normal(0, 1, n)
    values[start:start + length] += size
    return pd.DataFrame(
        {"timestamp": pd.date_range("2026-01-01", periods=n, freq="min"), "value": values})


def settings(**overrides):
    base = dict(fallback_model="SeasonalNaive", model_name="/nonexistent/model-folder",
                context_length=512, history_limit=1024, data_generation_interval=60)
    return Settings(**{**base, **overrides})


def test_a_ten_point_level_shift_through_the_engine_is_one_incident():
    engine = engine_for_frame(shift_frame(), "shift", speed="max", settings=settings())
    while not engine.source.finished:
        engine.step()
    shift_alerts = [a for a in engine.alerts if a.timestamp >= T0 + 650 * STEP]
    assert len(shift_alerts) == 10  # the default detector flags every point of the shift
    shift = [i for i in engine.incidents.recent() if i["start"] >= "2026-01-01T10:50"]
    assert len(shift) == 1, shift
    (incident,) = shift
    assert incident["points"] == 10 and incident["end"] == "2026-01-01T10:59:00.000Z"
    assert incident["id"] == "shift@2026-01-01T10:50:00.000Z" and not incident["ongoing"]
    assert incident["peak_score"] == round(max(a.score for a in shift_alerts), 4)
    assert incident["severity"] == "critical"
    summary = engine.status()["incidents"]
    assert summary["open"] == 0 and summary["total"] == len(engine.incidents.recent())


def test_consecutive_points_make_one_incident_with_its_fields():
    tracker = IncidentTracker(gap=5)
    changes = feed(tracker, range(20), flagged(range(3, 13), score=0.4))
    (incident,) = tracker.recent()
    assert incident["points"] == 10 and incident["series"] == "cpu" and incident["row"] == 0
    assert incident["start"] == "2026-01-01T00:03:00.000Z"
    assert incident["end"] == incident["last_flagged"] == "2026-01-01T00:12:00.000Z"
    kinds = [e.kind for c in changes for e in c.events]
    assert kinds == ["opened", "closed"]  # ten points: one toast, not ten
    # it closes on the 6th unflagged slot (slot 18), not before
    assert [i for i, c in enumerate(changes) if any(e.kind == "closed" for e in c.events)] == [18]
    assert changes[12].incidents[0]["end"] is None and changes[12].incidents[0]["ongoing"]
    assert not changes[17].incidents  # nothing changed while it waited


@pytest.mark.parametrize("gap", [0, 2, 5])
def test_a_gap_up_to_incident_gap_keeps_one_incident_a_longer_one_makes_two(gap):
    within = IncidentTracker(gap=gap)
    feed(within, range(40), flagged([5, 6]) + flagged([7 + gap, 8 + gap]))
    assert len(within.recent()) == 1 and within.recent()[0]["points"] == 4
    apart = IncidentTracker(gap=gap)
    feed(apart, range(40), flagged([5, 6]) + flagged([8 + gap, 9 + gap]))
    assert [i["points"] for i in apart.recent()] == [2, 2]
    # the same points in one tick (a replay at full speed) group the same way
    at_once = IncidentTracker(gap=gap)
    at_once.update(T0 + STEP * np.arange(40), flagged([5, 6]) + flagged([8 + gap, 9 + gap]),
                   NAMES, STEP, 0.0)
    assert [i["points"] for i in at_once.recent()] == [2, 2]
    assert not at_once.ongoing()


def test_series_are_grouped_apart():
    tracker = IncidentTracker()
    feed(tracker, range(10), flagged([2, 3], row=0) + flagged([3, 4], row=1))
    assert sorted(i["series"] for i in tracker.recent()) == ["cpu", "mem"]


def test_escalation_raises_one_event_and_keeps_the_peak():
    tracker = IncidentTracker()
    points = (flagged([0], 1, score=0.3) + flagged([1], 1, score=0.28)
              + flagged([2], 3, score=0.9) + flagged([3], 2, score=0.5))
    changes = feed(tracker, range(4), points)
    events = [e for c in changes for e in c.events]
    assert [e.kind for e in events] == ["opened", "escalated"]
    assert events[1].incident["severity"] == "critical" and events[1].toast
    (incident,) = tracker.ongoing()
    assert incident["severity"] == "critical" and incident["peak_score"] == 0.9
    assert incident["points"] == 4


def test_acknowledged_incidents_escalate_quietly_and_are_persisted_with_the_next_update():
    tracker = IncidentTracker()
    feed(tracker, [0], flagged([0]))
    (incident,) = tracker.ongoing()
    assert tracker.acknowledge(incident["id"])["acknowledged"] is True
    (change,) = feed(tracker, [1], flagged([1], 3))
    assert change.incidents[0]["acknowledged"] is True
    assert [(e.kind, e.toast) for e in change.events] == [("escalated", False)]
    with pytest.raises(KeyError):
        tracker.acknowledge("no-such-id")
    # an acknowledgement between ticks rides on the next update's changes (for the store)
    tracker2 = IncidentTracker()
    feed(tracker2, range(10), flagged([0]))
    tracker2.acknowledge(tracker2.recent()[0]["id"])
    (later,) = feed(tracker2, [10], [])
    assert [i["acknowledged"] for i in later.incidents] == [True]


def test_a_muted_series_records_incidents_but_raises_no_toast():
    tracker = IncidentTracker()
    now = time.time()
    until = tracker.mute("cpu", 3600, now)
    assert until == now + 3600 and tracker.muted("cpu", now) and not tracker.muted("mem", now)
    changes = feed(tracker, range(3), flagged([0], 1) + flagged([1], 3) + flagged([0], 3, row=1),
                   now=now)
    events = [e for c in changes for e in c.events]
    cpu = [e for e in events if e.incident["series"] == "cpu"]
    assert [e.kind for e in cpu] == ["opened", "escalated"] and not any(e.toast for e in cpu)
    assert [e.incident["series"] for c in changes for e in c.toasts] == ["mem"]
    recorded = {i["series"]: i for i in tracker.recent()}
    assert recorded["cpu"]["muted"] and recorded["cpu"]["points"] == 2
    assert not recorded["mem"]["muted"]
    # a mute ends by itself, or when lifted
    assert not tracker.muted("cpu", now + 3601)
    tracker.mute("mem", 60, now)
    assert tracker.unmute("mem") and not tracker.unmute("mem")
    with pytest.raises(ValueError, match=r"seconds=0.0 is not allowed: expected a number of seconds above 0"):
        tracker.mute("cpu", 0, now)
    with pytest.raises(ValueError, match="incident gap=-1 is not allowed"):
        IncidentTracker(gap=-1)


def test_restart_restores_incidents_stored_by_the_store(tmp_path):
    """Ticks' incidents go to the real store (SQLite file); a new tracker restores them."""
    from granite_panel.store.store import Batch, open_store

    frame = shift_frame(n=760)
    frame.loc[700:705, "value"] += 15.0  # a second shift, closed before the end
    frame.loc[755:, "value"] += 20.0  # flagged at the very end: ongoing when we "restart"
    engine = engine_for_frame(frame, "shift", speed="max", settings=settings())
    engine.source.chunk = 16  # many ticks, so incidents change across ticks as they do live
    url = f"sqlite:///{tmp_path / 'panel.db'}"
    store = open_store(url)
    while not engine.source.finished:
        tick = engine.step()
        if tick is not None and tick.incidents:
            store.submit(Batch(incidents=list(tick.incidents)))
    first = engine.incidents.recent()[-1]["id"]
    engine.incidents.acknowledge(first)
    engine.step()  # finished source: no tick; the acknowledgement needs one update
    store.submit(Batch(incidents=list(engine.incidents.update(
        np.empty(0), [], engine.names, engine.step_seconds, time.time()).incidents)))
    store.close()
    before = engine.incidents.recent()
    assert len(before) >= 2 and before[0]["ongoing"] and not before[-1]["ongoing"]

    store = open_store(url, read_only=True)
    rows = list(csv.DictReader(io.StringIO(b"".join(store.export(kind="incidents")).decode())))
    store.close()
    restarted = IncidentTracker()
    assert restarted.restore(rows) == len(before)
    after = restarted.recent()
    stored = ("id", "series", "start", "end", "peak_score", "severity", "points",
              "acknowledged", "band", "ongoing")
    assert [{k: i[k] for k in stored} for i in after] == [{k: i[k] for k in stored} for i in before]
    assert after[-1]["acknowledged"] and restarted.summary(0)["open"] == 1
    assert restarted.restore(rows) == len(before) and restarted.total == len(before)
    # the ongoing incident goes on after the restart: a flagged point extends it (the store
    # keeps no last_flagged: the gap counts from the newest stored point, resume_at)
    newest = engine.snapshot().timestamps[-1]
    restarted = IncidentTracker()
    restarted.restore(rows, resume_at=newest)
    ongoing = restarted.ongoing()[0]
    assert ongoing["last_flagged"] == iso(newest) and ongoing["start"] < ongoing["last_flagged"]
    next_slot = newest + 6 * STEP  # five unflagged slots since: still the same incident
    restarted.update(np.array([next_slot]), [FlaggedPoint(0, next_slot, 0.9, 3)],
                     ("shift",), STEP, 0.0)
    assert restarted.ongoing()[0]["id"] == ongoing["id"]
    assert restarted.ongoing()[0]["points"] == ongoing["points"] + 1


def test_the_forecast_band_at_the_peak_is_kept():
    # The band is calibrated with tsfm_public, which the tick never waits for (it imports
    # in the background): import it first, or this short replay ends before it is there
    # whenever no earlier test imported it.
    from granite_panel.forecasting.service import import_tsfm

    import_tsfm()
    frame = shift_frame(n=64, start=52, length=3, size=15.0)
    engine = engine_for_frame(frame, "shift", settings=settings(
        detector="zscore", anomaly_window_size=20, context_length=32, history_limit=64,
        forecast_horizon=4, accuracy_window=5))
    while not engine.source.finished:
        engine.step()
    shift = [i for i in engine.incidents.recent() if i["start"] >= "2026-01-01T00:52"]
    assert shift and shift[-1]["start"] == "2026-01-01T00:52:00.000Z"
    band = shift[-1]["band"]
    assert band["lower"] < band["forecast"] < band["upper"] < frame["value"][52]


def test_ack_and_mute_over_the_real_http_api():
    env = {"ANOMALY_PROBABILITY": "0.2", "N_SERIES": "2", "DATA_GENERATION_INTERVAL": "0.2",
           "FALLBACK_MODEL": "SeasonalNaive"}
    with running_server("--autostart", env=env) as base:
        api = f"{base}/api"
        found = wait_for(lambda: requests.get(f"{api}/incidents", timeout=5).json()["incidents"],
                         timeout=60)
        incident = found[-1]
        assert set(incident) >= {"id", "series", "start", "end", "ongoing", "peak_score",
                                 "severity", "points", "acknowledged", "muted", "band"}
        answer = requests.post(f"{api}/incidents/{requests.utils.quote(incident['id'], safe='')}/ack",
                               timeout=5)
        assert answer.status_code == 200 and answer.json()["acknowledged"] is True
        listed = requests.get(f"{api}/incidents", params={"limit": 1000}, timeout=5).json()
        assert {i["id"]: i["acknowledged"] for i in listed["incidents"]}[incident["id"]] is True
        history = requests.get(f"{api}/history", params={"series": incident["series"]},
                               timeout=5).json()
        assert history["incidents"] and {i["series"] for i in history["incidents"]} == {
            incident["series"]}
        ongoing = requests.get(f"{api}/incidents", params={"open": "1"}, timeout=5).json()
        assert all(i["ongoing"] for i in ongoing["incidents"])

        # mute one series: it keeps recording incidents, marked muted
        muted = "synthetic-1"
        answer = requests.post(f"{api}/mute", json={"series": muted, "seconds": 600}, timeout=5)
        assert answer.status_code == 200 and answer.json()["series"] == muted
        assert muted in requests.get(f"{api}/mute", timeout=5).json()["muted"]
        assert muted in status(base)["incidents"]["muted"]
        wait_for(lambda: any(i["muted"] for i in requests.get(
            f"{api}/incidents", params={"series": muted}, timeout=5).json()["incidents"]),
            timeout=60)
        answer = requests.delete(f"{api}/mute", params={"series": muted}, timeout=5)
        assert answer.status_code == 200 and answer.json() == {"series": muted, "was_muted": True}
        assert requests.get(f"{api}/mute", timeout=5).json()["muted"] == {}

        # bad input: a one-line error naming what was given and what is allowed
        bad = [
            ("get", "incidents?limit=0", None, 400, "limit='0' is not allowed: expected 1 to 1000"),
            ("get", "incidents?open=maybe", None, 400, "open='maybe' is not allowed"),
            ("get", "incidents?series=nope", None, 400, "series='nope' is not allowed"),
            ("post", "incidents/nope/ack", None, 404, "incident 'nope' not found"),
            ("post", "mute", {"series": "nope", "seconds": 60}, 404, "series 'nope' not found"),
            ("post", "mute", {"series": muted, "seconds": -5}, 400,
             "seconds=-5.0 is not allowed: expected a number of seconds above 0"),
            ("post", "mute", {"series": muted}, 400, 'body has no "seconds"'),
            ("post", "mute", {"seconds": 5}, 400, "series=None is not allowed"),
        ]
        for method, path, body, code, message in bad:
            answer = getattr(requests, method)(f"{api}/{path}", json=body, timeout=5)
            assert answer.status_code == code, (path, answer.text)
            assert message in answer.json()["error"], answer.json()
            assert "\n" not in answer.json()["error"]


def test_dashboard_feed_shows_a_handful_of_incidents_where_it_showed_hundreds_of_points():
    """A NAB file replayed through the engine and a viewer: points flagged vs the feed."""
    path = NAB / "artificialWithAnomaly" / "art_daily_jumpsup.csv"
    frame = pd.read_csv(path)
    engine = engine_for_frame(frame, "jumpsup", speed="max", settings=settings(history_limit=4096))
    controller = StreamController(engine)
    alerts = 0  # what the feed listed before: one line per flagged live point
    while not engine.source.finished:
        alerts += len(engine.step().alerts)
        controller.poll()
    incidents = controller.incidents
    assert alerts >= 10 * len(incidents) > 0, (alerts, len(incidents))  # 992 vs 24 today
    assert incidents == engine.incidents.recent(len(incidents))
    starts = [i["start"] for i in incidents]
    assert starts == sorted(starts, reverse=True)
    html = render_incidents(incidents)
    assert html.count('class="gp-incident') == len(incidents)
    assert len(controller.toasts) <= len(incidents)  # one toast per incident at most


@pytest.mark.parametrize("muted", [False, True])
def test_the_dashboard_toasts_once_per_incident_and_never_for_a_muted_series(muted):
    engine = engine_for_frame(shift_frame(), "shift", speed="max", settings=settings())
    engine.source.chunk = 4  # the shift's ten points arrive over three polls
    controller = StreamController(engine)
    engine.step()
    controller.poll()
    if muted:
        controller.mute(3600)
        assert "shift" in controller.muted
    while not engine.source.finished:
        engine.step()
        controller.poll()
    (incident,) = [i for i in controller.incidents if i["start"] >= "2026-01-01T10:50"]
    assert incident["points"] == 10 and incident["muted"] is muted
    assert controller.toasts == ([] if muted else [
        "shift incident: CRITICAL (1 point, peak score 1.00)"])
    assert controller.acknowledge() == len(controller.incidents)
    assert all(i["acknowledged"] for i in controller.incidents)


def test_a_toast_shows_a_pushed_series_name_as_text_not_html(monkeypatch):
    """Panel's toasts (notyf) set a message as HTML, and a series is named by whoever pushes
    it (an ingest token suffices): before, a name carrying markup ran in every operator's
    page when its incident toasted."""
    import panel as pn

    sent = []

    class Toasts:
        def error(self, message, duration=0):
            sent.append(message)

        warning = info = error

    monkeypatch.setattr(type(pn.state), "notifications", property(lambda self: Toasts()))
    name = '<img src=x onerror="window.owned=1">'
    engine = engine_for_frame(shift_frame(), name, speed="max", settings=settings())
    controller = StreamController(engine)
    while not engine.source.finished:
        engine.step()
        controller.poll()
    assert controller.toasts and controller.toasts[-1].startswith(name)  # kept as text
    assert sent and all("<img" not in m for m in sent)
    assert sent[-1].startswith("&lt;img src=x onerror=&quot;window.owned=1&quot;&gt; incident:")


def test_the_feed_refreshes_at_once_for_a_new_incident_and_with_the_status_for_a_longer_one():
    """Re-rendering the feed on every tick of a 10 Hz stream in every viewer cost more than
    the chart: an incident that only grew waits for the status refresh."""
    engine = engine_for_frame(shift_frame(n=700), "shift", speed="max",
                              settings=settings(detector="zscore", anomaly_window_size=50))
    engine.source.chunk = 1
    controller = StreamController(engine, status_period=60_000)
    while engine.ring.count < 651:  # up to the shift's first point: an incident opens
        engine.step()
    controller.poll(status=False)
    (opened,) = [i for i in controller.incidents if i["start"] >= "2026-01-01T10:50"]
    assert opened["points"] == 1
    engine.step()
    engine.step()  # two more points of the shift: the incident grows, nothing opens
    controller.poll(status=False)
    assert [i for i in controller.incidents if i["start"] >= "2026-01-01T10:50"] == [opened]
    controller.poll()  # the status refresh (or a command) brings the feed up to date
    (grown,) = [i for i in controller.incidents if i["start"] >= "2026-01-01T10:50"]
    assert grown["id"] == opened["id"] and grown["points"] == 3


def test_new_pushed_series_open_no_critical_incident_while_their_detector_learns():
    """Twenty series of plain noise pushed from nothing (no backfill): before the hybrid's
    alerts waited for its learning period, each opened critical incidents (and webhooks)
    in its first points (about one a series in the first 10 ticks); now none until 288 points."""
    from granite_panel.engine.core import Engine
    from granite_panel.sources.points import Points

    engine = Engine(settings(source="push", history_limit=512, context_length=64))
    rng = np.random.default_rng(3)
    names = tuple(f"host-{k}" for k in range(20))
    for i in range(280):
        now = T0 + i * STEP
        engine.ingest_points(Points(names, np.full(20, now), 50 + rng.standard_normal(20)), now)
        engine.flush(now=now + STEP + 0.1)
    assert engine.n_series == 20
    severities = [i["severity"] for i in engine.incidents.recent()]
    assert "critical" not in severities, severities
