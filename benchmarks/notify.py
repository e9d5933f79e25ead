"""What notifications cost the stream, and how fast they go out.

    .venv/bin/python benchmarks/notify.py [--incidents 2000] [--receivers 3]

1. ``Dispatcher.submit`` (what the engine's tick thread pays): microseconds per event, with
   ``--receivers`` receivers that never answer (every queue fills, the oldest drop), i.e.
   the worst case for the tick.
2. Delivery: ``--incidents`` incidents (opened + closed each) to one loopback receiver per
   format (json, slack, alertmanager), deliveries per second end to end (payload, HTTP
   POST, answer) on one worker thread per receiver.
Receivers are the test suite's real HTTP servers (tests/webhooks.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.detection.incidents import IncidentEvent  # noqa: E402
from granite_panel.notify import Dispatcher, NotifyConfig  # noqa: E402
from tests.webhooks import WebhookReceiver  # noqa: E402


def events(n: int, series: str = "cpu") -> list[IncidentEvent]:
    out = []
    for i in range(n):
        start = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        incident = {"id": f"{series}@{i}", "series": series, "row": 0, "start": start,
                    "end": None, "last_flagged": start, "ongoing": True, "peak_score": 0.9,
                    "severity": "high", "points": 1, "acknowledged": False, "muted": False,
                    "band": None}
        out.append(IncidentEvent("opened", incident, True))
        out.append(IncidentEvent("closed", {**incident, "end": start, "ongoing": False}, False))
    return out


def submit_cost(n: int, receivers: int) -> None:
    with WebhookReceiver(hang=True) as hanging:
        config = NotifyConfig.from_mapping({"receivers": [
            {"name": f"r{k}", "url": f"{hanging.url}/{k}", "timeout": 60}
            for k in range(receivers)]})
        dispatcher = Dispatcher(config, "http://localhost:5006/")
        batch = events(n)
        started = time.perf_counter()
        for event in batch:
            dispatcher.submit([event])
        elapsed = time.perf_counter() - started
        state = dispatcher.status()["receivers"]["r0"]
        dispatcher.close(timeout=0.1)
    print(f"submit: {elapsed / len(batch) * 1e6:.1f} us per event ({len(batch)} events, "
          f"{receivers} hanging receivers; r0 queued {state['queued']}, dropped {state['dropped']})")


def delivery_rate(n: int) -> None:
    with WebhookReceiver() as server:
        for fmt in ("json", "slack", "alertmanager"):
            config = NotifyConfig.from_mapping(
                {"receivers": [{"name": fmt, "url": f"{server.url}/{fmt}", "format": fmt}]})
            dispatcher = Dispatcher(config, "http://localhost:5006/", queue_size=10 * n)
            started = time.perf_counter()
            dispatcher.submit(events(n, series=fmt))
            dispatcher.wait_idle(timeout=600)
            elapsed = time.perf_counter() - started
            sent = dispatcher.status()["receivers"][fmt]["sent"]
            dispatcher.close()
            print(f"deliver {fmt}: {sent} in {elapsed:.2f} s = {sent / elapsed:.0f} per s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--receivers", type=int, default=3)
    args = parser.parse_args()
    submit_cost(args.incidents, args.receivers)
    delivery_rate(args.incidents)


if __name__ == "__main__":
    main()
