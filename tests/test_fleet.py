"""The fleet view on an engine with 1,000 pushed series: the frame, the click, the refresh."""

import numpy as np
import panel as pn
import pytest
from bokeh.models import LinearAxis

from granite_panel.detection.incidents import iso
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.sources.points import Points
from granite_panel.ui.controller import StreamController
from granite_panel.ui.fleet import FleetView, fleet_frame, heatmap_grid, sparklines

N_SERIES = 1000
SLOTS = 40
T0 = 1_700_000_000.0
SPIKED = 123  # the row whose newest point is far off: the most anomalous series


def names(n=N_SERIES):
    return tuple(f'cpu{{host="h{i:04d}"}}' for i in range(n))


def push(engine, slot, values, series=None):
    """One slot of every series (a point per series at T0 + slot)."""
    series = series or names(len(values))
    engine.ingest_points(Points(series, np.full(len(values), T0 + slot), values), now=T0 + slot + 2)  # the clock a step past the slot: it closes


@pytest.fixture
def engine():
    settings = Settings(
        source="push", model_name="/nonexistent", fallback_model="SeasonalNaive",
        detector="zscore", context_length=32, forecast_horizon=8, history_limit=256,
        data_generation_interval=1.0, max_series=2 * N_SERIES,
    )
    engine = Engine(settings)
    rng = np.random.default_rng(7)
    values = rng.normal(size=(SLOTS, N_SERIES))
    values[-1, SPIKED] = 50.0
    slots = np.repeat(T0 + np.arange(SLOTS), N_SERIES).astype(float)
    engine.ingest_points(Points(names() * SLOTS, slots, values.ravel()), now=T0 + SLOTS)
    yield engine
    engine.stop()


def test_fleet_frame_one_row_per_series_most_anomalous_first(engine):
    snapshot = engine.snapshot(last=60)
    frame = fleet_frame(snapshot, engine.incidents.recent(), T0 + SLOTS)
    assert len(frame) == N_SERIES and sorted(frame.index) == list(range(N_SERIES))
    assert frame["score"].is_monotonic_decreasing
    top = frame.iloc[0]
    assert frame.index[0] == SPIKED and top["series"] == names()[SPIKED]
    assert top["last"] == 50.0 and top["score"] > 5
    assert top["open incident"] in ("high", "critical") and top["incidents 1h"] >= 1
    assert len(top["trend"]) == 30 and top["trend"][-1] == "█"  # its newest point is its highest
    # the columns agree with the engine for every row
    assert np.allclose(frame.sort_index()["last"], snapshot.values[:, -1])
    ongoing = {i["series"] for i in engine.incidents.ongoing()}
    assert set(frame.loc[frame["open incident"] != "", "series"]) == ongoing


def test_incident_columns_count_the_last_hour_and_show_the_worst_open_one():
    class Snap:
        names = ("a", "b", "c")
        values = np.array([[1.0, 2.0], [3.0, np.nan], [np.nan, np.nan]])
        score = np.array([[0.1, -4.0], [2.0, 0.0], [0.0, 0.0]])
        severity = np.array([[0, 2], [0, 0], [0, 0]])

    now = T0 + 10_000

    def incident(series, severity, last_flagged, end):
        return {"series": series, "severity": severity, "last_flagged": iso(last_flagged),
                "end": iso(end)}

    incidents = [
        incident("a", "medium", now - 10, None),
        incident("a", "critical", now - 5, None),
        incident("a", "high", now - 7200, now - 7190),  # over an hour ago: not counted
        incident("b", "high", now - 600, now - 590),  # closed, in the last hour
    ]
    frame = fleet_frame(Snap(), incidents, now).sort_index()
    assert frame["open incident"].tolist() == ["critical", "", ""]
    assert frame["incidents 1h"].tolist() == [2, 1, 0]
    # the newest finite point of each series; none for a series with only gaps
    assert frame["last"].tolist()[:2] == [2.0, 3.0] and np.isnan(frame["last"].iloc[2])
    assert frame["score"].tolist() == [4.0, 2.0, 0.0]
    assert frame["severity"].tolist() == ["high", "normal", ""]
    assert fleet_frame(Snap(), [], now).index.tolist() == [0, 1, 2]  # most anomalous first


def test_sparklines_scale_each_row_and_leave_gaps_blank():
    lines = sparklines(np.array([[0.0, 1.0, 2.0], [5.0, np.nan, 5.0], [np.nan] * 3]))
    assert lines == ["▁▅█", "▅ ▅", "   "]


def test_a_row_click_selects_the_series_in_the_chart(engine):
    controller = StreamController(engine)
    view = FleetView(controller)
    row = 456
    view.table.selection = [int(np.flatnonzero(view.table.value.index == row)[0])]
    assert controller.series == row
    assert controller.series_name == names()[row]
    assert controller.history.data["value"].iloc[-1] == engine.snapshot().values[row, -1]


