"""Authentication, roles and API tokens on a real ``granite-panel serve``: the REST 401/403/200
matrix (Panel's login cookie and bearer tokens), body limits, security headers, the token
CLI, start-up refusals, the OAuth wiring, and no secret in logs or ``/api/status``.

The browser side (login page, disabled buttons, a viewer's forged click) is in
tests/ui/test_auth_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from granite_panel.server import auth
from granite_panel.ui.controller import StreamController

from granite_panel.server.api import ROUTES
from granite_panel.server.openapi import document

from .openapi_check import check_answer
from .serving import FAST_STREAM, free_port, start_server, wait_for

COOKIE_SECRET = "cookie-secret-" + "k" * 30
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}
ROLES = {"alice": "viewer", "bob": "operator", "carol": "admin"}
T0 = 1_700_000_000


def write_users(path: Path) -> Path:
    for name, password in PASSWORDS.items():
        auth.set_user(path, name, password, ROLES[name])
    return path


class Server:
    """A served process whose output is kept (``start_server`` drains it in a thread)."""

    def __init__(self, *args, env=None):
        self.process, self.base = start_server(*args, env=env)

    @property
    def lines(self) -> list[str]:
        return self.process.output.lines

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.process.output.text()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    users = write_users(folder / "users.json")
    tokens = folder / "tokens.json"
    made = {
        "reader": auth.create_token(tokens, "reader", "viewer"),
        "pusher": auth.create_token(tokens, "pusher", "viewer", ["ingest"]),
        "ops": auth.create_token(tokens, "ops", "operator"),
    }
    return {"users": users, "tokens": tokens, "made": made}


@pytest.fixture(scope="module")
def server(files):
    env = {"AUTH": "basic", "AUTH_USERS": str(files["users"]), "API_TOKENS": str(files["tokens"]),
           "COOKIE_SECRET": COOKIE_SECRET, "INGEST_MAX_BYTES": "4096"}
    served = Server("--source", "push", "--autostart", env=env)
    served.log = None
    yield served
    if served.log is None:
        served.stop()


def login(base: str, user: str) -> requests.Session:
    session = requests.Session()
    answer = session.post(f"{base}/login", data={"username": user, "password": PASSWORDS[user]},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302 and "error" not in answer.headers["Location"], answer.headers
    assert "user" in session.cookies
    return session


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_rest_matrix_cookie_and_bearer(server, files):
    base, made = server.base, files["made"]
    alice, bob = login(base, "alice"), login(base, "bob")
    anonymous = requests.Session()
    points = {"series": "auth.test", "points": [[T0 + i, 1.0 + i] for i in range(3)]}

    def call(who, method, path, expected, **kwargs):
        client = who if isinstance(who, requests.Session) else requests
        headers = {} if isinstance(who, requests.Session) else bearer(who)
        answer = client.request(method, base + path, headers=headers, timeout=60, **kwargs)
        assert answer.status_code == expected, (method, path, answer.status_code, answer.text)
        assert answer.headers["Content-Type"].startswith(("application/json", "text/csv"))
        if expected in (401, 403):  # as the OpenAPI document says (tests/test_openapi.py)
            check_answer(document(ROUTES), path, method, answer)
            body = answer.json()
            assert body["status"] == expected and body["error"]
            assert "Traceback" not in answer.text
        if expected == 401:
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        return answer

    # nobody, a wrong token, another scheme: 401
    call(anonymous, "GET", "/api/status", 401)
    call("not-a-token", "GET", "/api/status", 401)
    answer = requests.get(f"{base}/api/history", headers={"Authorization": "Basic YTpi"}, timeout=5)
    assert answer.status_code == 401 and "Bearer" in answer.json()["error"]
    for path in ("/api/history", "/api/incidents", "/api/mute", "/api/export"):
        call(anonymous, "GET", path, 401)
    call(anonymous, "POST", "/api/ingest", 401, json=points)

    # pushes: the ingest scope for tokens, operator for a signed-in user
    call(made["reader"], "POST", "/api/ingest", 403, json=points)
    call(made["ops"], "POST", "/api/ingest", 403, json=points)  # operator token without scope
    call(alice, "POST", "/api/ingest", 403, json=points)
    call(made["pusher"], "POST", "/api/ingest", 200, json=points)
    later = {"series": "auth.test", "points": [[T0 + 10, 5.0]]}
    call(bob, "POST", "/api/ingest", 200, json=later)

    # reads: every role
    for who in (made["reader"], made["pusher"], made["ops"], alice, bob):
        assert call(who, "GET", "/api/status", 200).json()["running"] is True
        call(who, "GET", "/api/history?series=auth.test", 200)
        call(who, "GET", "/api/incidents", 200)
        call(who, "GET", "/api/mute", 200)
    assert "auth.test" in call(alice, "GET", "/api/export?series=auth.test", 200).text

    # acknowledge and mute: operator or above
    mute = {"series": "auth.test", "seconds": 60}
    for who in (made["reader"], made["pusher"], alice):
        call(who, "POST", "/api/mute", 403, json=mute)
        call(who, "DELETE", "/api/mute?series=auth.test", 403)
        call(who, "POST", "/api/incidents/nope/ack", 403)
    call(made["ops"], "POST", "/api/mute", 200, json=mute)
    assert "auth.test" in call(alice, "GET", "/api/mute", 200).json()["muted"]
    call(bob, "DELETE", "/api/mute?series=auth.test", 200)
    call(bob, "POST", "/api/incidents/nope/ack", 404)  # past auth: the id is unknown
    call(made["ops"], "POST", "/api/incidents/nope/ack", 404)

    # a forged cookie (signed with another secret) is nobody
    forged = requests.Session()
    from tornado.web import create_signed_value

    forged.cookies.set("user", create_signed_value("x" * 40, "user", "carol").decode())
    call(forged, "GET", "/api/status", 401)
    # a wrong password does not log in
    answer = requests.post(f"{base}/login", data={"username": "carol", "password": "nope"},
                           allow_redirects=False, timeout=30)
    assert "error" in answer.headers["Location"]


def test_revoked_token_stops_at_once(server, files):
    token = auth.create_token(files["tokens"], "temporary", "viewer")
    assert requests.get(f"{server.base}/api/status", headers=bearer(token), timeout=5).ok
    revoke = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "token", "revoke", "temporary",
         "--file", str(files["tokens"])], capture_output=True, text=True, timeout=60)
    assert revoke.returncode == 0, revoke.stderr
    answer = requests.get(f"{server.base}/api/status", headers=bearer(token), timeout=5)
    assert answer.status_code == 401


def test_ingest_body_limits(server, files):
    host, port = server.base.removeprefix("http://").split(":")
    # a declared length over INGEST_MAX_BYTES gets 413 before any of the body is sent
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST /api/ingest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {files['made']['pusher']}\r\n"
            "Content-Length: 1000000000\r\n\r\n".encode())
        reply = conn.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"over the limit of 4,096' in reply or "over the limit of 4,096" in reply
    # a chunked body (no declared length) is cut off past the limit: 413 JSON too
    answer = requests.post(f"{server.base}/api/ingest", data=(b"x" * 1000 for _ in range(10)),
                           headers={**bearer(files["made"]["pusher"]),
                                    "Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 413 and "10,000 bytes" in answer.json()["error"]
    # the other routes take 64 KiB at most
    answer = requests.post(f"{server.base}/api/mute", data=b"{" + b" " * 70_000 + b"}",
                           headers=bearer(files["made"]["ops"]), timeout=30)
    assert answer.status_code == 413 and answer.json()["status"] == 413


def test_security_headers_on_every_response(server):
    alice = login(server.base, "alice")
    page = alice.get(f"{server.base}/", timeout=30)
    assert page.status_code == 200 and "bokeh" in page.text.lower()
    script = next(part.split('"')[0] for part in page.text.split('src="')[1:]
                  if ".js" in part.split('"')[0])
    answers = [page, alice.get(f"{server.base}/api/status", timeout=5),
               requests.get(f"{server.base}/api/status", timeout=5),  # a 401
               requests.get(f"{server.base}/login", timeout=5),
               requests.get(f"{server.base}/{script.lstrip('./')}", timeout=10)]
    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.url
        assert answer.headers["X-Frame-Options"] == "DENY", answer.url
        assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answers[-1].status_code == 200 and "javascript" in answers[-1].headers["Content-Type"]
    # without a login the page sends the browser to Panel's login page
    answer = requests.get(f"{server.base}/", allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and "login" in answer.headers["Location"]


def test_no_secret_in_logs_or_status(server, files):
    """Runs last in the module: it stops the server to read everything it logged."""
    # a failed login and a bad token happen here too, so their log lines are included
    requests.post(f"{server.base}/login", data={"username": "alice", "password": "wrong-pw-9"},
                  allow_redirects=False, timeout=30)
    requests.get(f"{server.base}/api/status", headers=bearer("made-up-token-7"), timeout=5)
    status = requests.get(f"{server.base}/api/status", headers=bearer(files["made"]["reader"]),
                          timeout=5).text
    server.log = server.stop()
    users = json.loads(files["users"].read_text())
    digests = [entry["sha256"] for entry in json.loads(files["tokens"].read_text()).values()]
    secrets = [COOKIE_SECRET, "wrong-pw-9", "made-up-token-7", *PASSWORDS.values(),
               *files["made"].values(), *digests, *(u["password_hash"] for u in users.values())]
    assert "failed login for user 'alice'" in server.log  # the log is the server's, and real
    for secret in secrets:
        assert secret not in server.log
        assert secret not in status
    assert "cookie_secret" not in status.lower() and "password" not in status.lower()


def test_viewer_role_is_refused_in_the_controller():
    """The controller's own check, on a real engine (the browser test forges the event)."""
    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings

    engine = Engine(Settings(database_url="memory", training="off", backfill=False))
    try:
        viewer = StreamController(engine, role="viewer")
        viewer.start()
        assert not engine.running and viewer.refused == 1
        operator = StreamController(engine, role="operator")
        operator.start()
        assert engine.running
        viewer.stop()
        viewer.reset()
        viewer.mute(60)
        assert engine.running and viewer.refused == 4
        operator.stop()
        assert not engine.running and operator.refused == 0
    finally:
        engine.close()


