"""What one dashboard page costs its browser per tick of a 10 Hz stream (Chromium CPU).

A fresh ``granite-panel serve`` (the synthetic stream at ``--interval``), one page in a
headless Debian Chromium, Start pressed, ``--warmup`` seconds discarded, then the CPU time
(user + system, psutil) that each kind of Chromium process used over ``--seconds``,
divided by the ticks the engine made meanwhile: milliseconds of CPU per tick, which is what
decides how many pages a machine's cores can keep up to date (ten pages at 10 Hz need
ten times one page's figure every 100 ms). CPU time, not wall time, so a busy machine
slows the run but moves the figure less. Repeated ``--repeats`` times; the median is
printed last.

``--floor`` first measures, in the same Chromium, two pages that are not the dashboard and
update 10 times a second the same way: a bare ``<canvas>`` that clears and strokes one
2,048-point line, and a bare BokehJS figure (no server, no Panel) whose one 2,048-point
line gets a point streamed into its source. They say what any repainting page and what
BokehJS itself cost per update here, so the dashboard's figure can be read against them.

``--floor-pages 1 10`` measures, instead of CPU, the latency of N bare BokehJS pages open at
once, each pushed a point every 100 ms by its own clock (each due point streamed on its own,
as queued websocket messages would be): how late each point is drawn, from when it was due
to the next animation frame (as the dashboard's latency probe times it). With no server and
nothing of the dashboard's, it is what BokehJS alone allows N pages on this machine.

    python -m benchmarks.page_cost [--seconds 30] [--repeats 3] [--interval 0.1] [--floor]
        [--floor-pages 1 10]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.load import (  # noqa: E402
    VIEWPORT, ServerProcess, browsers, chromium_processes, cpu_seconds, open_then_start,
    percentile, server_status,
)
from tests.ui.conftest import PageErrors  # noqa: E402


def process_kind(process) -> str:
    """Chromium's own name for a process's role (``--type=renderer``, ...), or browser."""
    try:
        arguments = process.cmdline()
    except Exception:  # ended meanwhile
        return "ended"
    return next((a.split("=", 1)[1] for a in arguments if a.startswith("--type=")), "browser")


# Each reference page counts its updates in ``window.updates`` (see ``measure_floor``).
CANVAS_PAGE = """<canvas id="chart" width="1220" height="420"></canvas><script>
const context = document.getElementById("chart").getContext("2d");
window.updates = 0;
setInterval(() => requestAnimationFrame(() => {
  const shift = ++window.updates;
  context.clearRect(0, 0, 1220, 420);
  context.beginPath();
  for (let i = 0; i < 2048; i++) {
    const x = i * 1220 / 2048, y = 210 + 100 * Math.sin((i + shift) / 30) + 20 * Math.random();
    if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
  }
  context.lineWidth = 1;
  context.strokeStyle = "#1f4e79";
  context.stroke();
}), 100);
</script>"""

# The next point of a reference page's line (100 ms after its last), streamed into the
# 2,048-row source; shared by the two ways of pushing points below.
_NEXT_POINT = """
  const source = Bokeh.documents[0].get_model_by_name("points");
  const streamNextPoint = () => {
    const time = source.data.time[source.data.time.length - 1] + 100;
    source.stream({time: [time], value: [Math.sin(time / 3000) + 0.1 * Math.random()]}, 2048);
    window.updates++;
  };
  window.updates = 0;"""

STREAM_ONE_POINT = "() => {" + _NEXT_POINT + """
  setInterval(streamNextPoint, 100);
}"""


def bokeh_page() -> str:
    """A standalone BokehJS figure (inline resources) with one 2,048-point line on a
    datetime axis, 1220 x 420 px; ``STREAM_ONE_POINT`` then streams into its source.

    The chart gets a Document of its own: left without one, bokeh borrows ``curdoc()``,
    which raises when an earlier Panel server in the same process left a patched one
    behind (seen in CI after the load tests)."""
    import numpy as np
    from bokeh.document import Document
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    rows = np.arange(2048)
    source = ColumnDataSource(name="points", data={
        "time": (1.7e12 + 100.0 * rows).tolist(), "value": np.sin(rows / 30).tolist()})
    chart = figure(width=1220, height=420, x_axis_type="datetime")
    chart.line("time", "value", source=source, line_width=1)
    Document().add_root(chart)
    return file_html(chart, INLINE, "page_cost floor")


def open_reference(chromium, html: str, bokeh: bool) -> tuple:
    """(context, page, its PageErrors) showing ``html`` in a context of its own, at the
    sessions' viewport; with ``bokeh``, once BokehJS has rendered its document."""
    context = chromium.browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = PageErrors(page)
    page.set_content(html)
    if bokeh:
        page.wait_for_function("() => window.Bokeh?.documents?.length > 0")
    return context, page, errors


