"""The hybrid detector (surprise tier and NAB's alert tier on one score) and the hybrids
with another detector's alarms added: ``hybrid_cad`` (CAD OSE) and ``hybrid_entropy``
(relative entropy, the default)."""

from __future__ import annotations

from .base import OnlineDetector
from .cad_ose import CadOseDetector
from .ensemble import EnsembleDetector
from .relative_entropy import RelativeEntropyDetector, whole_number
from .severity import SEVERITY_CUTOFFS
from .surprise import RobustSurprise


class HybridDetector(OnlineDetector):
    """The hybrid: two tiers on one score, for dense and for rare anomalies.

    - **surprise tier**, ``[0, 0.5)``: ``0.5 * z / (z + z_flag)`` with ``z`` from
      ``RobustSurprise`` (0.25 exactly at ``z = z_flag``, 1/3 at ``2 * z_flag``). It flags
      each anomalous point when it arrives, even when anomalies are dense (5% of points),
      because its scale is a median and excursions are not learned from. Its season length
      is ``period`` when given (the dashboard passes ``SEASON_LENGTH``), otherwise the
      ensemble's estimate from the autocorrelation of the history seen so far;
    - **alert tier**, 1.0: an alert of the ``EnsembleDetector`` (multi-scale anomaly
      likelihoods, spatial novelty, one alert per episode: what NAB rewards), or a *spatial
      alert*: NAB's numenta detector's rule, a value beyond the range seen so far by more
      than ``spatial_alert`` (0.05, its published tolerance) of that range, also inside the
      ensemble's quiet period (on NAB's 31 files this adds 15.5 points, LOCO as well).
      Like the ensemble's spatial novelty it waits for the ensemble's ``learning`` period
      (288 points): NAB's detector raises it from the second point, which NAB's probation
      hides, but live a new series would raise several critical alerts while its range
      grew.

    The score is the larger of the two. Live threshold 0.25 (``LIVE_THRESHOLDS``); an
    ensemble alert is critical (``SEVERITY_CUTOFFS``: medium / high / critical).
    """

    name = "hybrid"

    def __init__(self, z_flag: float = 3.0, alpha: float = 0.3, persist: int = 20,
                 floor: float = 0.01, period: int | None = None, use_surprise: bool = True,
                 use_alerts: bool = True, spatial_alert: float = 0.05, **ensemble_kwargs):
        self.z_flag, self.alpha, self.persist = float(z_flag), float(alpha), int(persist)
        if not float(spatial_alert) >= 0.0:
            raise ValueError(f"spatial_alert must be >= 0 (0: off), got {spatial_alert}")
        self.spatial_alert = float(spatial_alert)
        self.floor = float(floor)
        if period is not None and int(period) < 0:
            raise ValueError(f"period must be >= 0 (0: no season), got {period}")
        self.period = None if period is None else int(period)
        self.use_surprise, self.use_alerts = bool(use_surprise), bool(use_alerts)
        self.ensemble_kwargs = ensemble_kwargs
        self.reset()

    @property
    def learning_points(self) -> int:
        return self.ensemble.learning

    def reset(self) -> None:
        self.ensemble = EnsembleDetector(**self.ensemble_kwargs)
        self.surprise = RobustSurprise(self.alpha, self.z_flag, self.persist, floor=self.floor)
        self.last_z = 0.0
        self.lo = self.hi = None  # range seen so far, for the spatial alert

    def _update(self, value: float) -> float:
        score = 0.0
        if self.use_surprise:
            period = self.ensemble.season.period if self.period is None else self.period
            z = min(self.surprise.update(value, period), 1e6)
            self.last_z = z
            score = 0.5 * z / (z + self.z_flag) if z > 0 else 0.0
        alert = self.ensemble._update(value) >= 1.0
        if self.spatial_alert > 0.0:  # NAB's numenta detector: beyond the range seen, by 5%
            lo, hi = self.lo, self.hi
            if self.ensemble.learnt and lo is not None and hi > lo:  # its novelty's rule
                tol = (hi - lo) * self.spatial_alert
                alert = alert or value > hi + tol or value < lo - tol
            self.lo = value if lo is None else min(lo, value)
            self.hi = value if hi is None else max(hi, value)
        if self.use_alerts and alert:
            score = 1.0
        return score


