"""A file opened in the dashboard: the engine replays it instead of its source (as
``serve --source FILE`` would, season included), for operators only; a file that cannot be
read changes nothing. The page itself: tests/ui/test_dashboard_browser.py."""

import contextlib
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


@contextlib.contextmanager
def streaming_operator(ticked: bool = True, **overrides):
    """(engine, an operator's controller) on a stream that has ticked once (or not)."""
    engine = Engine(settings(**overrides))
    if ticked:
        engine.step()
    try:
        yield engine, StreamController(engine, role="operator")
    finally:
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


@pytest.mark.parametrize("shown_in, timezone, offset, hint", [
    ("Europe/Berlin", "", False, ", +2 h from what the file says. If they are Europe/Berlin"),
    ("America/St_Johns", "", False, ", -2:30 h from what the file says."),
    ("Asia/Kolkata", "", False, ", +5:30 h from what the file says."),
    ("Europe/London", "", False, "; this page shows them in Europe/London, +1 h"),
    ("UTC", "", False, None),  # shown as read: nothing looks shifted
    ("", "", False, None),  # a caller that does not say
    ("Europe/Berlin", "Europe/Berlin", False, None),  # read in the zone chosen
    ("Europe/Berlin", "", True, None),  # times with an offset are instants
])
def test_clock_times_read_as_utc_are_said_to_look_shifted_where_the_page_is_not_utc(
        shown_in, timezone, offset, hint):
    """A file of times without an offset, read as UTC, shows shifted by the page's zone
    (right for UTC times, wrong for the viewer's own clock times): the outcome says so,
    with the shift at the file's start (2024-05-01: summer time) and the fix."""
    content, frame = csv_bytes()
    if offset:
        frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC")
        content = frame.to_csv(index=False).encode()
    with streaming_operator(ticked=False) as (engine, controller):
        said = controller.open_file("host.csv", content, timezone=timezone, shown_in=shown_in)
    assert said.startswith("Replaying host.csv: 400 time steps of 2 series")
    if hint is None:
        assert "UTC offset" not in said
    else:
        assert " Its times carry no UTC offset and were read as UTC; this page shows" in said
        assert hint in said, said
        assert said.endswith("choose that time zone and open it again.")


@pytest.mark.parametrize("content, clock_times", [
    (b"timestamp,cpu\n2024-05-01 00:00,1\n2024-05-01 00:05,2\n", True),
    (b"series,timestamp,value\ncpu,2024-05-01 00:00,1\ncpu,2024-05-01 00:05,2\n", True),
    (b"timestamp,cpu\n2024-05-01T00:00Z,1\n2024-05-01T00:05Z,2\n", False),
    (b"series,timestamp,value\ncpu,2024-05-01T00:00+02:00,1\ncpu,2024-05-01T00:05+02:00,2\n",
     False),
    (b"timestamp,cpu\n1714521600,1\n1714521900,2\n", False),  # epoch seconds: instants
])
def test_a_file_says_whether_its_times_were_clock_times(content, clock_times):
    batch = ReplaySource.from_upload("t.csv", content, speed="max").batch
    assert batch.clock_times is clock_times


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



# ------------------------------------------------------------------ packed files

def _packed(kind: str, raw: bytes, inner: str = "rows.csv") -> bytes:
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    if kind == "gz":
        return gzip.compress(raw, compresslevel=9)
    if kind == "bz2":
        return bz2.compress(raw)
    if kind == "xz":
        return lzma.compress(raw)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(inner, raw)
    return buffer.getvalue()


