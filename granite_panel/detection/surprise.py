"""The hybrid's surprise tier: each point's |z| against a robust seasonal forecast, built so
that dense anomalies, counts, rounded readings and shapes that recur each cycle are judged
fairly (``RobustSurprise``), and the values' resolution it needs."""

from __future__ import annotations

import numpy as np


MAX_DECIMALS = 6  # finer than this a series is taken as continuous: no resolution
ORDINARY_CHANGE_RATE = 0.01  # a series that changes this often: one step is no surprise
# A phase that surprised the forecast in this many cycles in a row is a recurring pattern
# (chosen on the synthetic check's development seeds 0-4: 2 lost 0.4% of events, 3 and 4 0.1%)
RECURRENCE_CYCLES = 3
_POW10 = 10.0 ** np.arange(MAX_DECIMALS + 1)
STEPS = 1.0 / _POW10  # the resolution of a series written with k decimal places
_POW10_LIST, _STEPS_LIST = _POW10.tolist(), STEPS.tolist()


def decimal_places(value: float, at_least: int = 0) -> int:
    """Fewest decimal places, at least ``at_least``, that write ``value`` exactly (to float
    precision: 0.1 + 0.2 has one), or -1 when it needs more than ``MAX_DECIMALS`` or
    ``at_least`` is already -1. A series' largest is its resolution: counts have 0."""
    if at_least < 0:
        return -1
    for k in range(at_least, MAX_DECIMALS + 1):
        scaled = value * _POW10_LIST[k]
        if abs(scaled - round(scaled)) <= 1e-12 * abs(scaled):
            return k
    return -1


def decimal_places_of(values: np.ndarray, at_least: np.ndarray) -> np.ndarray:
    """``decimal_places`` of each value (vectorised, for the banks); rows already continuous
    (-1) are not looked at again, so a fleet of continuous series pays nothing a tick."""
    places = np.full(values.shape, -1, dtype=np.int64)
    todo = np.flatnonzero(at_least >= 0)
    if todo.size:
        scaled = values[todo, None] * _POW10[None, :]
        exact = np.abs(scaled - np.round(scaled)) <= 1e-12 * np.abs(scaled)
        exact &= np.arange(MAX_DECIMALS + 1)[None, :] >= at_least[todo, None]
        places[todo] = np.where(exact.any(axis=1), exact.argmax(axis=1), -1)
    return places


def resolution(places: int) -> float:
    """The step of the last written digit, 0 for a continuous series (``places`` -1)."""
    return _STEPS_LIST[places] if places >= 0 else 0.0


class RobustScale:
    """Typical size of a stream of residuals that may be contaminated by anomalies.

    ``1.4826 * median(|r|)`` (a Gaussian's sigma) tracked online by stochastic
    approximation of the median (each update moves the estimate by ``eta`` of itself
    towards ``|r|``, so a burst of outliers moves it by at most a few percent), exact median
    over the first ``learning`` residuals. Never below ``floor`` (set by the caller).
    """

    __slots__ = ("eta", "learning", "med", "n", "_init")

    def __init__(self, eta: float = 0.02, learning: int = 30):
        self.eta, self.learning = float(eta), int(learning)
        self.med = 0.0
        self.n = 0
        self._init: list[float] = []

    @property
    def ready(self) -> bool:
        return self.n >= self.learning

    def sigma(self, floor: float = 0.0) -> float:
        return max(1.4826 * self.med, floor, 1e-12)

    def learn(self, size: float) -> None:
        self.n += 1
        if self._init is not None:
            self._init.append(size)
            self.med = float(np.median(self._init))
            if len(self._init) >= self.learning:
                self._init = None
            return
        self.med += self.eta * max(self.med, 1e-12) * (1.0 if size > self.med else -1.0)


