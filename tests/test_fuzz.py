"""Schemathesis against a live ``granite-panel serve``: the schema is read from the server's
own ``/api/openapi.json`` and every operation gets generated requests, valid and invalid
(positive and negative modes): no 5xx, every status and media type documented, every JSON
body valid against its schema."""

from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from granite_panel.server.api import ROUTES
from granite_panel.server.openapi import document

from .openapi_check import check_answer
from .serving import running_server, status, wait_for, wait_until_model_settled

EXAMPLES = 200  # per operation, valid and invalid requests together: about a minute in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A served synthetic stream over a SQLite store (so reads and exports hit the store)."""
    folder = tmp_path_factory.mktemp("fuzz")
    env = {"DATABASE_URL": f"sqlite:///{folder / 'gp.db'}", "INGEST_MAX_BYTES": "65536",
           "DATA_GENERATION_INTERVAL": "0.5", "ANOMALY_PROBABILITY": "0.2",
           "FALLBACK_MODEL": "SeasonalNaive", "MODEL_NAME": "/nonexistent", "DETECTOR": "zscore"}
    with running_server("--autostart", env=env, timeout=180) as base:
        wait_until_model_settled(base)
        yield base


@pytest.fixture(scope="module")
def live_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server}/api/openapi.json", timeout=30)


# One test per documented operation. (Schemathesis' own pytest loader,
# ``schemathesis.pytest.from_fixture``, fails under pytest 9: it reads a Function's
# private ``_nodeid``; so each test draws from the operation's strategies with Hypothesis.)
OPERATIONS = [(method.upper(), path) for path, item in document(ROUTES)["paths"].items()
              for method in item]


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_holds_its_contract(live_server, live_schema, method, path):
    operation = live_schema[path][method]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    # random text seldom names a real series or incident: a third of the cases name one
    if "series" in [parameter.name for parameter in operation.query]:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE,
                                                query={"series": "synthetic-0"}))
    if "{incident_id}" in path:
        wait_for(lambda: _incident_ids(live_server), timeout=60)
        strategies.append(operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters={"incident_id": _incident_ids(live_server)[0]}))
    cases = st.one_of(strategies)

    @given(cases)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def holds(case):
        case.call_and_validate(checks=CHECKS, timeout=30)

    holds()


def _incident_ids(base: str) -> list[str]:
    return [i["id"] for i in requests.get(f"{base}/api/incidents", timeout=30).json()["incidents"]]


BIG = "9" * 400


@pytest.mark.parametrize("body, content_type", [
    (f'{{"series": "a", "points": [[{BIG}, 1]]}}', "application/json"),
    ('{"series": "a", "points": [[1e300, 1]]}', "application/json"),
    ('{"series": "\\ud800", "points": [[%d, 1]]}', "application/json"),
    ('{"series": "a\\u0000", "points": [[%d, 1]]}', "application/json"),
    ("series,timestamp,value\n,%d,1\n", "text/csv"),
    ("series,timestamp,value\na,1e300,1\n", "text/csv"),
    (f"m f=1 {BIG}", "text/plain"),
    ("m f=1 %d000000000\n" + "x" * 600 + " f=1", "text/plain"),
    (b"\xff\xfe", "application/json"),
])
def test_malformed_ingest_is_400_json_and_the_store_stays_ok(live_server, body, content_type):
    """Regressions: huge numbers answered 500; a lone surrogate, a NUL or an empty name was
    acknowledged, then every commit failed and the store stayed degraded for good."""
    now = int(time.time())
    data = body if isinstance(body, bytes) else (body % now if "%d" in body else body).encode()
    answer = requests.post(f"{live_server}/api/ingest", data=data, timeout=30,
                           headers={"Content-Type": content_type})
    assert answer.status_code == 400, answer.text
    check_answer(document(ROUTES), "/api/ingest", "POST", answer)
    good = requests.post(f"{live_server}/api/ingest", timeout=30,
                         json={"series": "pushed", "points": [[now, 1.0]]})
    assert good.status_code == 200, good.text
    assert status(live_server)["storage"]["state"] == "ok"