class HybridCadDetector(OnlineDetector):
    """The hybrid, with CAD OSE's alarms added to its alert tier: the hybrid's score, 1.0
    where CAD OSE's context score reaches its published base threshold (0.75; CAD's rest
    period keeps that to one alarm per episode). On NAB's leave-one-category-out 72.1 against
    the hybrid's 70.6, at about a tenth of the hybrid's speed (CAD OSE's context memory);
    keyword arguments go to the hybrid, ``cad`` (a dict) to CAD OSE. (Its twin below keeps
    its own attribute names: checkpoints pickle them.)"""

    name = "hybrid_cad"

    def __init__(self, cad: dict | None = None, **hybrid_kwargs):
        self.cad_kwargs = dict(cad or {})
        self.hybrid_kwargs = hybrid_kwargs
        self.reset()

    def reset(self) -> None:
        self.hybrid = HybridDetector(**self.hybrid_kwargs)
        self.cad = CadOseDetector(**self.cad_kwargs)

    def _update(self, value: float) -> float:
        score = self.hybrid._update(value)
        if self.cad._update(value) >= self.cad.base_threshold:
            score = 1.0
        return score


def entropy_rest(rest, rest_after) -> tuple[int, str]:
    """``hybrid_entropy``'s rest settings, checked (the detector and its bank share them)."""
    if rest_after not in ("any", "own"):
        raise ValueError(f"rest_after must be 'any' or 'own', got {rest_after!r}")
    return whole_number(rest, "rest", 0), rest_after


class HybridEntropyDetector(OnlineDetector):
    """The hybrid, with relative entropy's alarms added to its alert tier where the hybrid
    flags the point too (its score at or above its live threshold, 0.25; a surprise that
    recurs each cycle is not flagged, so it confirms nothing) and no alert was
    raised in the last ``rest`` points (52, one entropy window: a window holding a recent
    alert is already explained): 1.0 there, else the hybrid's score. ``rest_after``
    "any" counts every alert of this detector, "own" only the entropy alarms it raised.
    On NAB 75.5 in-sample; chosen among 27 variants per held-out category, 72.2 (the
    hybrid: 70.6; see the README). Like the hybrid's alerts, entropy alarms count only
    after its learning period (288 points). Keyword arguments go to the hybrid,
    ``entropy`` (a dict) to the relative entropy detector."""

    name = "hybrid_entropy"

    def __init__(self, entropy: dict | None = None, rest: int = 52, rest_after: str = "any",
                 **hybrid_kwargs):
        self.rest, self.rest_after = entropy_rest(rest, rest_after)
        self.flag = SEVERITY_CUTOFFS["hybrid"][0]  # the hybrid's live threshold, looked up once
        self.entropy_kwargs = dict(entropy or {})
        self.hybrid_kwargs = hybrid_kwargs
        self.reset()

    @property
    def learning_points(self) -> int:
        return self.hybrid.learning_points

    def reset(self) -> None:
        self.hybrid = HybridDetector(**self.hybrid_kwargs)
        self.entropy = RelativeEntropyDetector(**self.entropy_kwargs)
        self.since_alert = self.rest + 1  # points since the last alert that starts a rest

    def _update(self, value: float) -> float:
        score = self.hybrid._update(value)
        alarm = self.entropy._update(value) >= 1.0
        self.since_alert += 1
        if score >= 1.0:
            if self.rest_after == "any":
                self.since_alert = 0
        elif (alarm and score >= self.flag and self.since_alert > self.rest
              and self.hybrid.ensemble.learnt):
            score, self.since_alert = 1.0, 0
        return score