# ------------------------------------------------------------------ the admin's screen


def admin_engine(tmp_path, **settings):
    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings

    return Engine(Settings(**{"database_url": "memory", "training": "off", "backfill": False,
                              "model_name": "/nonexistent", **settings}))


def test_the_admin_screen_creates_a_working_token_and_revokes_it(tmp_path):
    """Through the dashboard's own widgets, on the file and code the server reads."""
    from granite_panel.settings import Settings
    from granite_panel.ui.dashboard import Dashboard

    path = tmp_path / "tokens.json"
    engine = admin_engine(tmp_path, api_tokens=str(path))
    try:
        page = Dashboard(engine=engine, autopoll=False, role="admin")
        admin = page.admin
        admin.name_input.value, admin.role_input.value = "exporter", "operator"
        admin.scopes_input.value = ["ingest"]
        admin.create_button.clicks += 1  # what a click in the browser does
        token = re.search(r'<pre class="gp-new-token">([^<]+)</pre>', admin.message.object).group(1)
        stored = json.loads(path.read_text())
        assert stored == {"exporter": {"sha256": auth.token_digest(token), "role": "operator",
                                       "scopes": ["ingest"]}}
        assert token not in path.read_text() and "exporter" in admin.table.object
        server_side = auth.Auth.from_settings(Settings(api_tokens=str(path)))
        identity = server_side.token_identity(token)
        assert (identity.name, identity.role, identity.scopes) == ("exporter", "operator", ("ingest",))
        admin.create_button.clicks += 1  # no name: refused, said in one line
        assert "needs a name" in admin.message.object and "gp-new-token" not in admin.message.object
        admin.name_input.value = "exporter"
        admin.create_button.clicks += 1  # the same name again: refused
        assert "exists" in admin.message.object and len(json.loads(path.read_text())) == 1
        admin.revoke_input.value = "exporter"
        admin.revoke_button.clicks += 1
        assert json.loads(path.read_text()) == {} and "revoked" in admin.message.object
        assert server_side.token_identity(token) is None  # revoked: refused at once
    finally:
        engine.close()


