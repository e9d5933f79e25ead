"""The hybrid detector for many series at once: its state as columns of shared arrays.

``HybridDetector`` (hybrid.py) is one Python object per series; a live tick of N series
then costs N trips through about a hundred lines of Python. ``HybridBank`` holds the state
of N hybrids as ``[N]`` and ``[N, window]`` numpy arrays and scores one point of every
series with a few hundred array operations, whatever N. It performs, series by series, the
same float operations in the same order as ``HybridDetector`` (the transcendental ones, erfc
and log, through the very same ``tail_score``), so its scores are *equal* to the per-series
detector's, bit for bit (tests/test_detector_bank.py); what happens rarely (a median over the
first residuals, an excursion's re-base, a period estimate, an exact re-summation) runs
per series, with the per-series code.

A NaN/inf point scores 0 and leaves its series' state untouched, as ``update`` does.
"""

from __future__ import annotations

import math

import numpy as np

from .anomaly_likelihood import LN_TAIL_FLOOR, SQRT2
from .ensemble import dominant_period
from .hybrid import entropy_rest
from .severity import SEVERITY_CUTOFFS
from .surprise import ORDINARY_CHANGE_RATE, RECURRENCE_CYCLES, STEPS, decimal_places_of


def _tail_scores(z: np.ndarray) -> np.ndarray:
    """``tail_score`` of each z: the same operations, erfc and log by ``math`` itself (numpy's
    own log may differ in the last bit), so equal to the scalar detector's."""
    out = np.zeros(z.shape)
    pos = z > 0.0
    if not pos.any():
        return out
    zp = z[pos]
    tail = 0.5 * np.fromiter(map(math.erfc, (zp / SQRT2).tolist()), float, zp.size)
    score = np.where(tail <= 1e-10, 1.0, 0.0)
    mid = (tail > 1e-10) & (tail < 1.0)
    if mid.any():
        logs = np.fromiter(map(math.log, tail[mid].tolist()), float, int(mid.sum()))
        score[mid] = logs / LN_TAIL_FLOOR
    out[pos] = score
    return out


RESUM_CHUNK = 64  # series re-summed together: 64 x 4 windows x 8640 means, 18 MB


