"""The fleet view of a served app with 1,000 pushed series, in a real headless Chromium."""

import time

import pytest
from playwright.sync_api import Page, expect

from tests.fleet_push import FLEET_ENV, N_SERIES, fill, name, spike
from tests.serving import running_server, status, wait_for

pytestmark = pytest.mark.ui

# Loose on purpose: the 2-core test machine is shared (load 4 while measured); the
# measured figures are printed, and benchmarks/fleet_render.py holds the 2 s target.
PAGE_LIMIT_S = 45.0
FLEET_RENDER_LIMIT_S = 10.0


@pytest.fixture(scope="module")
def fleet_url():
    with running_server("--source", "push", "--autostart", env=FLEET_ENV) as base:
        fill(base, int(time.time()), worst=321)
        wait_for(lambda: status(base)["n_series"] == N_SERIES, timeout=60)
        yield base


def fleet_rows(page: Page):
    return page.locator(".gp-fleet .tabulator-row")


def test_fleet_renders_a_thousand_series_worst_first_and_a_click_opens_one(
        page: Page, fleet_url, console_errors):
    started = time.monotonic()
    page.goto(fleet_url)
    expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=60_000)
    controls = time.monotonic() - started
    opened = time.monotonic()
    page.get_by_role("button", name="Fleet", exact=True).click()  # the card builds it when opened
    expect(fleet_rows(page).first).to_be_visible(timeout=60_000)
    fleet_render = time.monotonic() - opened
    print(f"\nwith {N_SERIES} series: page to its controls {controls:.2f} s, the Fleet card "
          f"from its opening to the first table row {fleet_render:.2f} s")
    assert controls < PAGE_LIMIT_S and fleet_render < FLEET_RENDER_LIMIT_S

    # One page of the thousand goes to the browser, the most anomalous first.
    assert fleet_rows(page).count() == 20
    expect(fleet_rows(page).first).to_contain_text(name(321))
    # The heat map of the top 30 is drawn (a canvas in the Fleet card).
    expect(page.locator(".gp-fleet").first).to_be_visible()

    # Live: a new worst series moves to the top within a few refreshes (its point goes into
    # the next, still open slot: see spike; pushed into a closed one it failed 1 run in 3).
    spike(fleet_url, 654)
    expect(fleet_rows(page).first).to_contain_text(name(654), timeout=15_000)

    # Sorting by name (server-side, one page sent) puts h0000 first.
    page.locator(".gp-fleet .tabulator-col[tabulator-field='series'] .tabulator-col-title").click()
    expect(fleet_rows(page).first).to_contain_text(name(0), timeout=10_000)

    # A click on a row opens that series in the main chart's selector.
    fleet_rows(page).nth(2).click()
    series_select = page.locator("select").first
    expect(series_select).to_have_value(name(2), timeout=10_000)
    assert console_errors == []
