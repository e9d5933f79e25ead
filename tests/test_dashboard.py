"""The controller and layout without a browser: ticks become stream updates."""

import numpy as np
import panel as pn
import pytest

from granite_panel.ui.controller import StreamController
from granite_panel.ui.dashboard import Dashboard, render_incidents, render_model, render_stats
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings


@pytest.fixture
def engine():
    settings = Settings(
        n_series=3,
        context_length=64,
        forecast_horizon=16,
        history_limit=400,
        anomaly_probability=0.05,
        fallback_model="SeasonalNaive",
        data_generation_interval=0.05,
        model_name="/nonexistent/model-folder",
    )
    engine = Engine(settings)
    yield engine
    engine.stop()


def test_poll_streams_only_new_rows_in_one_batch(engine):
    controller = StreamController(engine)
    assert len(controller.history.data) == 0
    engine.step()
    controller.poll()
    assert len(controller.history.data) == 65  # backfill (context) + the live point
    assert len(controller.forecast.data) == 16
    sent = []
    controller.history.add_subscriber(lambda **_: sent.append(len(controller.history.data)))
    engine.step()
    engine.step()
    controller.poll()
    assert sent == [67]  # two ticks, one update
    assert controller.status["data_points"] == 67 * 3


def test_alerts_newest_first_and_markers(engine):
    controller = StreamController(engine)
    for _ in range(150):
        engine.step()
    controller.poll()
    assert controller.alerts, "5% anomaly rate over 150 ticks must raise alerts"
    times = [a["timestamp"] for a in controller.alerts]
    assert times == sorted(times, reverse=True)
    flagged = (engine.snapshot().severity[0] > 0).sum()
    assert len(controller.markers.data) == flagged
    # the feed: incidents of every series, newest first, fewer than the flagged points
    assert controller.incidents == engine.incidents.recent(len(controller.incidents))
    starts = [i["start"] for i in controller.incidents]
    assert starts == sorted(starts, reverse=True)
    assert 0 < len(engine.incidents.recent()) < engine.counters["anomaly_count"]


def test_series_selector_reloads_that_series(engine):
    controller = StreamController(engine)
    engine.step()
    controller.poll()
    first = controller.history.data["value"].to_numpy().copy()
    controller.series = 2
    second = controller.history.data["value"].to_numpy()
    assert len(second) == len(first)
    assert (second != first).any()
    assert list(second) == list(engine.snapshot().values[2])


def test_reset_by_anyone_clears_every_viewer(engine):
    one, two = StreamController(engine), StreamController(engine)
    engine.step()
    one.poll(), two.poll()
    one.reset()
    two.poll()
    for controller in (one, two):
        assert len(controller.history.data) == 0
        assert len(controller.forecast.data) == 0
        assert controller.status["data_points"] == 0
        assert controller.alerts == [] and controller.incidents == []


def test_start_and_stop_reach_other_viewers(engine):
    one, two = StreamController(engine), StreamController(engine)
    one.start()
    two.poll()
    assert two.running is True
    two.stop()
    one.poll()
    assert one.running is False


def test_a_slow_viewer_resyncs_from_history(engine, monkeypatch):
    import granite_panel.engine.core as engine_module

    controller = StreamController(engine)
    engine.step()
    controller.poll()
    engine.recent_ticks.clear()  # as if this viewer missed more ticks than are kept
    engine.step()
    controller.poll()
    assert len(controller.history.data) == engine.ring.size
    assert engine_module.RECENT_TICKS > 0


def test_detach_stops_the_periodic_callback(engine):
    controller = StreamController(engine)
    controller.attach()
    callback = controller._callback
    assert controller.attached and callback.running
    controller.detach()
    assert not controller.attached and not callback.running


