"""Pull any PromQL query from a real Prometheus over ``/api/v1/query_range``, as ``Points``.

``backfill`` fills the engine's history, ``poll`` brings everything since the last point of
each series (so points Prometheus stored during a short outage of ours still arrive), and
never raises: a down or failing Prometheus gives no points and ``status()`` says why.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import param
import requests

from .points import Points, SourceError, series_name


class PrometheusSource(param.Parameterized):
    """Series of one PromQL query on the engine's grid step.

    Each label set of the answer is one series, named by ``series_name``: the metric name
    (``__name__``) when the result has one, else the query text itself (so that
    ``sum by (mode) (rate(x[5s]))`` gives ``sum by (mode) (rate(x[5s])){mode="idle"}``, a
    name that says where the numbers come from).
    """

    url = param.String(default="http://localhost:9090", doc="""
        Base URL of the Prometheus server (the part before /api/v1).""")

    query = param.String(default="up", doc="""
        Any PromQL expression; every label set it returns becomes one series.""")

    step = param.Number(default=1.0, bounds=(0.001, None), doc="""
        Seconds between points: the engine's grid step, sent as query_range's step.""")

    timeout = param.Number(default=5.0, bounds=(0.01, None), doc="""
        Seconds to wait for one answer before the poll counts Prometheus as down.""")

    max_points_per_request = param.Integer(default=11000, bounds=(1, None), doc="""
        Most points per series one query_range may ask for (Prometheus refuses more than 11,000).""")

    def __init__(self, **params):
        super().__init__(**params)
        self._last: dict[str, float] = {}  # newest timestamp returned, per series
        self._cursor: float | None = None  # newest end asked of a good poll or backfill
        self._status = {"state": "ok", "error": "", "last_success": None}
        self._started: float | None = None  # Prometheus's own start time, to notice restarts

    # ------------------------------------------------------------------------------ public

    def check(self) -> None:
        """Raise ``SourceError`` (one line) unless ``url`` is a Prometheus that accepts ``query``."""
        self._get("/api/v1/query", {"query": self.query, "time": time.time()})

    def backfill(self, end: float, points: int) -> Points:
        """The last ``points`` steps up to ``end``, in requests of at most the per-series limit."""
        if points <= 0:
            return Points.empty()
        end = self._grid_floor(end)
        start = end - (points - 1) * self.step
        self._started = self._start_time()
        result = self._range(start, end)
        self._remember(result)
        self._cursor = self._grid_floor(end)
        self._status = {"state": "ok", "error": "", "last_success": time.time()}
        return result

    def poll(self, now: float) -> Points:
        """Points newer than the last one returned per series, up to ``now``; never raises."""
        start = self._cursor + self.step if self._cursor is not None else now
        if self._grid_floor(now) < start:
            return Points.empty()
        try:
            started = self._start_time()
            result = self._range(start, now)
        except SourceError as error:
            self._status = {**self._status, "state": "down", "error": str(error)}
            return Points.empty()
        # After a restart, steps up to its start (+ one step for the first scrape) are only the
        # 5-minute lookback repeating the last sample from before the outage: invented, dropped.
        restarted = self._started is not None and started > self._started
        not_before = started + self.step if restarted else -math.inf
        self._started = started
        keep = np.array(
            [t > self._last.get(name, -math.inf) and t > not_before
             for name, t in zip(result.series, result.timestamps)],
            dtype=bool,
        )
        result = Points(
            tuple(name for name, k in zip(result.series, keep) if k),
            result.timestamps[keep],
            result.values[keep],
        )
        self._remember(result)
        self._cursor = self._grid_floor(now)
        self._status = {"state": "ok", "error": "", "last_success": time.time()}
        return result

    def status(self) -> dict:
        """``{"state": "ok"|"down", "error": "...", "last_success": epoch or None}``."""
        return {"kind": "prometheus", **self._status}

    # ----------------------------------------------------------------------------- helpers

    def _remember(self, result: Points) -> None:
        for name, t in zip(result.series, result.timestamps):
            if t > self._last.get(name, -math.inf):
                self._last[name] = t

    def _range(self, start: float, end: float) -> Points:
        """query_range over [start, end] split so no request exceeds the per-series limit."""
        span = (self.max_points_per_request - 1) * self.step
        parts = []
        chunk_start, end = -self._grid_floor(-start), self._grid_floor(end)
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + span)
            data = self._get(
                "/api/v1/query_range",
                {"query": self.query, "start": chunk_start, "end": chunk_end, "step": self.step},
            )
            parts.append(self._points(data))
            chunk_start = chunk_end + self.step
        return Points.concat(parts)

    def _start_time(self) -> float:
        """When this Prometheus process started (``/api/v1/status/runtimeinfo``)."""
        info = self._get("/api/v1/status/runtimeinfo", {})
        try:
            return pd.Timestamp(info["startTime"]).timestamp()  # RFC 3339 with nanoseconds
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"{self.url} answered runtimeinfo without a startTime") from None

    def _grid_floor(self, t: float) -> float:
        """Requests ask for multiples of ``step``, so every chunk and poll is on one grid."""
        return math.floor(round(t / self.step, 6)) * self.step

    def _points(self, data: dict) -> Points:
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        if kind != "matrix":
            raise SourceError(f"Prometheus answered a {kind!r}, expected a range matrix")
        names, stamps, values = [], [], []
        try:  # a server that only looks like Prometheus (a proxy, an imitation) may send anything
            for entry in data.get("result", []):
                labels = {str(k): str(v) for k, v in entry.get("metric", {}).items()}
                name = series_name(labels.get("__name__", self.query), labels)
                samples = entry.get("values", [])
                stamps.extend(float(t) for t, _ in samples)
                values.extend(_sample_value(v) for _, v in samples)
                names.extend([name] * len(samples))
        except (AttributeError, TypeError, ValueError) as error:
            raise SourceError(f"{self.url} answered a malformed range matrix "
                              f"({type(error).__name__}: {str(error)[:80]})") from None
        return Points(tuple(names), np.array(stamps, dtype=float), np.array(values, dtype=float))

    def _get(self, path: str, params: dict) -> dict:
        where = f"{self.url.rstrip('/')}{path}"
        try:
            response = requests.get(where, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise SourceError(f"Prometheus at {self.url} did not answer within {self.timeout} s") from None
        except requests.RequestException as error:
            raise SourceError(f"cannot reach Prometheus at {self.url}: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise SourceError(
                f"{where} is not a Prometheus API (HTTP {response.status_code}, not a Prometheus JSON answer)"
            )
        if body["status"] != "success":
            raise SourceError(f"Prometheus rejected query {self.query!r}: {body.get('error', 'unknown error')}")
        return body.get("data", {})


def _sample_value(text: str) -> float:
    """Prometheus sends values as strings; NaN and +/-Inf are bad points (NaN)."""
    value = float(text)
    return value if math.isfinite(value) else math.nan
