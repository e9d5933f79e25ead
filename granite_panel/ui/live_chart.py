"""The live chart: history, forecast and band, anomaly markers, drawn by Bokeh directly.

The controller's ``hv.streams`` (``history`` and ``markers`` Buffers, the ``forecast``
Pipe) stay the data every viewer, notebook and test reads; this view subscribes to them
and turns each update into the cheapest Bokeh change: ``ColumnDataSource.stream`` of the
rows that are new (history, markers) and one ``data`` replacement for the forecast.

Why not ``DynamicMap``s over the streams, as before: each refresh of the six-layer
HoloViews overlay re-ran every layer, its options and ranges, and re-walked the document,
135 ms of server CPU per viewer per poll (median, ``benchmarks/chart_update.py``), which is
more than a 2-core server has once a few viewers watch a 10 Hz stream; streaming into the
sources costs about 1 ms (a whole pushed poll 5 ms). The figure is built once, with the
look the overlay had.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Legend, LegendItem
from bokeh.layouts import column
from bokeh.plotting import figure

from ..detection.live import CRITICAL, HIGH, MEDIUM, SEVERITY_COLORS, SEVERITY_NAMES
from . import bokehjs_patches
from .display_time import DisplayClock

HISTORY_COLOR = "#1f4e79"
FORECAST_COLOR = "#e8710a"
HEIGHT = 420
# 1 px: Chromium's software canvas draws a line up to 1 px wide as a hairline; the 1.5 px
# history line (2,048 points) cost about 12 ms of a page's CPU per tick at 10 Hz (31.6 vs
# 43.4 ms, one page, README "Proven under load").
HISTORY_WIDTH = 1
LEGEND_HEIGHT = 32
INLINE_ROWS = 64  # see _columns
DRAWN = "live chart:"  # the drawn layers' names start so: "live chart: history", ...

# A legend key's visibility, copied to the layers it stands for (see ``LiveChart._legend``)
FOLLOW_KEY = """
const drawn = cb_obj.document?.get_model_by_id(id);
if (drawn != null) drawn.visible = cb_obj.visible;
"""


def _columns(columns: dict) -> dict:
    """Columns (name -> array) for a Bokeh source: times as ms since the epoch (what BokehJS
    draws), and an update of up to ``INLINE_ROWS`` rows as plain lists, which travel inside
    the message's JSON: a numpy column travels as a binary buffer, two websocket frames of
    its own, and a tick's update (one point and a forecast) took 15 frames instead of 3."""
    out = {}
    for name, column in columns.items():
        if name == "time":
            column = column.astype("datetime64[ns]").astype(np.int64) / 1e6
        out[name] = column.tolist() if len(column) <= INLINE_ROWS else column
    return out


def _arrays(frame: pd.DataFrame, names) -> dict:
    """``frame``'s columns ``names`` as numpy arrays (slicing arrays, not the frame: pandas'
    own indexing cost more than the rest of a viewer's update)."""
    return {name: frame[name].to_numpy() for name in names}


def _new_rows(columns: dict, last) -> dict:
    """The rows of ``columns`` (a Buffer's data, oldest first) later than ``last``."""
    if last is None:
        return columns
    start = int(np.searchsorted(columns["time"], last, side="right"))
    return {name: column[start:] for name, column in columns.items()}