def measure_floor(seconds: float, warmup: float, playwright=None) -> dict:
    """Chromium CPU ms per update of the two reference pages (see the module docstring)."""
    results = {}
    with browsers(playwright) as chromium:
        for name, html, start in (("canvas", CANVAS_PAGE, None),
                                  ("bokehjs", bokeh_page(), STREAM_ONE_POINT)):
            context, page, errors = open_reference(chromium, html, bokeh=start is not None)
            if start is not None:
                page.evaluate(start)
            page.wait_for_timeout(warmup * 1000)
            processes = chromium_processes()
            cpu, updates = cpu_seconds(processes), page.evaluate("window.updates")
            page.wait_for_timeout(seconds * 1000)
            cpu = cpu_seconds(processes) - cpu
            updates = page.evaluate("window.updates") - updates
            context.close()
            results[name] = {"updates": updates, "page_errors": len(errors),
                             "ms_per_update": 1000 * cpu / max(updates, 1)}
    return results


# A page pushed a point every 100 ms, as the dashboard's pages are: each due point is
# streamed on its own (a queued websocket message each), stamped with the time it was due,
# and the next animation frame records how late it was drawn (as ``ui/latency_probe``).
PACED_STREAM = "() => {" + _NEXT_POINT + """
  window.samples = [];
  const start = performance.now();
  let due = 0;
  setInterval(() => {
    const now = performance.now(), stamps = [];
    for (; start + 100 * (due + 1) <= now; due++) {
      streamNextPoint();
      stamps.push(start + 100 * (due + 1));
    }
    if (stamps.length) requestAnimationFrame(() => {
      const drawn = performance.now();
      for (const stamp of stamps) window.samples.push(drawn - stamp);
    });
  }, 10);
}"""


def measure_floor_latency(pages: int, seconds: float, warmup: float,
                          playwright=None) -> dict:
    """``pages`` bare BokehJS pages at once (a context each), each pushed a point every
    100 ms by its own clock (``PACED_STREAM``): due-to-drawn p50 / p95 over every page,
    after ``warmup`` seconds. What BokehJS alone allows, with no server and nothing of ours."""
    html = bokeh_page()
    with browsers(playwright) as chromium:
        sessions = [open_reference(chromium, html, bokeh=True) for _ in range(pages)]
        processes = chromium_processes()
        for _, page, _ in sessions:
            page.evaluate(PACED_STREAM)
        sessions[0][1].wait_for_timeout(warmup * 1000)
        skip = [page.evaluate("window.samples.length") for _, page, _ in sessions]
        cpu = cpu_seconds(processes)
        sessions[0][1].wait_for_timeout(seconds * 1000)
        cpu = cpu_seconds(processes) - cpu
        samples = [x for (_, page, _), n in zip(sessions, skip)
                   for x in page.evaluate("window.samples")[n:]]
        errors = sum(len(errors) for _, _, errors in sessions)
        for context, _, _ in sessions:
            context.close()
    return {"pages": pages, "samples": len(samples), "page_errors": errors,
            "p50_ms": percentile(samples, 0.5), "p95_ms": percentile(samples, 0.95),
            "chromium_cpu_percent": 100 * cpu / seconds}


def by_kind(processes) -> dict[str, list]:
    """``processes`` grouped by ``process_kind`` (read once: it parses each command line)."""
    groups = collections.defaultdict(list)
    for process in processes:
        groups[process_kind(process)].append(process)
    return dict(groups)


