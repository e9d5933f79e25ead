"""Server CPU per viewer update: the live chart's Bokeh streaming against a HoloViews overlay.

A ``Dashboard`` is rendered into a Bokeh ``Document`` (what a served session holds, without
the websocket); each round makes one engine tick and times the viewer's poll. Printed: the
median ms of a pushed poll (the chart only), of the same with the PATCH-DOC message that
a served session then makes of its changes (serialized as Bokeh's server writes it to the
websocket, once per viewer), of a poll that also refreshes the status panes, and of the
same streams drawn the way the chart was drawn before (six ``hv.DynamicMap`` layers
overlaid, refreshed by one trigger per poll; that page holds the live chart too, so its
figure includes the first one).

    python benchmarks/chart_update.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
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


def patch_message(document):
    """A function that turns the document's changes since its last call into one PATCH-DOC
    message and serializes it, as a served session does after each poll (Panel's
    ``hold`` sends the changes it collected in one message per connection)."""
    from bokeh.document.events import DocumentPatchedEvent
    from bokeh.protocol import Protocol

    import panel as pn

    events, protocol = [], Protocol()
    document.callbacks.on_change(events.append)
    # Panel hands a hold's changes to the document's change callbacks only once a page is
    # connected (private state: Panel 1.9.4); otherwise it drops them, having no one to tell
    pn.state._connected[document] = True

    def send():
        """The message (None when nothing changed), its three JSON parts made."""
        patched = [event for event in events if isinstance(event, DocumentPatchedEvent)]
        events.clear()
        if not patched:
            return None
        message = protocol.create("PATCH-DOC", patched)
        message.header_json, message.metadata_json, message.content_json  # noqa: B018
        return message
    return send


def timed(dashboard, engine, rounds: int, send=None, **poll) -> float:
    times = []
    for _ in range(rounds):
        engine.step()
        started = time.perf_counter()
        dashboard.controller.poll(**poll)
        if send is not None:
            send()
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
    variants = ("live chart, pushed poll", "pushed poll and its message",
                "live chart, poll with status", "HoloViews overlay")
    for variant in variants:
        engine = Engine(settings)
        for _ in range(60):
            engine.step()
        dashboard = Dashboard(engine, autopoll=False)
        document = Document()
        pn.state.curdoc = document
        # the session's own thread, as a served poll runs (private state: Panel 1.9.4; else
        # Panel takes the poll for one from a thread and defers its changes to a next tick)
        pn.state._thread_id = threading.get_ident()
        view = dashboard.__panel__()
        if variant == "HoloViews overlay":
            view = pn.Column(view, pn.pane.HoloViews(overlay(dashboard.controller)))
        document.add_root(view.get_root(document))
        dashboard.controller.poll()
        gc.freeze()  # as the server does after start-up (server/gc_policy.py)
        status = variant == "live chart, poll with status"
        send = patch_message(document) if variant == "pushed poll and its message" else None
        results[variant] = timed(dashboard, engine, args.rounds, send=send, status=status)
        engine.stop()
    for variant, ms in results.items():
        print(f"{variant:32s} {ms:8.1f} ms per poll (median of {args.rounds - 3})")
    print(f"overlay / pushed live chart: {results['HoloViews overlay'] / results['live chart, pushed poll']:.0f}x")


if __name__ == "__main__":
    main()
