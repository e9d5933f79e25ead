"""LATENCY_PROBE: off by default (pages carry nothing extra); on, each poll streams the
server times of the ticks it carries into the probe's data source."""

from __future__ import annotations

from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.ui.controller import StreamController
from granite_panel.ui.latency_probe import LatencyProbe

FAST = dict(forecast_horizon=8, context_length=32, history_limit=64, fallback_model="SeasonalNaive",
            database_url="memory", training="off")


def test_probe_is_off_by_default():
    assert Settings().latency_probe is False
    assert StreamController(Engine(Settings(**FAST))).probe is None


def test_probe_streams_each_ticks_server_time_in_ms():
    controller = StreamController(Engine(Settings(latency_probe=True, **FAST)))
    assert isinstance(controller.probe, LatencyProbe)
    controller.step()  # the first tick (with the backfill) is applied through a poll
    ticks = [controller.engine.step() for _ in range(3)]
    controller.poll()
    stamps = list(controller.probe.source.data["stamp"])
    assert stamps[-3:] == [t.received_at * 1000.0 for t in ticks]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))  # one stamp per tick, in order
    sent = controller.probe.source.data["sent"]
    assert all(s >= t for s, t in zip(sent[-3:], stamps[-3:]))  # sent after the tick was made
