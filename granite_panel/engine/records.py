"""What the engine hands its readers: ticks, snapshots, forecasts, alerts and the outcome of a
push, with their JSON forms (ISO 8601 UTC times, None for NaN)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detection.incidents import IncidentEvent
from ..detection.live import SEVERITY_NAMES


def iso(epoch_seconds: float) -> str:
    return np.datetime64(int(round(epoch_seconds * 1000)), "ms").astype(str) + "Z"


def iso_list(epoch_seconds: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings for many timestamps at once (JSON payloads)."""
    millis = np.round(np.asarray(epoch_seconds, dtype=float) * 1000).astype("int64")
    return [t + "Z" for t in np.datetime_as_string(millis.astype("datetime64[ms]"))]


def finite_list(values: np.ndarray) -> list:
    """Floats for JSON, with None where a value is NaN or infinite."""
    values = np.asarray(values, dtype=float)
    if np.isfinite(values).all():
        return values.tolist()
    return [v if np.isfinite(v) else None for v in values.tolist()]


@dataclass(frozen=True)
class Alert:
    timestamp: float
    series: int  # row of the series in the engine
    value: float
    score: float
    severity: int
    score_label: str = "z"  # what the score is: a z-score, or a detector's score in [0, 1]
    name: str = ""  # the series' name

    def as_dict(self) -> dict:
        return {
            "timestamp": iso(self.timestamp),
            "series": self.name,
            "series_index": self.series,
            "value": self.value,
            "score": round(self.score, 3),
            "score_label": self.score_label,
            "severity": SEVERITY_NAMES[self.severity],
        }


@dataclass(frozen=True)
class Prediction:
    """One forecast of the series ``rows`` (every series when None), made at ``made_at``
    for ``timestamps`` ahead; ``values[j]`` is the forecast of engine row ``rows[j]``.

    With FORECAST_EVERY > 1 each tick forecasts a share of the series (round robin), so
    the newest forecast of a series is in the newest prediction that covers it
    (``latest_forecast``)."""

    made_at: float
    timestamps: np.ndarray  # (horizon,)
    values: np.ndarray  # [len(rows), horizon]
    model: str
    reason: str
    inference_ms: float
    lower: np.ndarray | None = None  # [len(rows), horizon] conformal band, once calibrated
    upper: np.ndarray | None = None
    rows: np.ndarray | None = None  # engine rows forecast, ascending (None: 0..len(values)-1)

    def index_of(self, series: int) -> int | None:
        """Where ``series`` (an engine row) is in ``values``; None if not forecast here."""
        if self.rows is None:
            return series if 0 <= series < self.values.shape[0] else None
        j = int(np.searchsorted(self.rows, series))
        return j if j < len(self.rows) and self.rows[j] == series else None

    def covered(self) -> np.ndarray:
        """The engine rows this prediction forecast, in the order of ``values``."""
        return np.arange(self.values.shape[0]) if self.rows is None else self.rows

    def as_dict(self, series: list[int], names: list[str]) -> dict:
        """JSON for the rows ``series`` (keyed by name; rows this forecast lacks skipped)."""
        where = [(i, self.index_of(i)) for i in series]
        rows = [(i, j) for i, j in where if j is not None]
        payload = {
            "made_at": iso(self.made_at),
            "model": self.model,
            "inference_ms": round(self.inference_ms, 3),
            "timestamps": iso_list(self.timestamps),
            "series": {names[i]: finite_list(self.values[j]) for i, j in rows},
        }
        if self.lower is not None:
            payload["lower"] = {names[i]: finite_list(self.lower[j]) for i, j in rows}
            payload["upper"] = {names[i]: finite_list(self.upper[j]) for i, j in rows}
        return payload


def latest_forecast(predictions, series: int) -> tuple[Prediction, int] | None:
    """(the newest prediction that forecast ``series``, its index there), or None."""
    for prediction in reversed(predictions):
        j = prediction.index_of(series)
        if j is not None:
            return prediction, j
    return None


@dataclass(frozen=True)
class Tick:
    """What one tick added: the rows every reader streams into its charts."""

    seq: int
    generation: int
    timestamps: np.ndarray  # (k,)
    values: np.ndarray  # [n_series, k], NaN where a point was bad or missing
    score: np.ndarray  # [n_series, k]
    severity: np.ndarray  # [n_series, k] int8
    prediction: Prediction | None
    alerts: tuple[Alert, ...] = ()
    names: tuple[str, ...] = ()  # the series' names, row by row (new rows may follow later)
    # incidents this tick opened, extended, escalated, closed or acknowledged (as_record:
    # epoch seconds, severity 0-3; what the store keeps), and the events it raised
    incidents: tuple[dict, ...] = ()
    incident_events: tuple[IncidentEvent, ...] = ()
    # wall-clock seconds when its points entered detection: the stamp the latency probe
    # (LATENCY_PROBE) carries to the browser, so point-to-pixel includes the tick's own work
    received_at: float = 0.0


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the engine's state for readers (JSON-ready via ``status``)."""

    status: dict
    generation: int
    seq: int
    timestamps: np.ndarray  # (n,)
    values: np.ndarray  # [n_series, n]
    score: np.ndarray
    severity: np.ndarray
    predictions: tuple[Prediction, ...]
    alerts: tuple[Alert, ...] = field(default=())
    names: tuple[str, ...] = ()
    flag: np.ndarray | None = None  # [n_series, n]: OK, BAD or GAP


@dataclass(frozen=True)
class IngestResult:
    """What happened to pushed points: counts, and why some were refused."""

    accepted: int  # placed on the grid (bad points included)
    bad: int  # of those, NaN/inf/strings
    late: int  # of those, into a slot already scored (stored, not scored)
    refused: int
    new_series: tuple[str, ...]
    reasons: tuple[str, ...]  # distinct reasons for the refused points (at most 10)
    committed: object = field(default=None, compare=False)  # Future of the store's commit

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "bad": self.bad,
            "late": self.late,
            "refused": self.refused,
            "new_series": list(self.new_series),
            "reasons": list(self.reasons),
        }
