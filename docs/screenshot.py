"""Take docs/dashboard.png from the real server in headless Chromium (Debian's).

    .venv/bin/python docs/screenshot.py [--seconds 60] [--out docs/dashboard.png]

Starts ``granite-panel serve`` with three synthetic series and the default settings (the
default detector, hybrid_entropy; AutoTheta fallback offline), presses Start, lets the stream
run so that forecasts mature and the band calibrates, and saves a full-page screenshot. The
browser is a viewer's in Berlin (``--timezone``), so the page shows Berlin's clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serving import running_server  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="stream time before the shot")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--timezone", default="Europe/Berlin", help="the browser's zone")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    env = {"N_SERIES": "3", "DATA_GENERATION_INTERVAL": "0.5", "ANOMALY_PROBABILITY": "0.05",
           "FORECAST_HORIZON": "96"}
    with running_server(env=env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1400, "height": 900},
                                timezone_id=args.timezone)
        page.goto(url + "/")
        page.get_by_role("button", name="Start").click()
        time.sleep(args.seconds)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