def _repeated_rows(size: int) -> bytes:
    """A CSV of ``size`` bytes of one row repeated: it packs a hundred times smaller or more."""
    row = b"2024-01-01T00:00:00Z,1\n"
    return b"timestamp,value\n" + row * (size // len(row))


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
def test_a_packed_file_that_unpacks_past_the_limit_is_refused_before_it_is_read(kind):
    """A few kB that unpack to megabytes (a bomb, at 8 x INGEST_MAX_BYTES) are refused
    while they are unpacked, so pandas never reads them; the stream goes on."""
    content = _packed(kind, _repeated_rows(1024 * 1024))
    assert len(content) < 16 * 1024  # under INGEST_MAX_BYTES as received
    engine = Engine(settings(ingest_max_bytes=16 * 1024))
    controller = StreamController(engine, role="operator")
    engine.step()
    try:
        said = controller.open_file(f"bomb.csv.{kind}", content)
        assert said == (f"Not opened: bomb.csv.{kind}: unpacks to more than 131,072 bytes "
                        "(8 times INGEST_MAX_BYTES), too much to read safely; open a part "
                        "of it, or raise INGEST_MAX_BYTES")
        assert engine.generation == 0 and engine.names == ["synthetic-0", "synthetic-1"]
    finally:
        engine.close()


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
def test_a_packed_file_within_the_limit_replays_as_its_plain_file_would(kind):
    raw, frame = csv_bytes(n=300)
    source = ReplaySource.from_upload(f"host.csv.{kind}", _packed(kind, raw, "host.csv"),
                                      max_unpacked=len(raw))
    plain = ReplaySource.from_upload("host.csv", raw)
    assert source.label == f"host.csv.{kind}" and list(source.series_names) == ["cpu", "mem"]
    assert np.array_equal(source.batch.values, plain.batch.values)
    assert np.array_equal(source.batch.timestamps, plain.batch.timestamps)


def test_an_archive_of_several_files_or_a_broken_pack_is_named_in_one_line():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", csv_bytes(n=10)[0])
        archive.writestr("b.csv", csv_bytes(n=10)[0])
    with pytest.raises(InputError, match=r"^two.zip: the archive holds 2 files; expected one"):
        ReplaySource.from_upload("two.zip", buffer.getvalue())
    with pytest.raises(InputError, match=r"^cut.csv.gz: not a readable gz file \("):
        ReplaySource.from_upload("cut.csv.gz", _packed("gz", csv_bytes()[0])[:200])


def test_a_workbook_or_parquet_file_that_holds_past_the_limit_is_refused(tmp_path):
    """A workbook is a zip archive of XML, and Parquet packs a run of one value into a few
    bytes: each is measured (the archive unpacked while counting, Parquet by its metadata)
    before it is read."""
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=20_000, freq="min"),
                          "cpu": np.zeros(20_000)})
    book = tmp_path / "big.xlsx"
    frame.to_excel(book, index=False)
    table = tmp_path / "big.parquet"
    frame.to_parquet(table)
    for path in (book, table):
        content = path.read_bytes()
        assert len(content) < 300_000  # the received file is small
        with pytest.raises(InputError, match=rf"^{path.name}: unpacks to more than 300,000 "):
            ReplaySource.from_upload(path.name, content, max_unpacked=300_000)
        ReplaySource.from_upload(path.name, content, max_unpacked=4_000_000)  # room: read


def test_the_default_limit_and_its_ratio_follow_the_settings():
    from granite_panel.sources.unpacked import DEFAULT_RECEIVED_MAX, UNPACKED_RATIO

    assert DEFAULT_RECEIVED_MAX == Settings.param.ingest_max_bytes.default
    assert f"at most {UNPACKED_RATIO} times this" in Settings.param.ingest_max_bytes.doc


def test_a_served_page_reads_the_file_aside_so_its_event_loop_goes_on():
    """The dashboard reads an opened file on a worker thread: the event loop that sends
    every viewer its updates (and answers the REST routes) keeps turning meanwhile. Read on
    the loop, its longest pause was the whole read."""
    import asyncio
    import concurrent.futures

    n = 400_000  # about 12 MB: a second's read here
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="s"),
                          "cpu": np.round(np.random.default_rng(1).normal(50, 5, n), 3)})
    content = frame.to_csv(index=False).encode()
    engine = Engine(settings(ingest_max_bytes=len(content) + 1))
    controller = StreamController(engine, role="operator")

    async def open_while_beating():
        pauses, reading = [], True

        async def heartbeat():
            last = time.perf_counter()
            while reading:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                pauses.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        said = await controller.open_file_aside("big.csv", content, speed="10")
        took = time.perf_counter() - started
        reading = False
        await beat
        return said, took, max(pauses)

    try:
        # a loop of its own on a thread: a browser test's loop may be running on this one
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            said, took, longest = thread.submit(asyncio.run, open_while_beating()).result()
        assert said.startswith(f"Replaying big.csv: {n:,} time steps of 1 series")
        assert took > 0.3  # long enough to tell a blocked loop from a turning one
        assert longest < took / 2, (longest, took)
        assert engine.running and controller.names == ["cpu"]
    finally:
        engine.close()


