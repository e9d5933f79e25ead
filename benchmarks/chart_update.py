"""Server CPU per viewer update: the live chart's Bokeh streaming against a HoloViews overlay.

A ``Dashboard`` is rendered into a Bokeh ``Document`` (what a served session holds, without
the websocket); each round makes one engine tick and times the viewer's poll. Printed: the
median ms of a pushed poll (the chart only), of a poll that also refreshes the status
panes, and of the same streams drawn the way the chart was drawn before (six
``hv.DynamicMap`` layers overlaid, refreshed by one trigger per poll; that page holds the
live chart too, so its figure includes the first one).

    python benchmarks/chart_update.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def overlay(controller):
    """The chart as it was (HoloViews), over the controller's streams."""
    import holoviews as hv

    def points(markers, level):
        return hv.Points(markers[markers["level"] == level], ["time", "value"])

    layers = [
        hv.DynamicMap(lambda forecast: hv.Area(forecast, "time", ["lower", "upper"]),
                      streams=[controller.forecast]).opts(alpha=0.2),
        hv.DynamicMap(lambda history: hv.Curve(history, "time", "value"),
                      streams=[controller.history]).opts(line_width=1.5),
        hv.DynamicMap(lambda forecast: hv.Curve(forecast, "time", "value"),
                      streams=[controller.forecast]).opts(line_dash="dashed"),
        *(hv.DynamicMap(partial(points, level=level), streams=[controller.markers]).opts(size=9)
          for level in (1, 2, 3)),
    ]
    plot = layers[0]
    for layer in layers[1:]:
        plot = plot * layer
    return plot.opts(hv.opts.Overlay(responsive=True, height=420))


def timed(dashboard, engine, rounds: int, **poll) -> float:
    times = []
    for _ in range(rounds):
        engine.step()
        started = time.perf_counter()
        dashboard.controller.poll(**poll)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    import panel as pn
    from bokeh.document import Document

    from granite_panel.engine.core import Engine
    from granite_panel.settings import Settings
    from granite_panel.ui.dashboard import Dashboard, extension

    extension()
    settings = Settings(data_generation_interval=0.1, forecast_horizon=48, database_url="memory",
                        training="off", fallback_model="SeasonalNaive", anomaly_probability=0.1)
    results = {}
    for variant in ("live chart, pushed poll", "live chart, poll with status", "HoloViews overlay"):
        engine = Engine(settings)
        for _ in range(60):
            engine.step()
        dashboard = Dashboard(engine, autopoll=False)
        document = Document()
        pn.state.curdoc = document
        view = dashboard.__panel__()
        if variant == "HoloViews overlay":
            view = pn.Column(view, pn.pane.HoloViews(overlay(dashboard.controller)))
        document.add_root(view.get_root(document))
        dashboard.controller.poll()
        status = variant == "live chart, poll with status"
        results[variant] = timed(dashboard, engine, args.rounds, status=status)
        engine.stop()
    for variant, ms in results.items():
        print(f"{variant:32s} {ms:8.1f} ms per poll (median of {args.rounds - 3})")
    print(f"overlay / pushed live chart: {results['HoloViews overlay'] / results['live chart, pushed poll']:.0f}x")


if __name__ == "__main__":
    main()