class LiveChart:
    """One viewer's chart, fed by its controller's streams (see the module docstring)."""

    def __init__(self, controller, band_label: str, clock: DisplayClock | None = None):
        self.controller = controller
        self.clock = clock or DisplayClock()
        # times in ms since the epoch, as BokehJS draws them (see _columns)
        self.history = ColumnDataSource(data={"time": [], "value": []})
        self.forecast = ColumnDataSource(data={"time": [], "value": [], "lower": [], "upper": []})
        self.markers = {
            level: ColumnDataSource(data={"time": [], "value": []})
            for level in (MEDIUM, HIGH, CRITICAL)
        }
        self._last = {"history": None, "markers": None}
        self.figure, self.legend_figure = self._figures(band_label)
        self.pane = pn.pane.Bokeh(
            column(self.legend_figure, self.figure, sizing_mode="stretch_width"),
            sizing_mode="stretch_width", min_height=HEIGHT + LEGEND_HEIGHT,
        )
        self._show_zone()
        self._on_history(history=controller.history.data)
        self._on_markers(markers=controller.markers.data)
        self._on_forecast(forecast=controller.forecast.data)
        controller.history.add_subscriber(self._on_history)
        controller.markers.add_subscriber(self._on_markers)
        controller.forecast.add_subscriber(self._on_forecast)
        self.clock.param.watch(lambda _: self._show_zone(), "zone")
        # Panel (1.9.4) drops the changes made between a served page's pull of its
        # document and its "ready" (it expects to send the whole document later, but the
        # pull has sent it already): rows streamed in that window never reached the page,
        # and later ticks only append. Once the page is ready it gets the sources whole.
        pn.state.onload(self._resend)
        bokehjs_patches.install(pn.state.curdoc)

    def _figures(self, band_label: str):
        """(chart, legend strip): the chart of the drawn layers, and their legend."""
        plot = figure(
            x_axis_type="datetime", height=HEIGHT, sizing_mode="stretch_width",
            y_axis_label="value",  # the time axis' label and labels: _show_zone
            tools="pan,wheel_zoom,box_zoom,reset,save", active_drag="pan",
            # Canvas, not WebGL: BokehJS's WebGL scatter threw "Offset is outside the
            # bounds of the DataView" once a few hundred anomaly markers were drawn.
            output_backend="canvas",
        )
        # The ranges follow the data in the page; sending their new bounds back to the
        # server cost two messages per tick per viewer, for bounds nobody reads there.
        plot.x_range.syncable = plot.y_range.syncable = False
        layers = [  # (legend label, glyph method, its options, the source it draws)
            (band_label, "varea", dict(x="time", y1="lower", y2="upper",
                                       color=FORECAST_COLOR, alpha=0.2), self.forecast),
            ("history", "line", dict(x="time", y="value", color=HISTORY_COLOR,
                                     line_width=HISTORY_WIDTH),
             self.history),
            ("forecast", "line", dict(x="time", y="value", color=FORECAST_COLOR, line_width=2.5,
                                      line_dash="dashed"), self.forecast),
        ] + [
            # One layer per severity, each in its own colour. (Colouring one layer through a
            # colour mapper made BokehJS throw "Offset is outside the bounds of the DataView"
            # once a hundred or so markers had been streamed.)
            (SEVERITY_NAMES[level], "scatter", dict(x="time", y="value", size=9,
                                                    color=SEVERITY_COLORS[level],
                                                    line_color="black"), source)
            for level, source in self.markers.items()
        ]
        drawn = {label: getattr(plot, glyph)(source=source, name=f"{DRAWN} {label}", **options)
                 for label, glyph, options, source in layers}
        plot.add_tools(HoverTool(  # its tooltips: _show_zone
            renderers=[drawn[SEVERITY_NAMES[level]] for level in self.markers]))
        plot.x_range.renderers = plot.y_range.renderers = list(drawn.values())
        return plot, self._legend(layers, drawn)

    @staticmethod
    def _legend(layers, drawn):
        """The legend, in a strip of its own above the chart: each item a *key*, the same
        glyph over a source of one NaN row that never changes (Bokeh draws no key for an
        empty source), which hides its drawn layer when clicked.

        Why not the chart's own legend: BokehJS 3.9 rebuilds a legend's items (six new
        canvases and their DOM) whenever anything they reference changes, however deep, so
        items naming the drawn layers were rebuilt on every tick streamed into their
        sources (a third of the page's CPU at 10 Hz); and a legend inside the chart redraws
        its keys and restyles itself at every repaint. The keys reference no drawn layer,
        not even through their callback (it finds the layer by id in the page's document),
        and their figure never repaints while the chart streams."""
        strip = figure(height=LEGEND_HEIGHT, sizing_mode="stretch_width", toolbar_location=None,
                       x_range=(0, 1), y_range=(0, 1), min_border=0, outline_line_color=None)
        strip.axis.visible = strip.grid.visible = False
        nothing = ColumnDataSource(data={c: [np.nan] for c in ("time", "value", "lower", "upper")})
        items = []
        for label, glyph, options, _ in layers:
            key = getattr(strip, glyph)(source=nothing, **options)
            key.js_on_change("visible", CustomJS(args={"id": drawn[label].id}, code=FOLLOW_KEY))
            items.append(LegendItem(label=label, renderers=[key]))
        strip.add_layout(Legend(items=items, location="top_left", orientation="horizontal",
                                click_policy="hide", border_line_color=None,
                                background_fill_alpha=0, margin=0, padding=4))
        return strip

    def _show_zone(self) -> None:
        """Times in the clock's zone (at start, and when it changes): the axis' label and
        labels, the hover's time."""
        axis = self.figure.xaxis[0]
        axis.axis_label = self.clock.axis_label
        axis.formatter = self.clock.tick_formatter()
        field, formatter = self.clock.hover_time()
        hover = self.figure.select_one(HoverTool)
        hover.update(tooltips=[("time", field), ("value", "@value")],
                     formatters={"@time": formatter})
        self._push()

    def _resend(self) -> None:
        """Send every source's data whole (what the server holds; the page may lack rows)."""
        for source in (self.history, self.forecast, *self.markers.values()):
            source.trigger("data", source.data, source.data)
        self._push()

    # -------------------------------------------------- stream subscribers

    def _on_history(self, history=None, **_):
        if history is not None:
            self._append("history", history, {None: self.history},
                         self.controller.history.length)

    def _on_markers(self, markers=None, **_):
        if markers is not None:
            self._append("markers", markers, self.markers, self.controller.markers.length)

    def _append(self, key: str, frame: pd.DataFrame, sources: dict, length: int) -> None:
        """Stream the rows after the last one drawn; an empty frame (a cleared Buffer:
        new series, reset) empties the sources."""
        if frame.empty:
            for source in sources.values():
                source.data = {name: column[:0] for name, column in source.data.items()}
            self._last[key] = None
            self._push()
            return
        names = ["time", "value"] + ([] if None in sources else ["level"])
        new = _new_rows(_arrays(frame, names), self._last[key])
        if not len(new["time"]):
            return
        self._last[key] = new["time"][-1]
        for level, source in sources.items():
            if level is None:
                rows = new
            else:
                at_level = new["level"] == level
                rows = {name: column[at_level] for name, column in new.items()}
            if len(rows["time"]):
                source.stream(_columns({"time": rows["time"], "value": rows["value"]}),
                              rollover=length)
        self._push()

    def _on_forecast(self, forecast=None, **_):
        if forecast is not None:
            self.forecast.data = _columns(_arrays(forecast, ("time", "value", "lower", "upper")))
            self._push()

    def _push(self) -> None:
        """Inline in a notebook, Bokeh changes reach the page only when pushed (a served
        page gets them with the document's next message; there this does nothing)."""
        pn.io.push_notebook(self.pane)
