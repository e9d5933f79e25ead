"""The fleet view with 1,000 series in headless Chromium: first render and live update.

A fresh ``granite-panel serve --source push`` (the fleet browser test's settings) gets
30 slots of 1,000 series pushed as line protocol. Then, ``--rounds`` times, a new browser
context opens the dashboard and the page's time to its controls is taken; the Fleet card
is opened and timed to its first table row (the target: < 2 s); then one series is pushed
far out in the next slot and timed from the engine's scoring of it (its newest point in
``/api/history`` is the spike) until it tops the table: the live update (the view refreshes at
most once a second, on the engine's 1 s tick). Prints every round, the
medians and each round's page errors (console errors, uncaught errors, failed requests).

    python -m benchmarks.fleet_render [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fleet_push import FLEET_ENV, N_SERIES, fill, name, spike  # noqa: E402
from tests.load import ServerProcess, browsers, server_status  # noqa: E402
from tests.serving import wait_for  # noqa: E402

ROW = ".gp-fleet .tabulator-row"


def newest_value(base: str, series: int) -> float | None:
    """The newest scored point of ``series`` (``/api/history``), None before it has one."""
    answer = requests.get(f"{base}/api/history", params={"series": name(series), "limit": 1},
                          timeout=5).json()
    points = answer.get("points") or []
    return points[-1]["value"] if points else None


def one_round(chromium, base: str, series: int) -> dict:
    started = time.monotonic()
    session = chromium.open(base)
    page = session.page
    controls = time.monotonic() - started
    opened = time.monotonic()
    page.get_by_role("button", name="Fleet", exact=True).click()
    page.locator(ROW).first.wait_for(timeout=60_000)
    first_row = time.monotonic() - opened
    value = -90.0 - series  # each round's spike outranks the last
    spike(base, series, value=value)
    # the point waits in its open slot until the engine closes it (1-3 s): time the view
    # from then, when the engine has scored it
    wait_for(lambda: newest_value(base, series) == value, 30, interval=0.05)
    scored = time.monotonic()
    wait_for(lambda: name(series) in page.locator(ROW).first.inner_text(), 30, interval=0.05)
    live = time.monotonic() - scored
    errors = list(session.errors)
    session.close()
    return {"controls": controls, "first_row": first_row, "live": live, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with ServerProcess(env=FLEET_ENV, args=("--source", "push")) as server, \
            browsers() as chromium:
        fill(server.base, int(time.time()))
        wait_for(lambda: server_status(server.base)["n_series"] == N_SERIES, 60)
        rounds = []
        for r in range(args.rounds):
            result = one_round(chromium, server.base, series=500 + r)
            rounds.append(result)
            print(f"round {r + 1}: page to controls {result['controls']:.2f} s, Fleet card to "
                  f"first row {result['first_row']:.2f} s, scored spike to top row "
                  f"{result['live']:.2f} s, page errors {len(result['errors'])}", flush=True)
    for key, label in (("controls", "page to controls"), ("first_row", "Fleet first render"),
                       ("live", "live update")):
        values = [r[key] for r in rounds]
        print(f"median {label}: {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f})")
    print(f"page errors: {sum(len(r['errors']) for r in rounds)}; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