class RobustSurprise:
    """Instantaneous surprise of each point: |z| of its one-step forecast residual against a
    robust scale, built so that dense anomalies neither hide themselves nor the next ones.

    - forecast: additive Holt-Winters in error-correction form, level ``alpha`` and season
      ``gamma`` (``prediction = level + season[t mod P]``); with ``period`` 0 (no season
      known) it is exponential smoothing of the level;
    - scale: ``RobustScale`` of the |residual| (median-based, not a variance);
    - a point with ``z >= z_flag`` starts an excursion: it is judged but not learned from
      (level, season and scale stay), so a spike does not drag the forecast or inflate the
      scale. The excursion goes on while residuals keep its sign and stay at or above half
      of ``z_flag`` (hysteresis), and such a point's z is the larger of its own and that of
      the run's mean residual (``|sum| / (sigma sqrt(k))``): a level shift a little smaller
      than ``z_flag`` stays flagged to its end instead of being half learned and then
      flagging the return to normal. After ``persist`` excursion points in a row the level
      is re-based to their recent median (a lasting change becomes the new normal);
    - other points update the model with the residual clipped at ``huber`` sigma;
    - with a season, a point that surprises the forecast at a phase that surprised it in
      each of the last ``RECURRENCE_CYCLES`` cycles, at a value within ``z_flag`` sigma of
      the last cycle's, is a recurring pattern the forecast does not follow (a GC sawtooth's
      drop, an hourly job's step): its z is against that value instead (``recurring``).
      Only the returned z changes; the model learns as it would have;
    - the scale is never below ``floor`` times the range of values seen (flat or quantised
      series do not make every change infinitely surprising), nor, in a series that changes
      value on more than ``ORDINARY_CHANGE_RATE`` of its points (an average at rate
      ``eta``), below its resolution: the step of the last digit its values are written
      with (``decimals``; counts step by 1, a sensor read to 0.1 by 0.1). There the median
      residual is often 0 or a fraction of a step (a count that is mostly 0), and every
      change of one unit was flagged; now a change must be ``z_flag`` units. A series that
      rarely changes (an ``up`` gauge, a constant count) keeps every change a surprise;
      continuous values (more than ``MAX_DECIMALS`` places) have no resolution.
    O(1) a point; the season and the last cycle are arrays of ``period`` numbers.
    """

    __slots__ = ("alpha", "gamma", "z_flag", "persist", "huber", "floor", "eta", "learning",
                 "level", "lo", "hi", "scale", "run", "run_sum", "last_z", "season", "n",
                 "decimals", "prev", "change_rate", "cycle_value", "cycle_count", "recurring")

    def __init__(self, alpha: float = 0.3, z_flag: float = 3.0, persist: int = 20,
                 huber: float = 3.0, floor: float = 0.01, eta: float = 0.005, learning: int = 30,
                 gamma: float = 0.3):
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.z_flag, self.persist = float(z_flag), int(persist)
        self.huber, self.floor = float(huber), float(floor)
        self.eta, self.learning = float(eta), int(learning)
        self.level = self.lo = self.hi = None
        self.scale = RobustScale(eta, learning)
        self.run: list[float] = []  # deseasonalised values of the current excursion
        self.run_sum = 0.0  # sum of its residuals
        self.last_z = 0.0
        self.season = np.zeros(0)
        self.n = 0
        self.decimals = 0  # the most decimal places seen; -1: continuous
        self.prev = None  # the last value, to count changes
        self.change_rate = 0.0
        self.cycle_value = np.zeros(0)  # the last cycle's value at each phase (NaN: none)
        self.cycle_count = np.zeros(0, dtype=np.int64)  # cycles in a row it surprised
        self.recurring = False  # the last point surprised the forecast as in past cycles

    def __setstate__(self, state) -> None:
        """A checkpoint from before the resolution and the recurrences: they start afresh
        (the next value sets the decimals; the change rate and the cycles build up again)."""
        _, slots = state if isinstance(state, tuple) else (None, state)
        self.decimals, self.prev, self.change_rate, self.recurring = 0, None, 0.0, False
        for name, value in slots.items():
            setattr(self, name, value)
        if "cycle_value" not in slots:
            self.cycle_value = np.full(self.season.size, np.nan)
            self.cycle_count = np.zeros(self.season.size, dtype=np.int64)

    def _season_index(self, period: int) -> int | None:
        """Where the season of this point is kept; a new ``period`` starts a flat season."""
        if period != self.season.size:
            self.season = np.zeros(max(int(period), 0))
            self.scale = RobustScale(self.eta, self.learning)
            self.cycle_value = np.full(max(int(period), 0), np.nan)
            self.cycle_count = np.zeros(max(int(period), 0), dtype=np.int64)
        return self.n % period if period > 0 else None

    def update(self, value: float, period: int = 0) -> float:
        """|z| of ``value`` (0 while learning), then learn from it unless it is an excursion."""
        phase = self._season_index(int(period))
        self.n += 1
        self.decimals = decimal_places(value, self.decimals)
        if self.level is None:
            self.level = self.lo = self.hi = self.prev = value
            self.last_z = 0.0
            return 0.0
        seasonal = 0.0 if phase is None else float(self.season[phase])
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        floor = self.floor * (self.hi - self.lo)
        if self.change_rate >= ORDINARY_CHANGE_RATE:
            floor = max(floor, resolution(self.decimals))
        changed = 1.0 if self.prev is not None and value != self.prev else 0.0
        self.change_rate += self.eta * (changed - self.change_rate)
        self.prev = value
        sigma = self.scale.sigma(floor)
        res = value - self.level - seasonal
        z = abs(res) / sigma if self.scale.ready else 0.0
        going_on = (self.run and res * self.run_sum > 0.0 and 2.0 * z >= self.z_flag)
        surprising = bool(going_on or z >= self.z_flag)
        self.recurring = False
        if phase is not None:
            last, count = self.cycle_value[phase], int(self.cycle_count[phase])
            self.cycle_value[phase] = value
            self.cycle_count[phase] = count + 1 if surprising else 0
            self.recurring = (surprising and count >= RECURRENCE_CYCLES
                              and abs(value - last) < self.z_flag * sigma)
        if going_on:
            self.run_sum += res
            self.run.append(value - seasonal)
        elif z >= self.z_flag:
            self.run, self.run_sum = [value - seasonal], res
        if surprising:
            if len(self.run) >= self.persist:
                self.level = float(np.median(self.run[-max(3, self.persist // 2):]))
                self.run, self.run_sum = [], 0.0
        else:
            self.run, self.run_sum = [], 0.0
            self.scale.learn(abs(res))
            err = max(-self.huber * sigma, min(self.huber * sigma, res))
            self.level += self.alpha * err
            if phase is not None:
                self.season[phase] += self.gamma * (1.0 - self.alpha) * err
        if self.recurring:
            z = abs(value - last) / sigma
        self.last_z = z
        return z
