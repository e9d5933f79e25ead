"""The zone the dashboard shows times in (``DISPLAY_TIMEZONE``): each viewer's own browser
zone by default, or one named zone for everyone.

The engine, the store, the REST API and the downloads keep UTC; only what a person reads is
shown in a zone: the live chart's time axis and hover, the incident feed, the mutes, and the
stored-history chart with its custom range. Why the browser's zone by default: a person
watching live metrics reads their own clock (an incident "at 03:12" they have to convert is
one they misplace); a team spread over zones may prefer one zone for all (``UTC``).

A served page learns its browser's zone from Panel's ``pn.state.browser_info`` a moment after
it connects, so a page starts in UTC and switches once. Where the zone is UTC the chart keeps
Bokeh's own datetime formatter (a page streaming at 10 Hz pays nothing for this); any other
zone is formatted by the browser's ``Intl.DateTimeFormat``, since Bokeh's formatters know
only UTC.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import panel as pn
import param
from bokeh.models import CustomJSHover, CustomJSTickFormatter, DatetimeTickFormatter

from ..sources.local_time import check_timezone, range_bound

BROWSER = "browser"
UTC = "UTC"
# Other names of UTC, as browsers report it ("Etc/UTC" in headless Chromium on Linux)
UTC_NAMES = {"Etc/UTC", "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}

# Axis labels: the tick spacing picks the parts shown (as Bokeh's own formatter does); one
# Intl.DateTimeFormat per zone and parts, kept for the page's life (making one costs more
# than formatting with it, and an axis formats its ticks at every repaint).
TICK_CODE = """
const span = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 3600e3;
const parts = span >= 28 * 864e5 ? {year: "numeric", month: "short"}
  : span >= 864e5 ? {month: "short", day: "numeric"}
  : span >= 6e4 ? {hour: "2-digit", minute: "2-digit"}
  : span >= 1e3 ? {hour: "2-digit", minute: "2-digit", second: "2-digit"}
  : {hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3};
const key = zone + JSON.stringify(parts);
const cache = globalThis.__gp_time_formats ??= new Map();
let writer = cache.get(key);
if (writer === undefined) {
  writer = new Intl.DateTimeFormat("en-GB", {timeZone: zone, hourCycle: "h23", ...parts});
  cache.set(key, writer);
}
return writer.format(tick);
"""
# Hover: the full date and time, as Bokeh's "%F %T" writes it ("sv-SE" writes ISO order).
# (``format`` is the hover's own argument: the formatter here is ``writer``.)
HOVER_CODE = """
const key = zone + " hover";
const cache = globalThis.__gp_time_formats ??= new Map();
let writer = cache.get(key);
if (writer === undefined) {
  writer = new Intl.DateTimeFormat("sv-SE", {timeZone: zone, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
  cache.set(key, writer);
}
return writer.format(value);
"""


def known_zone(name: str | None) -> str:
    """``name`` if this machine knows it, else UTC (a browser may report a zone, or
    nothing, that the server's zone database lacks)."""
    try:
        zone = check_timezone(name or "") or UTC
    except ValueError:
        return UTC
    return UTC if zone in UTC_NAMES else zone


class DisplayClock(param.Parameterized):
    """One viewer's display zone, and the times of the page written in it."""

    zone = param.String(default=UTC, doc="The IANA zone the page shows times in.")

    def __init__(self, **params):
        super().__init__(**params)
        self.chosen = False  # the viewer picked the zone in the page: the browser's no longer

    def choose(self, zone: str) -> None:
        """The zone the viewer picked (the page's "Times in" field); a zone the browser
        reports later does not replace it."""
        self.chosen = True
        self.zone = known_zone(zone)

    @classmethod
    def for_session(cls, setting: str) -> DisplayClock:
        """A clock for the current page: the zone named by ``setting`` (DISPLAY_TIMEZONE), or
        with ``browser`` UTC until the page's browser tells its zone, then that zone."""
        if setting != BROWSER:  # Settings checked it: BROWSER or a known zone
            return cls(zone=known_zone(setting))
        clock = cls()
        info = pn.state.browser_info if pn.state.curdoc is not None else None
        if info is not None:
            def follow(*_):
                if not clock.chosen:
                    clock.zone = known_zone(info.timezone)

            info.param.watch(follow, "timezone")
            follow()
        return clock

    def local(self, iso: str) -> dt.datetime:
        """An ISO 8601 instant (the tracker's UTC times) as a clock time of the zone."""
        return dt.datetime.fromisoformat(iso).astimezone(zoneinfo.ZoneInfo(self.zone))

    def span(self, start: str, end: str | None) -> str:
        """An incident's times for the feed: the start's date and time, then the end's time
        (with its date when the day differs in the zone); None: ongoing (the caller says so)."""
        first = self.local(start)
        text = first.strftime("%Y-%m-%d %H:%M:%S")
        if end is not None and end != start:
            last = self.local(end)
            same_day = last.date() == first.date()
            text += " &rarr; " + last.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        return text

    def clock_time(self, iso: str) -> str:
        """``HH:MM`` and the zone's abbreviation (``CET``, ``UTC``), for a time soon after now."""
        local = self.local(iso)
        return f"{local:%H:%M} {local.tzname()}"

    def instant(self, value, end: bool = False) -> float | None:
        """Epoch seconds of a clock time of the zone (a date picker's naive value) as one end
        of a range, read wide (``local_time.range_bound``: the repeated hour's first run for
        a start, its second for an ``end``; a skipped time is moved past the gap). None
        stays None."""
        return None if value is None else range_bound(value, self.zone, end)

    # ------------------------------------------------------------ Bokeh models

    @property
    def axis_label(self) -> str:
        return f"time ({self.zone})"

    def tick_formatter(self):
        """The time axis' labels: Bokeh's own in UTC, the browser's Intl elsewhere."""
        if self.zone == UTC:
            return DatetimeTickFormatter()
        return CustomJSTickFormatter(args={"zone": self.zone}, code=TICK_CODE)

    def hover_time(self) -> tuple[str, object]:
        """(the tooltip field of a ``time`` column, its formatter) for a ``HoverTool``."""
        if self.zone == UTC:
            return "@time{%F %T}", "datetime"
        return "@time{custom}", CustomJSHover(args={"zone": self.zone}, code=HOVER_CODE)
