"""A file opened in the dashboard: the engine replays it instead of its source (as
``serve --source FILE`` would, season included), for operators only; a file that cannot be
read changes nothing. The page itself: tests/ui/test_dashboard_browser.py."""

import time

import numpy as np
import pandas as pd
import pytest

from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.sources.points import InputError
from granite_panel.sources.replay import ReplaySource
from granite_panel.store.store import open_store
from granite_panel.ui.controller import StreamController


def settings(**overrides) -> Settings:
    base = dict(fallback_model="SeasonalNaive", model_name="/nonexistent/model-folder",
                context_length=32, history_limit=512, forecast_horizon=4,
                data_generation_interval=0.05, n_series=2, seed=3)
    return Settings(**{**base, **overrides})


def csv_bytes(n=400, step="5min") -> tuple[bytes, pd.DataFrame]:
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-05-01", periods=n, freq=step),
                          "cpu": np.round(50 + 10 * np.sin(np.arange(n) / 12), 3),
                          "mem": np.round(70 + np.cos(np.arange(n) / 30), 3)})
    return frame.to_csv(index=False).encode(), frame


def test_the_engine_replays_an_opened_file_as_serve_would_and_the_store_keeps_the_old(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'kept.db'}")
    engine = Engine(settings(), store=store)
    for _ in range(3):
        engine.step()
    engine.wait_stored(10)
    before = engine.generation
    content, frame = csv_bytes()
    source = ReplaySource.from_upload("C:\\exports\\host.csv", content, speed="max")
    engine.replace_source(source)
    assert engine.generation == before + 1 and not engine.running
    assert engine.names == ["cpu", "mem"] and engine.status()["source"]["file"] == "host.csv"
    # the season follows the file (a day of 5-minute rows), as a replay from the command line
    served = Engine(settings(source=str(tmp_path / "host.csv")), source=ReplaySource.from_file(
        _write(tmp_path / "host.csv", content), speed="max"))
    assert engine.settings.season_length == served.settings.season_length == 288
    assert engine.detector.__class__ is served.detector.__class__
    while not source.finished:
        engine.step()
    snap = engine.snapshot()
    assert list(snap.timestamps) == list(frame["timestamp"].astype("int64") // 10**9)
    assert np.array_equal(snap.values[0], frame["cpu"])
    engine.wait_stored(10)
    kept = {s["name"] for s in store.series()}
    assert {"synthetic-0", "synthetic-1", "cpu", "mem"} <= kept  # nothing deleted
    engine.close()


def _write(path, content):
    path.write_bytes(content)
    return path


def test_an_operator_opens_a_file_and_the_stream_starts_on_it():
    engine = Engine(settings())
    controller = StreamController(engine, role="operator")
    content, _ = csv_bytes()
    said = controller.open_file("host.csv", content, speed="10")
    try:
        assert said == "Replaying host.csv: 400 time steps of 2 series (cpu, mem)."
        assert controller.toasts[-1] == said
        assert engine.running and controller.names == ["cpu", "mem"]
        assert engine.status()["source"]["speed"] == "10"
    finally:
        engine.close()


def test_a_viewer_may_not_open_a_file():
    engine = Engine(settings())
    engine.step()
    controller = StreamController(engine, role="viewer")
    said = controller.open_file("host.csv", csv_bytes()[0])
    assert said == "A viewer may not open a file."
    assert controller.refused == 1 and engine.names == ["synthetic-0", "synthetic-1"]
    assert engine.generation == 0 and engine.status()["data_points"] > 0


@pytest.mark.parametrize("name, content, message", [
    ("notes.docx", b"PK...", "notes.docx: unknown file type"),
    ("names.csv", b"host,owner\nweb-1,ann\n", "names.csv: no timestamp column found"),
    ("empty.csv", b"", "empty.csv: the file is empty"),
    ("broken.xlsx", b"not a workbook", "broken.xlsx: not a readable spreadsheet file"),
    ("huge.csv", b"x" * 2048, "huge.csv is 2,048 bytes, over INGEST_MAX_BYTES (1,024)"),
])
def test_a_file_that_cannot_be_read_changes_nothing(name, content, message):
    """One line saying why, as a toast; the stream goes on with its series and points."""
    engine = Engine(settings(ingest_max_bytes=1024))
    controller = StreamController(engine, role="operator")
    engine.start()
    try:
        for _ in range(100):
            if engine.status()["data_points"] >= 4:
                break
            time.sleep(0.05)
        points = engine.status()["data_points"]
        said = controller.open_file(name, content)
        assert said.startswith("Not opened: ") and message in said and "\n" not in said
        assert controller.toasts[-1] == said
        assert engine.running and engine.generation == 0
        assert engine.names == ["synthetic-0", "synthetic-1"]
        assert engine.status()["data_points"] >= points
    finally:
        engine.close()


def test_a_workbook_opened_in_the_page_is_read_from_its_first_sheet_with_a_time_column(tmp_path):
    """The page has no sheet option (the command line has --sheet): a cover or notes sheet
    first no longer makes a workbook unopenable."""
    path = tmp_path / "book.xlsx"
    data = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=50, freq="h"),
                         "cpu": np.arange(50.0)})
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"about": ["exported by the meter"]}).to_excel(book, sheet_name="Notes",
                                                                    index=False)
        data.to_excel(book, sheet_name="Readings", index=False)
    engine = Engine(settings())
    controller = StreamController(engine, role="operator")
    try:
        said = controller.open_file("book.xlsx", path.read_bytes(), speed="10")
        assert said == "Replaying book.xlsx, sheet 'Readings': 50 time steps of 1 series (cpu)."
        assert engine.status()["source"]["file"] == "book.xlsx, sheet 'Readings'"
    finally:
        engine.close()
    notes_only = tmp_path / "notes.xlsx"
    pd.DataFrame({"about": ["nothing to plot"]}).to_excel(notes_only, index=False)
    with pytest.raises(InputError, match="notes.xlsx: no timestamp column found among about"):
        ReplaySource.from_upload("notes.xlsx", notes_only.read_bytes())

