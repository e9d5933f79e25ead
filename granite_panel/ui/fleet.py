"""The fleet view: every series at a glance, the most anomalous first, updated live.

A ``pn.widgets.Tabulator`` with one row per series (name, last value, a sparkline of the
last points, the anomaly score now, the open incident, incidents in the last hour, the
live MASE of its forecasts) and a
HoloViews ``Image`` (a heat map) of the anomaly score of the top N series over the last
hour. A click on a row selects that series in the main chart (``controller.series``).

Why it stays cheap with a thousand series:

- the table's ``value`` keeps the engine's row order (index = row) and a refresh writes
  only the changed rows into it, in place; the order on screen (score, descending) is the
  table's ``sorters``, so any column can be sorted and names filtered;
- ``pagination="remote"``: Panel sorts and filters on the server and the browser receives
  one page of rows, never the thousand, at first render and at every refresh;
- it reads ``engine.snapshot(last=30)`` (the sparklines' slots, not the whole history) and,
  for the heat map, the last hour of the top N rows only (``engine.recent_scores``),
  binned to at most ``heatmap_columns`` columns before it goes to the browser;
- it refreshes from the controller's own poll, at most once per ``refresh_seconds``, and
  only when the engine ticked or its incidents changed: no callback of its own to stop.

``FleetView(controller)`` renders inline in a notebook as it does in the served app.
"""

from __future__ import annotations

import math
import time

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from bokeh.palettes import YlOrRd9

from ..detection.incidents import iso
from ..detection.live import SEVERITY_NAMES
from .controller import StreamController

SPARK_CHARS = np.array(list("▁▂▃▄▅▆▇█"))
# Brewer YlOrRd, low to high, as colours: a named map made HoloViews resolve it through
# matplotlib when the card opened (1.0 s of the first render on the loaded 2-core machine)
HEAT_COLOURS = list(YlOrRd9[::-1])
NO_SERIES = "(no series yet)"
TREND_POINTS = 30  # slots in each row's sparkline
COLUMNS = ["series", "last", "trend", "score", "severity", "open incident", "incidents 1h",
           "live MASE"]


def sparklines(values: np.ndarray) -> list[str]:
    """One text sparkline per row of ``values`` [n, k], each scaled to its own range;
    a gap or bad point is a space."""
    values = np.asarray(values, dtype=float)
    n, k = values.shape
    if k == 0:
        return [""] * n
    with _quiet_nan():
        low = np.nanmin(values, axis=1, keepdims=True)
        span = np.nanmax(values, axis=1, keepdims=True) - low
    scaled = np.where(span > 0, (values - low) / np.where(span > 0, span, 1), 0.5)
    codes = np.clip(np.rint(np.nan_to_num(scaled, nan=0) * 7), 0, 7).astype(int)
    chars = np.ascontiguousarray(np.where(np.isfinite(values), SPARK_CHARS[codes], " "))
    return chars.view(f"<U{k}").ravel().tolist()  # each row's k characters as one string


class _quiet_nan:
    """Silence numpy's 'All-NaN slice' warning (a series with only gaps is normal)."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def _last_finite(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column of each row's newest finite value, whether the row has one)."""
    finite = np.isfinite(values)
    has = finite.any(axis=1)
    if values.shape[1] == 0:
        return np.zeros(values.shape[0], dtype=int), has
    return values.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1), has


def _incident_columns(names, incidents: list[dict], now: float) -> tuple[list[str], np.ndarray]:
    """Per series: the severity of its ongoing incident ('' if none) and how many of its
    incidents were active in the hour before ``now``."""
    open_incident = {name: "" for name in names}
    last_hour = dict.fromkeys(names, 0)
    if incidents:
        frame = pd.DataFrame(incidents, columns=["series", "end", "last_flagged", "severity"])
        ongoing = frame["end"].isna()
        rank = frame["severity"].map({name: i for i, name in enumerate(SEVERITY_NAMES)})
        worst = frame[ongoing].assign(rank=rank[ongoing]).sort_values("rank")
        for series, severity in zip(worst["series"], worst["severity"]):
            if series in open_incident:
                open_incident[series] = severity  # the worst one wins (sorted ascending)
        # the tracker's ISO times are fixed-width UTC: as strings they sort as times do
        recent = ongoing | (frame["last_flagged"].fillna("") >= iso(now - 3600))
        for series, count in frame[recent].groupby("series").size().items():
            if series in last_hour:
                last_hour[series] = int(count)
    return [open_incident[n] for n in names], np.array([last_hour[n] for n in names], dtype=int)


