"""The OpenAPI 3.1 document of the REST API (``GET /api/openapi.json``), assembled from the
handlers: each handler class in ``api.py`` declares its operations next to its code
(``openapi = {"get": operation(...)}``) and ``document(ROUTES)`` turns every route into a
path, so a route cannot be served undocumented (tests/test_openapi.py checks both ways and
validates real answers against these schemas; tests/test_fuzz.py runs schemathesis on them).

Plain data, no Tornado: ``api.py`` imports the helpers below, this module never imports it.
Authentication's responses (401, 403) are in ``SHARED_RESPONSES`` and its schemes (a bearer
token, the login cookie) in ``SECURITY_SCHEMES``; both apply to every ``/api`` operation.
"""

from __future__ import annotations

import inspect
import re

from ..detection.incidents import ANOMALY, NO_DATA
from ..detection.live import SEVERITY_NAMES

OPENAPI_VERSION = "3.1.0"
METHODS = ("get", "post", "put", "patch", "delete")

# Responses every operation may give (status -> response object) and the security schemes
# of the document: empty while the API has no authentication.
SHARED_RESPONSES: dict[str, dict] = {}  # filled below, once ``answer`` exists
SECURITY_SCHEMES: dict[str, dict] = {
    # With AUTH=basic|oauth every /api route takes either; with AUTH=none (loopback) neither
    # is needed, hence the empty requirement in ``SECURITY``.
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "an API token (API_TOKENS; `granite-panel token create`)"},
    "session": {"type": "apiKey", "in": "cookie", "name": "user",
                "description": "the signed cookie of a dashboard login (Panel's)"},
}
SECURITY = [{"bearer": []}, {"session": []}, {}]


# --------------------------------------------------------------------------- building blocks


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    """``schema`` or JSON null (OpenAPI 3.1 is JSON Schema 2020-12)."""
    return {"anyOf": [schema, {"type": "null"}]}


def query(name: str, description: str, schema: dict | None = None) -> dict:
    """An optional query parameter; its value arrives as text, ``schema`` says which text."""
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def json_body(schema: dict, description: str = "") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def answer(description: str, schema: dict | None = None, headers: dict | None = None) -> dict:
    """A JSON response with ``schema`` (the error body when none is given)."""
    response = json_body(schema or ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


SHARED_RESPONSES.update({
    "401": answer("AUTH is on and the request has no valid credentials (a bearer token or a "
                  "login cookie); carries WWW-Authenticate"),
    "403": answer("the user's role or the token's scopes may not do this"),
})


def operation(summary: str, responses: dict, *, parameters: list | None = None,
              body: dict | None = None, description: str = "") -> dict:
    """One operation: ``responses`` maps a status code to ``answer(...)``."""
    entry = {"summary": summary, "responses": {str(code): r for code, r in responses.items()}}
    if description:
        entry["description"] = description
    if parameters:
        entry["parameters"] = parameters
    if body is not None:
        entry["requestBody"] = body
    return entry


def case_free(*words: str) -> dict:
    """A text parameter that is one of ``words`` in any letter case."""
    alternatives = "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)
        for word in words)
    return {"type": "string", "pattern": f"^(?:{alternatives})$"}


