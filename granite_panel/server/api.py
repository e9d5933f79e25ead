"""REST endpoints over engine snapshots: ``/api/status`` and ``/api/history``.

Usable from ``granite-panel serve`` (``pn.serve(extra_patterns=ROUTES)``) and from
``panel serve granite_panel/app.py --plugins granite_panel.api``. Handlers read the shared
engine's snapshot, never the widgets; bad query parameters get a JSON error.
"""

from __future__ import annotations

import json
import math

import numpy as np
from tornado.web import RequestHandler

from . import runtime
from ..detection.live import SEVERITY_NAMES
from ..engine.core import Engine, iso_list

HISTORY_DEFAULT, HISTORY_MAX = 100, 10_000


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


def status_payload(engine: Engine) -> dict:
    status = engine.status()
    status["viewers"] = runtime.viewer_count()
    return _clean(status)


def history_payload(engine: Engine, limit: int = HISTORY_DEFAULT, series: int | None = None) -> dict:
    """The last ``limit`` points (all series, or one) and the last 10 predictions."""
    chosen = list(range(engine.n_series)) if series is None else [series]
    snap = engine.snapshot(last=-(-limit // len(chosen)))
    stamps = iso_list(snap.timestamps)
    values = snap.values[chosen].T.tolist()  # [time][series], NaN cleaned below
    severity = snap.severity[chosen].T.tolist()
    score = np.round(snap.score[chosen], 4).T.tolist()
    rows = [
        {
            "timestamp": stamps[j],
            "series": series,
            "value": values[j][k],
            "anomaly": severity[j][k] > 0,
            "severity": SEVERITY_NAMES[severity[j][k]],
            "score": score[j][k],
        }
        for j in range(len(stamps))
        for k, series in enumerate(chosen)
    ][-limit:]
    return _clean(
        {
            "generation": snap.generation,
            "points": rows,
            "predictions": [p.as_dict(chosen) for p in snap.predictions],
        }
    )


class JSONHandler(RequestHandler):
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
    def get(self):
        self.send_json(status_payload(self.engine()))


class HistoryHandler(JSONHandler):
    def get(self):
        engine = self.engine()
        try:
            limit = int_arg(self.get_argument("limit", None), "limit", HISTORY_DEFAULT, 1, HISTORY_MAX)
            series = int_arg(self.get_argument("series", None), "series", None, 0, engine.n_series - 1)
        except BadQuery as exc:
            self.send_json({"error": str(exc), "status": 400}, 400)
            return
        self.send_json(history_payload(engine, limit, series))


ROUTES = [
    (r"/api/status/?", StatusHandler, {}),
    (r"/api/history/?", HistoryHandler, {}),
]