def test_dashboard_layout_has_controls_chart_stats_and_feed(engine):
    dashboard = Dashboard(engine=engine, autopoll=False)
    layout = dashboard.__panel__()
    names = [w.label for w in layout.select(pn.widgets.Button)]
    # Without auth the page is an admin's: the admin card (tokens) comes last.
    assert names == ["Start", "Stop", "Reset", "Acknowledge", "Mute series", "Unmute",
                     "Create token", "Revoke"]
    assert [w.label for w in layout.select(pn.widgets.Select)] == [
        "Series", "Replay speed", "Mute for", "Range", "Role", "Revoke"]
    (chooser,) = layout.select(pn.widgets.FileInput)  # Open a file
    assert chooser.css_classes == ["gp-open-file"] and ".xlsx" in chooser.accept
    assert layout.select(pn.pane.Bokeh)  # the live chart (ui/live_chart.py)
    (fleet,) = [card for card in layout.select(pn.Card) if card.title == "Fleet"]
    assert fleet.collapsed and not layout.select(pn.widgets.Tabulator)  # built once opened
    assert not dashboard.fleet.active
    fleet.collapsed = False
    assert [t.css_classes for t in layout.select(pn.widgets.Tabulator)] == [["gp-fleet"]]
    assert dashboard.fleet.active
    dashboard.controller.step()
    html = "".join(p.object for p in layout.select(pn.pane.HTML) if isinstance(p.object, str))
    assert "stat-data_points" in html


def test_series_selector_shows_names_and_gains_pushed_series():
    """The selector is always there: series may be pushed while the stream runs."""
    from granite_panel.sources.points import Points

    engine = Engine(Settings(fallback_model="SeasonalNaive", context_length=32, history_limit=64))
    dashboard = Dashboard(engine=engine, autopoll=False)
    (select,) = [w for w in dashboard.__panel__().select(pn.widgets.Select) if w.label == "Series"]
    assert list(select.options) == ["synthetic-0"]
    dashboard.controller.step()
    last = engine.snapshot().timestamps[-1]
    engine.ingest_points(Points(('cpu{host="web-1"}',), np.array([last]), np.array([3.0])))
    dashboard.controller.poll()
    assert list(select.options) == ["synthetic-0", 'cpu{host="web-1"}']
    dashboard.controller.series = 1
    assert dashboard.controller.history.data["value"].iloc[-1] == 3.0

def test_renderers_say_what_the_model_is_doing():
    loading = {"model": {"state": "loading", "model_name": "ibm-granite/x"}, "fallback_reason": "loading x"}
    assert "Loading model" in render_model(loading)
    failed = {
        "model": {"state": "failed"},
        "active_model": "AutoTheta",
        "fallback_reason": "TTM-R2 unavailable: no network; using AutoTheta",
    }
    text = render_model(failed)
    assert "AutoTheta" in text and "unavailable: no network" in text
    ready = {"model": {"state": "ready", "device": "cuda"}, "active_model": "TTM-R2 (512-96-r2)"}
    assert "TTM-R2 (512-96-r2)" in render_model(ready) and "cuda" in render_model(ready)
    stats = render_stats({"data_points": 1234, "detection": {"precision": 0.5, "recall": None}})
    assert "1,234" in stats and "50%" in stats and "n/a" in stats
    learning = {"name": "hybrid_entropy", "score": "score", "learning_points": 288}
    assert "hybrid_entropy (learns each series for 288 values before alerting)" in render_stats(
        {"detector": learning})
    assert '<td class="stat-detector">zscore</td>' in render_stats(
        {"detector": {"name": "zscore", "score": "z", "learning_points": 0, "season": None}})
    assert "hybrid_entropy, season estimated per series (learns" in render_stats(
        {"detector": {**learning, "season": "estimate"}})
    assert "hybrid, season 288 points (learns" in render_stats(
        {"detector": {**learning, "name": "hybrid", "season": 288}})
    feed = render_incidents(
        [{"id": "cpu@2026-01-01T00:00:05.000Z", "severity": "critical", "series": "cpu",
          "start": "2026-01-01T00:00:05.000Z", "end": None, "points": 7, "peak_score": 6.0,
          "acknowledged": True, "muted": False,
          "band": {"forecast": 1.0, "lower": 0.5, "upper": 1.5}}], score_label="z")
    assert "CRITICAL" in feed and "incident-critical" in feed and "ONGOING" in feed
    assert "7 points" in feed and "z +6.0" in feed and "band 0.50 to 1.50" in feed and "ACK" in feed
    assert "No incidents" in render_incidents([])