def test_a_file_of_clock_times_is_opened_in_the_zone_chosen_in_the_page(tmp_path):
    """The page's zone field: a logger's clock times across the end of summer time keep
    every reading, in order, at its instant; left empty they are UTC (the repeated hour
    interleaves), and by default the zone is TIMEZONE. An unknown zone changes nothing."""
    from tests.test_input_times import BERLIN, clock_export

    frame, instants = clock_export(tmp_path / "meter.csv")
    content = (tmp_path / "meter.csv").read_bytes()
    for zone, setting, kept in ((BERLIN, "", list(instants)), (None, BERLIN, list(instants)),
                                ("", BERLIN, None)):
        with streaming_operator(ticked=False, timezone=setting) as (engine, controller):
            said = controller.open_file("meter.csv", content, speed="max", timezone=zone)
            assert said.startswith("Replaying meter.csv: ")
            # read as UTC, the repeated hour's two rows are said, with the fix: the page's
            # user sees no log
            assert said.endswith(
                "(meter). 2 row(s) repeat an earlier time of their series; if its times are "
                "local clock times, choose their time zone and open it again."
                if kept is None else "(meter).")
            while not engine.source.finished:
                engine.step()
            snap = engine.snapshot()
            if kept:
                assert list(snap.timestamps) == kept
                assert list(snap.values[0]) == list(frame["value"])
            else:  # as UTC: 19 distinct times, the repeated hour's readings interleaved
                assert len(set(snap.timestamps)) == 19
    with streaming_operator() as (engine, controller):
        said = controller.open_file("meter.csv", content, timezone="Mars/Olympus_Mons")
        assert said == ("Not opened: unknown time zone 'Mars/Olympus_Mons': expected an IANA "
                        "name such as Europe/Berlin, America/New_York or UTC")
        assert engine.generation == 0 and engine.names == ["synthetic-0", "synthetic-1"]


def test_a_workbook_sheet_named_in_the_page_is_the_one_replayed(tmp_path):
    """The page's sheet field, as --sheet: by name or number from 1, named in the label;
    an unknown sheet is refused naming the workbook's sheets; other files ignore it."""
    path = tmp_path / "book.xlsx"
    hours = pd.date_range("2024-01-01", periods=30, freq="h")
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"timestamp": hours, "cpu": np.arange(30.0)}).to_excel(
            book, sheet_name="Monday", index=False)
        pd.DataFrame({"timestamp": hours, "mem": np.arange(30.0) * 2}).to_excel(
            book, sheet_name="Tuesday", index=False)
    content = path.read_bytes()
    for sheet, label, names in (("", "book.xlsx", ["cpu"]),
                                ("Tuesday", "book.xlsx, sheet 'Tuesday'", ["mem"]),
                                (" 2 ", "book.xlsx, sheet 'Tuesday'", ["mem"])):
        with streaming_operator(ticked=False) as (engine, controller):
            said = controller.open_file("book.xlsx", content, speed="10", sheet=sheet)
            assert said.startswith(f"Replaying {label}: 30 time steps of 1 series"), said
            assert engine.names == names
    with streaming_operator() as (engine, controller):
        said = controller.open_file("book.xlsx", content, sheet="Sunday")
        assert said == ("Not opened: book.xlsx: no sheet 'Sunday'; the workbook has 'Monday', "
                        "'Tuesday' (name one, or give its number: 1 is the first)")
        assert engine.generation == 0
        said = controller.open_file("host.csv", csv_bytes()[0], sheet="Tuesday")
        assert said.startswith("Replaying host.csv: 400 time steps of 2 series")