class MomentsBank:
    """``RollingMoments`` of N streams: mean and sd of each one's last ``size`` values."""

    def __init__(self, n: int, size: int):
        self.size = int(size)
        self.ring = np.zeros((n, self.size))
        self.count = np.zeros(n, dtype=np.int64)
        self.head = np.zeros(n, dtype=np.int64)
        self.s1 = np.zeros(n)
        self.s2 = np.zeros(n)
        self.since = np.zeros(n, dtype=np.int64)

    def grow(self, n: int) -> None:
        self.ring = np.vstack([self.ring, np.zeros((n, self.size))])
        for name in ("count", "head", "s1", "s2", "since"):
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.zeros(n, dtype=old.dtype)]))

    def clear(self, rows: np.ndarray) -> None:
        self.ring[rows] = 0.0
        for name in ("count", "head", "s1", "s2", "since"):
            getattr(self, name)[rows] = 0

    def mean_std(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.count[rows]
        safe = np.maximum(n, 1)
        mean = np.where(n > 0, self.s1[rows] / safe, 0.0)
        var = np.where(n > 0, self.s2[rows] / safe - mean * mean, 0.0)
        var = np.where(var <= 1e-12 * (mean * mean + 1e-300), 0.0, var)
        return mean, np.sqrt(var)

    def add(self, rows: np.ndarray, x: np.ndarray) -> None:
        head, count = self.head[rows], self.count[rows]
        full = count == self.size
        old = self.ring[rows, head]
        s1, s2 = self.s1[rows], self.s2[rows]
        self.s1[rows] = np.where(full, s1 + x - old, s1 + x)
        self.s2[rows] = np.where(full, s2 + x * x - old * old, s2 + x * x)
        self.count[rows] = np.where(full, count, count + 1)
        self.ring[rows, head] = x
        self.head[rows] = np.where(head + 1 < self.size, head + 1, 0)
        since = self.since[rows] + 1
        due = since >= self.size
        self.since[rows] = np.where(due, 0, since)
        for r in rows[due]:  # exact sums every `size` additions (the window is full then)
            window = self.ring[r, : self.count[r]].tolist()
            self.s1[r] = math.fsum(window)
            self.s2[r] = math.fsum(v * v for v in window)


class LikelihoodBank:
    """``MultiWindowLikelihood`` of N raw streams (the same compact layout, as arrays)."""

    def __init__(self, n: int, windows, long: int, learning: int):
        self.windows = np.asarray(windows, dtype=np.int64)
        self.long, self.learning = int(long), int(learning)
        self.size = self.long + int(self.windows.max()) + 1
        k = self.windows.size
        self.raw = np.zeros((n, self.size), dtype=np.float32)  # as MultiWindowLikelihood
        self.sums, self.trail = np.zeros((n, k)), np.zeros((n, k))
        self.s1, self.s2 = np.zeros((n, k)), np.zeros((n, k))
        self.n = np.zeros(n, dtype=np.int64)

    def grow(self, n: int) -> None:
        k = self.windows.size
        self.raw = np.vstack([self.raw, np.zeros((n, self.size), dtype=np.float32)])
        for name in ("sums", "trail", "s1", "s2"):
            setattr(self, name, np.vstack([getattr(self, name), np.zeros((n, k))]))
        self.n = np.concatenate([self.n, np.zeros(n, dtype=np.int64)])

    def clear(self, rows: np.ndarray) -> None:
        self.raw[rows] = 0.0
        for name in ("sums", "trail", "s1", "s2", "n"):
            getattr(self, name)[rows] = 0

    def update(self, rows: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Scores ``[len(rows), n_windows]`` of one new raw score per row."""
        size, long, w = self.size, self.long, self.windows[None, :]
        n = self.n[rows] + 1
        self.n[rows] = n
        self.raw[rows, (n - 1) % size] = raw
        raw = self.raw[rows, (n - 1) % size].astype(float)  # as kept: rounded to float32
        nc = n[:, None]
        leaving = np.where(nc - 1 >= w, self.raw[rows[:, None], (nc - w - 1) % size], 0.0)
        s = self.sums[rows] + raw[:, None] - leaving
        self.sums[rows] = s
        avg = s / np.minimum(w, nc)
        held = np.where(n <= long, n - 1, long)[:, None]
        s1, s2 = self.s1[rows], self.s2[rows]
        safe = np.maximum(held, 1)
        mean = np.where(held > 0, s1 / safe, 0.0)
        var = np.where(held > 0, s2 / safe - mean * mean, 0.0)
        std = np.where(var <= 1e-12 * (mean * mean + 1e-300), 0.0, np.sqrt(np.maximum(var, 0.0)))
        z = (avg - np.maximum(mean, 0.03)) / np.maximum(std, 0.0173)
        scores = np.where((n > self.learning)[:, None], _tail_scores(z), 0.0)
        full = (n > long)[:, None]
        t = nc - long
        entering = self.raw[rows, (n - long - 1) % size][:, None]
        out_raw = np.where(t - 1 >= w, self.raw[rows[:, None], (t - w - 1) % size], 0.0)
        old_sum = self.trail[rows] + entering - out_raw
        self.trail[rows] = np.where(full, old_sum, self.trail[rows])
        old = old_sum / np.minimum(w, np.maximum(t, 1))
        self.s1[rows] = np.where(full, s1 + avg - old, s1 + avg)
        self.s2[rows] = np.where(full, s2 + avg * avg - old * old, s2 + avg * avg)
        due = rows[n % long == 0]
        for start in range(0, due.size, RESUM_CHUNK):  # bounded memory: [chunk, k, long]
            self._resum(due[start : start + RESUM_CHUNK])
        return scores

    def _resum(self, rows: np.ndarray) -> None:
        """Exact sums of each due row's window means, replayed from the trailing sums."""
        size, w = self.size, self.windows[None, :]
        n = self.n[rows][:, None]
        first = np.maximum(n - self.long, 0) + 1
        steps = int((n - first + 1).max())
        s = self.trail[rows].copy()
        means = np.zeros((rows.size, self.windows.size, steps))
        for j in range(steps):
            t = first + j  # [R, 1]
            live = t <= n
            entering = self.raw[rows[:, None], (t - 1) % size]
            leaving = np.where(t - 1 >= w, self.raw[rows[:, None], (t - w - 1) % size], 0.0)
            s = np.where(live, s + entering - leaving, s)
            means[:, :, j] = s / np.minimum(w, t)
        for i, r in enumerate(rows):
            m = int(n[i, 0] - first[i, 0] + 1)
            for k in range(self.windows.size):
                vals = means[i, k, :m].tolist()
                self.s1[r, k] = math.fsum(vals)
                self.s2[r, k] = math.fsum(v * v for v in vals)


class HybridBank:
    """``HybridDetector`` state for ``n_series`` series; ``score(points)`` scores one point of
    each (``[n_series]``), ``score_block(values)`` a block ``[n_series, k]`` column by column.

    Takes the hybrid's keyword arguments (and the ensemble's numeric ones); the ``use_*``
    switches must keep their defaults (``SUPPORTED``): other settings use per-series
    detectors (``OnlineDetectors`` decides).
    """

    SUPPORTED = {"z_flag", "alpha", "persist", "floor", "period", "spatial_alert",
                 "alert_level", "refractory", "windows", "long", "learning", "scale_window",
                 "shift_short", "shift_long", "spatial_tol"}
    ETA, SCALE_LEARNING, HUBER, GAMMA = 0.005, 30, 3.0, 0.3  # RobustSurprise's defaults
    FORECAST_ALPHA = 0.5  # the ensemble's smoothing (its ``alpha``)
    SEASON_HISTORY, SEASON_EVERY, SEASON_FIRST = 4000, 1000, 900  # SeasonalResidual's

    def __init__(self, n_series: int = 0, z_flag: float = 3.0, alpha: float = 0.3,
                 persist: int = 20, floor: float = 0.01, period: int | None = None,
                 spatial_alert: float = 0.05, alert_level: float = 0.25,
                 refractory: int = 288, windows=(10, 20, 40, 80), long: int = 8640,
                 learning: int = 288, scale_window: int = 1000, shift_short: int = 5,
                 shift_long: int = 1000, spatial_tol: float = 0.05):
        if period is not None and int(period) < 0:
            raise ValueError(f"period must be >= 0 (0: no season), got {period}")
        if not 0.0 < float(alert_level) <= 1.0:
            raise ValueError(f"alert_level must be in (0, 1], got {alert_level}")
        if not float(spatial_alert) >= 0.0:
            raise ValueError(f"spatial_alert must be >= 0 (0: off), got {spatial_alert}")
        self.z_flag, self.alpha, self.persist = float(z_flag), float(alpha), int(persist)
        self.floor, self.spatial_alert = float(floor), float(spatial_alert)
        self.period = None if period is None else int(period)
        self.alert_level, self.refractory = float(alert_level), int(refractory)
        self.windows, self.long, self.learning = tuple(int(w) for w in windows), int(long), int(learning)
        self.scale_window, self.shift_short = int(scale_window), int(shift_short)
        self.shift_long, self.spatial_tol = int(shift_long), float(spatial_tol)
        self.n_series = 0
        self._init_arrays(0)
        self.grow(int(n_series))

    # ------------------------------------------------------------------ state
    _ROW = {  # per-series arrays: (dtype, initial value)
        "n": (np.int64, 0), "started": (bool, False), "lo": (float, 0.0), "hi": (float, 0.0),
        # RobustSurprise
        "level": (float, 0.0), "s_period": (np.int64, 0), "scale_med": (float, 0.0),
        "scale_n": (np.int64, 0), "run_len": (np.int64, 0), "run_sum": (float, 0.0),
        "last_z": (float, 0.0), "decimals": (np.int64, 0), "prev": (float, np.nan),
        "change_rate": (float, 0.0),
        # ensemble: forecast residual, shift, season, alerts
        "f_started": (bool, False), "f_level": (float, 0.0), "recent_count": (np.int64, 0),
        "recent_head": (np.int64, 0), "hist_count": (np.int64, 0), "hist_head": (np.int64, 0),
        "e_period": (np.int64, 0), "alerted": (bool, False), "last_alert": (np.int64, 0),
    }

    def _init_arrays(self, n: int) -> None:
        for name, (dtype, value) in self._ROW.items():
            setattr(self, name, np.full(n, value, dtype=dtype))
        self.season = np.zeros((n, max(self.period or 0, 1)))
        self.cycle_value = np.full(self.season.shape, np.nan)  # RobustSurprise's last cycle
        self.cycle_count = np.zeros(self.season.shape, dtype=np.int64)
        self.scale_init = np.zeros((n, max(self.SCALE_LEARNING, 1)))
        self.run = np.zeros((n, max(self.persist, 1)))
        self.recent = np.zeros((n, self.shift_short))
        self.hist = np.zeros((n, self.SEASON_HISTORY))
        self.f_abs = MomentsBank(n, self.scale_window)
        self.long_stats = MomentsBank(n, self.shift_long)
        self.q_abs = MomentsBank(n, self.scale_window)
        self.f_lik = LikelihoodBank(n, self.windows, self.long, self.learning)
        self.s_lik = LikelihoodBank(n, self.windows, self.long, self.learning)
        self.q_lik = LikelihoodBank(n, self.windows, self.long, self.learning)

    def __setstate__(self, state: dict) -> None:
        """A checkpoint from before a per-series array was added: that array starts afresh."""
        self.__dict__.update(state)
        for name, (dtype, value) in self._ROW.items():
            if name not in state:
                setattr(self, name, np.full(self.n_series, value, dtype=dtype))
        if "cycle_value" not in state:
            self.cycle_value = np.full(self.season.shape, np.nan)
            self.cycle_count = np.zeros(self.season.shape, dtype=np.int64)

    def grow(self, n: int) -> None:
        """State for ``n`` new series, appended after the others."""
        if n <= 0:
            return
        for name, (dtype, value) in self._ROW.items():
            setattr(self, name, np.concatenate([getattr(self, name), np.full(n, value, dtype)]))
        for name in ("season", "scale_init", "run", "recent", "hist", "cycle_count"):
            old = getattr(self, name)
            setattr(self, name, np.vstack([old, np.zeros((n, old.shape[1]), old.dtype)]))
        self.cycle_value = np.vstack([self.cycle_value,
                                      np.full((n, self.cycle_value.shape[1]), np.nan)])
        for part in (self.f_abs, self.long_stats, self.q_abs, self.f_lik, self.s_lik, self.q_lik):
            part.grow(n)
        self.n_series += n

    def reset(self, n_series: int | None = None) -> None:
        self._init_arrays(0)
        n, self.n_series = self.n_series if n_series is None else int(n_series), 0
        self.grow(n)

    def adopt(self, detectors) -> None:
        """Append one row per ``HybridDetector`` (built with this bank's settings), in the
        state it is in: the bank goes on exactly as each detector would have."""
        detectors = list(detectors)
        first = self.n_series
        self.grow(len(detectors))
        for r, d in enumerate(detectors, start=first):
            s, e = d.surprise, d.ensemble
            self.n[r], self.started[r] = e.n, d.lo is not None
            if d.lo is not None:
                self.lo[r], self.hi[r] = d.lo, d.hi
            # the surprise
            self.level[r] = 0.0 if s.level is None else s.level
            p = s.season.size
            self._widen_season(p)
            self.s_period[r] = p
            self.season[r, :p] = s.season
            self.cycle_value[r, :p], self.cycle_count[r, :p] = s.cycle_value, s.cycle_count
            self.scale_med[r], self.scale_n[r] = s.scale.med, s.scale.n
            self.decimals[r] = s.decimals
            self.prev[r] = np.nan if s.prev is None else s.prev
            self.change_rate[r] = s.change_rate
            if s.scale._init:
                self.scale_init[r, : len(s.scale._init)] = s.scale._init
            self.run_len[r], self.run_sum[r], self.last_z[r] = len(s.run), s.run_sum, d.last_z
            self.run[r, : len(s.run)] = s.run
            # the ensemble
            self.f_started[r] = e.forecast.level is not None
            self.f_level[r] = 0.0 if e.forecast.level is None else e.forecast.level
            recent = list(e.recent)
            self.recent[r, : len(recent)] = recent
            self.recent_count[r], self.recent_head[r] = len(recent), len(recent) % self.shift_short
            hist = e.season.hist
            self.hist[r] = np.frombuffer(hist.ring, dtype=float)
            self.hist_count[r], self.hist_head[r] = hist.count, hist.head
            self.e_period[r] = e.season.period
            self.alerted[r] = e.last_alert is not None
            self.last_alert[r] = 0 if e.last_alert is None else e.last_alert
            for bank, moments in ((self.f_abs, e.forecast.abs_res), (self.long_stats, e.long_stats),
                                  (self.q_abs, e.season.abs_res)):
                bank.ring[r] = np.frombuffer(moments.ring, dtype=float)
                bank.count[r], bank.head[r], bank.since[r] = moments.count, moments.head, moments._since
                bank.s1[r], bank.s2[r] = moments.s1, moments.s2
            for bank, lik in ((self.f_lik, e.forecast_likelihood), (self.s_lik, e.shift_likelihood),
                              (self.q_lik, e.season_likelihood)):
                bank.raw[r] = np.frombuffer(lik.raw, dtype=np.float32)
                bank.sums[r], bank.trail[r], bank.s1[r], bank.s2[r] = lik.sums, lik.trail, lik.s1, lik.s2
                bank.n[r] = lik.n

    # ------------------------------------------------------------------ scoring
    def score_block(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[0] != self.n_series:
            raise ValueError(f"expected [n_series, k] with n_series={self.n_series}, "
                             f"got {values.shape}")
        out = np.zeros(values.shape)
        for j in range(values.shape[1]):
            out[:, j] = self.score(values[:, j])
        return out

    def score(self, points) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        if points.shape != (self.n_series,):
            raise ValueError(f"expected [n_series] with n_series={self.n_series}, "
                             f"got {points.shape}")
        out = np.zeros(self.n_series)
        rows = np.flatnonzero(np.isfinite(points))
        if rows.size:
            out[rows] = self._score(rows, points[rows])
        return out

    def _score(self, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        period = self.e_period[rows] if self.period is None else np.full(rows.size, self.period)
        z = np.minimum(self._surprise(rows, x, period), 1e6)
        self.last_z[rows] = z
        score = np.where(z > 0, 0.5 * z / (z + self.z_flag), 0.0)
        lo, hi, started = self.lo[rows], self.hi[rows], self.started[rows]
        alert = self._ensemble(rows, x, lo, hi, started) >= 1.0
        if self.spatial_alert > 0.0:  # NAB's numenta detector: beyond the range seen, by 5%
            ok = started & (hi > lo) & (self.n[rows] + 1 > self.learning)  # as the ensemble's
            tol = (hi - lo) * self.spatial_alert
            alert |= ok & ((x > hi + tol) | (x < lo - tol))
        self.lo[rows] = np.where(started, np.minimum(lo, x), x)
        self.hi[rows] = np.where(started, np.maximum(hi, x), x)
        self.started[rows] = True
        self.n[rows] += 1
        return np.where(alert, 1.0, score)

    def _surprise(self, rows, x, period) -> np.ndarray:
        """``RobustSurprise.update`` of each row (its lo/hi are the shared ones)."""
        changed = period != self.s_period[rows]
        if changed.any():  # a new period: a flat season, a fresh scale
            c = rows[changed]
            self._widen_season(int(period[changed].max()))
            self.season[c] = 0.0
            self.cycle_value[c], self.cycle_count[c] = np.nan, 0
            self.scale_med[c], self.scale_n[c] = 0.0, 0
            self.s_period[c] = period[changed]
        n = self.n[rows]
        seasonal_on = period > 0
        phase = np.where(seasonal_on, n % np.maximum(period, 1), 0)
        started = self.started[rows]
        seasonal = np.where(seasonal_on, self.season[rows, phase], 0.0)
        lo = np.where(started, np.minimum(self.lo[rows], x), x)
        hi = np.where(started, np.maximum(self.hi[rows], x), x)
        med = self.scale_med[rows]
        places = decimal_places_of(x, self.decimals[rows])
        self.decimals[rows] = places
        floor = self.floor * (hi - lo)
        rate, prev = self.change_rate[rows], self.prev[rows]
        ordinary = (rate >= ORDINARY_CHANGE_RATE) & (places >= 0)
        floor = np.where(ordinary, np.maximum(floor, STEPS[np.maximum(places, 0)]), floor)
        moved = np.where(~np.isnan(prev) & (x != prev), 1.0, 0.0)  # the value changed
        self.change_rate[rows] = np.where(started, rate + self.ETA * (moved - rate), rate)
        self.prev[rows] = x
        sigma = np.maximum(np.maximum(1.4826 * med, floor), 1e-12)
        level = self.level[rows]
        res = x - level - seasonal
        ready = self.scale_n[rows] >= self.SCALE_LEARNING
        z = np.where(ready, np.abs(res) / sigma, 0.0)
        run_len, run_sum = self.run_len[rows], self.run_sum[rows]
        going_on = (run_len > 0) & (res * run_sum > 0.0) & (2.0 * z >= self.z_flag)
        starts = ~going_on & (z >= self.z_flag)
        flagged = (going_on | starts) & started
        z_out = z
        cyc = np.flatnonzero(seasonal_on & started)
        if cyc.size:  # a surprise that recurs each cycle: judged against the last cycle
            r, ph, v = rows[cyc], phase[cyc], x[cyc]
            last, count = self.cycle_value[r, ph], self.cycle_count[r, ph]
            self.cycle_value[r, ph] = v
            self.cycle_count[r, ph] = np.where(flagged[cyc], count + 1, 0)
            gap = np.abs(v - last)
            recurring = (flagged[cyc] & (count >= RECURRENCE_CYCLES)
                         & (gap < self.z_flag * sigma[cyc]))
            z_out = z.copy()
            z_out[cyc] = np.where(recurring, gap / sigma[cyc], z[cyc])
        going_on &= started
        starts &= started
        # the excursion's values (deseasonalised) and residual sum
        if going_on.any() or starts.any():
            deseason = x - seasonal
            pos = np.where(going_on, run_len, 0)
            put = going_on | starts
            self.run[rows[put], pos[put]] = deseason[put]
            run_sum = np.where(going_on, run_sum + res, np.where(starts, res, run_sum))
            run_len = np.where(going_on, run_len + 1, np.where(starts, 1, run_len))
        rebase = flagged & (run_len >= self.persist)
        for i in np.flatnonzero(rebase):  # a lasting change: re-based to its recent median
            r, m = rows[i], run_len[i]
            run = self.run[r, :m].tolist()
            level[i] = float(np.median(run[-max(3, self.persist // 2):]))
        calm = started & ~flagged
        run_len = np.where(rebase | calm, 0, run_len)
        run_sum = np.where(rebase | calm, 0.0, run_sum)
        if calm.any():
            c = np.flatnonzero(calm)
            self._learn_scale(rows[c], np.abs(res[c]))
            h = self.HUBER * sigma[c]
            err = np.maximum(-self.HUBER * sigma[c], np.minimum(h, res[c]))
            level[c] = level[c] + self.alpha * err
            s = c[seasonal_on[c]]
            if s.size:
                e = err[seasonal_on[c]]
                self.season[rows[s], phase[s]] += self.GAMMA * (1.0 - self.alpha) * e
        level = np.where(started, level, x)  # the first point sets the level
        self.level[rows] = level
        self.run_len[rows], self.run_sum[rows] = run_len, run_sum
        return np.where(started, z_out, 0.0)

    def _widen_season(self, period: int) -> None:
        """Room for a season of ``period`` points in every row."""
        extra = period - self.season.shape[1]
        if extra > 0:
            n = self.season.shape[0]
            self.season = np.hstack([self.season, np.zeros((n, extra))])
            self.cycle_value = np.hstack([self.cycle_value, np.full((n, extra), np.nan)])
            self.cycle_count = np.hstack([self.cycle_count, np.zeros((n, extra), np.int64)])

    def _learn_scale(self, rows, size) -> None:
        """``RobustScale.learn``: exact median over the first residuals, then a tracker."""
        n = self.scale_n[rows]
        init = n < max(self.SCALE_LEARNING, 1)
        for i in np.flatnonzero(init):
            r = rows[i]
            self.scale_init[r, n[i]] = size[i]
            self.scale_med[r] = float(np.median(self.scale_init[r, : n[i] + 1].tolist()))
        t = ~init
        if t.any():
            r, med = rows[t], self.scale_med[rows[t]]
            step = self.ETA * np.maximum(med, 1e-12) * np.where(size[t] > med, 1.0, -1.0)
            self.scale_med[r] = med + step
        self.scale_n[rows] = n + 1

    def _ensemble(self, rows, x, lo, hi, started) -> np.ndarray:
        """``EnsembleDetector._update`` of each row (its score: 1.0 for an alert)."""
        n = self.n[rows] + 1  # the ensemble's count, this point included
        # forecast residual (SmoothingResidual)
        f_started, f_level = self.f_started[rows], self.f_level[rows]
        res = np.abs(x - f_level)
        self.f_level[rows] = np.where(f_started, f_level + self.FORECAST_ALPHA * (x - f_level), x)
        self.f_started[rows] = True
        f_raw = self._relative(self.f_abs, rows, res, f_started)
        parts = [self.f_lik.update(rows, f_raw), None, None]
        # level shift: the mean of the last shift_short points against the shift_long before
        count, head = self.recent_count[rows], self.recent_head[rows]
        self.recent[rows, head] = x
        size = self.shift_short
        count = np.minimum(count + 1, size)
        head = (head + 1) % size
        total = np.zeros(rows.size)
        for j in range(size):  # sum(recent), oldest first
            total = total + np.where(j < count, self.recent[rows, (head - count + j) % size], 0.0)
        short_mean = total / count
        s_raw = np.zeros(rows.size)
        have = self.long_stats.count[rows] >= 30
        if have.any():
            mean, std = self.long_stats.mean_std(rows)
            z = np.abs(short_mean - mean) / np.maximum(std, 1e-9 * (np.abs(mean) + 1))
            s_raw = np.where(have, z / (z + 3.0), 0.0)
        full = count == size
        if full.any():
            self.long_stats.add(rows[full], self.recent[rows[full], head[full]])
        self.recent_count[rows], self.recent_head[rows] = count, head
        parts[1] = self.s_lik.update(rows, s_raw)
        # seasonal residual (SeasonalResidual), then its likelihood
        q_raw, has_raw = self._season_raw(rows, x, n)
        m = np.maximum(parts[0], parts[1])
        if has_raw.any():
            q = self.q_lik.update(rows[has_raw], q_raw[has_raw])
            m[has_raw] = np.maximum(m[has_raw], q)
        evidence = m[:, 0]
        for k in range(1, m.shape[1]):
            evidence = evidence + m[:, k]
        evidence = evidence / m.shape[1]
        # spatial novelty
        ok = (n > self.learning) & started & (hi > lo)
        tol = (hi - lo) * self.spatial_tol
        evidence = np.where(ok & ((x > hi + tol) | (x < lo - tol)), 1.0, evidence)
        # one alert per episode
        alert = evidence >= self.alert_level
        last = self.last_alert[rows]
        quiet = self.alerted[rows] & (n - last <= self.refractory)
        self.last_alert[rows] = np.where(alert, n, last)
        self.alerted[rows] |= alert
        return np.where(quiet, 0.0, np.where(alert, 1.0, 0.5 * evidence / self.alert_level))

    def _relative(self, moments: MomentsBank, rows, res, valid) -> np.ndarray:
        """``res / (res + typical)``, ``typical`` the mean of the last residuals (then
        ``res`` joins them), for the ``valid`` rows; 0 elsewhere."""
        out = np.zeros(rows.size)
        if not valid.any():
            return out
        r, v = rows[valid], res[valid]
        cnt = moments.count[r]
        typical = np.where(cnt > 0, moments.s1[r] / np.maximum(cnt, 1), 0.0)
        moments.add(r, v)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[valid] = np.where(typical > 0, v / (v + typical), np.where(v > 0, 1.0, 0.0))
        return out

    def _season_raw(self, rows, x, n) -> tuple[np.ndarray, np.ndarray]:
        """``SeasonalResidual.update`` of each row: (raw, whether there is one)."""
        p, count, head = self.e_period[rows], self.hist_count[rows], self.hist_head[rows]
        size = self.SEASON_HISTORY
        has = (p > 0) & (count >= p)
        res = np.abs(x - self.hist[rows, (head - p) % size])
        raw = self._relative(self.q_abs, rows, res, has)
        self.hist[rows, head] = x
        self.hist_count[rows] = np.minimum(count + 1, size)
        self.hist_head[rows] = (head + 1) % size
        due = (n >= self.SEASON_FIRST) & ((n - self.SEASON_FIRST) % self.SEASON_EVERY == 0)
        for i in np.flatnonzero(due):  # a period estimate; a new one restarts what used it
            r = rows[i]
            c, h = int(self.hist_count[r]), int(self.hist_head[r])
            hist = self.hist[r]
            ordered = hist[:c].copy() if c < size else np.concatenate([hist[h:], hist[:h]])
            new = dominant_period(ordered)
            if new != self.e_period[r]:
                self.e_period[r] = new
                self.q_abs.clear(np.array([r]))
                self.q_lik.clear(np.array([r]))
        return raw, has

    def __repr__(self) -> str:
        return f"HybridBank(n_series={self.n_series}, period={self.period})"


class HybridEntropyBank:
    """``HybridEntropyDetector`` for many series: the hybrid as one ``HybridBank``, a
    relative entropy detector per series (its hypotheses are a short list of its own), and
    the confirmation and rest rule on arrays. The same scores as the per-series detectors."""

    SUPPORTED = HybridBank.SUPPORTED | {"entropy", "rest", "rest_after"}

    def __init__(self, n_series: int = 0, entropy: dict | None = None, rest: int = 52,
                 rest_after: str = "any", **hybrid_kwargs):
        from .relative_entropy import RelativeEntropyDetector

        self.rest, self.rest_after = entropy_rest(rest, rest_after)
        self.flag = SEVERITY_CUTOFFS["hybrid"][0]
        self.entropy_kwargs = dict(entropy or {})
        RelativeEntropyDetector(**self.entropy_kwargs)  # bad settings fail here
        self.hybrid = HybridBank(0, **hybrid_kwargs)
        self.entropies: list = []
        self.since_alert = np.zeros(0, dtype=np.int64)
        self.grow(int(n_series))

    @property
    def n_series(self) -> int:
        return self.hybrid.n_series

    def grow(self, n: int) -> None:
        from .relative_entropy import RelativeEntropyDetector

        if n <= 0:
            return
        self.hybrid.grow(n)
        self.entropies += [RelativeEntropyDetector(**self.entropy_kwargs) for _ in range(n)]
        self.since_alert = np.concatenate([self.since_alert,
                                           np.full(n, self.rest + 1, dtype=np.int64)])

    def reset(self, n_series: int | None = None) -> None:
        n = self.n_series if n_series is None else int(n_series)
        self.hybrid.reset(0)
        self.entropies, self.since_alert = [], np.zeros(0, dtype=np.int64)
        self.grow(n)

    def adopt(self, detectors) -> None:
        """Append one row per ``HybridEntropyDetector`` (this bank's settings), as it is."""
        detectors = list(detectors)
        self.hybrid.adopt(d.hybrid for d in detectors)
        self.entropies += [d.entropy for d in detectors]
        self.since_alert = np.concatenate([self.since_alert, np.array(
            [d.since_alert for d in detectors], dtype=np.int64)])

    def score_block(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[0] != self.n_series:
            raise ValueError(f"expected [n_series, k] with n_series={self.n_series}, "
                             f"got {values.shape}")
        return np.stack([self.score(values[:, j]) for j in range(values.shape[1])], axis=1) \
            if values.shape[1] else np.zeros(values.shape)

    def score(self, points) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        out = self.hybrid.score(points)  # checks the shape; non-finite rows score 0
        rows = np.flatnonzero(np.isfinite(points))
        alarm = np.array([self.entropies[r]._update(points[r]) >= 1.0 for r in rows], dtype=bool)
        since = self.since_alert[rows] + 1
        score = out[rows]
        alert = score >= 1.0
        if self.rest_after == "any":
            since[alert] = 0
        learnt = self.hybrid.n[rows] > self.hybrid.learning  # this point counted
        raised = ~alert & alarm & (score >= self.flag) & (since > self.rest) & learnt
        since[raised] = 0
        out[rows[raised]] = 1.0
        self.since_alert[rows] = since
        return out

    def __repr__(self) -> str:
        return f"HybridEntropyBank(n_series={self.n_series})"
