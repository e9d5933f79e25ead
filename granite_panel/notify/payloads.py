"""What one notification says, in three wire formats: generic JSON, Slack, Alertmanager.

Each is built from an incident event (``opened``, ``escalated``, ``closed``) and the
incident as the REST API shows it (``Incident.as_json``: ISO times, severity by name), plus
the link to its series in the dashboard (``PUBLIC_URL`` + ``?series=NAME``).

- ``json``: ``{"version": 1, "event", "status", "incident", "url", "sent_at"}``: every
  field of the incident, for a script or an automation tool.
- ``slack``: an incoming webhook message: ``text`` (the fallback for notifications) and
  ``blocks`` (a section in mrkdwn with the link, and a context line whose times Slack shows
  in each reader's own zone, ``<!date^...>``, as the dashboard does; the fallback is UTC).
- ``alertmanager``: the body Prometheus Alertmanager's ``webhook_config`` posts (version
  "4"), so any receiver written for Alertmanager (e.g. a paging bridge) takes it: one alert
  per incident, ``firing`` while it is open, ``resolved`` with its ``endsAt`` once closed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from urllib.parse import quote

from ..detection.incidents import NO_DATA, iso

STATUS = {"opened": "firing", "escalated": "firing", "closed": "resolved"}
ALERT_NAME = "GranitePanelIncident"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
SLACK_EMOJI = {"medium": ":large_yellow_circle:", "high": ":large_orange_circle:",
               "critical": ":red_circle:"}


def series_link(public_url: str, series: str) -> str:
    """The dashboard showing ``series``: ``PUBLIC_URL/?series=NAME``."""
    return f"{public_url.rstrip('/')}/?series={quote(series, safe='')}"


def summary(kind: str, incident: dict) -> str:
    """One line: 'cpu: incident opened, HIGH (3 points, peak 0.91)', or for a series that
    stopped reporting 'cpu: no data, HIGH (12 slots missed)'."""
    points = incident["points"]
    if incident.get("kind") == NO_DATA:
        verb = "data is back" if kind == "closed" else "no data"
        return (f"{incident['series']}: {verb}, {incident['severity'].upper()} "
                f"({points} slot{'s' if points != 1 else ''} missed)")
    verb = {"opened": "incident opened", "escalated": "escalated",
            "closed": "incident resolved"}[kind]
    return (f"{incident['series']}: {verb}, {incident['severity'].upper()} "
            f"({points} point{'s' if points != 1 else ''}, peak {incident['peak_score']:g})")


def build(fmt: str, kind: str, incident: dict, link: str, receiver: str = "",
          external_url: str = "") -> dict:
    """The body for a receiver of format ``fmt`` (json, slack, alertmanager)."""
    if fmt == "slack":
        return slack(kind, incident, link)
    if fmt == "alertmanager":
        return alertmanager(kind, incident, link, receiver, external_url)
    return generic(kind, incident, link)


def generic(kind: str, incident: dict, link: str) -> dict:
    return {"version": 1, "source": "granite-panel", "event": kind, "status": STATUS[kind],
            "summary": summary(kind, incident), "incident": incident, "url": link,
            "sent_at": iso(time.time())}


def slack(kind: str, incident: dict, link: str) -> dict:
    text = summary(kind, incident)
    emoji = ":white_check_mark:" if kind == "closed" else SLACK_EMOJI.get(incident["severity"], "")
    start = slack_time(incident["start"])
    when = f"since {start}" if incident["end"] is None else (
        f"{start} to {slack_time(incident['end'])}")
    return {
        "text": text,
        "blocks": [
            {"type": "section",
             "text": {"type": "mrkdwn", "text": f"{emoji} *{_slack_escape(text)}*\n"
                                                f"<{link}|Open {_slack_escape(incident['series'])} "
                                                "in granite-panel>"}},
            {"type": "context",
             "elements": [{"type": "mrkdwn", "text": f"incident `{_slack_escape(incident['id'])}`"
                                                     f" · {when}"}]},
        ],
    }


def slack_time(iso_time: str) -> str:
    """An instant that Slack writes in each reader's zone and clock (``{date_num}
    {time_secs}``: 2026-01-01 01:03:00 in Berlin); the ISO UTC text where it cannot."""
    seconds = int(dt.datetime.fromisoformat(iso_time).timestamp())
    return f"<!date^{seconds}^{{date_num}} {{time_secs}}|{iso_time}>"


def _slack_escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alertmanager(kind: str, incident: dict, link: str, receiver: str,
                 external_url: str) -> dict:
    status = STATUS[kind]
    labels = {"alertname": ALERT_NAME, "series": incident["series"],
              "severity": incident["severity"], "incident": incident["id"]}
    if incident.get("kind") == NO_DATA:  # (anomaly incidents keep the labels they had)
        labels["kind"] = NO_DATA
    description = (
        f"{incident['series']} sent no point for {incident['points']} slot(s)"
        if incident.get("kind") == NO_DATA else
        f"{incident['points']} flagged point(s) of {incident['series']}, "
        f"peak score {incident['peak_score']:g}")
    annotations = {
        "summary": summary(kind, incident),
        "description": description,
        "peak_score": f"{incident['peak_score']:g}",
        "points": str(incident["points"]),
        "event": kind,
    }
    fingerprint = hashlib.sha256(
        "\x00".join(f"{k}={labels[k]}" for k in sorted(labels)).encode()).hexdigest()[:16]
    group_labels = {"alertname": ALERT_NAME, "series": incident["series"]}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}"
    alert = {"status": status, "labels": labels, "annotations": annotations,
             "startsAt": incident["start"],
             "endsAt": incident["end"] if status == "resolved" and incident["end"] else ZERO_TIME,
             "generatorURL": link, "fingerprint": fingerprint}
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status,
            "receiver": receiver, "groupLabels": group_labels, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": external_url, "alerts": [alert]}
