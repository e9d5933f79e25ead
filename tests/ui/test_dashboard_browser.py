"""The served dashboard in a real headless Chromium: stream, forecast, incidents, controls."""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.serving import status, wait_for

pytestmark = pytest.mark.ui

CHART_LENGTHS = """() => {
  const out = {};
  for (const doc of window.Bokeh.documents) {
    for (const model of doc.all_models) {
      // The drawn layers are named "live chart: <legend label>" (the legend's own keys
      // draw nothing); anomaly markers: one layer per severity, all Scatter glyphs.
      if (model.type !== 'GlyphRenderer' || !(model.name || '').startsWith('live chart: ')) continue;
      const length = model.data_source.get_length();
      out[model.name.slice('live chart: '.length)] = length;
      if (model.glyph.type === 'Scatter') out['anomaly'] = (out['anomaly'] || 0) + length;
    }
  }
  return out;
}"""


DRAWN_VISIBLE = """(label) => {
  for (const doc of window.Bokeh.documents)
    for (const model of doc.all_models)
      if (model.type === 'GlyphRenderer' && model.name === 'live chart: ' + label) return model.visible;
  return null;
}"""


def open_dashboard(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=30_000)
    expect(page.locator("canvas").first).to_be_visible(timeout=30_000)


def counter(page: Page, key: str) -> int:
    return int(page.locator(f".stat-{key}").inner_text().replace(",", ""))


def chart_lengths(page: Page) -> dict:
    return page.evaluate(CHART_LENGTHS)


def test_stream_forecast_incidents_stop_and_reset(page: Page, app_url, console_errors):
    open_dashboard(page, app_url)
    # Offline, the UI says plainly that TTM-R2 is unavailable and which model serves.
    expect(page.locator(".gp-model")).to_contain_text("unavailable", timeout=30_000)
    # FALLBACK_MODEL=auto: seasonal naive until the backtest has chosen among its candidates.
    expect(page.locator(".gp-model")).to_contain_text(re.compile("SeasonalNaive|AutoTheta|AutoETS|MSTL"))

    page.get_by_role("button", name="Start").click()
    expect(page.locator(".stat-running")).to_have_text("running", timeout=10_000)
    first = wait_for(lambda: counter(page, "data_points") > 0 and counter(page, "data_points"))
    wait_for(lambda: counter(page, "data_points") > first + 5, timeout=30)
    assert counter(page, "total_predictions") > 0

    lengths = wait_for(lambda: (lambda l: l.get("history", 0) > 0 and l)(chart_lengths(page)))
    assert lengths["forecast"] == 48  # FORECAST_HORIZON in tests.serving.FAST_STREAM
    assert lengths["history"] >= first

    # The legend hides and shows the drawn layer it names (its keys are not the layers:
    # see LiveChart._legend), and dims its own entry meanwhile.
    history_key = page.locator(".bk-item").filter(has=page.locator(".bk-label", has_text=re.compile("^history$")))
    history_key.click()
    wait_for(lambda: page.evaluate(DRAWN_VISIBLE, "history") is False, timeout=5)
    expect(history_key).to_have_class(re.compile("bk-inactive"))
    assert page.evaluate(DRAWN_VISIBLE, "forecast") is True
    history_key.click()
    wait_for(lambda: page.evaluate(DRAWN_VISIBLE, "history") is True, timeout=5)

    # An injected anomaly opens an incident in the feed (and marks the chart).
    expect(page.locator(".gp-incident").first).to_be_visible(timeout=60_000)
    expect(page.locator(".gp-incident").first).to_contain_text(re.compile("MEDIUM|HIGH|CRITICAL"))
    expect(page.locator(".gp-incident").first).to_contain_text(re.compile(r"\d+ points?"))
    assert chart_lengths(page)["anomaly"] > 0

    # Acknowledge and mute act on the selected series (synthetic-0, the only one).
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".gp-incident .gp-ack").first).to_be_visible(timeout=10_000)
    page.get_by_role("button", name="Mute series").click()
    expect(page.locator(".gp-mutes")).to_contain_text("synthetic-0", timeout=10_000)
    assert "synthetic-0" in status(app_url)["incidents"]["muted"]
    page.get_by_role("button", name="Unmute").click()
    expect(page.locator(".gp-mutes")).to_have_count(0, timeout=10_000)

    # Once forecasts mature: live accuracy against seasonal naive, and a calibrated band.
    expect(page.locator(".acc-model-mase")).to_have_text(re.compile(r"^\d"), timeout=60_000)
    expect(page.locator(".acc-naive-mase")).to_have_text(re.compile(r"^\d"))
    expect(page.locator(".stat-coverage")).to_contain_text("% of", timeout=30_000)
    assert chart_lengths(page)["80% band"] == 48  # the band shares the forecast's rows

    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".stat-running")).to_have_text("stopped", timeout=10_000)
    stopped_at = counter(page, "data_points")
    time.sleep(1.0)  # several tick intervals: nothing may arrive after Stop
    assert counter(page, "data_points") == stopped_at

    page.get_by_role("button", name="Reset").click()
    expect(page.locator(".stat-data_points")).to_have_text("0", timeout=10_000)
    wait_for(lambda: chart_lengths(page).get("history") == 0, timeout=10)
    assert chart_lengths(page)["forecast"] == 0
    expect(page.locator(".gp-incident")).to_have_count(0)
    assert console_errors == []


def test_second_viewer_sees_the_first_viewers_start_and_stop(browser, app_url):
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    try:  # the tabs close even when this fails, so the next test's viewer count holds
        open_dashboard(first, app_url)
        open_dashboard(second, app_url)

        first.get_by_role("button", name="Start").click()
        expect(second.locator(".stat-running")).to_have_text("running", timeout=10_000)
        seen = counter(second, "data_points")
        wait_for(lambda: counter(second, "data_points") > seen, timeout=30)
        wait_for(lambda: chart_lengths(second).get("history", 0) > 0, timeout=30)

        second.get_by_role("button", name="Stop").click()
        expect(first.locator(".stat-running")).to_have_text("stopped", timeout=20_000)
    finally:
        first.context.close()
        second.context.close()


def test_closing_a_tab_releases_its_session(browser, app_url):
    # The tabs of the earlier tests are closed: their sessions are released too.
    wait_for(lambda: status(app_url)["viewers"] == 0, timeout=30)
    page = browser.new_context().new_page()
    open_dashboard(page, app_url)
    wait_for(lambda: status(app_url)["viewers"] == 1, timeout=10)
    page.context.close()
    wait_for(lambda: status(app_url)["viewers"] == 0, timeout=30)
