"""Browser fixtures: Debian's Chromium driven by Playwright, and a served app per module."""

import pytest

from tests.serving import running_server

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Use the system Chromium; Playwright must never download a browser here."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def app_url():
    with running_server() as base:
        yield base


class PageErrors(list):
    """Console errors, uncaught page errors and failed requests seen by a page.

    A stylesheet or font that cannot be fetched offline (Panel links a few theme files to
    its CDN) leaves the page working; it is recorded in ``offline_styles`` and its
    generic "Failed to load resource" console line is not counted. Failed scripts, data
    requests and every JavaScript error are.
    """

    def __init__(self, page):
        super().__init__()
        self.offline_styles = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.append(str(exc)))
        page.on("requestfailed", self._request_failed)

    def _console(self, message):
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and "ERR_NAME_NOT_RESOLVED" in message.text:
            self.offline_styles.append(message.text)  # checked against the requests below
            return
        self.append(message.text)

    def _request_failed(self, request):
        if request.resource_type in ("stylesheet", "font"):
            self.offline_styles.append(request.url)
        else:
            self.append(f"request failed ({request.resource_type}): {request.url}")


@pytest.fixture
def console_errors(page):
    """The JavaScript errors and failed script/data requests of the test's page."""
    return PageErrors(page)