def test_only_an_admin_gets_the_screen_and_the_controller_refuses_the_rest(tmp_path):
    from granite_panel.ui.dashboard import Dashboard

    path = tmp_path / "tokens.json"
    token = auth.create_token(path, "ci", "viewer")
    before = path.read_text()
    engine = admin_engine(tmp_path, api_tokens=str(path), cookie_secret="s" * 40,
                          database_url="postgresql+psycopg://panel:hunter2@db/panel")
    try:
        for role in ("viewer", "operator"):
            page = Dashboard(engine=engine, autopoll=False, role=role)
            assert page.admin is None
            c = page.controller
            assert c.create_token("forged", "admin") == (None, f"a {role} may not manage tokens")
            assert c.revoke_token("ci") == f"a {role} may not manage tokens"
            assert c.tokens() == {} and c.settings_rows() == [] and c.refused == 2
        assert path.read_text() == before
        rows = dict(Dashboard(engine=engine, autopoll=False).controller.settings_rows())
        assert rows["COOKIE_SECRET"] == "(set)" and rows["OAUTH_SECRET"] == "(empty)"
        assert rows["DATABASE_URL"] == "postgresql+psycopg://panel:***@db/panel"
        assert "hunter2" not in str(rows) and "s" * 40 not in str(rows) and token not in str(rows)
    finally:
        engine.close()


