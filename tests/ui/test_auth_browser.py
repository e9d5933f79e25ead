"""AUTH=basic in a real headless Chromium: Panel's login page, a viewer's disabled controls,
a viewer's forged click refused by the server, an operator's Start and Stop, no console
errors on the dashboard."""

import pytest
import requests
from playwright.sync_api import Page, expect

from granite_panel.server import auth
from tests.serving import running_server, wait_for

pytestmark = pytest.mark.ui

COOKIE_SECRET = "browser-cookie-secret-" + "s" * 20
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}
ROLE_OF = {"alice": "viewer", "bob": "operator", "carol": "admin"}

# Re-enable the Bokeh model of a disabled button from the page, as a hostile viewer could
# from the console: the change travels over the websocket like any widget edit.
UNLOCK = """(label) => {
  for (const doc of window.Bokeh.documents) {
    for (const model of doc.all_models) {
      if (String(model.type).endsWith('Button') && model.label === label) { model.disabled = false; return true; }
    }
  }
  return false;
}"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth-browser")
    auth.set_user(folder / "users.json", "alice", PASSWORDS["alice"], "viewer")
    auth.set_user(folder / "users.json", "bob", PASSWORDS["bob"], "operator")
    auth.set_user(folder / "users.json", "carol", PASSWORDS["carol"], "admin")
    token = auth.create_token(folder / "tokens.json", "watcher", "viewer")
    env = {"AUTH": "basic", "AUTH_USERS": str(folder / "users.json"),
           "API_TOKENS": str(folder / "tokens.json"), "COOKIE_SECRET": COOKIE_SECRET,
           "DATA_GENERATION_INTERVAL": "1"}
    with running_server(env=env) as base:
        yield base, token


def running(secured) -> bool:
    base, token = secured
    answer = requests.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"},
                          timeout=30)
    answer.raise_for_status()
    return answer.json()["running"]


def log_in(page: Page, base: str, user: str, console_errors) -> None:
    page.goto(base)
    page.wait_for_url("**/login**")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/", timeout=30_000)  # a wrong password would stay on /login
    expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=60_000)
    expect(page.locator("canvas").first).to_be_visible(timeout=30_000)
    expect(page.locator(".gp-user")).to_have_text(f"{user} ({ROLE_OF[user]})")
    # Panel's login page links its logo from the CDN (offline here); from the dashboard on,
    # every error counts
    console_errors.clear()


def test_viewer_sees_disabled_controls_and_a_forged_click_changes_nothing(
        page: Page, secured, console_errors):
    base, _ = secured
    log_in(page, base, "alice", console_errors)
    for name in ("Start", "Stop", "Reset", "Acknowledge", "Mute series", "Unmute"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()

    assert page.evaluate(UNLOCK, "Start")  # the forged part: the browser re-enables it
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_enabled()
    start.click()
    # the click reached the server (its refusal comes back as a toast) and changed nothing
    expect(page.locator(".notyf__message", has_text="A viewer may not control.")).to_be_visible(timeout=10_000)
    assert not running(secured)
    expect(page.locator(".stat-running")).to_have_text("stopped")
    expect(page.locator(".gp-admin")).to_have_count(0)  # no admin card in a viewer's page
    assert console_errors == []


def test_admin_creates_a_token_in_the_page_that_the_api_takes_at_once(browser, secured):
    base, _ = secured
    admin = browser.new_context().new_page()
    try:
        from tests.ui.conftest import PageErrors

        errors = PageErrors(admin)
        log_in(admin, base, "carol", errors)
        admin.locator(".gp-admin").get_by_text("Admin: API tokens and settings").click()
        expect(admin.locator(".gp-tokens")).to_contain_text("watcher")
        admin.get_by_placeholder("e.g. node-exporter").fill("pusher")
        admin.get_by_role("button", name="Create token").click()
        token = admin.locator(".gp-new-token").inner_text(timeout=20_000).strip()
        expect(admin.locator(".gp-tokens")).to_contain_text("pusher")
        answer = requests.get(f"{base}/api/status", timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        expect(admin.locator(".gp-settings")).to_contain_text("COOKIE_SECRET")
        assert COOKIE_SECRET not in admin.content()
        assert errors == []
    finally:
        admin.context.close()


def test_operator_starts_and_stops(browser, secured):
    """(A viewer's refusals on a running engine: tests/test_auth.py, in the controller; a
    page clicking while the stream runs is too slow for a test on a loaded 2-core machine.)"""
    base, _ = secured
    operator = browser.new_context().new_page()
    try:
        from tests.ui.conftest import PageErrors

        errors = PageErrors(operator)
        log_in(operator, base, "bob", errors)
        for name in ("Start", "Stop", "Reset", "Acknowledge", "Mute series", "Unmute"):
            expect(operator.get_by_role("button", name=name)).to_be_enabled()
        operator.get_by_role("button", name="Start").click()
        wait_for(lambda: running(secured), timeout=20)
        operator.get_by_role("button", name="Stop").click()
        wait_for(lambda: not running(secured), timeout=20)
        assert errors == []
    finally:
        operator.context.close()
