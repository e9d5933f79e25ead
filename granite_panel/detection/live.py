"""Live anomaly detection: the engine asks a detector for (score, severity) of each point.

``DETECTOR=hybrid`` (the default), ``ensemble`` and ``forecast`` are the online detectors of
``granite_panel.detectors`` behind one interface: their score is in [0, 1] and their
severities come from each detector's documented cut-offs (``detectors.SEVERITY_CUTOFFS``).
The live hybrid is told ``SEASON_LENGTH`` instead of estimating the season.
``DETECTOR=zscore`` is the seed's rolling z-score below (score = signed z), kept as the
reference.

For the z-score:

Severity cut-offs, with ``m`` the threshold multiplier (``ANOMALY_THRESHOLD_MULTIPLIER``,
3.0 by default):

========  ================  ===============
severity  |z|               default (m = 3)
========  ================  ===============
normal    |z| < m           below 3 sigma
medium    m <= |z| < m + 1  3 to 4 sigma
high      m+1 <= |z| < m+2  4 to 5 sigma
critical  |z| >= m + 2      5 sigma or more
========  ================  ===============
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

NORMAL, MEDIUM, HIGH, CRITICAL = 0, 1, 2, 3
SEVERITY_NAMES = ("normal", "medium", "high", "critical")
SEVERITY_COLORS = ("#1f77b4", "#f2b705", "#f26b1d", "#d62728")
MIN_WINDOW_POINTS = 3  # fewer valid points than this: no opinion yet (z = 0)
Z_LIMIT = 1e6  # a flat window makes |z| infinite; keep numbers JSON-friendly


def severity_of(z: np.ndarray, multiplier: float) -> np.ndarray:
    """Severity code (0-3) of each |z| for a threshold multiplier."""
    magnitude = np.abs(np.asarray(z, dtype=float))
    return (
        (magnitude >= multiplier).astype(np.int8)
        + (magnitude >= multiplier + 1)
        + (magnitude >= multiplier + 2)
    ).astype(np.int8)


def rolling_zscore(window: np.ndarray, points: np.ndarray) -> np.ndarray:
    """z of each point against its series' window; NaNs in the window are ignored.

    ``window`` is [n_series, w] (the points before, oldest first), ``points`` is [n_series].
    A series with fewer than ``MIN_WINDOW_POINTS`` valid points gets z = 0; a bad point
    (NaN) gets z = 0 too: it is counted elsewhere, never scored.
    """
    window = np.asarray(window, dtype=float)
    points = np.asarray(points, dtype=float)
    valid = np.isfinite(window)
    count = valid.sum(axis=1)
    filled = np.where(valid, window, 0.0)
    safe_count = np.maximum(count, 1)
    mean = filled.sum(axis=1) / safe_count
    var = (np.where(valid, window - mean[:, None], 0.0) ** 2).sum(axis=1) / safe_count
    std = np.sqrt(var)
    deviation = points - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, deviation / std, np.where(deviation == 0, 0.0, np.inf * deviation))
    z = np.where((count >= MIN_WINDOW_POINTS) & np.isfinite(points), z, 0.0)
    return np.clip(np.nan_to_num(z, nan=0.0), -Z_LIMIT, Z_LIMIT)


@dataclass
class ZScoreDetector:
    """The seed's detector: |z| over the last ``window_size`` points >= ``multiplier``."""

    window_size: int = 50
    multiplier: float = 3.0
    name: str = "zscore"
    score_label: str = "z"
    learning_points: int = 0  # may alert from a series' first points

    def grow(self, n: int) -> None:
        """Stateless: nothing to add for new series."""

    def score_many(self, before: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z, severity) of ``k`` new points per series [n, k], each against the window of
        the points before it (``before`` [n, <= window_size] from the history, then the new
        ones): the same as ``k`` calls of ``score``, in one vectorised pass."""
        from numpy.lib.stride_tricks import sliding_window_view

        n, k = values.shape
        w = self.window_size
        z = np.zeros((n, k))
        padded = np.hstack([np.full((n, w), np.nan), before[:, -w:], values])
        offset = padded.shape[1] - k  # column of the first new point
        for start in range(0, k, 512):  # bounded memory: [n, 512, w] windows at a time
            stop = min(k, start + 512)
            windows = sliding_window_view(padded[:, offset + start - w : offset + stop - 1], w, axis=1)
            z[:, start:stop] = rolling_zscore(
                windows.reshape(-1, w), values[:, start:stop].reshape(-1)
            ).reshape(n, stop - start)
        return z, severity_of(z, self.multiplier)

    def score(self, window: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z, severity) of the newest point of each series given the window before it."""
        z = rolling_zscore(window[:, -self.window_size :], points)
        return z, severity_of(z, self.multiplier)

    def reset(self, n_series: int | None = None) -> None:
        """Stateless: the window comes from the engine's history."""


