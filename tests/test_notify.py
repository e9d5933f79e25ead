"""Incident notifications: payload formats, routing, retries, de-duplication, mutes, and a
stream that never waits on a webhook. Every receiver is a real HTTP server on loopback
(tests/webhooks.py)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import jsonschema
import numpy as np
import pytest
import requests

from granite_panel.detection.incidents import FlaggedPoint, IncidentEvent, IncidentTracker
from granite_panel.engine.core import Engine
from granite_panel.forecasting.service import ForecastService, StatisticalForecaster
from granite_panel.notify import Dispatcher, NotifyConfig, NotifyConfigError, load_config
from granite_panel.notify.dispatcher import scrub
from granite_panel.notify.routing import redact_url
from granite_panel.settings import Settings

from .serving import FAST_STREAM, free_port, running_server, wait_for
from .webhooks import WebhookReceiver

STEP = 60.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NAMES = ("cpu", "mem")
PUBLIC = "http://panel.example:5006/"

# The body Alertmanager's webhook_config posts, as its documentation describes it
# (prometheus.io/docs/alerting/latest/configuration/#webhook_config): version "4", the
# group's key, status, receiver, labels and annotations, and each alert with its times.
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
ALERTMANAGER_WEBHOOK = {
    "type": "object",
    "required": ["version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                 "commonLabels", "commonAnnotations", "externalURL", "alerts"],
    "properties": {
        "version": {"const": "4"},
        "groupKey": {"type": "string", "minLength": 1},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "status": {"enum": ["firing", "resolved"]},
        "receiver": {"type": "string"},
        "groupLabels": STRINGS, "commonLabels": STRINGS, "commonAnnotations": STRINGS,
        "externalURL": {"type": "string"},
        "alerts": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["status", "labels", "annotations", "startsAt", "endsAt",
                         "generatorURL", "fingerprint"],
            "properties": {
                "status": {"enum": ["firing", "resolved"]},
                "labels": {**STRINGS, "required": ["alertname"]},
                "annotations": STRINGS,
                "startsAt": {"type": "string", "pattern": RFC3339},
                "endsAt": {"type": "string", "pattern": RFC3339},
                "generatorURL": {"type": "string"},
                "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            }}},
    },
}


def points(slots, severity=1, row=0, score=0.5):
    return [FlaggedPoint(row, T0 + s * STEP, score, severity) for s in slots]


def feed(tracker, flags, slots, now=0.0) -> list[IncidentEvent]:
    """The events of feeding ``slots`` one tick a slot, as a live stream does."""
    by_slot = {}
    for point in flags:
        by_slot.setdefault(round((point.timestamp - T0) / STEP), []).append(point)
    events = []
    for s in slots:
        events += tracker.update(np.array([T0 + s * STEP]), by_slot.get(s, []), NAMES, STEP,
                                 now).events
    return events


def a_medium_then_critical_incident(row=0):
    """opened (medium), escalated (critical), closed, for series ``NAMES[row]``."""
    tracker = IncidentTracker(gap=2)
    flags = points([3], 1, row, 0.4) + points([4], 3, row, 0.95)
    events = feed(tracker, flags, range(10))
    assert [e.kind for e in events] == ["opened", "escalated", "closed"]
    return events


def config(receivers, routes=None) -> NotifyConfig:
    return NotifyConfig.from_mapping({"receivers": receivers, **({"routes": routes} if routes else {})})


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


def dispatcher(cfg, **kwargs) -> Dispatcher:
    kwargs.setdefault("backoff_start", 0.05)
    return Dispatcher(cfg, PUBLIC, **kwargs)


# ---------------------------------------------------------------- formats


def test_each_format_reaches_a_real_receiver_with_its_fields(receiver):
    cfg = config([{"name": "script", "url": f"{receiver.url}/json", "format": "json"},
                  {"name": "chat", "url": f"{receiver.url}/services/T1/B2/tok", "format": "slack"},
                  {"name": "am", "url": f"{receiver.url}/am", "format": "alertmanager"}])
    notifier = dispatcher(cfg)
    try:
        assert notifier.submit(a_medium_then_critical_incident()) == 9
        assert notifier.wait_idle()
    finally:
        notifier.close()
    link = "http://panel.example:5006/?series=cpu"
    assert {r["content_type"] for r in receiver.requests} == {"application/json"}

    generic = receiver.bodies("/json")
    assert [b["event"] for b in generic] == ["opened", "escalated", "closed"]
    assert [b["status"] for b in generic] == ["firing", "firing", "resolved"]
    assert [b["incident"]["severity"] for b in generic] == ["medium", "critical", "critical"]
    first = generic[0]
    assert first["url"] == link and first["version"] == 1
    assert first["incident"]["id"] == "cpu@2026-01-01T00:03:00.000Z"
    assert first["incident"]["end"] is None and generic[-1]["incident"]["end"] is not None
    assert first["summary"].startswith("cpu: incident opened, MEDIUM (1 point")

    slack = receiver.bodies("/services/T1/B2/tok")
    assert [s["text"].split(": ")[1].split(",")[0] for s in slack] == [
        "incident opened", "escalated", "incident resolved"]
    for message in slack:
        assert message["blocks"][0]["type"] == "section"
        assert message["blocks"][0]["text"]["type"] == "mrkdwn"
        assert f"<{link}|Open cpu in granite-panel>" in message["blocks"][0]["text"]["text"]
        assert message["blocks"][1]["type"] == "context"
    # times in each reader's own zone (Slack's date token), UTC where Slack cannot
    opened = "<!date^1767225780^{date_num} {time_secs}|2026-01-01T00:03:00.000Z>"
    assert slack[0]["blocks"][1]["elements"][0]["text"].endswith(f" · since {opened}")
    assert f" · {opened} to <!date^" in slack[-1]["blocks"][1]["elements"][0]["text"]

    alerts = receiver.bodies("/am")
    for body in alerts:
        jsonschema.validate(body, ALERTMANAGER_WEBHOOK)
    assert [b["status"] for b in alerts] == ["firing", "firing", "resolved"]
    fired, escalated, resolved = (b["alerts"][0] for b in alerts)
    assert fired["endsAt"] == "0001-01-01T00:00:00Z" and fired["generatorURL"] == link
    assert fired["startsAt"] == "2026-01-01T00:03:00.000Z"
    assert resolved["endsAt"] == "2026-01-01T00:04:00.000Z"
    assert fired["labels"] == {"alertname": "GranitePanelIncident", "series": "cpu",
                               "severity": "medium", "incident": "cpu@2026-01-01T00:03:00.000Z"}
    assert escalated["labels"]["severity"] == "critical"
    assert alerts[0]["receiver"] == "am" and alerts[0]["externalURL"] == PUBLIC
    assert len({b["groupKey"] for b in alerts}) == 1


# ---------------------------------------------------------------- routing


def test_routes_by_severity_and_series_pattern_from_a_yaml_file(tmp_path, receiver):
    path = tmp_path / "notify.yaml"
    path.write_text(f"""