def test_a_refresh_updates_changed_rows_in_place_and_sends_one_page(engine):
    controller = StreamController(engine)
    view = FleetView(controller, page_size=20, refresh_seconds=3600)
    model = view.table.get_root()
    assert len(model.source.data["series"]) == 20  # one page goes to the browser, not 1,000
    assert model.source.data["series"][0] == names()[SPIKED]
    table = view.table.value

    view.refresh()  # nothing new in the engine: nothing to do
    assert view.updates == 0

    values = np.random.default_rng(8).normal(size=N_SERIES)
    values[789] = -80.0  # the new worst
    push(engine, SLOTS, values)
    controller.poll()
    assert view.updates == 0  # within refresh_seconds of the last refresh: skipped
    view.refresh(force=True)
    assert view.updates == 1 and view.replaced == 0
    assert view.table.value is table  # the same DataFrame, updated in place
    assert view.rows_changed == N_SERIES  # every series got a point
    assert table.loc[789, "last"] == -80.0
    assert len(model.source.data["series"]) == 20
    assert model.source.data["series"][0] == names()[789]

    view.refresh_seconds = 0
    push(engine, SLOTS + 1, values)
    controller.poll()  # the controller's poll drives the refresh
    assert view.updates == 2 and view.replaced == 0


def test_new_series_are_streamed_and_a_reset_replaces_the_table(engine):
    controller = StreamController(engine)
    view = FleetView(controller)
    push(engine, SLOTS, np.array([1.0, 2.0]), series=(names()[0], "new-series"))
    view.refresh(force=True)
    assert len(view.table.value) == N_SERIES + 1 and view.replaced == 0
    assert view.table.value.loc[N_SERIES, "series"] == "new-series"
    engine.reset()
    view.refresh(force=True)
    assert view.replaced == 1 and len(view.table.value) == len(engine.snapshot().names)


def test_heat_map_holds_the_top_n_series_and_renders(engine):
    controller = StreamController(engine)
    view = FleetView(controller, top_n=30, heatmap_seconds=20)  # 20 one-second slots
    times, series, score = view.heatmap.data
    assert score.shape == (30, 20) and len(series) == 30 and len(times) == 20
    frame = fleet_frame(engine.snapshot(last=60), engine.incidents.recent(), T0 + SLOTS)
    assert series == frame["series"].iloc[:30].tolist()  # the worst first
    assert series[0] == names()[SPIKED] and score[0, -1] > 5
    root = pn.panel(view).get_root()  # Bokeh models for the table and the image
    (axis,) = [m for m in root.select({"type": LinearAxis}) if m.major_label_overrides]
    assert axis.major_label_overrides[29] == names()[SPIKED]  # the top row is the worst
    values = np.zeros(N_SERIES)
    values[5] = 70.0
    push(engine, SLOTS, values)
    view.refresh(force=True)  # the plot takes the new top N and relabels its rows
    assert axis.major_label_overrides[29] == names()[5]


def test_heat_map_of_an_empty_engine_is_one_placeholder_cell():
    times, series, score = heatmap_grid(np.empty(0), [], np.empty((0, 0)), 10)
    assert series == ["(no series yet)"] and score.shape == (1, 1)


def test_heat_map_covers_the_last_hour_in_bins_that_keep_each_spike(engine):
    # By default the last hour (here all 40 kept slots); with fewer columns than slots, each
    # bin is the largest |score| of its slots, the newest bin ends at the newest slot.
    view = FleetView(StreamController(engine), top_n=5)
    times, series, score = view.heatmap.data
    assert view.heatmap_seconds == 3600 and score.shape == (5, SLOTS) and times[-1] == T0 + SLOTS - 1
    raw_times, raw = engine.recent_scores([SPIKED, 0], 3600)
    times, _, binned = heatmap_grid(raw_times, ["a", "b"], raw, columns=7)
    assert binned.shape == (2, 7)  # 40 slots in bins of 6, the oldest one partial
    np.testing.assert_array_equal(times, raw_times[[3, 9, 15, 21, 27, 33, 39]])
    np.testing.assert_allclose(binned[:, -1], np.abs(raw[:, -6:]).max(axis=1))
    np.testing.assert_allclose(binned[:, 0], np.abs(raw[:, :4]).max(axis=1))
    assert binned[0, -1] > 5  # the spike in the newest slot survives the binning
    # only the top rows are read from the engine, over at most its kept history
    assert engine.recent_scores([1, 2, 3], 10)[1].shape == (3, 10)


def test_the_view_renders_with_no_series_and_with_one_slot():
    """A fresh push engine has no series; then one series with a single slot."""
    engine = Engine(Settings(source="push", model_name="/nonexistent",
                             fallback_model="SeasonalNaive", detector="zscore"))
    view = FleetView(StreamController(engine))
    pn.panel(view).get_root()  # an Image of one placeholder cell, not an error
    push(engine, 0, np.array([1.0]), series=("only",))
    view.refresh(force=True)
    assert view.table.value["series"].tolist() == ["only"]
    assert view.heatmap.data[2].shape == (1, 1)
