"""Clock times of a named time zone (``TIMEZONE``) -> UTC, for files whose times carry no
offset.

Loggers and spreadsheets often write the local wall clock. Read as UTC, such a file is off by
the zone's offset, and at the end of summer time the repeated hour (02:00-02:59 twice in
Europe) lands on the slots of the first one: half of that hour's points overwrite the other
half. Read in their zone, the two runs are told apart by their order in the file (the earlier
run is summer time, a repeat of the same clock time in the same series winter time, as the
clock ran; in a file written newest first, the other way round), and the file becomes a
regular grid in UTC. A clock time that never happened (in the hour skipped when summer time
starts) is an error naming the cell, not a guess.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
import zoneinfo

import numpy as np
import pandas as pd

from .points import InputError


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA zone this machine knows (``Europe/Berlin``, ``UTC``), else
    ``InputError``; empty means none (times without an offset are UTC)."""
    name = name.strip()
    if not name:
        return ""
    if not usable_zone(name):
        raise InputError(f"unknown time zone {name[:64]!r}: expected an IANA name such as "
                         "Europe/Berlin, America/New_York or UTC")
    return name


@functools.lru_cache(maxsize=1024)
def usable_zone(name: str) -> bool:
    """Whether both the standard library and pandas know the zone ``name``: the system's
    zone folder also holds files that are not zones pandas reads (``Factory``,
    ``localtime``, ``posixrules``, ``right/...``, ``posix/...``)."""
    try:
        zoneinfo.ZoneInfo(name)
        pd.Timestamp(0).tz_localize(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, KeyError):
        return False  # OSError: a name too long; KeyError: pytz's UnknownTimeZoneError
    return True


@functools.lru_cache(maxsize=None)
def time_zones() -> tuple[str, ...]:
    """The IANA zones this machine knows and ``check_timezone`` takes, sorted (for the
    dashboard's zone pickers; read once: the list comes from the system's zone files)."""
    return tuple(sorted(name for name in zoneinfo.available_timezones() if usable_zone(name)))


