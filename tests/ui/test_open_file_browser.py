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


# the value the chooser's Bokeh model keeps (the file's bytes, base64)
KEPT = """() => {
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.type === 'FileInput') return String(model.value ?? '').length;
  return -1;
}"""


def two_sheets(n=2000) -> bytes:
    """A workbook whose second sheet, Tuesday, holds the series mem."""
    import io

    times = pd.date_range("2024-05-01", periods=n, freq="5min")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as book:
        pd.DataFrame({"timestamp": times, "cpu": np.arange(n) % 7.0}).to_excel(
            book, sheet_name="Monday", index=False)
        pd.DataFrame({"timestamp": times, "mem": np.arange(n) % 5.0}).to_excel(
            book, sheet_name="Tuesday", index=False)
    return buffer.getvalue()


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
    # the chooser is emptied once the file is read: the page and its session let go of the
    # bytes, and the same file can be chosen again (a browser sends no change otherwise)
    wait_for(lambda: chooser.evaluate("(input) => input.files.length") == 0
             and page.evaluate(KEPT) == 0, timeout=10)
    answer = status(app_url)
    assert answer["series"] == ["cpu", "mem"] and answer["source"]["file"] == "host.csv"
    assert answer["source"]["speed"] == "10" and answer["running"]
    expect(page.locator(".stat-running")).to_have_text("running", timeout=10_000)
    expect(page.get_by_label("Series")).to_contain_text("cpu")
    # the chart draws the file's rows, at the file's own times
    wait_for(lambda: chart_lengths(page).get("history", 0) >= 100, timeout=60)

    # a workbook, from the sheet typed in the page
    page.locator(".gp-open-sheet input").fill("2")
    chooser.set_input_files(files=[{"name": "book.xlsx", "buffer": two_sheets(),
                                    "mimeType": "application/vnd.openxmlformats-officedocument"
                                                ".spreadsheetml.sheet"}])
    expect(page.locator(".gp-open-outcome")).to_contain_text(
        "Replaying book.xlsx, sheet 'Tuesday': 2,000 time steps of 1 series (mem).",
        timeout=30_000)
    assert status(app_url)["source"]["file"] == "book.xlsx, sheet 'Tuesday'"

    other = browser.new_context().new_page()  # a second viewer sees the same stream
    try:
        open_dashboard(other, app_url)
        expect(other.get_by_label("Series")).to_contain_text("mem", timeout=30_000)
    finally:
        other.context.close()
    assert console_errors == []


def test_the_zone_chosen_in_the_page_reads_clock_times_and_the_session_lets_go_of_the_bytes(
        page: Page, console_errors, tmp_path):
    """Served in this process, so the engine and the page's widgets can be read: a logger's
    clock times opened with the zone typed in the page keep the hour that the end of summer
    time repeats, at their instants; once the file is read, the chooser's value (the file's
    bytes) is empty in the session as in the page."""
    from tests.test_input_times import BERLIN, clock_export
    import panel as pn

    from tests.ui.test_live_push import serve_dashboards

    port, server, engine, dashboards = serve_dashboards()
    try:
        open_dashboard(page, f"http://127.0.0.1:{port}")
        zone = page.locator(".gp-open-zone input")
        zone.fill(BERLIN)
        zone.press("Enter")
        _, instants = clock_export(tmp_path / "meter.csv")
        page.locator(".gp-open-file input[type=file]").set_input_files(
            files=[{"name": "meter.csv", "mimeType": "text/csv",
                    "buffer": (tmp_path / "meter.csv").read_bytes()}])
        expect(page.locator(".gp-open-outcome")).to_contain_text("Replaying meter.csv",
                                                                 timeout=30_000)
        opener = next(d for d in dashboards if d.controller.toasts)  # the page's session
        assert opener.controller.toasts[-1].startswith("Replaying meter.csv: 21 time steps")
        assert list(engine.source.batch.timestamps) == list(instants)
        chooser = opener.__panel__().select(pn.widgets.FileInput)[0]
        wait_for(lambda: chooser.value is None, timeout=10)
    finally:
        server.stop()
        engine.close()
    assert console_errors == []
