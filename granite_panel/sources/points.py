"""Named points: what every real source (file, DataFrame, push, Prometheus) hands the engine.

A source produces ``Points``: three aligned columns (series name, epoch seconds, value). The
engine, not the source, puts them on its regular time grid. Values are floats with NaN where
a point was bad (NaN, inf, a string); such a point is still a point of its slot, counted as
bad, never as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# Epoch seconds a timestamp must stay within (years 1 to 5138; the engine's ISO times and
# slot arithmetic hold there), whichever source brings it.
SECONDS_LIMIT = 1e11


class SourceError(RuntimeError):
    """A source cannot deliver (unreachable, bad query, bad file); one line for the user."""


class InputError(ValueError):
    """Input that cannot be read as points; the message names the row or line and why."""


@dataclass(frozen=True)
class Points:
    """``k`` named points: ``series`` (names), ``timestamps`` (epoch s), ``values`` (floats)."""

    series: tuple[str, ...]
    timestamps: np.ndarray
    values: np.ndarray
    labels: np.ndarray | None = None  # 0/1 ground truth per point, when the source has it

    def __post_init__(self):
        k = len(self.series)
        if self.timestamps.shape != (k,) or self.values.shape != (k,):
            raise ValueError(
                f"Points needs {k} timestamps and values, got {self.timestamps.shape} "
                f"and {self.values.shape}"
            )

    def __len__(self) -> int:
        return len(self.series)

    @classmethod
    def empty(cls) -> Points:
        return cls((), np.empty(0), np.empty(0))

    @classmethod
    def concat(cls, parts: list[Points]) -> Points:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        labels = None
        if all(p.labels is not None for p in parts):
            labels = np.concatenate([p.labels for p in parts])
        return cls(
            tuple(name for p in parts for name in p.series),
            np.concatenate([p.timestamps for p in parts]),
            np.concatenate([p.values for p in parts]),
            labels,
        )


def series_name(metric: str, labels: dict[str, str] | None = None) -> str:
    """Prometheus-style name: ``cpu.usage_idle{host="web-1"}`` (labels sorted, quotes escaped).

    The one naming rule for label sets, so that a Prometheus series and the same series
    pushed as line protocol get the same name.
    """
    labels = {k: v for k, v in (labels or {}).items() if k != "__name__"}
    if not labels:
        return metric
    body = ",".join(f'{key}="{_escape(str(value))}"' for key, value in sorted(labels.items()))
    return f"{metric}{{{body}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
