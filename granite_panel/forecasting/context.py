"""How a forecaster sees a series' context: bad points filled, each series scaled by its
own window (as IBM's preprocessor scales each channel)."""

from __future__ import annotations

import numpy as np


def context_scale(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of each row of ``window`` [series, time], std 1 where the row is flat:
    each series scaled by its own context, as IBM's preprocessor does per channel."""
    mean = window.mean(axis=1, keepdims=True)
    std = window.std(axis=1, keepdims=True)
    return mean, np.where(std > 1e-8, std, 1.0)


def fill_gaps(context: np.ndarray) -> np.ndarray:
    """Bad points (NaN) replaced by the last good value before them (or the first after)."""
    context = np.asarray(context, dtype=float)
    if np.isfinite(context).all():
        return context
    import pandas as pd

    frame = pd.DataFrame(np.where(np.isfinite(context), context, np.nan))
    return frame.ffill(axis=1).bfill(axis=1).to_numpy()