def measure(seconds: float, interval: float, warmup: float, playwright=None,
            display_timezone: str = "") -> dict:
    """CPU ms per tick by Chromium process kind, for one page watching the stream (on
    ``playwright``'s Chromium, or a Playwright of its own; see ``tests.load.browsers``);
    ``display_timezone``: the server's DISPLAY_TIMEZONE (empty: the browser's, UTC here)."""
    env = {"DATA_GENERATION_INTERVAL": str(interval)}
    if display_timezone:
        env["DISPLAY_TIMEZONE"] = display_timezone
    with ServerProcess(env=env, autostart=False) as server, browsers(playwright) as chromium:
        (page,) = open_then_start(server, chromium, 1)
        chromium.pump(warmup, page)
        kinds = by_kind(chromium_processes())
        before = {kind: cpu_seconds(group) for kind, group in kinds.items()}
        ticks_before = server_status(server.base)["ticks"]
        chromium.pump(seconds, page)
        after = {kind: cpu_seconds(group) for kind, group in kinds.items()}
        ticks = server_status(server.base)["ticks"] - ticks_before
        errors = len(page.errors)
        page.close()
    per_tick = {kind: 1000 * (after[kind] - before[kind]) / max(ticks, 1) for kind in after}
    return {"ticks": ticks, "page_errors": errors, "ms_per_tick": per_tick,
            "total_ms_per_tick": sum(per_tick.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.1, help="DATA_GENERATION_INTERVAL (s)")
    parser.add_argument("--floor", action="store_true",
                        help="first measure a bare canvas and a bare BokehJS page the same way")
    parser.add_argument("--floor-pages", type=int, nargs="*", default=[], metavar="N",
                        help="instead: due-to-drawn latency of N bare BokehJS pages at once, "
                             "each pushed 10 points a second (e.g. 1 10); no server")
    parser.add_argument("--display-timezone", nargs="*", default=[""], metavar="ZONE",
                        help="the server's DISPLAY_TIMEZONE for the dashboard runs; several "
                             "zones alternate run by run (e.g. UTC Asia/Kolkata: the chart's "
                             "own Bokeh formatter against the browser's Intl one)")
    args = parser.parse_args()
    for pages in args.floor_pages:
        runs = [measure_floor_latency(pages, args.seconds, args.warmup)
                for _ in range(args.repeats)]
        for run in runs:
            print(f"{pages} bare BokehJS pages at 10 Hz: due to drawn p50 {run['p50_ms']:.0f} ms, "
                  f"p95 {run['p95_ms']:.0f} ms ({run['samples']} points, "
                  f"{run['page_errors']} page errors; Chromium "
                  f"{run['chromium_cpu_percent']:.0f}% of a core; load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        print(f"{pages} pages, median of {len(runs)}: p95 "
              f"{statistics.median(r['p95_ms'] for r in runs):.0f} ms", flush=True)
    if args.floor_pages:
        return
    if args.floor:
        labels = {"canvas": "a bare canvas, one 2,048-point line redrawn",
                  "bokehjs": "a bare BokehJS figure, one 2,048-point line streamed"}
        floors = [measure_floor(args.seconds, args.warmup) for _ in range(args.repeats)]
        for name, label in labels.items():
            figures = [f[name]["ms_per_update"] for f in floors]
            print(f"{label}: median {statistics.median(figures):.1f} ms of Chromium CPU per "
                  f"update ({', '.join(f'{x:.1f}' for x in figures)}; "
                  f"{sum(f[name]['page_errors'] for f in floors)} page errors)", flush=True)
    totals, renderers = {}, {}
    for run, zone in itertools.product(range(args.repeats), args.display_timezone):
        result = measure(args.seconds, args.interval, args.warmup, display_timezone=zone)
        kinds = result["ms_per_tick"]
        totals.setdefault(zone, []).append(result["total_ms_per_tick"])
        renderers.setdefault(zone, []).append(kinds.get("renderer", 0.0))
        shown = f" (DISPLAY_TIMEZONE={zone})" if zone else ""
        print(f"run {run + 1}{shown}: {result['total_ms_per_tick']:.1f} ms of Chromium CPU "
              "per tick "
              f"(renderer {kinds.get('renderer', 0.0):.1f}, GPU process "
              f"{kinds.get('gpu-process', 0.0):.1f}, browser {kinds.get('browser', 0.0):.1f}); "
              f"{result['ticks']} ticks, {result['page_errors']} page errors, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for zone, figures in totals.items():
        shown = f" (DISPLAY_TIMEZONE={zone})" if zone else ""
        print(f"median of {args.repeats}{shown}: {statistics.median(figures):.1f} ms per tick "
              f"(renderer {statistics.median(renderers[zone]):.1f}); at {1 / args.interval:g} Hz "
              f"one page needs {statistics.median(figures) / args.interval / 10:.0f}% of a core")


if __name__ == "__main__":
    main()
