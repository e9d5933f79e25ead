"""A notification's link (PUBLIC_URL/?series=NAME) opens the dashboard on that series."""

import pytest
from playwright.sync_api import Page, expect

from tests.serving import running_server

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def three_series_url():
    with running_server(env={"N_SERIES": "3"}) as base:
        yield base


def test_the_series_query_parameter_selects_that_series(page: Page, three_series_url):
    page.goto(f"{three_series_url}/?series=synthetic-2")
    select = page.locator("select").first
    expect(select).to_be_visible(timeout=30_000)
    expect(select.locator("option:checked")).to_have_text("synthetic-2", timeout=10_000)
    page.goto(f"{three_series_url}/?series=no-such-series")  # unknown: the first, no error
    expect(page.locator("select").first.locator("option:checked")).to_have_text(
        "synthetic-0", timeout=30_000)
