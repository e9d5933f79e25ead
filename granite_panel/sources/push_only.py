"""``SOURCE=push``: no source of its own; every series comes from ``/api/ingest``."""

from __future__ import annotations

from .points import Points


class PushOnlySource:
    """Produces nothing; the engine's grid step is ``step`` (DATA_GENERATION_INTERVAL)."""

    series_names: tuple[str, ...] = ()

    def __init__(self, step: float):
        self.step = step

    def backfill(self, now: float, points: int) -> Points:
        return Points.empty()

    def poll(self, now: float) -> Points:
        return Points.empty()

    def reset(self) -> None:
        """Nothing to rewind: pushed points are gone with the engine's history."""

    def status(self) -> dict:
        return {"kind": "push", "state": "ok"}
