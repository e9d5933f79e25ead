"""DISPLAY_TIMEZONE: the zone the dashboard shows times in, while the API, the store and
downloads keep UTC (the browser's own zone is checked in tests/ui/test_display_time_browser.py)."""

from __future__ import annotations

import datetime as dt
import re

import panel as pn
import pytest
from bokeh.models import CustomJSHover, CustomJSTickFormatter, DatetimeTickFormatter, HoverTool

from granite_panel.settings import Settings, SettingsError
from granite_panel.ui.dashboard import render_incidents, render_mutes
from granite_panel.ui.display_time import DisplayClock, known_zone


def incident(start: str, end: str | None) -> dict:
    return {"id": f"cpu@{start}", "series": "cpu", "row": 0, "start": start, "end": end,
            "last_flagged": end or start, "ongoing": end is None, "peak_score": 1.0,
            "severity": "critical", "points": 3, "acknowledged": False, "muted": False,
            "band": None}


def test_the_setting_takes_browser_or_a_known_zone_and_refuses_anything_else():
    def setting(value):
        return Settings.from_env({"DISPLAY_TIMEZONE": value}, env_file=None).display_timezone

    assert Settings.from_env({}, env_file=None).display_timezone == "browser"
    assert setting("") == setting("Browser") == "browser"
    assert setting(" Europe/Berlin ") == "Europe/Berlin"
    with pytest.raises(SettingsError, match="DISPLAY_TIMEZONE='Mars/Base' is not allowed: "
                                            "unknown time zone .* or browser"):
        setting("Mars/Base")


def test_a_zone_the_browser_reports_is_used_only_if_known_and_utc_has_one_name():
    assert known_zone("Asia/Kolkata") == "Asia/Kolkata"
    assert known_zone("Etc/UTC") == known_zone("UTC") == "UTC"
    assert known_zone(None) == known_zone("") == known_zone("Not/AZone") == "UTC"


def test_in_utc_the_feed_and_mutes_read_as_before():
    """The default clock writes exactly what the feed wrote before zones existed."""
    feed = render_incidents([incident("2026-12-07T23:58:00.000Z", "2026-12-08T00:01:30.000Z"),
                             incident("2026-12-07T10:00:00.000Z", "2026-12-07T10:00:05.000Z"),
                             incident("2026-12-07T09:00:00.000Z", None)])
    assert "2026-12-07 23:58:00 &rarr; 2026-12-08 00:01:30" in feed
    assert "2026-12-07 10:00:00 &rarr; 10:00:05" in feed
    assert "2026-12-07 09:00:00 &rarr; now" in feed
    assert render_mutes({"cpu": "2026-12-07T10:45:00.000Z"}).endswith(
        "cpu until 10:45 UTC</small></div>")


def test_in_a_zone_the_feed_and_mutes_show_its_clock_times_and_dates():
    """Kolkata is 5:30 ahead: an incident from 18:00 to 19:00 UTC runs past local midnight,
    so its end carries its date; Berlin names its winter and summer times."""
    kolkata = DisplayClock(zone="Asia/Kolkata")
    feed = render_incidents([incident("2026-12-07T18:00:00.000Z", "2026-12-07T19:00:00.000Z"),
                             incident("2026-12-07T10:00:00Z", None)], clock=kolkata)
    assert "2026-12-07 23:30:00 &rarr; 2026-12-08 00:30:00" in feed
    assert "2026-12-07 15:30:00 &rarr; now" in feed
    berlin = DisplayClock(zone="Europe/Berlin")
    assert "cpu until 11:45 CET" in render_mutes({"cpu": "2026-12-07T10:45:00.000Z"}, berlin)
    assert "cpu until 12:45 CEST" in render_mutes({"cpu": "2026-07-07T10:45:00.000Z"}, berlin)


def test_a_custom_range_is_read_as_clock_times_of_the_zone():
    """Read wide: in the hour that repeats when summer time ends a start is its first
    (summer) run and an end its second; a time the clock skipped is moved past the gap; UTC
    reads as UTC."""
    berlin = DisplayClock(zone="Europe/Berlin")
    utc = dt.timezone.utc
    assert berlin.instant(dt.datetime(2026, 12, 7, 0, 0)) == dt.datetime(
        2026, 12, 6, 23, 0, tzinfo=utc).timestamp()
    assert berlin.instant(dt.datetime(2026, 12, 7, 0, 0), end=True) == dt.datetime(
        2026, 12, 6, 23, 0, tzinfo=utc).timestamp()
    assert berlin.instant(dt.datetime(2026, 10, 25, 2, 30)) == dt.datetime(
        2026, 10, 25, 0, 30, tzinfo=utc).timestamp()
    assert berlin.instant(dt.datetime(2026, 10, 25, 2, 30), end=True) == dt.datetime(
        2026, 10, 25, 1, 30, tzinfo=utc).timestamp()
    assert berlin.instant(dt.datetime(2026, 3, 29, 2, 30), end=True) == dt.datetime(
        2026, 3, 29, 1, 0, tzinfo=utc).timestamp()
    assert berlin.instant(dt.datetime(2026, 3, 29, 2, 30)) == dt.datetime(
        2026, 3, 29, 1, 0, tzinfo=utc).timestamp()
    assert DisplayClock().instant(dt.datetime(2026, 12, 7)) == dt.datetime(
        2026, 12, 7, tzinfo=utc).timestamp()
    assert berlin.instant(None) is None


