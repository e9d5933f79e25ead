"""DISPLAY_TIMEZONE in Chromium: a page shows its browser's zone by default, or the zone the
setting names; the chart's labels and hover are formatted by the page itself."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.serving import wait_for
from tests.ui.test_dashboard_browser import open_dashboard
from tests.ui.test_live_push import serve_dashboards
from tests.ui.test_open_file_browser import host_csv

KOLKATA = "Asia/Kolkata"  # 5:30 ahead of UTC, so no whole-hour shift can pass for it

# The live chart's time axis and hover as the page formats them: two ticks an hour apart
# (midnight and 01:00 UTC on 2026-12-07) and one hovered time (18:00:05 UTC).
SHOWN = """() => {
  for (const doc of window.Bokeh.documents)
    for (const model of doc.all_models) {
      if (model.type !== 'DatetimeAxis' || !(model.axis_label || '').startsWith('time (')) continue;
      const plot = [...doc.all_models].find(m => m.type === 'Figure' && m.below.includes(model));
      const hover = plot.toolbar.tools.find(t => t.type === 'HoverTool');
      const formatters = hover.formatters;
      const time = formatters instanceof Map ? formatters.get('@time') : formatters['@time'];
      return {label: model.axis_label, formatter: model.formatter.type,
              ticks: model.formatter.doFormat([Date.UTC(2026, 11, 7), Date.UTC(2026, 11, 7, 1)],
                                              {loc: 0}),
              hover: typeof time === 'string' ? time : time.format(Date.UTC(2026, 11, 7, 18, 0, 5),
                                                                  'custom', {})};
    }
  return null;
}"""


def page_in(browser, zone: str | None):
    """A page of a browser context in ``zone`` (None: the machine's), and its errors."""
    context = browser.new_context(**({"timezone_id": zone} if zone else {}))
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


def test_each_page_shows_times_in_its_browsers_zone(browser):
    port, server, engine, dashboards = serve_dashboards()
    contexts = []
    try:
        context, page, errors = page_in(browser, KOLKATA)
        contexts.append(context)
        open_dashboard(page, f"http://127.0.0.1:{port}")
        # the name the browser reports (Chromium's ICU says Asia/Calcutta, an alias)
        reported = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert reported in (KOLKATA, "Asia/Calcutta")
        expect(page.get_by_text(f"times in {reported}")).to_be_visible(timeout=30_000)
        wait_for(lambda: (page.evaluate(SHOWN) or {}).get("label") == f"time ({reported})",
                 timeout=30)
        assert page.evaluate(SHOWN) == {
            "label": f"time ({reported})", "formatter": "CustomJSTickFormatter",
            "ticks": ["05:30", "06:30"], "hover": "2026-12-07 23:30:05"}
        assert dashboards[-1].clock.zone == reported  # the server's text uses it too
        # the viewer picks another zone in the page: it stays, whatever the browser says
        picker = page.locator(".gp-display-zone input")
        expect(picker).to_have_value(reported)
        picker.fill("Mars/Base")  # not a zone: refused, the zone shown stays
        picker.press("Enter")
        expect(picker).to_have_value(reported)
        picker.fill("europe/berlin")
        picker.press("Enter")
        expect(page.get_by_text("times in Europe/Berlin")).to_be_visible(timeout=30_000)
        expect(picker).to_have_value("Europe/Berlin")
        wait_for(lambda: page.evaluate(SHOWN)["label"] == "time (Europe/Berlin)", timeout=30)
        shown = page.evaluate(SHOWN)
        assert (shown["label"], shown["ticks"], shown["hover"]) == (
            "time (Europe/Berlin)", ["01:00", "02:00"], "2026-12-07 19:00:05")
        assert dashboards[-1].clock.chosen
        # a file of times without an offset, read as UTC, looks shifted here: it says so
        page.locator(".gp-open-file input[type=file]").set_input_files(
            files=[{"name": "host.csv", "mimeType": "text/csv", "buffer": host_csv(600)}])
        expect(page.locator(".gp-open-outcome")).to_contain_text(
            "were read as UTC; this page shows them in Europe/Berlin, +2 h from what the file "
            "says. If they are Europe/Berlin clock times, choose that time zone", timeout=30_000)
        assert errors == []

        # a browser in UTC (the machine's zone here) keeps Bokeh's own formatter
        context, page, errors = page_in(browser, "UTC")
        contexts.append(context)
        open_dashboard(page, f"http://127.0.0.1:{port}")
        expect(page.get_by_text("times in UTC")).to_be_visible(timeout=30_000)
        shown = page.evaluate(SHOWN)
        assert (shown["label"], shown["formatter"], shown["hover"]) == (
            "time (UTC)", "DatetimeTickFormatter", "datetime")
        assert errors == []
    finally:
        for context in contexts:
            context.close()
        server.stop()
        engine.close()


def test_a_zone_named_by_the_setting_is_every_pages_zone(browser):
    port, server, engine, dashboards = serve_dashboards(display_timezone="Europe/Berlin")
    context, page, errors = page_in(browser, KOLKATA)
    try:
        open_dashboard(page, f"http://127.0.0.1:{port}")
        expect(page.get_by_text("times in Europe/Berlin")).to_be_visible(timeout=30_000)
        shown = page.evaluate(SHOWN)
        assert (shown["label"], shown["ticks"], shown["hover"]) == (
            "time (Europe/Berlin)", ["01:00", "02:00"], "2026-12-07 19:00:05")
        assert errors == []
    finally:
        context.close()
        server.stop()
        engine.close()