receivers:
  - {{name: pager, url: "{receiver.url}/pager", format: alertmanager}}
  - {{name: team-cpu, url: "{receiver.url}/cpu", format: slack}}
  - {{name: log, url: "{receiver.url}/log"}}
routes:
  - {{min_severity: critical, receivers: [pager]}}
  - {{series: "cp*", receivers: [team-cpu]}}
  - {{receivers: [log, pager], min_severity: high}}
""")
    cfg = load_config(path)
    assert [r.name for r in cfg.receivers_for("cpu", 1)] == ["team-cpu"]
    assert [r.name for r in cfg.receivers_for("mem", 3)] == ["pager", "log"]
    notifier = dispatcher(cfg)
    try:
        tracker = IncidentTracker(gap=2)
        # mem: medium (nobody), then critical (pager and log), then closed
        events = feed(tracker, points([3], 1, 1) + points([4], 3, 1), range(10))
        # cpu: a medium incident that stays medium (team-cpu only)
        events += feed(tracker, points([12, 13], 1, 0), range(10, 20))
        notifier.submit(events)
        assert notifier.wait_idle()
    finally:
        notifier.close()
    pager = receiver.bodies("/pager")
    assert [(b["status"], b["commonLabels"]["series"], b["commonLabels"]["severity"])
            for b in pager] == [("firing", "mem", "critical"), ("resolved", "mem", "critical")]
    assert [(b["event"], b["incident"]["series"]) for b in receiver.bodies("/log")] == [
        ("escalated", "mem"), ("closed", "mem")]
    assert [b["text"].split(",")[0] for b in receiver.bodies("/cpu")] == [
        "cpu: incident opened", "cpu: incident resolved"]


def test_a_config_without_routes_sends_everything_to_every_receiver(receiver):
    cfg = config([{"name": "a", "url": f"{receiver.url}/a"}, {"name": "b", "url": f"{receiver.url}/b"}])
    assert [r.name for r in cfg.receivers_for("anything", 1)] == ["a", "b"]


@pytest.mark.parametrize("text, expected", [
    ("receivers: []", "receivers=[] is not allowed: expected a list"),
    ("receivers: [{name: a, url: 'ftp://x/y'}]", "url='ftp://x/…' is not allowed"),
    ("receivers: [{name: a, url: 'http://x', format: teams}]",
     "format='teams' is not allowed: expected one of json, slack, alertmanager"),
    ("receivers: [{name: a, url: 'http://x'}]\nroutes: [{receivers: [b]}]",
     "routes[0]: receiver='b' is not allowed: expected one of a"),
    ("receivers: [{name: a, url: 'http://x'}]\nroutes: [{receivers: [a], min_severity: hgh}]",
     "min_severity='hgh' is not allowed: expected one of medium, high, critical"),
    ("receivers: [{name: a, url: 'http://x', timeout: 0}]", "timeout=0 is not allowed"),
    ("receivers: [{name: a, url: 'http://x', tokn: 1}]", "key='tokn' is not allowed"),
    ("receivers: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]", "name='a'"),
    ("receivers: [{name: a, url: 'http://x'\n", "is not valid YAML"),
])
def test_a_bad_config_says_what_and_where_in_one_line(tmp_path, text, expected):
    path = tmp_path / "notify.yml"
    path.write_text(text)
    with pytest.raises(NotifyConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert message.startswith(f"NOTIFY_CONFIG={str(path)!r}")


def test_json_config_and_a_bad_path(tmp_path):
    path = tmp_path / "notify.json"
    path.write_text(json.dumps({"receivers": [{"name": "a", "url": "http://x/h"}]}))
    assert list(load_config(path).receivers) == ["a"]
    with pytest.raises(NotifyConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(NotifyConfigError, match="expected a .yaml, .yml or .json file"):
        load_config(tmp_path / "notify.txt")


def test_serve_with_a_bad_config_exits_2_with_one_line(tmp_path):
    path = tmp_path / "notify.yaml"
    path.write_text("receivers: [{name: a, url: 'http://x', format: teams}]")
    env = {**os.environ, **FAST_STREAM, "NOTIFY_CONFIG": str(path)}
    done = subprocess.run([sys.executable, "-m", "granite_panel.cli", "serve", "--port",
                           str(free_port())], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "format='teams' is not allowed" in lines[0], done.stderr


def test_public_url_must_be_http():
    with pytest.raises(ValueError, match="PUBLIC_URL='panel.example' is not allowed"):
        Settings(public_url="panel.example")


# ---------------------------------------------------------------- delivery


def test_retries_with_backoff_then_succeeds():
    with WebhookReceiver(answers=[500, 503]) as server:
        cfg = config([{"name": "flaky", "url": f"{server.url}/hook"}])
        notifier = dispatcher(cfg, backoff_start=0.2)
        try:
            notifier.submit(a_medium_then_critical_incident()[:1])
            server.wait(1)
            seen = wait_for(lambda: (lambda r: r["retrying"] and r)(
                notifier.status()["receivers"]["flaky"]), timeout=5)
            assert seen["state"] == "retrying" and seen["last_error"].startswith("HTTP 50")
            assert notifier.wait_idle()
            final = notifier.status()["receivers"]["flaky"]
        finally:
            notifier.close()
        times = [r["at"] for r in server.requests]
    assert [r["status"] for r in server.requests] == [500, 503, 200]
    first_wait, second_wait = np.diff(times)
    # equal jitter: the n-th wait lies between half and all of 0.2 s * 2**(n-1)
    assert 0.1 <= first_wait < 0.4 and 0.2 <= second_wait < 0.6, (first_wait, second_wait)
    assert final["sent"] == 1 and final["failed"] == 0 and final["state"] == "ok"
    assert final["last_error"].startswith("HTTP 503")  # the last trouble stays visible


def test_gives_up_after_max_attempts_and_a_4xx_fails_at_once():
    with WebhookReceiver(default=500) as down, WebhookReceiver(default=404) as wrong:
        cfg = config([{"name": "down", "url": f"{down.url}/h"},
                      {"name": "wrong", "url": f"{wrong.url}/h"}])
        notifier = dispatcher(cfg, max_attempts=3, backoff_start=0.02)
        try:
            notifier.submit(a_medium_then_critical_incident()[:1])
            assert notifier.wait_idle()
            state = notifier.status()
        finally:
            notifier.close()
        assert len(down.requests) == 3 and len(wrong.requests) == 1
    assert state["receivers"]["down"] | {"sent": 0, "failed": 1, "state": "failing"} == \
        state["receivers"]["down"]
    assert state["receivers"]["wrong"]["failed"] == 1
    assert state["receivers"]["wrong"]["last_error"] == "HTTP 404 Not Found: failure on purpose"
    assert state["failing"] == ["down", "wrong"]


def test_an_unreachable_receiver_is_counted_and_its_secret_never_shown():
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/services/T0/B0/SECRETTOKEN?key=SECRETKEY"
    notifier = dispatcher(config([{"name": "gone", "url": url, "format": "slack"}]),
                          max_attempts=2, backoff_start=0.02)
    try:
        notifier.submit(a_medium_then_critical_incident()[:1])
        assert notifier.wait_idle()
        state = notifier.status()
    finally:
        notifier.close()
    gone = state["receivers"]["gone"]
    assert gone["failed"] == 1 and gone["url"] == f"http://127.0.0.1:{port}/services/…?…"
    assert gone["last_error"].startswith("ConnectionError")
    assert "SECRET" not in json.dumps(state)


def test_redaction_of_urls_and_errors():
    assert redact_url("https://hooks.slack.com/services/T0/B0/abc") == \
        "https://hooks.slack.com/services/…"
    assert redact_url("https://user:pw@am.example:9093/api/v2/alerts?token=x") == \
        "https://am.example:9093/api/…?…"
    assert redact_url("http://10.0.0.1/secret-hook-id") == "http://10.0.0.1/…"
    assert redact_url("http://10.0.0.1") == "http://10.0.0.1/"
    url = "https://u:pw@hooks.example/services/T/B/tok?sig=abc"
    assert "tok" not in scrub(f"Max retries exceeded with url: /services/T/B/tok?sig=abc ({url})", url)


# ---------------------------------------------------------------- de-duplication


def test_each_event_goes_once_per_receiver(receiver):
    cfg = config([{"name": "a", "url": f"{receiver.url}/a"}],
                 [{"receivers": ["a"]}, {"receivers": ["a"], "series": "cpu"}])  # two routes, one receiver
    events = a_medium_then_critical_incident()
    opened, escalated, closed = events
    again = IncidentEvent("escalated", dict(escalated.incident), True)  # the same level again
    notifier = dispatcher(cfg)
    try:
        assert notifier.submit(events) == 3
        assert notifier.submit([opened, again, closed]) == 0
        assert notifier.wait_idle()
        assert notifier.status()["duplicates"] == 3
    finally:
        notifier.close()
    assert [b["event"] for b in receiver.bodies()] == ["opened", "escalated", "closed"]


def test_a_restart_with_the_store_resends_nothing_and_still_resolves(tmp_path, receiver):
    from granite_panel.store import open_store

    url = f"sqlite:///{tmp_path / 'panel.db'}"
    cfg = config([{"name": "a", "url": f"{receiver.url}/a"}])
    opened, escalated, closed = a_medium_then_critical_incident()
    store = open_store(url)
    notifier = dispatcher(cfg, store=store)
    notifier.submit([opened, escalated])
    assert notifier.wait_idle()
    notifier.close()
    store.close()

    store = open_store(url)  # the next process
    notifier = dispatcher(cfg, store=store)
    try:
        assert notifier.submit([opened, escalated]) == 0  # already sent before the restart
        assert notifier.submit([closed]) == 1  # announced before: resolved now
        assert notifier.wait_idle()
    finally:
        notifier.close()
        store.close()
    assert [b["event"] for b in receiver.bodies()] == ["opened", "escalated", "closed"]


KILLED_MID_DELIVERY = """
import sys, time
from granite_panel.store import open_store
from tests.test_notify import a_medium_then_critical_incident, config, dispatcher