def has_no_offset(column: pd.Series) -> bool:
    """Whether a column's times are clock times without a UTC offset (so a zone applies):
    a naive ``datetime64`` column, naive ``datetime`` cells (spreadsheet dates), or text whose
    first cells read without an offset. Epoch numbers are instants, never local."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return False
    if pd.api.types.is_datetime64_dtype(column):
        return True
    if pd.api.types.is_numeric_dtype(column):
        return False
    sample = column.dropna().head(20)
    if sample.empty:
        return False
    first = sample.iloc[0]
    if hasattr(first, "tzinfo"):  # datetime / Timestamp cells
        return first.tzinfo is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format", mixed offsets
        try:
            parsed = pd.to_datetime(sample.astype(str), format="mixed", errors="coerce")
        except (ValueError, TypeError):
            return False  # several offsets: instants already
    return bool(not isinstance(parsed.dtype, pd.DatetimeTZDtype) and parsed.notna().any())


def clock_to_utc(stamps: pd.Series, zone: str, groups=None) -> pd.Series:
    """``stamps`` (read as if UTC; the wall clock's digits) as the instants they mean in
    ``zone``, in UTC; NaT for a clock time that never happened. ``groups`` (one series name
    per row, or None for one series) decides which repeated clock time is the second run of
    the hour that DST's end repeats. Dates without a time (daily data) are their day's
    first instant, which is 01:00 where summer time starts at midnight (Chile, Cuba)."""
    clock = stamps.dt.tz_localize(None)
    keys = clock if groups is None else pd.DataFrame({"g": np.asarray(groups), "t": clock})
    repeat = keys.duplicated(keep="first").to_numpy()
    steps = np.diff(clock.to_numpy().astype("int64"))
    newest_first = (steps < 0).sum() > (steps > 0).sum()
    first_run = repeat if newest_first else ~repeat  # True: summer time, as the clock ran
    dates = bool((clock == clock.dt.normalize()).all())
    local = clock.dt.tz_localize(zone, ambiguous=first_run,
                                 nonexistent="shift_forward" if dates else "NaT")
    return local.dt.tz_convert("UTC")



def range_bound(value, zone: str, end: bool = False) -> float:
    """Epoch seconds of one end of a time range asked for as a clock time of ``zone`` (a
    query's ``start`` / ``end``, a picker's value). Ranges are read wide, so that nothing
    the clock showed is left out: in the hour that the end of summer time repeats, a start
    is its first run and an end its second; a time the clock skipped is the instant the
    clock jumped to. A time that carries an offset is that instant. ``now`` is this
    instant and ``today`` midnight today in ``zone`` (pandas reads both on the machine's
    clock)."""
    word = value.strip().lower() if isinstance(value, str) else ""
    if word == "now":
        return dt.datetime.now(dt.timezone.utc).timestamp()
    if word == "today":
        value = dt.datetime.now(zoneinfo.ZoneInfo(zone or "UTC")).date().isoformat()
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(zone or "UTC", ambiguous=not end,
                                  nonexistent="shift_forward")
    return stamp.timestamp()


# ------------------------------------------------------------------ pushed points

PANDAS_FIRST, PANDAS_LAST = pd.Timestamp.min.timestamp(), pd.Timestamp.max.timestamp()


def pushed_clock_time(moment, zone: str) -> float:
    """Epoch seconds of a naive ``datetime`` read as a clock time of ``zone``; in the hour
    that the end of summer time repeats, its first (summer) run (``settle_repeated_hour``
    may move it to the second). A time the clock skipped is an ``InputError``."""
    tz = zoneinfo.ZoneInfo(zone)
    try:
        instant = moment.replace(tzinfo=tz).timestamp()
        shown = dt.datetime.fromtimestamp(instant, tz).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):  # past year 1 or 9999 once in UTC
        raise InputError(f"{moment.isoformat()} in {zone} falls outside the years 1 to 9999 "
                         "in UTC") from None
    if shown != moment:
        raise InputError(f"{moment.isoformat()} never happened in {zone} (the clock skipped "
                         "it when summer time began)")
    return instant


def settle_repeated_hour(names, stamps: np.ndarray, naive: np.ndarray, zone: str,
                         newest=None) -> np.ndarray:
    """``stamps`` with each naive clock time of the repeated hour (read as its first run)
    moved to the second run where the first is not after the series' previous point: the
    one before it in the body, else the newest the stream holds (``newest``: a callable of
    the names giving {name: epoch seconds}). Pushes arrive oldest first, so a logger's
    clock times that repeat the hour, one point a body, are told apart as the clock ran."""
    later = np.full(len(stamps), np.nan)
    # (times pandas cannot hold, before 1677 or after 2262, have no summer time to settle)
    at = np.flatnonzero(naive & (stamps > PANDAS_FIRST) & (stamps < PANDAS_LAST))
    clock = pd.to_datetime(stamps[at], unit="s", utc=True).tz_convert(zone).tz_localize(None)
    twice = clock.tz_localize(zone, ambiguous="NaT").isna()  # the clock showed it twice
    if not twice.any():
        return stamps
    shown = clock[twice]
    moved = (shown.tz_localize(zone, ambiguous=False) - shown.tz_localize(zone, ambiguous=True))
    later[at[twice]] = stamps[at[twice]] + moved.total_seconds().to_numpy()
    repeated = np.isfinite(later)
    stamps = stamps.copy()
    names = list(names)
    previous = dict(newest(sorted({names[i] for i in np.flatnonzero(repeated)})) if newest
                    else {})
    for i, name in enumerate(names):
        before = previous.get(name, -np.inf)
        if repeated[i] and stamps[i] <= before:
            stamps[i] = later[i]
        previous[name] = max(before, stamps[i])
    return stamps
