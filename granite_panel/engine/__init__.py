"""The streaming engine: bounded per-series history, one forecast and detection per tick."""

from .core import Engine
from .records import Prediction, Snapshot, Tick

__all__ = ["Engine", "Prediction", "Snapshot", "Tick"]