# ------------------------------------------------------------------ token CLI


def cli(*args, stdin=None, env=None) -> subprocess.CompletedProcess:
    """``granite-panel ARGS`` in this process (the CLI's ``main``; a new process costs seconds
    of imports on this machine): its exit status and output."""
    import contextlib
    import io

    from granite_panel.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_stdin = dict(os.environ), sys.stdin
    os.environ.update(env or {})
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's refusals
                code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdin = saved_stdin
        auth.install(auth.Auth())  # serve installs the process's auth
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_token_cli_prints_once_and_stores_only_the_hash(tmp_path):
    path = tmp_path / "tokens.json"
    made = cli("token", "create", "telegraf", "--role", "viewer", "--scope", "ingest",
               "--file", str(path))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    stored = path.read_text()
    assert token not in stored
    entry = json.loads(stored)["telegraf"]
    assert entry == {"sha256": auth.token_digest(token), "role": "viewer", "scopes": ["ingest"]}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # API_TOKENS names the default file
    second = cli("token", "create", "grafana", "--role", "operator", env={"API_TOKENS": str(path)})
    assert second.returncode == 0 and second.stdout.strip() != token
    listing = cli("token", "list", "--file", str(path))
    assert listing.stdout.splitlines() == ["grafana\toperator\t-", "telegraf\tviewer\tingest"]
    assert token not in listing.stdout + listing.stderr
    again = cli("token", "create", "telegraf", "--role", "viewer", "--file", str(path))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "exists" in again.stderr
    assert cli("token", "revoke", "telegraf", "--file", str(path)).returncode == 0
    assert "telegraf" not in cli("token", "list", "--file", str(path)).stdout
    gone = cli("token", "revoke", "telegraf", "--file", str(path))
    assert gone.returncode == 2 and "not found" in gone.stderr and "grafana" in gone.stderr
    bad = cli("token", "create", "x", "--role", "root", "--file", str(path))
    assert bad.returncode == 2 and "invalid choice: 'root'" in bad.stderr


