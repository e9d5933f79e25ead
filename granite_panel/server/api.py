"""REST endpoints: ``/api/status``, ``/api/history`` (memory, or the store for older
ranges), ``/api/ingest`` (acknowledged after the store commits), ``/api/export`` (streamed),
``/api/incidents`` (grouped flagged points; acknowledge) and ``/api/mute`` (per series).

Every route is behind the process's auth (``auth.current()``): Panel's login cookie or
``Authorization: Bearer TOKEN``; 401 without credentials, 403 for a role or scope that may
not (each handler names the action each method needs). Always JSON, never a traceback.

Usable from ``granite-panel serve`` (``pn.serve(extra_patterns=ROUTES)``) and from
``panel serve granite_panel/app.py --plugins granite_panel.api``. Handlers read the shared
engine's snapshot, never the widgets; bad query parameters get a JSON error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from functools import partial

import numpy as np
from tornado.web import RequestHandler, stream_request_body

from . import auth, runtime
from .openapi import (BAD_QUERY, RETRY_AFTER, answer, case_free, document, json_body, operation,
                      query, ref)
from ..detection.live import SEVERITY_NAMES
from ..engine.core import Engine
from ..engine.records import iso_list
from ..engine.ring import GAP
from ..sources.local_time import check_timezone, range_bound
from ..sources.points import InputError
from ..sources.push import PRECISIONS, UnsupportedMediaType, parse_body

HISTORY_DEFAULT, HISTORY_MAX = 100, 10_000
COMMIT_TIMEOUT_S = 10.0  # a push waits this long for its commit, then gets 503 (retry)
INCIDENTS_DEFAULT, INCIDENTS_MAX = 100, 1000
SMALL_BODY_MAX = 64 * 1024  # a mute or acknowledge body; only /api/ingest takes more


class BadQuery(ValueError):
    """A query parameter is not allowed; the message says which and why."""


def _clean(value):
    """JSON cannot carry NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def int_arg(raw: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name}={raw!r} is not allowed: expected a whole number") from None
    if not low <= value <= high:
        raise BadQuery(f"{name}={raw!r} is not allowed: expected {low} to {high}")
    return value


def series_arg(engine: Engine, raw: str | None) -> int | None:
    """The row of ``?series=NAME`` (or its index, the older form); None for all series."""
    if raw is None or raw == "":
        return None
    try:
        return engine.row_of(raw)
    except KeyError:
        known = ", ".join(engine.names[:5]) + (" ..." if engine.n_series > 5 else "")
        raise BadQuery(
            f"series={raw!r} is not allowed: no such series (an index 0 to "
            f"{engine.n_series - 1} or a name: {known or 'none yet'})"
        ) from None


def time_arg(raw: str | None, name: str, zone: str = "") -> float | None:
    """``start``/``end``: epoch seconds or an ISO 8601 time; without an offset a clock time
    of ``zone`` (a ``timezone`` argument; UTC when empty), read wide as one end of a range
    (``local_time.range_bound``: the repeated hour's first run for ``start``, its second
    for ``end``)."""
    if raw is None or raw == "":
        return None
    try:
        number = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise BadQuery(f"{name}={raw!r} is not allowed: expected a finite number of epoch "
                       "seconds or an ISO 8601 time")
    try:
        return range_bound(raw, zone, end=name == "end")
    except (ValueError, TypeError, OverflowError):
        raise BadQuery(f"{name}={raw!r} is not allowed: expected epoch seconds or an ISO 8601 "
                       "time such as 2024-05-01T12:00:00Z") from None


def zone_arg(raw: str | None) -> str:
    """``timezone``: the IANA zone of ``start``/``end`` written without an offset."""
    try:
        return check_timezone(raw or "")
    except InputError as exc:
        raise BadQuery(f"timezone={raw[:64]!r} is not allowed: {exc}") from None


def bool_arg(raw: str | None, name: str) -> bool:
    if raw is None or raw == "":
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadQuery(f"{name}={raw!r} is not allowed: expected 1 or 0 (true or false)")


