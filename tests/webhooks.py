"""Real webhook receivers for the notification tests: an HTTP server on a loopback port
that records every POST and answers from a script (fail a few times, then recover), or
hangs until it is closed."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """``answers``: status codes for the first requests, then ``default`` for the rest;
    ``hang``: hold every request open until ``close()``."""

    def __init__(self, answers=(), default: int = 200, hang: bool = False):
        self.requests: list[dict] = []  # {"path", "body", "at" (monotonic), "status"}
        self._answers = list(answers)
        self._default = default
        self._hang = hang
        self._released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._lock:
                    status = receiver._answers.pop(0) if receiver._answers else receiver._default
                    receiver.requests.append({
                        "path": self.path, "body": json.loads(raw or b"null"),
                        "content_type": self.headers.get("Content-Type"),
                        "at": time.monotonic(), "status": status})
                if receiver._hang:
                    receiver._released.wait(60)
                body = b"ok" if status < 300 else b"failure on purpose"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (its timeout) while we hung
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def bodies(self, path: str | None = None) -> list:
        with self._lock:
            return [r["body"] for r in self.requests if path is None or r["path"] == path]

    def wait(self, count: int, timeout: float = 10.0, path: str | None = None) -> list:
        """The bodies once at least ``count`` requests (to ``path``) arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.bodies(path)) >= count:
                return self.bodies(path)
            time.sleep(0.02)
        raise TimeoutError(f"{len(self.bodies(path))} of {count} requests within {timeout} s")

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
