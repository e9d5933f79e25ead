"""HTTP hardening of the served process: security headers, body limits, websocket origins.

The headers go on every response (Bokeh's page, its static files, the login page, the
REST API) through a Tornado output transform, the one hook every handler passes through.
They stay clear of Bokeh's inline scripts: no script CSP, only ``frame-ancestors``.
"""

from __future__ import annotations

import ipaddress

from tornado.web import OutputTransform

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}
SMALL_BODY_MAX = 1024 * 1024  # the largest body of any route but /api/ingest (login, mute)


class SecurityHeaders(OutputTransform):
    """Adds ``SECURITY_HEADERS`` to the first chunk of every response."""

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        return status_code, headers, chunk


def add_security_headers(server) -> None:
    """Install the transform on a (not yet started) Bokeh/Panel server."""
    server._tornado.transforms.append(SecurityHeaders)


def http_server_options(ingest_max_bytes: int) -> dict:
    """Tornado's own cap on any body (a backstop: /api/ingest answers 413 JSON itself)."""
    return {"max_body_size": max(ingest_max_bytes, SMALL_BODY_MAX)}


def websocket_message_limit(file_max_bytes: int) -> int:
    """Largest websocket message a page may send: a file opened in the dashboard travels in
    one, base64-encoded (4/3 of its size) in a JSON patch; never below Bokeh's 20 MiB."""
    return max(20 * 1024 * 1024, -(-file_max_bytes * 4 // 3) + 1024 * 1024)


def is_loopback(address: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 listen only to this machine."""
    if address.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def websocket_origins(address: str, port: int, allowed=()) -> list[str]:
    """Origins a page may open the websocket from: this machine's names plus ``allowed``.

    ``*`` only when asked for. Listening on every interface (0.0.0.0, ::) adds nothing by
    itself: the names users browse to are unknown here, so they are given explicitly.
    """
    origins = {f"localhost:{port}", f"127.0.0.1:{port}"}
    if address not in ("0.0.0.0", "::", ""):
        origins.add(f"{address}:{port}")
    for origin in allowed:
        origin = origin.strip()
        if origin:
            origins.add(origin)
    return sorted(origins)