def status_payload(engine: Engine) -> dict:
    status = engine.status()
    status["viewers"] = runtime.viewer_count()
    return _clean(status)


def _point(timestamp: str, name: str, index: int, value, severity: int, score) -> dict:
    return {"timestamp": timestamp, "series": name, "series_index": index, "value": value,
            "anomaly": severity > 0, "severity": SEVERITY_NAMES[max(severity, 0)],
            "score": score}


def stored_points(engine: Engine, chosen: list[int], start, end, limit: int) -> list[dict]:
    """Points of ``chosen`` rows in [start, end] read from the store, newest ``limit``."""
    rows = []
    for index in chosen:
        name = engine.names[index]
        ts, value, score, severity, _ = engine.store.history(name, start, end)
        ts, value, score, severity = (a[-limit:] for a in (ts, value, score, severity))
        stamps = iso_list(ts)
        rows += [(t, _point(stamps[j], name, index, value[j].item(), int(severity[j]),
                            round(float(score[j]), 4)))
                 for j, t in enumerate(ts.tolist())]
    rows.sort(key=lambda row: row[0])
    return [point for _, point in rows[-limit:]]


def history_payload(engine: Engine, limit: int = HISTORY_DEFAULT, series: int | None = None,
                    start: float | None = None, end: float | None = None) -> dict:
    """The last ``limit`` points (all series, or the row ``series``) and the last 10 predictions.

    Gaps (no point of a series in a slot) are not points and are left out. With ``start``
    older than the memory's oldest slot (and a store), the points come from the store.
    """
    snap = engine.snapshot(last=None if start is not None or end is not None else limit)
    chosen = list(range(len(snap.names))) if series is None else [series]
    oldest = float(snap.timestamps[0]) if len(snap.timestamps) else float("inf")
    if engine.store is not None and start is not None and start < oldest:
        return _clean({"generation": snap.generation, "source": "store",
                       "points": stored_points(engine, chosen, start, end, limit),
                       "predictions": [p.as_dict(chosen, list(snap.names))
                                       for p in snap.predictions]})
    if start is not None or end is not None:
        keep = np.ones(len(snap.timestamps), bool)
        if start is not None:
            keep &= snap.timestamps >= start
        if end is not None:
            keep &= snap.timestamps <= end
        snap = dataclasses.replace(snap, timestamps=snap.timestamps[keep],
                                   values=snap.values[:, keep], score=snap.score[:, keep],
                                   severity=snap.severity[:, keep], flag=snap.flag[:, keep])
    stamps = iso_list(snap.timestamps)
    present = (snap.flag[chosen] != GAP).T.tolist()
    values = snap.values[chosen].T.tolist()  # [time][series], NaN cleaned below
    severity = snap.severity[chosen].T.tolist()
    score = np.round(snap.score[chosen], 4).T.tolist()
    names = snap.names
    rows = [
        _point(stamps[j], names[series], series, values[j][k], severity[j][k], score[j][k])
        for j in range(len(stamps))
        for k, series in enumerate(chosen)
        if present[j][k]
    ][-limit:]
    return _clean(
        {
            "generation": snap.generation,
            "source": "memory",
            "points": rows,
            "predictions": [p.as_dict(chosen, list(names)) for p in snap.predictions],
            "incidents": engine.incidents.recent(
                limit, series=None if series is None else names[series]
            ),
        }
    )


def incidents_payload(engine: Engine, limit: int = INCIDENTS_DEFAULT, series: str | None = None,
                      ongoing_only: bool = False) -> dict:
    """Incidents newest first (of one series; only ongoing ones), and the muted series."""
    tracker = engine.incidents
    return _clean(
        {
            "incidents": tracker.recent(limit, series=series, ongoing_only=ongoing_only),
            "muted": tracker.mutes(time.time()),
            "gap": tracker.gap,
        }
    )