BANK_MIN_SERIES = 32  # from this many series on, the hybrid runs as one HybridBank


class OnlineDetectors:
    """One ``granite_panel.detectors`` detector per series, as the engine expects.

    The detectors keep their own state, so they need no window (``window_size`` 0). From
    ``BANK_MIN_SERIES`` series on (at the start or as series appear), the default hybrid runs
    as one ``HybridBank`` (``hybrid_entropy`` as a ``HybridEntropyBank`` around one): the
    same scores (bit for bit), its state in shared arrays, one
    vectorised pass a tick instead of one Python detector a series. Below that, per-series
    detectors are faster (the bank's cost a tick is mostly fixed).
    """

    window_size = 0
    score_label = "score"
    bank = None  # the bank once there is one (checkpoints from before it have none)

    def __init__(self, name: str, n_series: int, **detector_kwargs):
        from .detectors import SeriesDetectors

        self.name = name
        self.series = SeriesDetectors(name, 1, **detector_kwargs)  # validates the arguments
        self.reset(n_series)

    @cached_property
    def learning_points(self) -> int:
        """Values a new series needs before its detector can raise an alert (in the status)."""
        from .detectors import make_detector

        return make_detector(self.series.name, **self.series.kwargs).learning_points

    def _bank_class(self):
        """The bank for this detector and its settings, or None (per-series detectors)."""
        from .bank import HybridBank, HybridEntropyBank

        bank = {"hybrid": HybridBank, "hybrid_entropy": HybridEntropyBank}.get(self.name)
        return bank if bank is not None and set(self.series.kwargs) <= bank.SUPPORTED else None

    def _to_bank(self) -> None:
        """Hand the per-series detectors to a bank once there are enough of them."""
        s = self.series
        bank = self._bank_class()
        if self.bank is None and s.n_series >= BANK_MIN_SERIES and bank is not None:
            self.bank = bank(0, **s.kwargs)
            self.bank.adopt(s.detectors)
            s.detectors = []

    def grow(self, n: int) -> None:
        """Detectors for ``n`` new series (they appeared while the stream runs)."""
        from .detectors import make_detector

        s = self.series
        if self.bank is not None:
            self.bank.grow(n)
        else:
            s.detectors.extend(make_detector(s.name, **s.kwargs) for _ in range(n))
        s.n_series += n
        self._to_bank()

    def score(self, window: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.bank.score(points) if self.bank is not None else self.series.score(points)
        return scores, self.series.severity(scores)

    def score_block(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[n_series, k] points, oldest first: the same scores as ``k`` calls of ``score``."""
        if self.bank is not None:
            scores = self.bank.score_block(values)
        else:
            scores = self.series.score_block(values)
        return scores, self.series.severity(scores)

    def reset(self, n_series: int | None = None) -> None:
        """Fresh detectors, for ``n_series`` series (default: as many as now)."""
        from .detectors import make_detector

        s = self.series
        if n_series is not None:
            s.n_series = int(n_series)
        self.bank = None
        bank = self._bank_class()
        if s.n_series >= BANK_MIN_SERIES and bank is not None:
            s.detectors = []
            self.bank = bank(s.n_series, **s.kwargs)
        else:
            s.detectors = [make_detector(s.name, **s.kwargs) for _ in range(s.n_series)]


def configuration(detector) -> tuple:
    """What a live detector was built from: a checkpointed one is resumed only when this
    equals the configured one's (another DETECTOR or season starts the detectors afresh)."""
    if isinstance(detector, OnlineDetectors):
        return ("online", detector.name, tuple(sorted(detector.series.kwargs.items())))
    if isinstance(detector, ZScoreDetector):
        return ("zscore", detector.window_size, detector.multiplier)
    return (type(detector).__name__,)


def live_detector(settings, n_series: int | None = None) -> ZScoreDetector | OnlineDetectors:
    """The detector ``settings.detector`` names, for ``n_series`` (default N_SERIES) series."""
    n = settings.n_series if n_series is None else n_series
    if settings.detector == "zscore":
        return ZScoreDetector(settings.anomaly_window_size, settings.anomaly_threshold_multiplier)
    season = detector_season(settings)
    if isinstance(season, int):
        return OnlineDetectors(settings.detector, n, period=season)
    return OnlineDetectors(settings.detector, n)


def detector_season(settings) -> int | str | None:
    """The season ``settings.detector`` scores with: points per cycle (SEASON_LENGTH, with
    DETECTOR_SEASON=fixed), "estimate" (each series' own, from its values), or None for a
    detector without one."""
    from .detectors import SEASONAL_DETECTORS

    if settings.detector not in SEASONAL_DETECTORS:
        return None
    return "estimate" if settings.detector_season == "estimate" else settings.season_length
