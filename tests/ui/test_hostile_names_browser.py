"""A series is named by whoever pushes it (an ingest token is enough): a name that carries
markup is shown as text everywhere the page shows names (the toast, the feed, the series
selector, the fleet table), and never runs, in a real headless Chromium."""

import time

import numpy as np
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.serving import running_server, status, wait_for

pytestmark = pytest.mark.ui

HOSTILE = '<img src=x onerror="window.owned=1">'
ENV = {"DATA_GENERATION_INTERVAL": "1", "DETECTOR": "zscore", "FALLBACK_MODEL": "SeasonalNaive",
       "MODEL_NAME": "/nonexistent", "CONTEXT_LENGTH": "32", "FORECAST_HORIZON": "8"}


def push(base: str, stamps, values) -> None:
    body = {"series": HOSTILE, "points": [[int(t), float(v)] for t, v in zip(stamps, values)]}
    answer = requests.post(f"{base}/api/ingest", json=body, timeout=60)
    assert answer.status_code == 200, answer.text


def test_a_series_name_with_markup_is_shown_as_text(page: Page, console_errors):
    with running_server("--source", "push", "--autostart", env=ENV) as base:
        now = int(time.time())
        push(base, np.arange(now - 60, now), np.random.default_rng(1).normal(50, 1, 60))
        wait_for(lambda: status(base)["n_series"] == 1, timeout=60)
        page.goto(base)
        expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=60_000)
        # far out, in the next slot (still open): a critical incident, and its toast
        push(base, [int(time.time()) + 2], [500.0])
        toast = page.locator(".notyf__message", has_text="incident: CRITICAL")
        expect(toast).to_contain_text(HOSTILE, timeout=30_000)
        expect(page.locator(".gp-incident").first).to_contain_text(HOSTILE, timeout=30_000)
        expect(page.get_by_label("Series")).to_contain_text(HOSTILE)
        page.get_by_role("button", name="Fleet", exact=True).click()
        expect(page.locator(".gp-fleet .tabulator-row").first).to_contain_text(HOSTILE,
                                                                                timeout=30_000)
        assert page.evaluate("() => window.owned") is None
        assert page.locator("img[src=x]").count() == 0
        assert [e for e in console_errors if "owned" in e] == []
