"""Who hears about what: the NOTIFY_CONFIG file of receivers and routing rules.

A receiver is a webhook (``name``, ``url``, ``format``: json, slack or alertmanager). A
route sends incidents of at least ``min_severity`` (medium, high, critical), of series
matching ``series`` (a shell-style glob: ``cpu.*``, ``web-?``; default every series), to a
list of receivers by name. An incident goes to the union of the receivers of every route it
matches, once each. The file is YAML (``.yaml``/``.yml``) or JSON (``.json``); a mistake in
it stops the start with one line naming the entry, the value and what is allowed.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..detection.live import SEVERITY_NAMES
from ..settings import SettingsError

FORMATS = ("json", "slack", "alertmanager")
ROUTE_SEVERITIES = SEVERITY_NAMES[1:]  # medium, high, critical (normal points raise nothing)
DEFAULT_TIMEOUT_S = 10.0  # one delivery attempt waits this long for an answer
MAX_TIMEOUT_S = 120.0


class NotifyConfigError(SettingsError):
    """NOTIFY_CONFIG cannot be used; the message is one line for the user."""


def redact_url(url: str) -> str:
    """The URL without its secret parts, for status and logs: no user/password, no query,
    and of the path only a first segment that more segments follow (a Slack webhook's
    ``/services/T.../B.../token`` shows as ``/services/…``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 1:
        path = f"/{segments[0]}/…"
    elif segments:
        path = "/…"
    else:
        path = "/"
    return f"{parts.scheme}://{host}{path}" + ("?…" if parts.query else "")


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str
    format: str = "json"
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True)
class Route:
    receivers: tuple[str, ...]
    min_severity: int = 1  # medium
    series: str = "*"

    def matches(self, series: str, severity: int) -> bool:
        return severity >= self.min_severity and fnmatch.fnmatchcase(series, self.series)


@dataclass(frozen=True)
class NotifyConfig:
    receivers: dict[str, Receiver]
    routes: tuple[Route, ...]

    def receivers_for(self, series: str, severity: int) -> list[Receiver]:
        """Every receiver of every route matching the incident, once each, in file order."""
        names = dict.fromkeys(
            name for route in self.routes if route.matches(series, severity)
            for name in route.receivers)
        return [self.receivers[name] for name in names]

    @classmethod
    def from_mapping(cls, data, where: str = "NOTIFY_CONFIG") -> NotifyConfig:
        """Validate a parsed file; NotifyConfigError (one line) on the first mistake."""
        if not isinstance(data, dict):
            _fail(where, "the file", data, "a mapping with receivers and routes")
        unknown = sorted(set(data) - {"receivers", "routes"})
        if unknown:
            _fail(where, "key", unknown[0], "receivers or routes")
        receivers = {}
        raw_receivers = data.get("receivers")
        if not isinstance(raw_receivers, list) or not raw_receivers:
            _fail(where, "receivers", raw_receivers, "a list of {name, url, format}")
        for i, item in enumerate(raw_receivers):
            receiver = _receiver(item, f"{where}: receivers[{i}]")
            if receiver.name in receivers:
                _fail(f"{where}: receivers[{i}]", "name", receiver.name, "a name used once")
            receivers[receiver.name] = receiver
        raw_routes = data.get("routes")
        if raw_routes is None:  # no routes: everything goes to every receiver
            raw_routes = [{"receivers": list(receivers)}]
        if not isinstance(raw_routes, list) or not raw_routes:
            _fail(where, "routes", raw_routes, "a list of {receivers, min_severity, series}")
        routes = tuple(_route(item, f"{where}: routes[{i}]", receivers)
                       for i, item in enumerate(raw_routes))
        return cls(receivers, routes)


def load_config(path: str | Path) -> NotifyConfig:
    """Read and validate NOTIFY_CONFIG (YAML or JSON by its extension)."""
    path = Path(path)
    where = f"NOTIFY_CONFIG={str(path)!r}"
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise NotifyConfigError(f"{where} is not allowed: expected a .yaml, .yml or .json file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise NotifyConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise NotifyConfigError(f"{where} is not valid JSON: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())
            raise NotifyConfigError(f"{where} is not valid YAML: {first}") from None
    return NotifyConfig.from_mapping(data, where)


def _receiver(item, where: str) -> Receiver:
    if not isinstance(item, dict):
        _fail(where, "the entry", item, "a mapping {name, url, format}")
    unknown = sorted(set(item) - {"name", "url", "format", "timeout"})
    if unknown:
        _fail(where, "key", unknown[0], "name, url, format or timeout")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        _fail(where, "name", name, "a non-empty string")
    url = item.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact_url(url) if isinstance(url, str) else url
        _fail(where, "url", shown, "an http:// or https:// URL")
    fmt = item.get("format", "json")
    if fmt not in FORMATS:
        _fail(where, "format", fmt, "one of " + ", ".join(FORMATS))
    timeout = item.get("timeout", DEFAULT_TIMEOUT_S)
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_S):
        _fail(where, "timeout", timeout, f"seconds above 0 and at most {MAX_TIMEOUT_S:.0f}")
    return Receiver(name.strip(), url, fmt, float(timeout))


def _route(item, where: str, receivers: dict) -> Route:
    if not isinstance(item, dict):
        _fail(where, "the entry", item, "a mapping {receivers, min_severity, series}")
    unknown = sorted(set(item) - {"receivers", "min_severity", "series"})
    if unknown:
        _fail(where, "key", unknown[0], "receivers, min_severity or series")
    names = item.get("receivers")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names:
        _fail(where, "receivers", names, "a list of receiver names")
    for name in names:
        if name not in receivers:
            _fail(where, "receiver", name, "one of " + ", ".join(receivers))
    severity = item.get("min_severity", "medium")
    if severity not in ROUTE_SEVERITIES:
        _fail(where, "min_severity", severity, "one of " + ", ".join(ROUTE_SEVERITIES))
    series = item.get("series", "*")
    if not isinstance(series, str) or not series:
        _fail(where, "series", series, "a glob pattern such as cpu-* (default *)")
    return Route(tuple(names), SEVERITY_NAMES.index(severity), series)


def _fail(where: str, what: str, value, allowed: str):
    raise NotifyConfigError(f"{where}: {what}={value!r} is not allowed: expected {allowed}")
