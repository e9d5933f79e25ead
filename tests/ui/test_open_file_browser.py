"""Open a file in the served dashboard, in a real headless Chromium: the stream replays it
and every viewer sees its series; a file that cannot be read is named in one line and the
stream goes on. (The engine and the roles: tests/test_open_file.py.)"""

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.serving import status, wait_for
from tests.ui.test_dashboard_browser import chart_lengths, open_dashboard

pytestmark = pytest.mark.ui


def host_csv(n=2000) -> bytes:
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-05-01", periods=n, freq="5min"),
                          "cpu": np.round(50 + 10 * np.sin(np.arange(n) / 12), 3),
                          "mem": np.round(70 + np.cos(np.arange(n) / 30), 3)})
    return frame.to_csv(index=False).encode()


def test_a_file_opened_in_the_page_replaces_the_stream(page: Page, browser, app_url, console_errors):
    open_dashboard(page, app_url)
    chooser = page.locator(".gp-open-file input[type=file]")
    # 10 rows/s: the 1,488 rows after the first context (512) keep it running for minutes
    page.get_by_label("Replay speed").select_option(label="10 rows/s")

    chooser.set_input_files(files=[{"name": "names.csv", "mimeType": "text/csv",
                                    "buffer": b"host,owner\nweb-1,ann\n"}])
    expect(page.locator(".gp-open-outcome")).to_contain_text(
        "Not opened: names.csv: no timestamp column found", timeout=30_000)
    assert status(app_url)["series"][0].startswith("synthetic-")

    chooser.set_input_files(files=[{"name": "host.csv", "mimeType": "text/csv",
                                    "buffer": host_csv()}])
    expect(page.locator(".gp-open-outcome")).to_contain_text(
        "Replaying host.csv: 2,000 time steps of 2 series (cpu, mem).", timeout=30_000)
    answer = status(app_url)
    assert answer["series"] == ["cpu", "mem"] and answer["source"]["file"] == "host.csv"
    assert answer["source"]["speed"] == "10" and answer["running"]
    expect(page.locator(".stat-running")).to_have_text("running", timeout=10_000)
    expect(page.get_by_label("Series")).to_contain_text("cpu")
    # the chart draws the file's rows, at the file's own times
    wait_for(lambda: chart_lengths(page).get("history", 0) >= 100, timeout=60)

    other = browser.new_context().new_page()  # a second viewer sees the same stream
    try:
        open_dashboard(other, app_url)
        expect(other.get_by_label("Series")).to_contain_text("mem", timeout=30_000)
    finally:
        other.context.close()
    assert console_errors == []
