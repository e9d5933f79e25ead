"""Files as people export them (spreadsheets in other locales, compressed CSV, any column
names), read alike by the three commands that take a file: the dashboard's replay
(``serve --source``), ``detect`` and ``forecast``. One reader, ``sources/table_file.py``."""

import argparse
import bz2
import gzip
import zipfile

import numpy as np
import pandas as pd
import pytest

from granite_panel.cli.detect import add_detect_parser, run_detect
from granite_panel.cli.main import main as cli
from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.sources import SourceError, open_source
from granite_panel.sources.table_file import read_table, sniff_delimiter

N = 240


def series() -> pd.DataFrame:
    """Hourly values with two decimals (so every way of writing them reads back exactly) and
    a spike, from 1 March: days 1 to 10, each of which reads as a month when taken month
    first."""
    rng = np.random.default_rng(3)
    values = np.round(1000 + 300 * np.sin(np.arange(N) * 2 * np.pi / 24) + rng.normal(0, 20, N), 2)
    values[200] += 2500
    return pd.DataFrame({"time": pd.date_range("2024-03-01", periods=N, freq="h"),
                         "value": values})


def write(kind: str, folder) -> str:
    """The same series written the way ``kind`` exports it; returns the path."""
    frame = series()
    iso = frame.assign(time=frame["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    if kind == "plain":
        path = folder / "plain.csv"
        iso.to_csv(path, index=False)
    elif kind == "excel_de":  # Excel, German locale: ';', decimal comma, thousands dots
        path = folder / "excel_de.csv"
        text = frame.assign(
            time=frame["time"].dt.strftime("%d.%m.%Y %H:%M"),
            value=[f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
                   for v in frame["value"]],
        )
        text.to_csv(path, sep=";", index=False)
    elif kind == "excel_utf8":  # Excel's "CSV UTF-8": byte-order mark, CRLF
        path = folder / "excel_utf8.csv"
        with open(path, "w", encoding="utf-8-sig", newline="\r\n") as file:
            iso.to_csv(file, index=False)
    elif kind == "excel_us":  # US dates with AM/PM (not in order as text), "1,234.56"
        path = folder / "excel_us.csv"
        frame.assign(time=frame["time"].dt.strftime("%m/%d/%Y %I:%M %p"),
                     value=[f"{v:,.2f}" for v in frame["value"]]).to_csv(path, index=False)
    elif kind == "grafana_excel":  # Grafana's "Download for Excel": a sep= line, quoted cells
        path = folder / "grafana_excel.csv"
        with open(path, "w", encoding="utf-8-sig", newline="\r\n") as file:
            file.write("sep=;\n")
            iso.to_csv(file, sep=";", index=False, quoting=1)
    elif kind == "tsv":
        path = folder / "data.tsv"
        iso.to_csv(path, sep="\t", index=False)
    elif kind == "pipe":
        path = folder / "pipe.txt"
        iso.to_csv(path, sep="|", index=False)
    elif kind == "gzip":
        path = folder / "data.csv.gz"
        path.write_bytes(gzip.compress(iso.to_csv(index=False).encode()))
    elif kind == "bz2":
        path = folder / "data.csv.bz2"
        path.write_bytes(bz2.compress(iso.to_csv(index=False).encode()))
    elif kind == "zip":
        path = folder / "data.csv.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data.csv", iso.to_csv(index=False))
    elif kind == "xlsx":  # an Excel workbook: date cells, number cells, a second sheet
        path = folder / "sheet.xlsx"
        with pd.ExcelWriter(path, engine="openpyxl") as book:
            frame.to_excel(book, sheet_name="Messwerte °C", index=False)
            frame.head(3).assign(value=0.0).to_excel(book, sheet_name="other", index=False)
    elif kind == "xlsx_report":  # a title and a note above the table, a blank row between
        path = folder / "report.xlsx"
        with pd.ExcelWriter(path, engine="openpyxl") as book:
            frame.to_excel(book, index=False, startrow=3)
            book.sheets["Sheet1"]["A1"] = "Load report, March 2024"
            book.sheets["Sheet1"]["A2"] = "Source: meter 7"
    elif kind == "json":  # an array of records, as an API or jq writes it
        path = folder / "data.json"
        iso.to_json(path, orient="records")
    elif kind == "ndjson":  # JSON Lines, times in epoch milliseconds, gzipped
        path = folder / "data.ndjson.gz"
        epoch_ms = frame.assign(time=frame["time"].astype("int64") // 10**6)
        path.write_bytes(gzip.compress(epoch_ms.to_json(orient="records", lines=True).encode()))
    elif kind == "ods":  # LibreOffice Calc's own format
        path = folder / "sheet.ods"
        frame.to_excel(path, engine="odf", index=False)
    else:
        raise AssertionError(kind)
    return str(path)


EXPORTS = ["excel_de", "excel_utf8", "excel_us", "grafana_excel", "tsv", "pipe", "gzip", "bz2",
           "zip", "xlsx", "xlsx_report", "ods", "json", "ndjson"]
NAMED_BY_FOLDER = {"tsv": "data", "gzip": "data", "bz2": "data", "zip": "data", "json": "data",
                   "ndjson": "data", "xlsx": "sheet", "xlsx_report": "report", "ods": "sheet"}
# (a lone value column is named by its file)


def replayed(path: str):
    source = open_source(Settings(source=path, fallback_model="SeasonalNaive"))
    return source.batch


def detected(path: str, tmp_path, *extra) -> pd.DataFrame:
    parser = argparse.ArgumentParser()
    add_detect_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "scored.csv"
    assert run_detect(parser.parse_args(["detect", path, "-o", str(out), *extra])) == 0
    return pd.read_csv(out)


def forecast(path: str, tmp_path, capsys, *extra) -> pd.DataFrame:
    out = tmp_path / "forecast.csv"
    assert cli(["forecast", path, "--horizon", "6", "--model", "seasonal-naive",
                "-o", str(out), *extra]) == 0, capsys.readouterr().err
    return pd.read_csv(out).drop(columns="unique_id")


@pytest.mark.parametrize("kind", EXPORTS)
def test_an_export_reads_as_the_plain_file_in_replay_detect_and_forecast(kind, tmp_path, capsys):
    """Each way of writing the series gives the plain file's times and values in the
    replay, ``detect``'s scores and ``forecast``'s output. Before, the German export was
    refused ('no timestamp column found among timestamp;value'), compressed files were
    refused by the replay and its series named 'data.csv', thousands separators made the
    column text, an Excel ``sep=`` line was read as the header, and US dates were replayed
    in the order they sort as text; spreadsheets (the first sheet, below any title) and JSON
    were refused as unknown file types."""
    plain = write("plain", tmp_path)
    path = write(kind, tmp_path)
    expected, got = replayed(plain), replayed(path)
    np.testing.assert_array_equal(got.timestamps, expected.timestamps)
    np.testing.assert_array_equal(got.values, expected.values)
    assert got.series == (NAMED_BY_FOLDER.get(kind, kind),)
    scores = detected(path, tmp_path)["anomaly_score"].to_numpy()
    np.testing.assert_array_equal(scores, detected(plain, tmp_path)["anomaly_score"].to_numpy())
    assert scores.argmax() == 200
    pd.testing.assert_frame_equal(forecast(path, tmp_path, capsys),
                                  forecast(plain, tmp_path, capsys))


def test_dotted_dates_are_day_first_and_every_cell_is_read_one_way(tmp_path):
    """``01.03.2024`` is 1 March (dots: the European order), and a column is read by one
    format: once ``25/03`` shows slashed dates are day first, ``03/04`` is 3 April, not
    4 March. Before, each cell was read on its own, month first where it could be."""
    dotted = tmp_path / "dotted.csv"
    dotted.write_text("date,value\n01.03.2024,1\n02.03.2024,2\n12.03.2024,3\n")
    days = pd.to_datetime(replayed(str(dotted)).timestamps, unit="s")
    assert list(days.strftime("%Y-%m-%d")) == ["2024-03-01", "2024-03-02", "2024-03-12"]
    slashed = tmp_path / "slashed.csv"
    slashed.write_text("date,value\n25/03/2024,1\n03/04/2024,2\n20/04/2024,3\n")
    days = pd.to_datetime(replayed(str(slashed)).timestamps, unit="s")
    assert list(days.strftime("%Y-%m-%d")) == ["2024-03-25", "2024-04-03", "2024-04-20"]
    np.testing.assert_array_equal(replayed(str(slashed)).values, [[1, 2, 3]])


def test_local_times_across_a_dst_switch_replay_in_time_order(tmp_path):
    """Text times with UTC offsets are ordered by the instant they mean: 02:15+01:00 comes
    after 02:30+02:00 (the clocks went back). Before, the file was sorted as text."""
    path = tmp_path / "dst.csv"
    path.write_text("timestamp,value\n2024-10-27T02:30:00+02:00,1\n2024-10-27T02:15:00+01:00,2\n"
                    "2024-10-27T02:45:00+02:00,3\n")
    batch = replayed(str(path))
    assert (np.diff(batch.timestamps) > 0).all()
    np.testing.assert_array_equal(batch.values, [[1, 3, 2]])


def test_a_wide_file_of_any_names_is_scored_column_by_column(tmp_path, capsys):
    """``detect`` takes what the replay takes: a time column of any usual name and every
    numeric column a series, each scored as if it were alone (``<column>_anomaly_score``).
    Before, it needed the names timestamp,value ('missing column(s)')."""
    frame = series().rename(columns={"time": "Date", "value": "sales"})
    frame["returns"] = np.round(frame["sales"][::-1].to_numpy() / 10, 2)
    frame["store"] = "berlin"  # text: not a series
    both = tmp_path / "shop.csv"
    frame.to_csv(both, index=False)
    scored = detected(str(both), tmp_path)
    assert list(scored.columns) == ["Date", "sales", "returns", "store", "sales_anomaly_score",
                                    "returns_anomaly_score"]
    for column in ("sales", "returns"):
        alone = tmp_path / f"{column}.csv"
        frame[["Date", column]].to_csv(alone, index=False)
        np.testing.assert_array_equal(scored[f"{column}_anomaly_score"],
                                      detected(str(alone), tmp_path)["anomaly_score"])
    one = detected(str(both), tmp_path, "--value-columns", "returns")
    np.testing.assert_array_equal(one["anomaly_score"], scored["returns_anomaly_score"])
    assert replayed(str(both)).series == ("sales", "returns")
    ids = forecast(str(both), tmp_path, capsys)
    assert len(ids) == 12  # two series x 6 steps


def test_named_columns_override_what_is_found(tmp_path, capsys):
    path = tmp_path / "named.csv"
    frame = series()
    pd.DataFrame({"when": frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "a": frame["value"],
                  "b": frame["value"] * 2}).to_csv(path, index=False)
    scored = detected(str(path), tmp_path, "--timestamp-column", "when", "--value-columns", "b")
    assert "anomaly_score" in scored and "a_anomaly_score" not in scored
    assert len(forecast(str(path), tmp_path, capsys, "--timestamp-column", "when",
                        "--value-columns", "b")) == 6
    assert cli(["forecast", str(path), "--horizon", "6", "--timestamp-column", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err


def test_a_column_of_mostly_numbers_is_a_series_with_bad_points(tmp_path):
    """A value column with a few cells of text streams, those cells bad points (as the
    README says); before, the whole column was dropped as text. ``detect`` stays strict and
    names the cell. A column that is text throughout is named in the error."""
    path = tmp_path / "some_text.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 01:00,oops\n"
                    "2024-01-01 02:00,3\n")
    batch = replayed(str(path))
    assert np.isnan(batch.values[0, 1]) and batch.values[0, 2] == 3
    assert run_detect(_args(path, tmp_path)) == 2
    text = tmp_path / "scaled.csv"  # units that change along the column: not one series
    text.write_text("timestamp,rx\n2024-01-01 00:00,980 B\n2024-01-01 01:00,1.2 kB\n")
    with pytest.raises(SourceError, match="'rx' holds text such as '980 B'"):
        replayed(str(text))


def _args(path, tmp_path):
    parser = argparse.ArgumentParser()
    add_detect_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["detect", str(path), "-o", str(tmp_path / "o.csv")])


def test_unknown_types_and_broken_archives_give_one_line(tmp_path, capsys):
    numbers = tmp_path / "book.numbers"  # Apple Numbers: export it as CSV or Excel
    numbers.write_bytes(b"PK\x03\x04")
    with pytest.raises(SourceError, match="expected synthetic, push, prometheus or the path"):
        replayed(str(numbers))
    broken = tmp_path / "data.csv.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(SourceError, match="not a readable text file"):
        replayed(str(broken))
    sheet = tmp_path / "book.xlsx"  # a CSV renamed, or a download cut short
    sheet.write_bytes(b"timestamp,value\n2024-01-01,1\n")
    with pytest.raises(SourceError, match="not a readable spreadsheet file"):
        replayed(str(sheet))
    cut = tmp_path / "cut.json"  # a download cut short
    cut.write_text('[{"timestamp": "2024-01-01", "value": 1}, {"timest')
    with pytest.raises(SourceError, match="not a readable json file"):
        replayed(str(cut))
    for path in (numbers, broken, sheet, cut):
        assert run_detect(_args(path, tmp_path)) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_windows_excel_csv_and_tab_files_with_commas_in_names(tmp_path):
    """Excel's plain "CSV" on Western-European Windows is Windows-1252, not UTF-8 (before:
    'not a readable text file ('utf-8' codec can't decode ...)'); a .tsv is split at tabs
    even when its names hold commas."""
    path = tmp_path / "wetter.csv"
    path.write_bytes("Zeit;Temperatur °C;Größe\n01.03.2024 00:00;12,5;1\n"
                     "01.03.2024 01:00;-3,25;2\n".encode("cp1252"))
    batch = replayed(str(path))
    assert batch.series == ("Temperatur °C", "Größe")
    assert batch.values.tolist() == [[12.5, -3.25], [1, 2]]
    tabs = tmp_path / "load.tsv"
    tabs.write_text("timestamp\tcpu, %\tmemory, GB\n2024-01-01 00:00\t1\t2\n"
                    "2024-01-01 01:00\t3\t4\n")
    assert replayed(str(tabs)).series == ("cpu, %", "memory, GB")


@pytest.mark.parametrize("text, delimiter", [
    ("value\n1.5\n2\n", ","),                         # one column: nothing to tell by
    ("timestamp;value\n2024-01-01;1,5\n", ";"),
    ('"a,b";c\n1;2\n', ";"),                          # a quoted name holding a comma
    ("timestamp,value\n2024-01-01,1.5\n", ","),
    ("t\tv\n1\t2\n", "\t"),
    ("", ","),
])
def test_the_delimiter_is_sniffed_from_the_first_lines(text, delimiter):
    assert sniff_delimiter(text) == delimiter


def test_numbers_as_spreadsheets_write_them(tmp_path):
    path = tmp_path / "de.csv"
    path.write_text("t;a;b;c\n2024-01-01;1.234,5;-0,25;x\n2024-01-02;12;3,0;1,5\n")
    frame = read_table(path)
    assert frame["a"].tolist() == [1234.5, 12.0] and frame["b"].tolist() == [-0.25, 3.0]
    assert frame["c"].tolist() == ["x", "1,5"]  # not every cell a number: left as it is
    us = tmp_path / "us.csv"
    us.write_text('t,a\n2024-01-01,"1,234.5"\n2024-01-02,12\n2024-01-03,"-1,000"\n')
    assert read_table(us)["a"].tolist() == [1234.5, 12.0, -1000.0]
    units = tmp_path / "units.csv"  # cells formatted with their unit (before: refused as text)
    units.write_text('t,cpu,latency,temp,mixed\n2024-01-01,45%,"1,200 ms",-3 °C,980 B\n'
                     '2024-01-02,51.5%,12.5 ms,4.5 °C,1.2 kB\n')
    frame = read_table(units)
    assert frame["cpu"].tolist() == [45.0, 51.5] and frame["latency"].tolist() == [1200, 12.5]
    assert frame["temp"].tolist() == [-3.0, 4.5]
    assert frame["mixed"].tolist() == ["980 B", "1.2 kB"]  # two units: left as text
    de = tmp_path / "de_units.csv"
    de.write_text("t;temp\n2024-01-01;12,5 °C\n2024-01-02;-0,5 °C\n", encoding="utf-8")
    assert read_table(de)["temp"].tolist() == [12.5, -0.5]


def test_a_dash_or_a_spreadsheet_error_in_a_column_with_a_unit_is_a_bad_point(tmp_path):
    """Reports write ``-`` where a reading is missing and spreadsheets ``#DIV/0!`` where a
    formula failed. Before, one such cell left the whole column as text (refused: no numeric
    column); now it is that row's bad point (counted, never scored), not a gap, and the rest
    of the column is its series. Other text still leaves a column as it is."""
    path = tmp_path / "report.csv"
    path.write_text('t,cpu,latency,name\n2024-01-01 00:00,45%,"1,200 ms",a\n'
                    '2024-01-01 01:00,-,#DIV/0!,b\n2024-01-01 02:00,47.5%,13 ms,c\n')
    batch = replayed(str(path))
    assert batch.series == ("cpu", "latency")
    assert np.array_equal(batch.values, [[45, np.nan, 47.5], [1200, np.nan, 13]], equal_nan=True)
    assert not batch.missing.any()  # bad points, not gaps
    other = tmp_path / "other.csv"
    other.write_text("t,cpu\n2024-01-01,45%\n2024-01-02,high\n")
    assert read_table(other)["cpu"].tolist() == ["45%", "high"]
    only = tmp_path / "only_dashes.csv"
    only.write_text("t,cpu,v\n2024-01-01,-,1\n2024-01-02,--,2\n")
    assert read_table(only)["cpu"].tolist() == ["-", "--"]


def test_a_workbook_sheet_by_name_or_number(tmp_path, capsys):
    """The first sheet is read unless SHEET / --sheet names another (by name, or by number
    from 1). Where the first sheet holds no time column, the error names the others and the
    option; an unknown sheet is named with the workbook's sheets."""
    path = tmp_path / "book.xlsx"
    data = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=50, freq="h"),
                         "cpu": np.arange(50.0)})
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"about": ["exported by the meter"]}).to_excel(book, sheet_name="Notes", index=False)
        data.to_excel(book, sheet_name="Readings", index=False)
    with pytest.raises(SourceError, match=r"no timestamp column found among about; .*--sheet "
                                          r"\(SHEET\) picks another: 'Readings'"):
        replayed(str(path))
    for sheet in ("Readings", "2"):
        source = open_source(Settings(source=str(path), sheet=sheet, fallback_model="SeasonalNaive"))
        assert source.series_names == ("cpu",) and list(source.batch.values[0]) == list(data.cpu)
    with pytest.raises(SourceError, match=r"no sheet 'Data'; the workbook has 'Notes', 'Readings'"):
        open_source(Settings(source=str(path), sheet="Data"))
    with pytest.raises(SourceError, match="--sheet \\(SHEET\\) is for spreadsheets"):
        open_source(Settings(source=write("plain", tmp_path), sheet="2"))
    assert cli(["detect", str(path), "--sheet", "Readings", "-o", str(tmp_path / "s.csv"),
                "--detector", "zscore"]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 50
    assert cli(["forecast", str(path), "--sheet", "2", "-o", str(tmp_path / "f.csv"),
                "--horizon", "2", "--model", "seasonal-naive", "--season", "24"]) == 0
    assert cli(["forecast", str(path), "--sheet", "3", "-o", str(tmp_path / "f.csv"),
                "--horizon", "2"]) == 2
    assert "no sheet '3'" in capsys.readouterr().err


def test_an_export_streams_through_the_engine(tmp_path):
    """The German export end to end: the engine ticks over it and flags the spike."""
    path = write("excel_de", tmp_path)
    s = Settings(source=path, replay_speed="max", fallback_model="SeasonalNaive",
                 context_length=48, history_limit=N + 16, forecast_horizon=4, season_length=24)
    source = open_source(s)
    engine = Engine(s, source=source)
    while not source.finished:
        engine.step()
    snapshot = engine.snapshot()
    assert len(snapshot.score[0]) == N and int(np.argmax(snapshot.score[0])) == 200