def test_user_cli_stores_a_scrypt_hash(tmp_path):
    path = tmp_path / "users.json"
    added = cli("user", "add", "dave", "--role", "operator", "--password-stdin", "--file",
                str(path), stdin="dave-pw-4\n")
    assert added.returncode == 0, added.stderr
    entry = json.loads(path.read_text())["dave"]
    assert entry["role"] == "operator" and entry["password_hash"].startswith("scrypt$")
    assert "dave-pw-4" not in path.read_text()
    assert auth.verify_password("dave-pw-4", entry["password_hash"])
    assert not auth.verify_password("dave-pw-5", entry["password_hash"])


# ------------------------------------------------------------------ start-up refusals


def _refusal_cases(tmp: Path):
    users = write_users(tmp / "users.json")
    (tmp / "broken.json").write_text("{not json")
    (tmp / "badrole.json").write_text(json.dumps({"eve": {"password_hash": "scrypt$1$1$1$AA==$AA==",
                                                          "role": "root"}}))
    (tmp / "badtoken.json").write_text(json.dumps({"t": {"sha256": "abc", "role": "viewer"}}))
    basic = {"AUTH": "basic", "AUTH_USERS": str(users), "COOKIE_SECRET": COOKIE_SECRET}
    return [
        ({"AUTH": "basic", "AUTH_USERS": str(users)}, (), "AUTH=basic needs COOKIE_SECRET"),
        ({**basic, "COOKIE_SECRET": "short"}, (), "COOKIE_SECRET is too short (5 characters)"),
        ({**basic, "AUTH_USERS": str(tmp / "missing.json")}, (), "no such user file"),
        ({**basic, "AUTH_USERS": str(tmp / "broken.json")}, (), "is not valid JSON"),
        ({**basic, "AUTH_USERS": str(tmp / "badrole.json")}, (), "'eve' has role 'root'"),
        ({**basic, "API_TOKENS": str(tmp / "badtoken.json")}, (), "token 't' has no valid sha256"),
        ({"AUTH": "sometimes"}, (), "AUTH='sometimes' is not allowed: expected one of none"),
        ({"AUTH": "oauth", "COOKIE_SECRET": COOKIE_SECRET, "OAUTH_KEY": "id"}, (),
         "AUTH=oauth needs OAUTH_SECRET, OAUTH_AUTHORIZE_URL, OAUTH_TOKEN_URL"),
        ({"AUTH": "oauth", "COOKIE_SECRET": COOKIE_SECRET, "OAUTH_KEY": "i", "OAUTH_SECRET": "s",
          "OAUTH_AUTHORIZE_URL": "http://a", "OAUTH_TOKEN_URL": "http://t",
          "OAUTH_ROLES": "ops=boss"}, (), "OAUTH_ROLES entry 'ops=boss' is not allowed"),
        ({}, ("--address", "0.0.0.0"), "ADDRESS='0.0.0.0' is not a loopback address and AUTH=none"),
    ]


def test_start_up_refusals_are_one_line_and_exit_2(tmp_path):
    cases = _refusal_cases(tmp_path)
    # one of them as a real process: its exit status and its only line
    env, args, message = cases[0]
    process = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "serve", "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **FAST_STREAM, **env})
    assert process.returncode == 2 and process.stdout == ""
    assert process.stderr.strip().splitlines() == [f"granite-panel: error: {message} (at least "
                                                   "32 characters, e.g. python -c 'import "
                                                   "secrets; print(secrets.token_urlsafe(32))')"]
    for env, args, message in cases:
        started = time.monotonic()
        result = cli("serve", "--port", str(free_port()), *args,
                     env={**FAST_STREAM, "AUTH": "none", **env})
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == 2, (env, args, lines)
        assert len(lines) == 1 and lines[0].startswith("granite-panel: error: "), lines
        assert message in lines[0], (message, lines[0])
        assert COOKIE_SECRET not in lines[0]
        assert time.monotonic() - started < 30  # refused before the engine or model load


