"""Sources of points. The synthetic one also knows which points are injected anomalies.

A source returns a ``Batch``: ``k`` timestamps shared by all series and ``[n_series, k]``
values, plus ground-truth labels when the source has them (synthetic data does; real
feeds do not). Sources know nothing about models or the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Kinds of injected anomaly, stored in the label arrays (0 means a normal point).
NORMAL, SPIKE, DIP, LEVEL_SHIFT = 0, 1, 2, 3
ANOMALY_KINDS = {NORMAL: "normal", SPIKE: "spike", DIP: "dip", LEVEL_SHIFT: "level shift"}


@dataclass(frozen=True)
class Batch:
    """New points: ``timestamps`` (k,) in epoch seconds, ``values`` [n_series, k]."""

    timestamps: np.ndarray
    values: np.ndarray
    labels: np.ndarray | None = None  # [n_series, k] anomaly kind codes, None when unknown
    series: tuple[str, ...] | None = None  # names of the rows; None: the source's own names
    missing: np.ndarray | None = None  # [n_series, k] True where a series has no point (a gap)
    repeated: int = 0  # rows of a file that repeated an earlier time of their series
    clock_times: bool = False  # a file's times carried no UTC offset (clock times)

    def __post_init__(self):
        if self.values.ndim != 2 or self.values.shape[1] != len(self.timestamps):
            raise ValueError(
                f"values must be [n_series, {len(self.timestamps)}], got {self.values.shape}"
            )
        if self.series is not None and len(self.series) != self.values.shape[0]:
            raise ValueError(f"{len(self.series)} names for {self.values.shape[0]} rows")

    @classmethod
    def concat(cls, batches: list[Batch]) -> Batch:
        """One batch of the slots of several (same rows), oldest first."""
        labels = None
        if all(b.labels is not None for b in batches):
            labels = np.concatenate([b.labels for b in batches], axis=1)
        return cls(
            np.concatenate([b.timestamps for b in batches]),
            np.concatenate([b.values for b in batches], axis=1),
            labels,
            batches[0].series,
            None if all(b.missing is None for b in batches) else np.concatenate(
                [np.zeros(b.values.shape, bool) if b.missing is None else b.missing for b in batches],
                axis=1,
            ),
        )


class SyntheticSource:
    """Trend + daily/weekly seasonality + Gaussian noise + injected anomalies, from a seed.

    Each point starts an anomaly with probability ``anomaly_probability``: a spike (+),
    a dip (-), both single points, or a level shift that lasts 5-12 points. Every
    affected point is recorded in the labels so detection can be scored live.
    """

    def __init__(
        self,
        n_series: int = 1,
        base_value: float = 100.0,
        noise_level: float = 5.0,
        trend: bool = True,
        seasonality: bool = True,
        season_length: int = 24,
        anomaly_probability: float = 0.05,
        interval: float = 2.0,
        seed: int = 42,
        start_time: float | None = None,
    ):
        self.n_series = n_series
        self.base_value = base_value
        self.noise_level = noise_level
        self.trend = trend
        self.seasonality = seasonality
        self.season_length = season_length
        self.anomaly_probability = anomaly_probability
        self.interval = interval
        self.seed = seed
        self.start_time = start_time
        self.reset()

    @property
    def series_names(self) -> tuple[str, ...]:
        return tuple(f"synthetic-{i}" for i in range(self.n_series))

    @property
    def step(self) -> float:
        return self.interval

    def status(self) -> dict:
        return {"kind": "synthetic", "state": "ok", "series": self.n_series, "seed": self.seed}

    def backfill(self, now: float, points: int) -> Batch:
        """``points`` of history ending one step before ``now`` (the first tick's context)."""
        return self.next_batch(points, now=now - self.interval)

    def poll(self, now: float) -> Batch:
        """The point of every series at ``now``."""
        return self.next_batch(1, now=now)

    def reset(self) -> None:
        # Separate generators for noise and anomalies, so that the stream of a seed does not
        # depend on how it is cut into batches (backfill + ticks == one long batch).
        self._rng, self._noise_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(2)
        )
        self._step = 0
        # Per-series character, so that series differ but stay reproducible.
        self._phase = self._rng.uniform(0, 2 * np.pi, self.n_series)
        self._amplitude = self._rng.uniform(0.5, 1.5, self.n_series) * max(self.noise_level, 1) * 2
        self._slope = self._rng.uniform(-0.5, 1.0, self.n_series) * max(self.noise_level, 1) / 200
        self._shift_left = np.zeros(self.n_series, dtype=int)
        self._shift_size = np.zeros(self.n_series)
        self._origin = None

    def next_batch(self, k: int = 1, now: float | None = None) -> Batch:
        """The next ``k`` points of every series; timestamps end at ``now``."""
        if self._origin is None:
            end = now if now is not None else (self.start_time or 0.0)
            self._origin = end - (k - 1) * self.interval
        steps = self._step + np.arange(k)
        timestamps = self._origin + steps * self.interval
        clean = self._clean_signal(steps)
        noise = self._noise_rng.normal(0.0, self.noise_level, (k, self.n_series)).T
        offset, labels = self._anomalies(k)
        self._step += k
        return Batch(timestamps=timestamps, values=clean + noise + offset, labels=labels)

    def _clean_signal(self, steps: np.ndarray) -> np.ndarray:
        signal = np.full((self.n_series, len(steps)), float(self.base_value))
        if self.trend:
            signal += self._slope[:, None] * steps[None, :]
        if self.seasonality:
            daily = 2 * np.pi * steps[None, :] / self.season_length + self._phase[:, None]
            weekly = 2 * np.pi * steps[None, :] / (7 * self.season_length) + self._phase[:, None]
            signal += self._amplitude[:, None] * np.sin(daily)
            signal += 0.5 * self._amplitude[:, None] * np.sin(weekly)
        return signal

    def _anomalies(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Offsets to add and the label of every point, for ``k`` steps of all series."""
        offset = np.zeros((self.n_series, k))
        labels = np.zeros((self.n_series, k), dtype=np.int8)
        scale = max(self.noise_level, 1.0)
        for j in range(k):
            shifting = self._shift_left > 0
            offset[shifting, j] = self._shift_size[shifting]
            labels[shifting, j] = LEVEL_SHIFT
            self._shift_left[shifting] -= 1
            starts = (~shifting) & (self._rng.random(self.n_series) < self.anomaly_probability)
            kinds = self._rng.integers(SPIKE, LEVEL_SHIFT + 1, self.n_series)
            size = self._rng.uniform(6.0, 10.0, self.n_series) * scale
            for kind, sign in ((SPIKE, 1.0), (DIP, -1.0)):
                hit = starts & (kinds == kind)
                offset[hit, j] = sign * size[hit]
                labels[hit, j] = kind
            shift = starts & (kinds == LEVEL_SHIFT)
            if shift.any():
                sign = np.where(self._rng.random(self.n_series) < 0.5, -1.0, 1.0)
                self._shift_size[shift] = (sign * size * 0.8)[shift]
                self._shift_left[shift] = self._rng.integers(5, 13, self.n_series)[shift] - 1
                offset[shift, j] = self._shift_size[shift]
                labels[shift, j] = LEVEL_SHIFT
        return offset, labels