def test_the_charts_legend_references_no_source_that_streams(engine):
    """BokehJS rebuilds a legend's items whenever anything they reference changes: a legend
    naming the drawn layers was rebuilt on every tick (ui/live_chart.py, LiveChart._legend)."""
    from bokeh.models import ColumnDataSource, GlyphRenderer, Legend

    chart = Dashboard(engine=engine, autopoll=False).live_chart
    assert not chart.figure.select(type=Legend)  # the legend has a strip of its own
    (legend,) = chart.legend_figure.select(type=Legend)
    referenced = {model for item in legend.items for model in item.references()}
    streaming = [chart.history, chart.forecast, *chart.markers.values()]
    assert not referenced & set(streaming)
    keys = [s for s in referenced if isinstance(s, ColumnDataSource)]
    assert keys and all(np.isnan(s.data["time"]).all() for s in keys)
    drawn = [r for r in chart.figure.select(type=GlyphRenderer) if (r.name or "").startswith("live chart:")]
    assert {r.data_source for r in drawn} == set(streaming)
    assert sorted(item.label.value for item in legend.items) == sorted(
        r.name.removeprefix("live chart: ") for r in drawn)
    # the ranges follow the drawn layers in the page and are never sent back
    assert set(chart.figure.x_range.renderers) == set(chart.figure.y_range.renderers) == set(drawn)
    assert not chart.figure.x_range.syncable and not chart.figure.y_range.syncable
    # the long history line is a hairline (<= 1 px) for Chromium's software canvas
    (history,) = [r for r in drawn if r.name == "live chart: history"]
    assert history.glyph.line_width <= 1


def test_viewers_of_a_series_share_each_ticks_frames(engine):
    first, second = StreamController(engine), StreamController(engine)
    engine.step()
    first.poll()
    second.poll()
    engine.step()
    ticks = engine.ticks_since(first._seq)
    from granite_panel.ui.controller import tick_frames

    assert tick_frames(ticks, 0)[0] is tick_frames(list(ticks), 0)[0]  # made once
    assert tick_frames(ticks, 0)[0] is not tick_frames(ticks, 1)[0]  # per series
    first.poll()
    second.poll()
    assert first.history.data.equals(second.history.data)
    assert first.history.data["time"].iloc[-1] == second.history.data["time"].iloc[-1]


def test_a_ticks_update_travels_without_binary_buffers(engine):
    """Each numpy column in a Bokeh message is a binary buffer, two websocket frames of its
    own: a tick's few new rows go as JSON lists (ui/live_chart.py, _columns)."""
    from bokeh.document import Document
    from bokeh.protocol import Protocol

    from granite_panel.ui.live_chart import LiveChart

    controller = StreamController(engine)
    chart = LiveChart(controller, "80% band")
    document = Document()
    document.add_root(chart.pane.object)
    controller.step()
    events = []
    document.on_change(events.append)
    controller.step()
    kinds = {type(e).__name__ for e in events}
    assert {"ColumnsStreamedEvent", "ColumnDataChangedEvent"} <= kinds  # a point, a forecast
    assert Protocol().create("PATCH-DOC", events).buffers == []
    # a whole series (a new viewer, another series) still goes as binary columns
    events.clear()
    controller.series = 1
    assert Protocol().create("PATCH-DOC", events).buffers


def test_frame_times_are_pandas_seconds_to_the_microsecond():
    """The chart's times (``frame_times``, numpy) against ``pd.to_datetime(unit="s")``,
    which they replace in every viewer's poll for speed."""
    import time

    import pandas as pd

    from granite_panel.ui.controller import frame_times

    seconds = time.time() + np.arange(5000) * 0.1 + np.random.default_rng(0).random(5000)
    ours = frame_times(seconds)
    assert ours.dtype == np.dtype("datetime64[ns]")
    assert np.abs(ours.astype(np.int64) - pd.to_datetime(seconds, unit="s").asi8).max() < 1000
    assert frame_times(()).dtype == np.dtype("datetime64[ns]") and len(frame_times(())) == 0


def test_chart_update_benchmark_times_a_real_patch_message(engine):
    """benchmarks/chart_update.py's "pushed poll and its message" row: the poll's changes
    reach a PATCH-DOC message (through Panel's private per-document state, which a Panel
    upgrade may rename: then this fails instead of the row timing nothing)."""
    import sys
    import threading
    from pathlib import Path

    from bokeh.document import Document

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import chart_update

    dashboard = Dashboard(engine, autopoll=False)
    document = Document()
    pn.state.curdoc = document
    try:
        pn.state._thread_id = threading.get_ident()
        document.add_root(dashboard.__panel__().get_root(document))
        engine.step()
        dashboard.controller.poll()
        send = chart_update.patch_message(document)
        assert send() is None
        engine.step()
        dashboard.controller.poll(status=False)
        message = send()
        assert message is not None
        assert '"kind":"ColumnsStreamed"' in message.content_json.replace(" ", "")
    finally:
        pn.state.curdoc = None