def test_insecure_serves_off_loopback_with_a_warning():
    served = Server("--address", "0.0.0.0", "--insecure")
    try:
        assert requests.get(f"{served.base}/api/status", timeout=5).ok
        wait_for(lambda: any("serving on" in line for line in served.lines), 10)
    finally:
        log = served.stop()
    assert "granite-panel: warning: serving 0.0.0.0 without authentication (--insecure)" in log


# ------------------------------------------------------------------ OAuth wiring


def test_oauth_generic_provider_redirects_to_the_configured_authorize_url():
    """No OpenID provider runs here: this checks the wiring of Panel's generic provider up to
    the redirect (client id, scopes, redirect URI, state), and that the API still wants
    credentials."""
    env = {"AUTH": "oauth", "COOKIE_SECRET": COOKIE_SECRET, "OAUTH_KEY": "granite-client",
           "OAUTH_SECRET": "oauth-client-secret-42",
           "OAUTH_AUTHORIZE_URL": "https://idp.example.test/oauth2/authorize",
           "OAUTH_TOKEN_URL": "https://idp.example.test/oauth2/token",
           "OAUTH_REDIRECT_URI": "http://monitor.example.test:5006/login",
           "OAUTH_ROLES": "ops=operator"}
    served = Server(env=env)
    try:
        page = requests.get(f"{served.base}/", allow_redirects=False, timeout=10)
        assert page.status_code == 302 and "login" in page.headers["Location"]
        login_page = requests.get(f"{served.base}/login", allow_redirects=False, timeout=10)
        assert login_page.status_code == 302, login_page.text[:300]
        target = urlparse(login_page.headers["Location"])
        query = parse_qs(target.query)
        assert f"{target.scheme}://{target.netloc}{target.path}" == env["OAUTH_AUTHORIZE_URL"]
        assert query["client_id"] == ["granite-client"]
        assert query["redirect_uri"] == [env["OAUTH_REDIRECT_URI"]]
        assert query["response_type"] == ["code"]
        assert set(query["scope"][0].split()) == {"openid", "email", "profile"}
        assert query["state"][0]
        assert "oauth-client-secret-42" not in login_page.headers["Location"]
        assert requests.get(f"{served.base}/api/status", timeout=5).status_code == 401
    finally:
        log = served.stop()
    assert "oauth-client-secret-42" not in log and COOKIE_SECRET not in log


def test_oauth_claims_map_to_the_highest_role():
    policy = auth.Auth(mode="oauth", role_claim="groups",
                       role_map=auth.parse_role_map("ops=operator, sre=admin"))
    assert policy.role_from_claims({"groups": ["staff", "ops"]}) == "operator"
    assert policy.role_from_claims({"groups": ["ops", "sre"]}) == "admin"
    assert policy.role_from_claims({"groups": "sre"}) == "admin"
    assert policy.role_from_claims({}) == "viewer"
    policy.default_role = "none"
    assert policy.role_from_claims({"groups": ["staff"]}) is None
    assert policy.user_identity("x@example.test", {"groups": ["staff"]}) is None


def test_secret_key_is_still_read_as_cookie_secret():
    from granite_panel.settings import Settings

    old = Settings.from_env({"SECRET_KEY": "s" * 40}, env_file=None)
    assert old.cookie_secret == "s" * 40
    both = Settings.from_env({"SECRET_KEY": "s" * 40, "COOKIE_SECRET": "c" * 40}, env_file=None)
    assert both.cookie_secret == "c" * 40
