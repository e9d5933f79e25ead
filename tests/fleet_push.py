"""A served fleet of 1,000 pushed series: its settings, its names and the push itself.

Shared by the fleet's browser test and ``benchmarks/fleet_render.py``, so both measure the
same page.
"""

from __future__ import annotations

import time

import numpy as np
import requests

N_SERIES = 1000
SLOTS = 30
FLEET_ENV = {
    "DATA_GENERATION_INTERVAL": "1",
    "DETECTOR": "zscore",
    "FALLBACK_MODEL": "SeasonalNaive",
    "MODEL_NAME": "/nonexistent",
    "CONTEXT_LENGTH": "32",
    "FORECAST_HORIZON": "8",
    "HISTORY_LIMIT": "256",
}


def name(i: int) -> str:
    return f'cpu.v{{host="h{i:04d}"}}'  # what the line protocol below becomes


def push(base: str, slots: np.ndarray, values: np.ndarray) -> None:
    """values [len(slots), n_series] as InfluxDB line protocol (seconds)."""
    body = "".join(
        f"cpu,host=h{i:04d} v={values[k, i]:.4f} {int(t)}\n"
        for k, t in enumerate(slots) for i in range(values.shape[1])
    )
    answer = requests.post(f"{base}/api/ingest?precision=s", data=body,
                           headers={"Content-Type": "text/plain"}, timeout=120)
    assert answer.status_code == 200, answer.text


def fill(base: str, now: int, worst: int = 321) -> None:
    """SLOTS slots of noise for every series up to ``now``; ``worst`` far out in the last."""
    values = np.random.default_rng(3).normal(size=(SLOTS, N_SERIES))
    values[-1, worst] = 60.0  # the most anomalous series now
    push(base, np.arange(now - SLOTS, now), values)


def spike(base: str, series: int, value: float = -90.0) -> None:
    """One point of ``series`` far out, in the next slot, still open: int(time.time())
    could name the slot the engine had just closed, and a late point is stored but not
    scored."""
    values = np.zeros((1, N_SERIES))
    values[0, series] = value
    push(base, np.array([int(time.time()) + 2]), values)
