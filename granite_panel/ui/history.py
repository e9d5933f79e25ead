"""Browse the stored history of the selected series: a time range, a downsampled chart that
re-reads the store as you zoom, and downloads of what you see.

Why a view of its own: the live chart streams the newest ``HISTORY_LIMIT`` points from memory;
months of history live in the store. The store aggregates each range into ~2,000 spans (min
and max per span, so spikes stay visible), HoloViews' ``downsample1d`` thins what is drawn to
the plot's width, and flagged points are drawn on top, never downsampled away.
"""

from __future__ import annotations

import io
import time

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import numpy as np
import pandas as pd
import panel as pn
import param
from holoviews.operation.downsample import downsample1d

from ..detection.live import SEVERITY_COLORS, SEVERITY_NAMES
from .display_time import DisplayClock

RANGES = {  # label -> seconds back from now (None: everything stored)
    "last hour": 3600, "last 6 hours": 6 * 3600, "last day": 86400, "last week": 7 * 86400,
    "last 30 days": 30 * 86400, "last year": 365 * 86400, "everything stored": None,
}
SPANS = 2000  # spans the store aggregates a range into (two points each: min and max)
STORE_COLOR = "#1f4e79"


def overview_frame(overview: dict) -> pd.DataFrame:
    """Min and max of every span as a line: (first, low), (last, high), in time order."""
    if not len(overview["first"]):
        return pd.DataFrame({"time": pd.to_datetime([], utc=True), "value": []})
    times = np.column_stack([overview["first"], overview["last"]]).ravel()
    values = np.column_stack([overview["low"], overview["high"]]).ravel()
    order = np.argsort(times, kind="stable")
    return pd.DataFrame({"time": pd.to_datetime(times[order], unit="s"), "value": values[order]})


def anomaly_frame(anomalies: tuple) -> pd.DataFrame:
    ts, value, score, severity = anomalies
    return pd.DataFrame({"time": pd.to_datetime(ts, unit="s"), "value": value, "score": score,
                         "severity": [SEVERITY_NAMES[int(s)] for s in severity]})


def _epoch(value) -> float | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()