def fleet_frame(snapshot, incidents: list[dict], now: float,
                trend_points: int = TREND_POINTS, mase: np.ndarray | None = None) -> pd.DataFrame:
    """One row per series of ``snapshot``, the most anomalous first; index = engine row.

    ``incidents``: the tracker's incidents as ``IncidentTracker.recent()`` lists them;
    ``score``: the magnitude of the detector's score at each series' newest point (|z| for
    the z-score detector, the score in [0, 1] for the others); ``mase``: per series, the
    serving model's live MASE over the accuracy window (``Engine.series_accuracy``; NaN,
    shown empty, until a forecast of it matured).
    """
    names = list(snapshot.names)
    n = len(names)
    values = np.asarray(snapshot.values, dtype=float)[:n]
    score = np.asarray(snapshot.score, dtype=float)[:n]
    severity = np.asarray(snapshot.severity)[:n]
    column, has = _last_finite(values)
    rows = np.arange(n)
    last = np.where(has, values[rows, column], np.nan) if values.shape[1] else np.full(n, np.nan)
    score_now = np.where(has, np.abs(score[rows, column]), 0.0) if values.shape[1] else np.zeros(n)
    severity_now = severity[rows, column] if values.shape[1] else np.zeros(n, dtype=int)
    open_incident, last_hour = _incident_columns(names, incidents, now)
    live_mase = np.full(n, np.nan)
    if mase is not None:
        live_mase[: min(n, len(mase))] = np.round(np.asarray(mase, dtype=float)[:n], 3)
    frame = pd.DataFrame(
        {
            "series": names,
            "last": last,
            "trend": sparklines(values[:, -trend_points:]),
            "score": np.round(np.nan_to_num(score_now), 4),
            "severity": [SEVERITY_NAMES[int(s)] if h else "" for s, h in zip(severity_now, has)],
            "open incident": open_incident,
            "incidents 1h": last_hour,
            "live MASE": live_mase,
        },
        index=pd.RangeIndex(n, name="row"),
        columns=COLUMNS,
    )
    return frame.sort_values(["score", "incidents 1h"], ascending=False, kind="stable")