class JSONHandler(RequestHandler):
    # the action (auth.ACTIONS) each HTTP method needs; a method not named needs "read"
    actions: dict[str, str] = {}
    identity: auth.Identity | None = None

    def prepare(self):
        """Refuse before any work: 401 without valid credentials, 403 without the right."""
        action = self.actions.get(self.request.method, "read")
        identity, why = auth.current().request_identity(self)
        if identity is None:
            self.set_header("WWW-Authenticate", 'Bearer realm="granite-panel"')
            self.send_json({"error": why, "status": 401}, 401)
            return
        if not identity.may(action):
            needs = (f"the {auth.SCOPED_ACTIONS[action]!r} scope"
                     if identity.via == "token" and action in auth.SCOPED_ACTIONS
                     else f"role {auth.ACTIONS[action]} or above")
            self.send_json({"error": f"{identity.name!r} ({identity.role}) may not {action}: "
                            f"it needs {needs}", "status": 403}, 403)
            return
        self.identity = identity
        if not self._stream_body() and len(self.request.body) > SMALL_BODY_MAX:
            self.send_json({"error": f"body of {len(self.request.body):,} bytes is over the "
                            f"limit of {SMALL_BODY_MAX:,} for {self.request.path}",
                            "status": 413}, 413)

    def _stream_body(self) -> bool:
        return False

    def engine(self) -> Engine:
        return runtime.shared_engine()

    def send_json(self, payload: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors are JSON too, never an HTML traceback."""
        self.send_json({"error": self._reason, "status": status_code}, status_code)


class StatusHandler(JSONHandler):
    openapi = {"get": operation("The engine's status: stream, model, storage, source, counters",
                                {200: answer("the status", ref("Status"))})}

    def get(self):
        self.send_json(status_payload(self.engine()))


_SERIES = query("series", "a series' name, or its index (the older form)")
_START = query("start", "epoch seconds or ISO 8601 (no offset: a clock time of timezone)")
_END = query("end", "epoch seconds or ISO 8601 (no offset: a clock time of timezone)")
_ZONE = query("timezone", "the IANA zone (Europe/Berlin) of start and end written without an "
                          "offset; UTC by default")


class HistoryHandler(JSONHandler):
    openapi = {"get": operation(
        "The last points (of one series, or a range; older than memory: from the store) and "
        "the last predictions", {200: answer("points and predictions", ref("History")),
                                 400: BAD_QUERY},
        parameters=[query("limit", "how many points", {"type": "integer", "minimum": 1,
                                                       "maximum": HISTORY_MAX}),
                    _SERIES, _START, _END, _ZONE])}

    async def get(self):
        engine = self.engine()
        try:
            limit = int_arg(self.get_argument("limit", None), "limit", HISTORY_DEFAULT, 1, HISTORY_MAX)
            series = series_arg(engine, self.get_argument("series", None))
            zone = zone_arg(self.get_argument("timezone", None))
            start = time_arg(self.get_argument("start", None), "start", zone)
            end = time_arg(self.get_argument("end", None), "end", zone)
        except BadQuery as exc:
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        loop = asyncio.get_running_loop()  # a store read stays off the event loop
        self.send_json(await loop.run_in_executor(
            None, history_payload, engine, limit, series, start, end))


class IncidentsHandler(JSONHandler):
    """``GET /api/incidents?series=&limit=&open=1``: incidents, newest first."""

    openapi = {"get": operation(
        "Incidents newest first, and the muted series",
        {200: answer("incidents", ref("Incidents")), 400: BAD_QUERY},
        parameters=[_SERIES,
                    query("limit", "how many incidents", {"type": "integer", "minimum": 1,
                                                          "maximum": INCIDENTS_MAX}),
                    query("open", "1: only ongoing incidents",
                          case_free("", "1", "0", "true", "false", "yes", "no"))])}

    def get(self):
        engine = self.engine()
        try:
            limit = int_arg(self.get_argument("limit", None), "limit", INCIDENTS_DEFAULT, 1,
                            INCIDENTS_MAX)
            row = series_arg(engine, self.get_argument("series", None))
            ongoing_only = bool_arg(self.get_argument("open", None), "open")
        except BadQuery as exc:
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        name = None if row is None else engine.names[row]
        self.send_json(incidents_payload(engine, limit, name, ongoing_only))


class AcknowledgeHandler(JSONHandler):
    """``POST /api/incidents/<id>/ack``: 200 with the incident, 404 for an unknown id."""

    actions = {"POST": "acknowledge"}

    openapi = {"post": operation("Acknowledge an incident (its id URL-encoded)", {
        200: answer("the incident, acknowledged", ref("Incident")),
        400: answer("the id is not URL-encoded UTF-8"),
        404: answer("no incident with this id is kept")})}

    def post(self, incident_id: str):
        try:
            incident = self.engine().incidents.acknowledge(incident_id)
        except KeyError:
            self.send_json({"error": f"incident {incident_id!r} not found (GET /api/incidents "
                            "lists the ids kept)", "status": 404}, 404)
            return
        self.send_json(_clean(incident))


class MuteHandler(JSONHandler):
    """``POST /api/mute`` {"series", "seconds"}: no toasts for that series for a while (its
    incidents are still recorded); ``DELETE /api/mute?series=`` (or the same JSON) ends it;
    ``GET /api/mute`` lists the muted series and when each mute ends."""

    actions = {"POST": "mute", "DELETE": "mute"}

    openapi = {
        "get": operation("The muted series and when each mute ends",
                         {200: answer("muted series", ref("MuteList"))}),
        "post": operation(
            "No toasts for a series for a while (its incidents are still recorded)",
            {200: answer("muted", ref("Muted")), 400: answer("a bad body"),
             404: answer("no such series")},
            body={**json_body(ref("MuteRequest")), "required": True}),
        "delete": operation("End a series' mute", {
            200: answer("unmuted", ref("Unmuted")), 400: answer("no series given"),
            404: answer("no such series")},
            parameters=[query("series", "the series' name", {"type": "string", "minLength": 1})]),
    }

    def get(self):
        self.send_json({"muted": self.engine().incidents.mutes(time.time())})

    def post(self):
        try:
            body = self._body()
            series = self._series(body)
            if "seconds" not in body:
                raise BadQuery('body has no "seconds": expected {"series": NAME, "seconds": N}')
            if type(body["seconds"]) not in (int, float):  # JSON true or "5" is not a number
                raise BadQuery(f"seconds={body['seconds']!r:.40} is not allowed: expected a "
                               "number of seconds")
            until = self.engine().incidents.mute(series, body["seconds"], time.time())
        except LookupError as exc:
            self.send_json({"error": exc.args[0], "status": 404}, 404)
            return
        except ValueError as exc:  # BadQuery, or seconds out of range
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        from ..detection.incidents import iso

        self.send_json({"series": series, "muted_until": iso(until)})

    def delete(self):
        try:
            raw = self.get_argument("series", None)
            series = self._series({"series": raw} if raw else self._body())
        except LookupError as exc:
            self.send_json({"error": exc.args[0], "status": 404}, 404)
            return
        except ValueError as exc:
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        was_muted = self.engine().incidents.unmute(series)
        self.send_json({"series": series, "was_muted": was_muted})

    def _body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise BadQuery(f"body is not JSON ({exc}): expected "
                           '{"series": NAME, "seconds": N}') from None
        if not isinstance(body, dict):
            raise BadQuery(f"body {body!r:.60} is not allowed: expected a JSON object "
                           '{"series": NAME, "seconds": N}')
        return body

    def _series(self, body: dict) -> str:
        """The name of a known series; LookupError (404) for one the engine has not seen."""
        series = body.get("series")
        if not isinstance(series, str) or not series:
            raise BadQuery(f"series={series!r} is not allowed: expected the name of a series")
        engine = self.engine()
        if series not in engine.rows:
            known = ", ".join(engine.names[:5]) + (" ..." if engine.n_series > 5 else "")
            raise LookupError(f"series {series!r} not found (known: {known or 'none yet'})")
        return series


@stream_request_body
class IngestHandler(JSONHandler):
    """``POST /api/ingest``: JSON, long CSV or InfluxDB line protocol; all or nothing.

    200 with the counts once the points are in the engine and committed to the store; 400
    naming the line or row of a malformed body (nothing applied); 413 over INGEST_MAX_BYTES;
    415 for another media type; 503 while the store cannot commit (nothing acknowledged: the
    sender retries, and a point sent twice is stored once).

    The body is streamed in: a declared Content-Length over the limit is refused before
    one byte of it is read, and a chunked body stops being kept once it passes the limit.
    """

    actions = {"POST": "ingest"}

    def _stream_body(self) -> bool:
        return True

    def prepare(self):
        super().prepare()
        self._chunks, self._received = [], 0
        if self._finished:
            return
        declared = self.request.headers.get("Content-Length")
        if declared and declared.isascii() and declared.isdigit() and int(declared) > self._limit():
            self._too_large(int(declared))

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= self._limit():
            self._chunks.append(chunk)
        else:
            self._chunks = []

    def _limit(self) -> int:
        return self.engine().settings.ingest_max_bytes

    def _too_large(self, size: int) -> None:
        self.send_json({"error": f"body of {size:,} bytes is over the limit of "
                        f"{self._limit():,} (INGEST_MAX_BYTES)", "status": 413}, 413)

    openapi = {"post": operation(
        "Push points: JSON, CSV (long or wide) or InfluxDB line protocol; all or nothing",
        {200: answer("the points are in the engine and committed", ref("IngestResult")),
         400: answer("a malformed body (`error` names the line, row or object): nothing "
                     "applied"),
         413: answer("over INGEST_MAX_BYTES"), 415: answer("another media type"),
         503: answer("the store cannot commit: nothing acknowledged, retry", headers=RETRY_AFTER)},
        parameters=[query("precision", "line protocol timestamps' unit (default ns)",
                          {"type": "string", "enum": list(PRECISIONS)}),
                    query("series", "the series name of a wide CSV's lone value column "
                          "(a body timestamp,value)"),
                    query("timezone", "the IANA zone (Europe/Berlin) of JSON and CSV times "
                          "written without a UTC offset (a logger's local clock; default "
                          "UTC); the hour that the end of summer time repeats is placed as "
                          "the clock ran, after the series' previous point")],
        body={"required": True, "content": {
            "application/json": {"schema": {"anyOf": [
                ref("IngestSeries"), {"type": "array", "items": ref("IngestSeries")}]}},
            "text/csv": {"schema": {"type": "string", "description":
                                    "long: a header series,timestamp,value (or unique_id,ds,y); "
                                    "wide: a time column (timestamp, ds, date, datetime, time) "
                                    "and one column per series"}},
            "text/plain": {"schema": {"type": "string", "description":
                                      "InfluxDB line protocol"}},
        }})}

    def unavailable(self, reason: str) -> None:
        self.set_header("Retry-After", "5")
        self.send_json({"error": f"storage degraded: {reason}; retry later", "status": 503}, 503)

    async def post(self):
        engine = self.engine()
        if self._received > self._limit():
            self._too_large(self._received)
            return
        body = b"".join(self._chunks)

        store = engine.store
        if store is not None and not store.healthy:
            self.unavailable(store.status()["reason"])
            return
        content_type = self.request.headers.get("Content-Type", "")
        loop = asyncio.get_running_loop()
        try:  # parsing and the engine's lock stay off the event loop the dashboards share
            points = await loop.run_in_executor(
                None, partial(parse_body, body, content_type,
                              self.get_argument("precision", None),
                              series=self.get_argument("series", None),
                              timezone=self.get_argument("timezone", ""),
                              newest=engine.newest_times),
            )
        except UnsupportedMediaType as exc:
            self.send_json({"error": str(exc), "status": 415}, 415)
            return
        except InputError as exc:
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        result = await loop.run_in_executor(None, engine.ingest_points, points)
        if result.committed is not None:
            try:
                await asyncio.wait_for(  # shield: a timeout must not cancel the write itself
                    asyncio.shield(asyncio.wrap_future(result.committed)), COMMIT_TIMEOUT_S)
            except (asyncio.TimeoutError, Exception):  # still queued: kept, not acknowledged
                reason = store.status()["reason"] or f"no commit within {COMMIT_TIMEOUT_S:.0f} s"
                self.unavailable(reason)
                return
        self.send_json(_clean(result.as_dict()))


class ExportHandler(JSONHandler):
    """``GET /api/export?series=&start=&end=&format=csv|parquet&kind=points|forecasts|incidents``

    Streamed in chunks read off the event loop, so a long export holds one chunk in memory.
    With ``DATABASE_URL=memory`` it exports what is in memory.
    """

    actions = {"GET": "export"}

    openapi = {"get": operation(
        "A streamed file of points, forecasts or incidents",
        {200: {"description": "the file", "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                          "contentMediaType": "application/vnd.apache.parquet"}}}},
         400: BAD_QUERY},
        parameters=[query("series", "names (or indexes) separated by commas; all by default"),
                    _START, _END, _ZONE,
                    query("format", "csv (default) or parquet",
                          {"type": "string", "enum": ["csv", "parquet"]}),
                    query("kind", "points (default), forecasts or incidents",
                          {"type": "string", "enum": ["points", "forecasts", "incidents"]})])}

    async def get(self):
        engine = self.engine()
        from ..store.store import StoreError

        try:
            names = None
            raw = self.get_argument("series", None)
            if raw:
                parts = raw.split(",")
                if not all(parts):  # series_arg reads an empty name as "all series"
                    raise BadQuery(f"series={raw!r} is not allowed: an empty name between commas")
                names = [engine.names[series_arg(engine, part)] for part in parts]
            zone = zone_arg(self.get_argument("timezone", None))
            start = time_arg(self.get_argument("start", None), "start", zone)
            end = time_arg(self.get_argument("end", None), "end", zone)
            fmt = self.get_argument("format", "csv")
            kind = self.get_argument("kind", "points")
            loop = asyncio.get_running_loop()
            if engine.store is not None:
                store, temporary = engine.store, False
            else:
                from ..engine.persistence import memory_copy

                store, temporary = await loop.run_in_executor(None, memory_copy, engine), True
            chunks = store.export(names, start, end, kind=kind, fmt=fmt)
            first = await loop.run_in_executor(None, next, chunks, None)
        except (BadQuery, StoreError) as exc:
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
        self.set_header("Content-Type", media)
        self.set_header("Content-Disposition",
                        f'attachment; filename="granite-panel-{kind}.{fmt}"')
        try:
            chunk = first
            while chunk is not None:  # (a parquet chunk may be empty before the footer)
                if chunk:
                    self.write(chunk)
                    await self.flush()
                chunk = await loop.run_in_executor(None, next, chunks, None)
        finally:
            if temporary:
                store.close()
        self.finish()


class OpenAPIHandler(JSONHandler):
    """``GET /api/openapi.json``: this API's OpenAPI document, built from the handlers."""

    openapi = {"get": operation("This OpenAPI document",
                                {200: answer("the document", ref("OpenAPI"))})}

    def get(self):
        self.send_json(document(ROUTES))


ROUTES = [
    (r"/api/status/?", StatusHandler, {}),
    (r"/api/history/?", HistoryHandler, {}),
    (r"/api/ingest/?", IngestHandler, {}),
    (r"/api/export/?", ExportHandler, {}),
    (r"/api/incidents/?", IncidentsHandler, {}),
    (r"/api/incidents/(.+)/ack/?", AcknowledgeHandler, {}),
    (r"/api/mute/?", MuteHandler, {}),
    (r"/api/openapi\.json", OpenAPIHandler, {}),
]
