"""Each detector's severity cut-offs (medium, high, critical; medium is its live threshold)
and the severity codes of its scores."""

from __future__ import annotations

import numpy as np


# Severity cut-offs on each detector's score: (medium, high, critical). "medium" is the live
# threshold: a score at or above it is a flagged point.
SEVERITY_CUTOFFS: dict[str, tuple[float, float, float]] = {
    # the seed's |z| >= 3, 4, 5 with score |z| / (|z| + 3)
    "zscore": (0.5, 4.0 / 7.0, 0.625),
    # anomaly likelihoods: tail probability <= 10^-2.5, 10^-5, 10^-7.5
    "forecast": (0.25, 0.5, 0.75),
    # evidence at half and at 4/5 of the alert level; critical: an alert (score 1.0)
    "ensemble": (0.25, 0.4, 1.0),
    # surprise z >= 3 (z_flag), z >= 6, an ensemble alert (likelihood / novelty: NAB's tier)
    "hybrid": (0.25, 1.0 / 3.0, 0.5),
    # CAD OSE's context score; critical: its own alarm level (base_threshold 0.75)
    "cad_ose": (0.6, 0.7, 0.75),
    # KNN-CAD's conformal rank: share of calibration windows less strange; critical: its alarm
    "knn_cad": (0.99, 0.995, 0.9965),
    # log-likelihood: tail probability <= 10^-5, 10^-7.5; critical: 10^-10 or a spatial anomaly
    "cad_likelihood": (0.5, 0.75, 1.0),
    # the hybrid's; a CAD OSE alarm is critical like an ensemble or spatial alert
    "hybrid_cad": (0.25, 1.0 / 3.0, 0.5),
    # score 1 - Q(|z|): tail probability Q <= 10^-2.5, 10^-5, 10^-7.5 (|z| >= 2.73, 4.26,
    # 5.41), the likelihoods' cut-offs, fixed in advance and not tuned on NAB
    "windowed_gaussian": (1.0 - 10**-2.5, 1.0 - 1e-5, 1.0 - 10**-7.5),
    # scores are 0 or 1: 1 is the published alarm (no known window distribution agrees at
    # the 1% level), so every cut-off is that alarm and a flagged point is critical
    "relative_entropy": (1.0, 1.0, 1.0),
    # the hybrid's; a confirmed relative entropy alarm is critical like the hybrid's alerts
    "hybrid_entropy": (0.25, 1.0 / 3.0, 0.5),
}
LIVE_THRESHOLDS: dict[str, float] = {name: cut[0] for name, cut in SEVERITY_CUTOFFS.items()}


def severity_from_score(scores, threshold: float, high: float | None = None,
                        critical: float | None = None) -> np.ndarray:
    """Severity codes (int8: 0 normal, 1 medium, 2 high, 3 critical) of anomaly scores.

    medium: ``score >= threshold``; high: ``score >= high``; critical: ``score >= critical``.
    Without ``high`` / ``critical`` the rest of [threshold, 1] is cut in thirds
    (``threshold + (1 - threshold) / 3`` and ``+ 2/3``). Each detector's documented cut-offs
    are in ``SEVERITY_CUTOFFS``. NaN scores are normal.
    """
    threshold = float(threshold)
    high = threshold + (1.0 - threshold) / 3.0 if high is None else float(high)
    critical = threshold + 2.0 * (1.0 - threshold) / 3.0 if critical is None else float(critical)
    if not threshold <= high <= critical:
        raise ValueError(
            f"severity cut-offs must rise: medium {threshold}, high {high}, critical {critical}"
        )
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    return ((s >= threshold).astype(np.int8) + (s >= high) + (s >= critical)).astype(np.int8)