def heatmap_grid(times, names, score, columns: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(times (k,), names (n,), |score| [n, k]) for the heat map, at most ``columns`` wide.

    A longer span (an hour of one-second slots is 3,600) is cut from the newest slot back
    into equal bins of consecutive slots, each the largest |score| in it (a spike is never
    averaged away), timed at its newest slot; what the browser gets stays ``columns`` wide.
    A gap scores 0. With no series or no slot yet, one placeholder cell, so the plot always
    has a frame to draw.
    """
    times = np.asarray(times, dtype=float)
    names = list(names)
    if not names or len(times) == 0:
        return np.array([time.time()]), [NO_SERIES], np.zeros((1, 1))
    score = np.abs(np.nan_to_num(np.asarray(score, dtype=float)))
    k = len(times)
    width = max(1, math.ceil(k / max(1, columns)))  # slots per bin
    if width > 1:
        bins = math.ceil(k / width)
        pad = bins * width - k  # the oldest bin is the partial one
        score = np.pad(score, ((0, 0), (pad, 0))).reshape(len(names), bins, width).max(axis=2)
        times = np.pad(times, (pad, 0), mode="edge")[width - 1 :: width]
    return times, names, score


def changed_rows(old: pd.DataFrame, new: pd.DataFrame) -> pd.Index:
    """The rows (engine rows) where any cell of ``new`` differs from ``old`` (same index)."""
    differ = np.zeros(len(new), dtype=bool)
    for column in new.columns:
        a, b = old[column].to_numpy(), new[column].to_numpy()
        same = a == b
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            same |= pd.isna(a) & pd.isna(b)
        differ |= ~same
    return new.index[differ]


class FleetView(pn.viewable.Viewer):
    """Every series of the controller's engine: table, heat map, click to open in the chart."""

    controller = param.ClassSelector(class_=StreamController, doc="The viewer's controller.")
    top_n = param.Integer(default=30, bounds=(1, 500),
                          doc="Series in the heat map: the highest scores now.")
    heatmap_seconds = param.Number(default=3600.0, bounds=(1.0, None),
                                   doc="Span of the heat map: the last hour by default (at "
                                   "most what the engine keeps, HISTORY_LIMIT slots).")
    heatmap_columns = param.Integer(default=240, bounds=(2, 10_000),
                                    doc="Most columns the heat map sends; a longer span is "
                                    "binned, each bin the largest score in it.")
    refresh_seconds = param.Number(default=1.0, bounds=(0.0, 3600.0),
                                   doc="Least time between two refreshes of the fleet view.")
    page_size = param.Integer(default=20, bounds=(5, 1000),
                              doc="Rows per page of the table (one page goes to the browser).")
    active = param.Boolean(default=True,
                           doc="Refresh with the controller's poll (off while the view is hidden).")

    def __init__(self, controller: StreamController | None = None, **params):
        if controller is not None:
            params["controller"] = controller
        super().__init__(**params)
        self.updates = 0  # refreshes written into the table in place (tests, benchmarks)
        self.replaced = 0  # refreshes that had to replace the table's value
        self.rows_changed = 0  # rows the last in-place refresh changed
        self._seen = None  # (generation, seq, incidents version) of the last refresh
        self._refreshed_at = -np.inf
        self._incidents = (None, [])  # (tracker version, its incidents)
        self.heatmap = hv.streams.Pipe(data=heatmap_grid([], [], None, 1))
        self.table = pn.widgets.Tabulator(
            self._frame().sort_index(),
            pagination="remote",
            page_size=self.page_size,
            sorters=[{"field": "score", "dir": "desc"}],
            header_filters={
                "series": {"type": "input", "func": "like", "placeholder": "filter names"},
                "open incident": {"type": "input", "func": "like", "placeholder": "severity"},
            },
            formatters={"score": NumberFormatter(format="0.000"),
                        "last": NumberFormatter(format="0.[000]"),
                        "live MASE": NumberFormatter(format="0.00", nan_format="")},
            disabled=True,
            selectable=1,
            show_index=False,
            sizing_mode="stretch_width",
            css_classes=["gp-fleet"],
        )
        self.table.param.watch(self._selected, "selection")
        self._seen = self._version()
        self._refreshed_at = time.monotonic()
        self.controller.param.watch(lambda _: self.refresh(), "status")
        self._layout = self._build()

    # ------------------------------------------------------------ data

    def _version(self):
        engine = self.controller.engine
        return engine.generation, engine.seq, engine.incidents.version

    def _frame(self) -> pd.DataFrame:
        engine = self.controller.engine
        snapshot = engine.snapshot(last=TREND_POINTS)
        if self._incidents[0] != engine.incidents.version:  # as_json of each: not every second
            self._incidents = (engine.incidents.version, engine.incidents.recent())
        frame = fleet_frame(snapshot, self._incidents[1], time.time(),
                            mase=engine.series_accuracy()["mase"])
        top = frame.index[: self.top_n].to_numpy()
        times, score = engine.recent_scores(top, self.heatmap_seconds) if len(top) else ([], None)
        self.heatmap.send(heatmap_grid(times, [snapshot.names[r] for r in top], score,
                                       self.heatmap_columns))
        return frame

    def refresh(self, force: bool = False) -> None:
        """Bring the table and heat map up to date: at most once per ``refresh_seconds``,
        only if the engine changed.

        The changed rows are written into the table's own ``value`` (the same DataFrame,
        so the selection stays) and the table is told; with remote pagination Panel then
        sends the browser the visible page only. (``Tabulator.patch`` sets cell by cell
        with pandas: 4.6 s for the 3,000 cells a tick of 1,000 series changes, and with
        ``sorters`` set it re-sends the page anyway.) Series that joined are streamed.
        """
        now = time.monotonic()
        if not force and not self.active:
            return
        if not force and (now - self._refreshed_at < self.refresh_seconds
                          or self._version() == self._seen):
            return
        self._seen, self._refreshed_at = self._version(), now
        new = self._frame().sort_index()
        table = self.table.value
        n = len(table)
        if len(new) < n or not new["series"].iloc[:n].equals(table["series"]):
            self.table.value = new  # a reset or another engine: nothing to update in place
            self.replaced += 1
            return
        with pn.io.hold():
            rows = changed_rows(table, new.iloc[:n])
            if len(rows):
                table.loc[rows, COLUMNS] = new.loc[rows, COLUMNS]
                self.table.param.trigger("value")
            if len(new) > n:  # series that joined since: appended, not re-sent
                self.table.stream(new.iloc[n:], reset_index=False, follow=False)
        self.updates += 1
        self.rows_changed = len(rows)

    @param.depends("active", watch=True)
    def _shown(self) -> None:
        if self.active:
            self.refresh(force=True)

    def _selected(self, event) -> None:
        if event.new:
            self.controller.series = int(self.table.value.index[event.new[0]])

    # ------------------------------------------------------------ layout

    def heat_map(self) -> pn.pane.HoloViews:
        """|score| of the top N series (rows, the worst on top) over the last hour.

        An ``hv.Image`` on a (seconds ago, rank) grid with the series' names as the y tick
        labels: a quarter of the render time of the same cells as an ``hv.HeatMap``
        (0.16-0.2 s against 0.7-1.3 s for 30 x 120 cells on the 2-core machine)."""
        hv.Store.set_current_backend("bokeh")
        names: list[str] = []

        def image(data):
            times, series, score = data
            names[:] = series
            # x: seconds before the newest slot, with explicit bounds (an Image cannot infer
            # the width of a single column); y = n - 1 - rank, so rank 0 (the worst) is on top
            step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
            width = times[-1] - times[0]
            bounds = (-width - step / 2, -0.5, step / 2, len(series) - 0.5)
            return hv.Image(score, ["seconds ago", "rank"], "score", bounds=bounds)

        def label_rows(plot, element):
            """Series names on the y axis, rank 0 at the top (runs at every frame)."""
            axis = plot.state.yaxis[0]
            count = len(names)
            axis.ticker = list(range(count))
            axis.major_label_overrides = {count - 1 - i: name for i, name in enumerate(names)}

        plot = hv.DynamicMap(image, streams=[self.heatmap]).opts(
            cmap=HEAT_COLOURS, colorbar=True, tools=["hover"], responsive=True, height=420,
            xlabel="seconds before the newest slot", ylabel="",
            title=f"Anomaly score, top {self.top_n} now",
            framewise=True, hooks=[label_rows], clim=(0, None),
        )
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=420)

    def _build(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(self.table, sizing_mode="stretch_width"),
            self.heat_map(),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return self._layout