BAD_QUERY = answer("a query parameter is not allowed: `error` names it and what is allowed")
RETRY_AFTER = {"Retry-After": {"description": "seconds before a retry may succeed",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


# ----------------------------------------------------------------------------------- schemas

_count = {"type": "integer", "minimum": 0}
_text = {"type": "string"}
_number = {"type": "number"}
_time = {"type": "string", "description": "ISO 8601 UTC with milliseconds",
         "pattern": r"^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}
_severity = {"type": "string", "enum": list(SEVERITY_NAMES)}
_named_floats = {"type": "object", "additionalProperties": {"type": "array",
                                                          "items": nullable(_number)}}


def _object(properties: dict, required: list[str] | None = None, extra: bool = True) -> dict:
    """An object with ``properties``; all of them required unless ``required`` says which."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": extra}


SCHEMAS: dict[str, dict] = {
    "Error": _object({"error": _text, "status": {"type": "integer", "minimum": 400,
                                                 "maximum": 599}}, extra=False),
    "Point": _object({
        "timestamp": _time, "series": _text, "series_index": _count,
        "value": nullable(_number), "anomaly": {"type": "boolean"}, "severity": _severity,
        "score": nullable(_number),
    }, extra=False),
    "Prediction": _object({
        "made_at": _time, "model": _text, "inference_ms": _number,
        "timestamps": {"type": "array", "items": _time},
        "series": _named_floats, "lower": _named_floats, "upper": _named_floats,
    }, required=["made_at", "model", "inference_ms", "timestamps", "series"], extra=False),
    "Incident": _object({
        "id": _text, "series": _text, "row": _count, "start": _time, "end": nullable(_time),
        "last_flagged": _time, "ongoing": {"type": "boolean"}, "peak_score": _number,
        "severity": _severity, "points": {"type": "integer", "minimum": 1},
        "acknowledged": {"type": "boolean"}, "muted": {"type": "boolean"},
        "band": nullable({"type": "object", "additionalProperties": nullable(_number)}),
        "kind": {"type": "string", "enum": [ANOMALY, NO_DATA],
                 "description": "flagged points, or a series that stopped reporting"},
    }, extra=False),
    "Mutes": {"type": "object", "description": "muted series -> when the mute ends",
              "additionalProperties": _time},
    "History": _object({
        "generation": _count,
        "source": {"type": "string", "enum": ["memory", "store"]},
        "points": {"type": "array", "items": ref("Point")},
        "predictions": {"type": "array", "items": ref("Prediction")},
        "incidents": {"type": "array", "items": ref("Incident"),
                      "description": "only with source memory"},
    }, required=["generation", "source", "points", "predictions"], extra=False),
    "Incidents": _object({
        "incidents": {"type": "array", "items": ref("Incident")},
        "muted": ref("Mutes"), "gap": _count,
    }, extra=False),
    "MuteList": _object({"muted": ref("Mutes")}, extra=False),
    "MuteRequest": _object({
        "series": {"type": "string", "minLength": 1},
        "seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 30 * 86_400},
    }),
    "Muted": _object({"series": _text, "muted_until": _time}, extra=False),
    "Unmuted": _object({"series": _text, "was_muted": {"type": "boolean"}}, extra=False),
    "IngestResult": _object({
        "accepted": _count, "bad": _count, "late": _count, "refused": _count,
        "new_series": {"type": "array", "items": _text},
        "reasons": {"type": "array", "items": _text, "maxItems": 10},
    }, extra=False),
    "IngestSeries": _object({
        "series": {"type": "string", "minLength": 1},
        "points": {"type": "array", "items": {
            "type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [
                {"anyOf": [{"type": "number"}, {"type": "string"}],
                 "description": "ISO 8601 (no zone: UTC), epoch seconds, or milliseconds "
                                "above 1e11"},
                {"description": "a number; null, text or a non-finite value is a bad point"},
            ]}},
    }),
    "Status": _object({
        "running": {"type": "boolean"},
        **{k: _count for k in ("data_points", "anomaly_count", "bad_points", "gap_points",
                               "late_points", "refused_points", "refused_series",
                               "total_predictions", "ticks", "errors", "n_series",
                               "generation", "viewers")},
        "last_refusal": nullable(_text),
        "source": _object({"kind": _text, "state": {"type": "string",
                                                    "enum": ["ok", "down", "finished"]}},
                          required=["kind"]),
        "storage": _object({
            "kind": {"type": "string", "enum": ["memory", "sqlite", "postgresql"]},
            "state": {"type": "string", "enum": ["ok", "degraded"]},
            "reason": _text, "queued": _count,
            "restored": nullable({"type": "object"}),
        }, required=["kind", "state", "reason"]),
        "last_error": nullable(_text),
        "model_loaded": {"type": "boolean"},
        "model_state": _text,
        "active_model": nullable(_text),
        "fallback_reason": nullable(_text),
        "model": _object({"state": _text, "model_loaded": {"type": "boolean"},
                          "active_model": nullable(_text), "banner": _text,
                          "training": nullable({"type": "object"})},
                         required=["state", "model_loaded", "active_model", "banner"]),
        "last_inference_ms": nullable(_number),
        "detection": _object({"precision": nullable(_number), "recall": nullable(_number)}),
        "detector": _object({"name": _text, "score": _text, "learning_points": _count,
                             "season": {"type": ["integer", "string", "null"],
                                        "description": "points per cycle, 'estimate' (each "
                                        "series' own) or null (no season)"}}),
        "incidents": _object({"open": _count, "total": _count, "kept": _count, "gap": _count,
                              "muted": ref("Mutes")}),
        "accuracy": _object({"forecasts_scored": _count, "window": _count,
                             "model": {"type": "object"}, "seasonal_naive": {"type": "object"},
                             "interval_level": _number, "coverage": nullable(_number),
                             "coverage_points": _count, "band_ready": {"type": "boolean"}}),
        "naive_series": {"type": "array", "items": _text},
        "series": {"type": "array", "items": _text},
        "config": {"type": "object"},
    }),
    "OpenAPI": _object({"openapi": _text, "info": {"type": "object"},
                        "paths": {"type": "object"}}, required=["openapi", "info", "paths"]),
}


# ---------------------------------------------------------------------------------- assembly


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("granite-panel")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "0+unknown"


def served_methods(handler: type) -> set[str]:
    """The HTTP methods a handler class defines itself (Tornado's base answers 405)."""
    return {method for method in METHODS
            if any(method in vars(k) for k in handler.__mro__ if k.__module__ != "tornado.web")}


def path_of(pattern: str, handler: type, method: str) -> str:
    """``/api/incidents/(.+)/ack/?`` -> ``/api/incidents/{incident_id}/ack``: each group is
    named by the handler method's positional argument in the same place."""
    names = list(inspect.signature(getattr(handler, method)).parameters)[1:]
    groups = re.findall(r"\([^()]*\)", pattern)
    if len(groups) != len(names):
        raise ValueError(f"route {pattern!r}: {len(groups)} groups but {handler.__name__}."
                         f"{method} takes {names}")
    path = pattern.removesuffix("/?").replace(r"\.", ".")
    for group, name in zip(groups, names):
        path = path.replace(group, "{" + name + "}", 1)
    if re.search(r"[\\()\[\]*+?^$|]", path):
        raise ValueError(f"route {pattern!r} is not a plain path: {path!r}")
    return path


def document(routes, title: str = "granite-panel REST API", version: str = "") -> dict:
    """The OpenAPI document of ``routes`` (Tornado ``(pattern, handler, kwargs)`` tuples)."""
    paths: dict[str, dict] = {}
    for pattern, handler, _ in routes:
        declared = getattr(handler, "openapi", None)
        if not declared:
            raise ValueError(f"{handler.__name__} ({pattern}) declares no `openapi` operations")
        served = served_methods(handler)
        if set(declared) != served:
            raise ValueError(f"{handler.__name__} serves {sorted(served)} but documents "
                             f"{sorted(declared)}")
        for method, spec in declared.items():
            path = path_of(pattern, handler, method)
            entry = {**spec, "operationId": f"{handler.__name__.removesuffix('Handler')}"
                     f"_{method}", "responses": {**spec["responses"], **SHARED_RESPONSES}}
            names = list(inspect.signature(getattr(handler, method)).parameters)[1:]
            if names:
                entry["parameters"] = [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in names] + list(spec.get("parameters", ()))
            paths.setdefault(path, {})[method] = entry
    components: dict = {"schemas": SCHEMAS}
    if SECURITY_SCHEMES:
        components["securitySchemes"] = SECURITY_SCHEMES
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version or _package_version(),
                 "description": "JSON over HTTP; every error is `{\"error\", \"status\"}`."},
        "paths": paths,
        "components": components,
        "security": SECURITY,
    }
