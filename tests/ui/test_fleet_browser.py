"""The fleet view of a served app with 1,000 pushed series, in a real headless Chromium."""

import time

import numpy as np
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.serving import running_server, status, wait_for

pytestmark = pytest.mark.ui

N_SERIES = 1000
SLOTS = 30
# Loose on purpose: the 2-core test machine is shared (load 4 while measured); the
# measured figures are printed. The 2 s target for the fleet is asserted only loosely.
PAGE_LIMIT_S = 45.0
FLEET_RENDER_LIMIT_S = 10.0
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
    """values [len(slots), N_SERIES] as InfluxDB line protocol (seconds)."""
    body = "".join(
        f"cpu,host=h{i:04d} v={values[k, i]:.4f} {int(t)}\n"
        for k, t in enumerate(slots) for i in range(values.shape[1])
    )
    answer = requests.post(f"{base}/api/ingest?precision=s", data=body,
                           headers={"Content-Type": "text/plain"}, timeout=120)
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def fleet_url():
    with running_server("--source", "push", "--autostart", env=FLEET_ENV) as base:
        now = int(time.time())
        values = np.random.default_rng(3).normal(size=(SLOTS, N_SERIES))
        values[-1, 321] = 60.0  # the most anomalous series now
        push(base, np.arange(now - SLOTS, now), values)
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

    # Live: a new worst series moves to the top within a few refreshes. Its point goes into
    # the next slot, still open: int(time.time()) could name the slot the engine had just
    # closed, and a late point is stored but not scored (this failed about 1 run in 3).
    ahead = int(time.time()) + 2
    values = np.zeros((1, N_SERIES))
    values[0, 654] = -90.0
    push(fleet_url, np.array([ahead]), values)
    expect(fleet_rows(page).first).to_contain_text(name(654), timeout=15_000)

    # Sorting by name (server-side, one page sent) puts h0000 first.
    page.locator(".gp-fleet .tabulator-col[tabulator-field='series'] .tabulator-col-title").click()
    expect(fleet_rows(page).first).to_contain_text(name(0), timeout=10_000)

    # A click on a row opens that series in the main chart's selector.
    fleet_rows(page).nth(2).click()
    series_select = page.locator("select").first
    expect(series_select).to_have_value(name(2), timeout=10_000)
    assert console_errors == []
