"""Online anomaly detectors (registry: ``detectors``) and the engine's live adapter (``live``)."""

from .detectors import DEFAULT_DETECTOR, DETECTORS, make_detector, score_series
from .live import SEVERITY_NAMES, live_detector

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "SEVERITY_NAMES", "live_detector", "make_detector", "score_series"]