class HistoryView(pn.viewable.Viewer):
    """The stored history of the controller's selected series over a chosen range."""

    range = param.Selector(default="last day", objects=list(RANGES), doc="Time range shown.")
    custom = param.DateRange(default=None, doc="A custom range (clock times of the clock's "
                                               "zone); overrides ``range``.")
    clock = param.ClassSelector(class_=DisplayClock, doc="The zone times are shown in.")

    def __init__(self, controller, **params):
        params.setdefault("clock", DisplayClock())
        super().__init__(**params)
        self.controller = controller

    @property
    def store(self):
        return self.controller.engine.store

    @property
    def series_name(self) -> str | None:
        """The selected series' name (None before any series exists)."""
        names = self.controller.names
        i = self.controller.series
        return names[i] if i < len(names) else None

    def bounds(self) -> tuple[float | None, float | None]:
        """(start, end) in epoch seconds of the chosen range (None: open-ended)."""
        if self.custom is not None:
            start, end = self.custom
            return self.clock.instant(start), self.clock.instant(end, end=True)
        back = RANGES[self.range]
        return (None if back is None else time.time() - back), None

    # ------------------------------------------------------------------ chart

    def _span(self, x_range=None) -> tuple[float | None, float | None]:
        """The zoomed x range if there is one, else the chosen range. A plot with nothing
        drawn yet reports (NaN, NaN), which is no zoom."""
        start, end = self.bounds()
        if x_range is not None and not any(pd.isna(x) for x in x_range):
            start, end = _epoch(x_range[0]), _epoch(x_range[1])
        return start, end

    def curve(self, x_range=None) -> hv.Curve:
        """Min/max of ~2,000 spans of the range, or of the zoomed part of it, from the store."""
        data = overview_frame({"first": [], "last": [], "low": [], "high": []})
        if self.store is not None and self.series_name is not None:
            span = self._span(x_range)
            overview = self.store.overview(self.series_name, *span, SPANS)
            if overview["count"].sum() <= 2 * SPANS:  # few enough: the points themselves
                ts, value, *_ = self.store.history(self.series_name, *span)
                data = pd.DataFrame({"time": pd.to_datetime(ts, unit="s"), "value": value})
            else:
                data = overview_frame(overview)
        return hv.Curve(data, "time", "value", label="stored")

    def markers(self, x_range=None) -> hv.Points:
        """Every flagged point of the span (up to 5,000, newest), never downsampled."""
        data = anomaly_frame((np.empty(0),) * 4)
        if self.store is not None and self.series_name is not None:
            data = anomaly_frame(self.store.anomalies(self.series_name, *self._span(x_range)))
        return hv.Points(data, ["time", "value"], ["score", "severity"], label="anomalies")

    @param.depends("range", "custom", "controller.series", "clock.zone")
    def chart(self):
        if self.store is None:
            return pn.pane.Markdown(
                "*No store (`DATABASE_URL=memory`): the live chart above is all the history "
                "kept; the downloads export what is in memory.*")
        hv.Store.set_current_backend("bokeh")
        # Zooming re-reads the visible span from the store, finer (RangeX: the x range shown);
        # downsample1d then draws no more points than the plot has pixels.
        curve = downsample1d(hv.DynamicMap(self.curve, streams=[hv.streams.RangeX()]),
                             algorithm="lttb").opts(color=STORE_COLOR, line_width=1.2)
        field, formatter = self.clock.hover_time()  # the hover's time in the page's zone
        markers = hv.DynamicMap(self.markers, streams=[hv.streams.RangeX()]).opts(
            color=SEVERITY_COLORS[-1], size=7, line_color="black", tools=["hover"],
            hover_tooltips=[("time", field), ("value", "@value"), ("score", "@score"),
                            ("severity", "@severity")],
            # HoloViews writes the tooltip's fields as @{name}; BokehJS finds a field's
            # formatter under the field as written
            hover_formatters={"@{time}": formatter})
        return pn.pane.HoloViews((curve * markers).opts(
            hv.opts.Overlay(responsive=True, height=300, xlabel=self.clock.axis_label,
                            ylabel="value", xformatter=self.clock.tick_formatter(),
                            legend_position="top_left",
                            backend_opts={"plot.output_backend": "canvas"})),
            sizing_mode="stretch_width", min_height=300)

    # ------------------------------------------------------------------ downloads

    def export_bytes(self, kind: str, fmt: str) -> io.BytesIO:
        """The selected series over the range as a file (what /api/export streams)."""
        from ..engine.persistence import memory_copy

        store, temporary = self.store, False
        if store is None:
            store, temporary = memory_copy(self.controller.engine), True
        start, end = self.bounds()
        names = [self.series_name] if self.series_name is not None else None
        try:
            return io.BytesIO(b"".join(store.export(names, start, end, kind=kind, fmt=fmt)))
        finally:
            if temporary:
                store.close()

    def downloads(self) -> pn.Row:
        buttons = []
        for kind, fmt in (("points", "csv"), ("points", "parquet"), ("forecasts", "csv"),
                          ("incidents", "csv")):
            buttons.append(pn.widgets.FileDownload(
                callback=lambda kind=kind, fmt=fmt: self.export_bytes(kind, fmt),
                filename=f"granite-panel-{kind}.{fmt}", label=f"{kind} ({fmt})",
                color="light", width=150, embed=False))
        return pn.Row(*buttons)

    def __panel__(self):
        picker = pn.widgets.DatetimeRangePicker.from_param(
            self.param.custom, label=f"Custom range ({self.clock.zone})", width=320)
        self.clock.param.watch(
            lambda event: setattr(picker, "label", f"Custom range ({event.new})"), "zone")
        return pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.range, name="Range", width=180),
                   picker, self.downloads()),
            self.chart,
            sizing_mode="stretch_width",
        )
