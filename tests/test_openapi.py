"""``/api/openapi.json`` is built from the handlers and stays true: every route is a path
and every path a route, and real answers of a running server (each documented status)
validate against the schemas it declares."""

from __future__ import annotations

import re
import time

import pytest
import requests
from jsonschema import Draft202012Validator

from granite_panel.server.api import ROUTES, JSONHandler
from granite_panel.server.openapi import document, path_of, served_methods

from .openapi_check import check_answer
from .serving import running_server, status, wait_for, wait_until_model_settled


def test_every_route_is_a_documented_path_and_every_path_a_route():
    paths = document(ROUTES)["paths"]
    served = {}
    for pattern, handler, _ in ROUTES:
        for method in handler.openapi:
            served.setdefault(path_of(pattern, handler, method), set()).add(method)
    assert {p: set(item) for p, item in paths.items()} == served
    assert len(paths) == len(ROUTES)
    for pattern, _, _ in ROUTES:  # the documented path is one the route serves
        path = next(p for p in paths if re.fullmatch(pattern, re.sub(r"\{\w+\}", "x@1", p)))
        assert path.startswith("/api/")
    for pattern, handler, _ in ROUTES:  # every method a handler serves is documented
        assert served_methods(handler) == set(handler.openapi) != set(), handler.__name__


def test_a_route_without_declared_operations_is_refused():
    class Bare(JSONHandler):
        def get(self):
            pass

    with pytest.raises(ValueError, match=r"Bare \(/api/bare\) declares no `openapi` operations"):
        document([(r"/api/bare", Bare, {})])

    class Wrong(JSONHandler):
        openapi = {"post": {"summary": "x", "responses": {}}}

        def get(self):
            pass

    with pytest.raises(ValueError, match=r"Wrong serves \['get'\] but documents \['post'\]"):
        document([(r"/api/wrong", Wrong, {})])


def test_every_schema_is_valid_json_schema_2020_12():
    doc = document(ROUTES)
    assert doc["openapi"].startswith("3.1")
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"], (path, method)
            for code, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", code) and response["description"]


def _incidents_kept(base: str) -> int:
    try:
        return status(base)["incidents"]["kept"]
    except requests.RequestException:  # a loaded machine: ask again
        return 0


def test_served_answers_match_the_document(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'gp.db'}", "INGEST_MAX_BYTES": "2048",
           "DATA_GENERATION_INTERVAL": "0.2", "ANOMALY_PROBABILITY": "0.3",
           "FALLBACK_MODEL": "SeasonalNaive", "MODEL_NAME": "/nonexistent"}
    with running_server("--autostart", env=env, timeout=180) as base:
        wait_until_model_settled(base)
        doc = requests.get(f"{base}/api/openapi.json", timeout=5).json()
        assert doc == document(ROUTES)
        wait_for(lambda: _incidents_kept(base) >= 1, timeout=60)
        seen: dict[str, set[int]] = {}

        def call(method: str, path: str, expected: int, **kwargs):
            answer = requests.request(method, base + path, timeout=30, **kwargs)
            assert answer.status_code == expected, (method, path, answer.text)
            check_answer(doc, path, method, answer)
            seen.setdefault(f"{method} {path.split('?')[0]}", set()).add(expected)
            return answer

        call("GET", "/api/status", 200)
        call("GET", "/api/openapi.json", 200)
        call("GET", "/api/history", 200)
        call("GET", "/api/history?limit=5&series=synthetic-0", 200)
        old = call("GET", f"/api/history?start={time.time() - 86400}&end={time.time()}", 200)
        assert old.json()["source"] == "store" and old.json()["points"]
        for bad in ("limit=0", "limit=x", "series=nope", "start=yesterday", "end=nan",
                    "start=inf", "timezone=Mars/Base", f"timezone={'a' * 300}",
                    "timezone=Factory&start=2024-01-01T00:00"):
            call("GET", f"/api/history?{bad}", 400)
        listed = call("GET", "/api/incidents", 200).json()["incidents"]
        call("GET", "/api/incidents?open=1&limit=3&series=synthetic-0", 200)
        call("GET", "/api/incidents?open=maybe", 400)
        ident = requests.utils.quote(listed[0]["id"], safe="")
        assert call("POST", f"/api/incidents/{ident}/ack", 200).json()["acknowledged"]
        call("POST", "/api/incidents/nope/ack", 404)
        call("POST", "/api/incidents/%ff/ack", 400)  # not UTF-8 once decoded
        call("POST", "/api/mute", 200, json={"series": "synthetic-0", "seconds": 60})
        call("GET", "/api/mute", 200)
        call("POST", "/api/mute", 400, json={"series": "synthetic-0"})
        call("POST", "/api/mute", 404, json={"series": "nope", "seconds": 60})
        call("DELETE", "/api/mute?series=synthetic-0", 200)
        call("DELETE", "/api/mute", 400)
        call("DELETE", "/api/mute?series=nope", 404)
        now = int(time.time())
        call("POST", "/api/ingest", 200, json={"series": "pushed", "points": [[now, 1.5]]})
        call("POST", "/api/ingest", 200, data=f"series,timestamp,value\npushed,{now},2\n",
             headers={"Content-Type": "text/csv"})
        call("POST", "/api/ingest?precision=s", 200, data=f"m,host=a v=3 {now}\n",
             headers={"Content-Type": "text/plain"})
        call("POST", "/api/ingest", 400, json={"series": "pushed"})
        call("POST", "/api/ingest", 413, data="x" * 4096, headers={"Content-Type": "text/plain"})
        call("POST", "/api/ingest", 415, data="x", headers={"Content-Type": "image/png"})
        call("GET", "/api/export?series=synthetic-0", 200)
        parquet = call("GET", "/api/export?format=parquet&kind=incidents", 200)
        assert parquet.content[:4] == b"PAR1"
        call("GET", "/api/export?format=xml", 400)
        documented = {f"{m.upper()} {p}": {int(c) for c in op["responses"]}
                      for p, item in doc["paths"].items() for m, op in item.items()}
        # every operation was called, and every documented status but the store's 503
        # (tests/test_faults.py: a full disk) was seen
        untried = {op: codes - seen.get(op.replace("{incident_id}", "nope"), set())
                   - seen.get(op.replace("{incident_id}", ident), set())
                   - seen.get(op.replace("{incident_id}", "%ff"), set())
                   for op, codes in documented.items()}
        # 401/403 need AUTH on: tests/test_auth.py checks those answers against the document
        auth_only = {401, 403}
        assert {op: codes - auth_only for op, codes in untried.items() if codes - auth_only} == {
            "POST /api/ingest": {503}}
