"""Generated CSV files, from plausible to malformed (any delimiter a spreadsheet uses,
decimal commas, thousands separators, dates in several orders), through the two readers of
files: the replay source feeding the engine (``serve --source FILE``) and ``granite-panel
detect``.
Each must either work or refuse with one clear line (``SourceError``/``InputError``, exit
2); nothing else may escape. (It found an empty epoch-timestamp cell crashing the engine's
first tick.) Packed uploads (compressed CSV, a workbook, Parquet) cut short or overwritten
go through the dashboard's reader the same way."""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granite_panel.cli.detect import main as detect_main
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.sources import SourceError, open_source

CELLS = st.one_of(
    st.sampled_from(["", "nan", "inf", "-inf", "1e309", "1.5", "0", "-1", "x", "NaT", '"', "a,b",
                     "2023-11-14T22:13:20Z", "2023-11-14", "2023-11-14T22:13:20+05:00",
                     "1700000000", "1700000000000", "99999999999999999999", "1e17", "9999-12-31",
                     "1,5", "1.234,5", '"1,234.5"', "25.03.2024 13:00", "03/04/2024 01:00 PM",
                     "50%", ";", "\t", "|"]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)
NAMES = st.one_of(st.sampled_from(["timestamp", "value", "series", "ds", "y", "unique_id", "label",
                                   "date", "time", "cpu", ""]), st.text(max_size=4))
FUZZ = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@st.composite
def csv_texts(draw) -> str:
    columns = draw(st.integers(1, 4))
    rows = [[draw(NAMES) for _ in range(columns)]]
    rows += [[draw(CELLS) for _ in range(columns)] for _ in range(draw(st.integers(0, 6)))]
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    sep = draw(st.sampled_from([",", ",", ";", "\t", "|"]))  # as spreadsheets export them
    return end.join(sep.join(row) for row in rows) + end


def _settings(path, **overrides) -> Settings:
    return Settings(fallback_model="SeasonalNaive", context_length=16, history_limit=64,
                    forecast_horizon=4, detector="hybrid_entropy", source=str(path), **overrides)


def test_a_replayed_file_streams_or_is_refused_with_one_line(tmp_path):
    path = tmp_path / "data.csv"

    @given(csv_texts(), st.sampled_from(["1", "max"]))
    @FUZZ
    def replays(text, speed):
        path.write_text(text, newline="")
        try:
            source = open_source(_settings(path, replay_speed=speed))
        except SourceError as error:
            assert "\n" not in str(error)
            return
        engine = Engine(_settings(path, replay_speed=speed), source=source)
        for _ in range(3):
            engine.step()
        assert engine.status()["running"] in (True, False)

    replays()


def test_detect_scores_a_file_or_exits_2_with_one_line(tmp_path):
    path, out = tmp_path / "data.csv", tmp_path / "scored.csv"

    @given(csv_texts())
    @FUZZ
    def detects(text):
        path.write_text(text, newline="")
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = detect_main(["detect", str(path), "-o", str(out)])
        assert code in (0, 2)
        if code == 2:
            assert errors.getvalue().startswith("granite-panel detect: error: ")
            assert errors.getvalue().count("\n") == 1

    detects()


def _packs() -> dict[str, bytes]:
    """One small valid file of every packed kind an upload may be."""
    import bz2
    import gzip
    import lzma
    import zipfile

    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=40, freq="h"),
                          "cpu": np.arange(40.0)})
    raw = frame.to_csv(index=False).encode()
    packs = {"gz": gzip.compress(raw), "bz2": bz2.compress(raw), "xz": lzma.compress(raw)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cpu.csv", raw)
    packs["zip"] = buffer.getvalue()
    for name, write in (("xlsx", frame.to_excel), ("parquet", frame.to_parquet)):
        buffer = io.BytesIO()
        write(buffer, index=False)
        packs[name] = buffer.getvalue()
    return packs


PACKS = _packs()
NAMES_OF = {"gz": "cpu.csv.gz", "bz2": "cpu.csv.bz2", "xz": "cpu.csv.xz", "zip": "cpu.csv.zip",
            "xlsx": "cpu.xlsx", "parquet": "cpu.parquet"}


@given(st.sampled_from(sorted(PACKS)), st.data())
@FUZZ
def test_a_broken_or_cut_packed_upload_replays_or_is_refused_with_one_line(kind, data):
    """Packed files cut short, with bytes overwritten, or random bytes under a packed name,
    opened as the dashboard opens them (with a small unpacked limit): a source or one
    line (``InputError``) naming the file; nothing else escapes."""
    from granite_panel.sources.points import InputError
    from granite_panel.sources.replay import ReplaySource

    content = bytearray(PACKS[kind])
    how = data.draw(st.sampled_from(["cut", "overwrite", "random"]))
    if how == "cut":
        content = content[: data.draw(st.integers(0, len(content)))]
    elif how == "overwrite":
        for _ in range(data.draw(st.integers(1, 8))):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    else:
        content = bytearray(data.draw(st.binary(max_size=300)))
    try:
        source = ReplaySource.from_upload(NAMES_OF[kind], bytes(content), max_unpacked=20_000)
    except InputError as exc:
        assert str(exc).startswith(NAMES_OF[kind] + ":") and "\n" not in str(exc), str(exc)
        assert "granite-panel-upload" not in str(exc)  # named as the page named it
    else:
        assert source.rows >= 1