def test_the_live_chart_keeps_bokehs_formatter_in_utc_and_formats_other_zones_in_the_browser():
    """In UTC the axis and hover are Bokeh's own (a 10 Hz page pays nothing); a zone change
    (the browser reporting its zone) switches label, ticks and hover, and back."""
    from granite_panel.engine.core import Engine
    from granite_panel.ui.controller import StreamController
    from granite_panel.ui.live_chart import LiveChart
    from tests.ui.test_live_push import SETTINGS

    engine = Engine(Settings(**SETTINGS))
    try:
        clock = DisplayClock()
        chart = LiveChart(StreamController(engine), "80% band", clock)
        axis, hover = chart.figure.xaxis[0], chart.figure.select_one(HoverTool)

        def shown():
            return (axis.axis_label, type(axis.formatter), hover.tooltips[0][1],
                    type(hover.formatters.get("@{time}", hover.formatters.get("@time"))))

        assert shown() == ("time (UTC)", DatetimeTickFormatter, "@time{%F %T}", str)
        clock.zone = "Asia/Kolkata"
        assert shown() == ("time (Asia/Kolkata)", CustomJSTickFormatter, "@time{custom}",
                           CustomJSHover)
        assert axis.formatter.args == {"zone": "Asia/Kolkata"}
        assert hover.formatters["@time"].args == {"zone": "Asia/Kolkata"}
        clock.zone = "UTC"
        assert shown() == ("time (UTC)", DatetimeTickFormatter, "@time{%F %T}", str)
    finally:
        engine.close()


def test_the_stored_history_chart_and_its_range_follow_the_zone(tmp_path):
    from granite_panel.engine.core import Engine
    from granite_panel.store import open_store
    from granite_panel.ui.controller import StreamController
    from granite_panel.ui.history import HistoryView

    store = open_store(f"sqlite:///{tmp_path / 'gp.db'}")
    engine = Engine(Settings(source="push", model_name="/nonexistent",
                             fallback_model="SeasonalNaive"), store=store)
    try:
        clock = DisplayClock(zone="Europe/Berlin")
        view = HistoryView(StreamController(engine), clock=clock,
                           custom=(dt.datetime(2026, 12, 7), dt.datetime(2026, 12, 8)))
        assert view.bounds() == (dt.datetime(2026, 12, 6, 23, tzinfo=dt.timezone.utc).timestamp(),
                                 dt.datetime(2026, 12, 7, 23, tzinfo=dt.timezone.utc).timestamp())
        picker = view.__panel__().select(pn.widgets.DatetimeRangePicker)[0]
        assert picker.label == "Custom range (Europe/Berlin)"
        clock.zone = "UTC"
        assert picker.label == "Custom range (UTC)"
        assert view.bounds()[0] == dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc).timestamp()
        # a range ending in the hour that repeats ends after its second run
        clock.zone = "Europe/Berlin"
        view.custom = (dt.datetime(2026, 10, 25, 2, 0), dt.datetime(2026, 10, 25, 2, 59))
        assert view.bounds() == (
            dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.timezone.utc).timestamp(),
            dt.datetime(2026, 10, 25, 1, 59, tzinfo=dt.timezone.utc).timestamp())
        clock.zone = "UTC"

        def axis():
            from bokeh.models import DatetimeAxis

            root = view.chart().get_root()
            axis = root.select_one({"type": DatetimeAxis})
            hover = root.select_one({"type": HoverTool})
            # BokehJS looks a field's formatter up under the field as the tooltip writes it
            field = re.match(r"@(\{[^}]*\}|\w+)", hover.tooltips[0][1]).group(0)
            return (axis.axis_label, type(axis.formatter), hover.tooltips[0],
                    type(hover.formatters[field]))

        assert axis() == ("time (UTC)", DatetimeTickFormatter, ("time", "@{time}{%F %T}"), str)
        clock.zone = "Asia/Kolkata"
        assert axis() == ("time (Asia/Kolkata)", CustomJSTickFormatter, ("time", "@{time}{custom}"),
                          CustomJSHover)
    finally:
        engine.close()
        store.close()


@pytest.mark.parametrize("setting, zone", [("browser", "UTC"), ("Europe/Berlin", "Europe/Berlin")])
def test_a_dashboard_without_a_served_page_shows_utc_or_the_zone_named(setting, zone):
    """Inline in a notebook no browser reports its zone: UTC, unless the setting names one."""
    from granite_panel.engine.core import Engine
    from granite_panel.ui.dashboard import Dashboard
    from tests.ui.test_live_push import SETTINGS

    engine = Engine(Settings(**SETTINGS, display_timezone=setting))
    try:
        dashboard = Dashboard(engine=engine, autopoll=False)
        assert dashboard.clock.zone == zone
        assert dashboard.live_chart.figure.xaxis[0].axis_label == f"time ({zone})"
        headings = [p.object for p in dashboard.__panel__().select(pn.pane.Markdown)]
        assert f"#### Incidents (newest first, times in {zone})" in headings
    finally:
        engine.close()