store = open_store(sys.argv[1])
notifier = dispatcher(config([{"name": "a", "url": sys.argv[2]}]), store=store, backoff_start=0.2)
opened, escalated, _ = a_medium_then_critical_incident()
assert notifier.submit([opened, escalated]) == 2
store.flush(10)
print("queued", flush=True)
time.sleep(600)
"""


def test_deliveries_queued_before_a_kill_9_are_sent_after_the_restart(tmp_path):
    """The receiver is down while the first process queues two deliveries; the process is
    killed (SIGKILL: no close, no flush); the next one on the same store sends both, once."""
    import signal

    from granite_panel.store import open_store

    url = f"sqlite:///{tmp_path / 'panel.db'}"
    down = f"http://127.0.0.1:{free_port()}/a"  # nothing listens there
    child = subprocess.Popen([sys.executable, "-c", KILLED_MID_DELIVERY, url, down],
                             cwd=os.path.dirname(os.path.dirname(__file__)),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "queued"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    with WebhookReceiver() as receiver:
        cfg = config([{"name": "a", "url": f"{receiver.url}/a"}])
        store = open_store(url)
        notifier = dispatcher(cfg, store=store)
        try:
            assert notifier.restored == 2
            assert notifier.wait_idle()
        finally:
            notifier.close()
            store.close()
        store = open_store(url)  # a third start: nothing left to send, nothing sent twice
        notifier = dispatcher(cfg, store=store)
        try:
            assert notifier.restored == 0
            opened, escalated, _ = a_medium_then_critical_incident()
            assert notifier.submit([opened, escalated]) == 0
        finally:
            notifier.close()
            store.close()
    assert [b["event"] for b in receiver.bodies()] == ["opened", "escalated"]


def push_engine(store, notifier) -> Engine:
    """An engine over pushed points with a store and a notifier (the CLI's wiring)."""
    settings = Settings(source="push", detector="zscore", anomaly_window_size=20,
                        context_length=16, forecast_horizon=4, history_limit=64,
                        fallback_model="SeasonalNaive", model_name="/nonexistent", use_gpu=False,
                        data_generation_interval=60, incident_gap=2, backfill=False)
    return Engine(settings, store=store, notifier=notifier)


def push(engine: Engine, values, first_slot: int) -> None:
    from granite_panel.sources.points import Points

    stamps = T0 + STEP * (first_slot + np.arange(len(values)))
    engine.ingest_points(Points(("web",) * len(values), stamps, np.asarray(values, float)),
                         now=float(stamps[-1]) + 0.1)


def test_an_engine_restarted_on_its_store_announces_nothing_twice(tmp_path, receiver):
    """Through the real engine: an incident opened before a restart is resolved after it,
    and neither its opening nor a repeat of its level is sent again."""
    from granite_panel.store import open_store

    url = f"sqlite:///{tmp_path / 'panel.db'}"
    cfg = config([{"name": "a", "url": f"{receiver.url}/a", "format": "alertmanager"}])
    calm = [10 + 0.1 * (i % 3) for i in range(40)]
    store = open_store(url)
    engine = push_engine(store, dispatcher(cfg, store=store))  # the ledger in the same store
    push(engine, calm + [500.0, 500.0], 0)  # an incident opens and stays open
    assert engine.notifier.wait_idle()
    engine.wait_stored()
    engine.close()
    assert [b["status"] for b in receiver.bodies()] == ["firing"]

    store = open_store(url)
    engine = push_engine(store, dispatcher(cfg, store=store))
    try:
        assert [i["ongoing"] for i in engine.incidents.recent()] == [True]
        push(engine, [500.0] + [10.0] * 6, 42)  # the same level once more, then calm: closed
        assert engine.notifier.wait_idle()
    finally:
        engine.close()
    bodies = receiver.bodies()
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert bodies[0]["alerts"][0]["labels"]["incident"] == \
        bodies[1]["alerts"][0]["labels"]["incident"] == "web@2026-01-01T00:40:00.000Z"


def test_a_muted_series_notifies_nobody(receiver):
    tracker = IncidentTracker(gap=2)
    tracker.mute("cpu", 3600, now=0.0)
    muted = feed(tracker, points([3, 4], 3, 0), range(10))  # cpu: muted
    heard = feed(tracker, points([12], 2, 1), range(10, 20))  # mem: not muted
    notifier = dispatcher(config([{"name": "a", "url": f"{receiver.url}/a"}]))
    try:
        notifier.submit(muted + heard)
        assert notifier.wait_idle()
        assert notifier.status()["suppressed"] == 1  # the muted incident's opened
    finally:
        notifier.close()
    assert [(b["event"], b["incident"]["series"]) for b in receiver.bodies()] == [
        ("opened", "mem"), ("closed", "mem")]


# ---------------------------------------------------------------- never blocking the stream


def small_engine(notifier=None) -> Engine:
    # A horizon longer than the test runs: no forecast matures, so the conformal calibration
    # (it imports tsfm_public, seconds) never runs inside a timed tick.
    settings = Settings(n_series=4, context_length=64, forecast_horizon=300, history_limit=256,
                        season_length=12, fallback_model="SeasonalNaive", use_gpu=False,
                        detector="zscore", anomaly_window_size=20, anomaly_probability=0.3,
                        data_generation_interval=1.0, incident_gap=0, seed=3)

    def no_ttm(*_):
        raise RuntimeError("TTM switched off for this test")

    forecasts = ForecastService(
        model_name=settings.model_name, context_length=64, horizon=300, use_gpu=False,
        fallback=StatisticalForecaster(model="SeasonalNaive", horizon=300, season_length=12),
        loader=no_ttm)
    return Engine(settings, forecasts=forecasts, notifier=notifier)


def tick_times(engine: Engine, n: int, start: float = T0) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        engine.step(now=start + i)
        times.append(time.perf_counter() - started)
    return times


def test_a_hanging_receiver_does_not_slow_the_ticks():
    with WebhookReceiver(hang=True) as hanging:
        cfg = config([{"name": "hang", "url": f"{hanging.url}/h", "timeout": 30}])
        notifier = dispatcher(cfg, queue_size=4)
        try:
            baseline = small_engine()
            engine = small_engine(notifier)
            without, with_hang = [], []
            for i in range(130):  # interleaved, so both see the same load on the machine
                without += tick_times(baseline, 1, start=T0 + i)
                with_hang += tick_times(engine, 1, start=T0 + i)
            without, with_hang = without[10:], with_hang[10:]  # after the first forecasts
            state = notifier.status()["receivers"]["hang"]
            events = sum(len(t.incident_events) for t in engine.recent_ticks)
        finally:
            notifier.close(timeout=0.1)
    assert events >= 10, events  # the stream raised plenty to deliver
    assert len(hanging.requests) == 1  # the worker is stuck on the first delivery ...
    assert state["queued"] == 4 and state["dropped"] > 0  # ... the rest waits, bounded
    median_without, median_with = statistics.median(without), statistics.median(with_hang)
    p95_without, p95_with = np.percentile(without, 95), np.percentile(with_hang, 95)
    print(f"tick median {median_without * 1e3:.2f} ms / p95 {p95_without * 1e3:.2f} ms without "
          f"a notifier, {median_with * 1e3:.2f} ms / p95 {p95_with * 1e3:.2f} ms with a hanging "
          f"receiver; max {max(without) * 1e3:.1f} / {max(with_hang) * 1e3:.1f} ms")
    assert median_with <= 1.5 * median_without + 0.002
    assert p95_with <= 2 * p95_without + 0.02  # (the p95 is a forecast's tick: noisy here)
    assert max(with_hang) < 5.0  # far below the receiver's 30 s timeout (a tick never waits)


# ---------------------------------------------------------------- a served process


def test_failures_show_in_api_status_of_a_served_process(tmp_path):
    with WebhookReceiver(default=500) as failing, WebhookReceiver() as working:
        path = tmp_path / "notify.yaml"
        path.write_text(f"""
receivers:
  - {{name: slack, url: "{failing.url}/services/T0/B0/SECRETTOKEN", format: slack}}
  - {{name: script, url: "{working.url}/hook", format: json}}
""")
        env = {"NOTIFY_CONFIG": str(path), "PUBLIC_URL": "https://panel.example/",
               "DETECTOR": "zscore", "FALLBACK_MODEL": "SeasonalNaive",
               "DATA_GENERATION_INTERVAL": "1"}
        with running_server("--source", "push", "--autostart", env=env) as base:
            # a steady series, a three-point spike, then calm again: one incident
            values = [10 + 0.1 * (i % 3) for i in range(60)] + [1000.0] * 3 + [10.0] * 10
            doc = {"series": "web.latency", "points": [[1_700_000_000 + i, v]
                                                        for i, v in enumerate(values)]}
            answer = requests.post(f"{base}/api/ingest", json=doc, timeout=60)
            assert answer.status_code == 200, answer.text

            def failing_seen():
                try:  # a busy machine may answer slowly: ask again
                    notes = requests.get(f"{base}/api/status", timeout=20).json()["notifications"]
                except requests.RequestException:
                    return None
                slack = notes["receivers"]["slack"]
                return notes if slack["state"] != "ok" and notes["receivers"]["script"][
                    "sent"] == 2 else None

            notes = wait_for(failing_seen, timeout=60)
            raw = requests.get(f"{base}/api/status", timeout=20).text
        delivered = working.bodies()
    slack, script = notes["receivers"]["slack"], notes["receivers"]["script"]
    assert slack["last_error"].startswith("HTTP 500") and slack["sent"] == 0
    assert slack["url"] == f"{failing.url}/services/…"
    assert "SECRETTOKEN" not in raw and notes["failing"] == ["slack"]
    assert script["state"] == "ok" and script["failed"] == 0
    assert [(b["event"], b["incident"]["points"]) for b in delivered] == [("opened", 1),
                                                                          ("closed", 3)]
    assert delivered[0]["url"] == "https://panel.example/?series=web.latency"

    from granite_panel.ui.dashboard import render_model, render_stats

    banner = render_model({"notifications": notes})
    assert "gp-notify-failing" in banner and "slack" in banner and "SECRETTOKEN" not in banner
    assert "script" not in banner  # only failing receivers get a line
    assert "2 sent, 0 failed" in render_stats({"notifications": notes})


def test_the_dashboard_opens_the_series_a_link_names():
    from granite_panel.ui.controller import StreamController

    engine = small_engine()
    engine.step(now=T0)
    controller = StreamController(engine)
    assert controller.select_series("synthetic-2") and controller.series == 2
    assert not controller.select_series("nope") and controller.series == 2
