"""A table of series as people export it: one reader and one set of layout rules for every
command that takes a file (``serve --source``, ``detect``, ``forecast``), so a file one of
them reads, the others read alike.

Reading (``read_table``):

- CSV, TSV or text, optionally compressed (``.gz``, ``.bz2``, ``.xz``, ``.zip``), its
  delimiter (comma, semicolon, tab or ``|``; a ``.tsv`` file: tab) found by the standard
  library's ``csv.Sniffer`` on the first lines; UTF-8 (a byte-order mark, as Excel's "CSV
  UTF-8" writes, dropped), else Windows-1252 (Excel's plain "CSV" on Western-European
  Windows); a first line ``sep=;`` (Excel's hint, which Grafana's "Download for Excel"
  writes) names the delimiter;
- numbers as spreadsheets write them in text: a thousands separator (``"1,234.5"``) and,
  in a file that is not comma-separated, a decimal comma (``1.234,5``: European Excel
  writes ``;``-separated files because its decimal mark is the comma), and one unit after
  every number of a column (``45%``, ``12.5 ms``: a cell formatted with its unit; the unit
  is dropped, so 45% reads 45). A column is converted only when every cell reads that way
  with the same unit, otherwise it stays as it is (its cells bad points);
- Parquet: a file, or a partitioned folder;
- JSON (``.json``, also compressed): an array of records (``[{"timestamp": ..., "cpu":
  ...}, ...]``, as APIs and ``jq`` write them) or an object of columns; JSON Lines
  (``.jsonl``, ``.ndjson``, or a ``.json`` holding one record a line). Values as JSON
  typed them: times are read by the same rules as a CSV's;
- spreadsheets: Excel (``.xlsx``, ``.xlsm``, ``.xlsb``, ``.xls``) and OpenDocument
  (``.ods``), the first sheet, read by ``python-calamine`` (date cells are times, number
  cells numbers, whatever the locale that wrote them). The header is the first row, or,
  where a title or notes sit above the table, the first row that names every column.

Layout (``time_column``, ``value_columns``): a time column found by name (``timestamp``,
``ds``, ``date``, ``datetime``, ``time``, any case) or by its cells; the series of a wide
file are its numeric columns but the time and label columns (a text column at least half of
whose cells are numbers counts: its other cells are bad points).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from .points import InputError

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", "")
PARQUET_SUFFIXES = (".parquet", ".pq")
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")
# what a file chooser may offer (a browser's ``accept``): every suffix read here
FILE_SUFFIXES = tuple(s for group in (TEXT_SUFFIXES, COMPRESSED_SUFFIXES, PARQUET_SUFFIXES,
                                      JSON_SUFFIXES, SPREADSHEET_SUFFIXES) for s in group if s)
DELIMITERS = ",;\t|"
TIMESTAMP_NAMES = ("timestamp", "ds", "date", "datetime", "time")
SNIFF_BYTES = 64 * 1024

# one cell of a number column in text, as a spreadsheet writes it
_THOUSANDS_COMMA = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")  # 1,234.5
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")  # 1.234,5 / 12,5
# a cell that says it holds no value: a dash, or a spreadsheet's error (#DIV/0!, #VALUE!,
# #N/A, #REF!, #NAME?); pandas already reads n/a, NA, null and empty cells as missing
_NO_VALUE = re.compile(r"[-\u2013\u2014]+|#[A-Za-z][A-Za-z0-9/]*[!?]?")
_WITH_UNIT = r"^(?P<number>.*\d)\s*(?P<unit>[^\d\s.,:+-][^\d\s]{0,4})$"  # 45% / 12.5 ms


def is_table_file(path: str | Path) -> bool:
    """Whether the name ends as a table file this module reads; a folder (partitioned
    Parquet) or a file without a suffix (CSV) only when it exists."""
    path = Path(path)
    if path.is_dir():
        return True
    return file_kind(path) is not None and (bool(path.suffix) or path.is_file())


def table_name(path: str | Path) -> str:
    """The file's name without its suffixes (``cpu.csv.gz`` -> ``cpu``): a lone value
    column's series name."""
    path = Path(path)
    name = path.name
    for suffix in reversed(path.suffixes[-2:]):
        if suffix.lower() in FILE_SUFFIXES:
            name = name[: -len(suffix)]
        else:
            break
    return name or path.name


def file_kind(path: Path) -> str | None:
    """"text", "json", "parquet" or "spreadsheet" from the name's suffixes; None: unknown."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        inner = suffixes[-2] if len(suffixes) == 2 else ""
        return "json" if inner in JSON_SUFFIXES else "text" if inner in TEXT_SUFFIXES else None
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES:
        return "parquet"
    if last in SPREADSHEET_SUFFIXES:
        return "spreadsheet"
    if last in JSON_SUFFIXES:
        return "json"
    return "text" if last in TEXT_SUFFIXES else None


def read_table(path: str | Path, sheet: str = "") -> pd.DataFrame:
    """The file as a DataFrame; ``InputError`` with one line if it cannot be read. ``sheet``:
    a workbook's sheet by name or number (1 = the first, the default)."""
    path = Path(path)
    if path.is_dir():
        kind = "parquet"
    elif not path.is_file():
        raise InputError(f"{path}: no such file")
    else:
        kind = file_kind(path)
    if kind is None:
        raise InputError(
            f"{path}: unknown file type {''.join(path.suffixes[-2:])!r}; expected .csv "
            "(.tsv, .txt, also compressed: .csv.gz, .csv.zip, ...), .parquet, .json, "
            ".jsonl, or a spreadsheet (.xlsx, .xls, .ods)"
        )
    if sheet and kind != "spreadsheet":
        raise InputError(f"{path}: --sheet (SHEET) is for spreadsheets (.xlsx, .xls, .ods)")
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "spreadsheet":
            return spreadsheet_numbers(_read_sheet(path, _sheet(path, sheet)), decimal_comma=False)
        if kind == "json":
            return _read_json(path)
        tabs = ".tsv" in [s.lower() for s in path.suffixes[-2:]]
        head = _head(path)
        hinted = excel_separator(head)
        delimiter = "\t" if tabs else hinted or sniff_delimiter(head)
        frame = _read_csv(path, delimiter, skip=1 if hinted else 0)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except Exception as exc:  # parser errors of pandas/pyarrow, a bad archive: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a readable {kind} file ({first})") from None
    return spreadsheet_numbers(frame, decimal_comma=delimiter != ",")


def sheet_names(path: Path) -> list[str]:
    from python_calamine import CalamineWorkbook

    return list(CalamineWorkbook.from_path(str(path)).sheet_names)


def workbook_sheets(path: str | Path) -> list[str]:
    """A spreadsheet's sheet names, in order; [] for any other file or one not readable."""
    path = Path(path)
    if not path.is_file() or file_kind(path) != "spreadsheet":
        return []
    try:
        return sheet_names(path)
    except Exception:  # a broken workbook: read_table names the problem
        return []


def sheet_title(path: str | Path, sheet: str) -> str:
    """The name of the sheet ``sheet`` picks (a name, or a number from 1), for labels."""
    chosen = _sheet(Path(path), sheet)
    return chosen if isinstance(chosen, str) else sheet_names(Path(path))[chosen]


def _sheet(path: Path, sheet: str) -> int | str:
    """The sheet ``read_excel`` takes: a name the workbook has, or an index from a number
    (1 = the first); ``InputError`` naming the sheets otherwise."""
    if not sheet.strip():
        return 0
    names = sheet_names(path)
    if sheet in names:
        return sheet
    if sheet.strip().isdigit() and 1 <= int(sheet) <= len(names):
        return int(sheet) - 1
    raise InputError(f"{path}: no sheet {sheet!r}; the workbook has "
                     f"{listed(repr(n) for n in names)} (name one, or give its number: 1 is "
                     "the first)")


def _read_sheet(path: Path, sheet: int | str = 0, looked_at: int = 20) -> pd.DataFrame:
    """A sheet, its header the first row, or, where a title or notes sit above the table,
    the first of its first ``looked_at`` rows that names every column (all text, filling
    every column the sheet uses); read again from there only in that case."""
    frame = pd.read_excel(path, sheet_name=sheet, engine="calamine")
    if sheet == 0:  # the default: name the others where no time column is found
        frame.attrs["other_sheets"] = sheet_names(path)[1:]
    top = pd.concat([frame.columns.to_frame().T, frame.head(looked_at - 1)], ignore_index=True)
    top = top.dropna(axis="columns", how="all")
    unnamed = [isinstance(c, str) and c.startswith("Unnamed: ") for c in frame.columns]
    top.iloc[0] = [None if u else c for u, c in zip(unnamed, top.iloc[0])]  # empty cells
    for row, cells in top.iterrows():
        if cells.notna().all() and all(isinstance(c, str) and c.strip() for c in cells):
            if row == 0:
                return frame
            again = pd.read_excel(path, sheet_name=sheet, engine="calamine", header=int(row))
            again.attrs = frame.attrs
            return again
    return frame


def _read_json(path: Path) -> pd.DataFrame:
    """An array of records or an object of columns; JSON Lines for ``.jsonl``/``.ndjson``,
    or where a ``.json`` file holds one record a line. No type guessing beyond JSON's own
    (pandas would turn epoch numbers in a column named ``timestamp`` into dates by its own
    rules; the table's time rules read them instead)."""
    options = {"dtype": False, "convert_dates": False, "compression": "infer"}
    lines = any(s.lower() in (".jsonl", ".ndjson") for s in path.suffixes[-2:])
    if not lines:
        try:
            return pd.read_json(path, **options)
        except ValueError as exc:
            if "Trailing data" not in str(exc):
                raise
    return pd.read_json(path, lines=True, **options)


def _read_csv(path: Path, delimiter: str, skip: int = 0) -> pd.DataFrame:
    """UTF-8 (a byte-order mark dropped); failing that, Windows-1252, the encoding of
    Excel's plain "CSV" on Western-European Windows (``°C``, ``Größe``), then Latin-1.
    ``skip``: lines before the header (an Excel ``sep=`` line)."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(path, sep=delimiter, encoding=encoding, skiprows=skip)
        except UnicodeDecodeError:
            continue
    return pd.read_csv(path, sep=delimiter, encoding="latin-1", skiprows=skip)


def excel_separator(text: str) -> str:
    """The delimiter a first line ``sep=X`` names (Excel reads the file by it; Grafana's
    "Download for Excel" writes one), else ""."""
    first = text.split("\n", 1)[0].strip().strip('"')
    if len(first) == 5 and first.lower().startswith("sep="):
        return first[4]
    return ""


def _head(path: Path) -> str:
    """The first bytes of the file's text (decompressed), for the sniffer."""
    import bz2
    import gzip
    import lzma
    import zipfile

    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            data = archive.open(names[0]).read(SNIFF_BYTES) if names else b""
    else:
        opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(suffix, open)
        with opener(path, "rb") as file:
            data = file.read(SNIFF_BYTES)
    return data.decode("utf-8-sig", errors="replace")


def sniff_delimiter(text: str) -> str:
    """The delimiter ``csv.Sniffer`` finds among comma, semicolon, tab and ``|`` in the first
    lines, if the header has it; else a comma (one column, or nothing to tell by)."""
    lines = text.splitlines()[:50]
    if len(text) >= SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    if not lines:
        return ","
    try:
        found = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","
    return found if found in lines[0] else ","


def spreadsheet_numbers(frame: pd.DataFrame, decimal_comma: bool) -> pd.DataFrame:
    """Text columns whose every cell is a number with thousands separators (and, when
    ``decimal_comma``, a decimal comma), or followed by one unit, as numbers; other columns
    unchanged. Cells that say they hold no value (``-``, ``#DIV/0!``) do not stop a column:
    they stay as written, bad points of its series, as other text in a column of numbers."""
    converted = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        numbers = _spreadsheet_column(column, decimal_comma)
        if numbers is not None:
            converted[name] = numbers
    return frame.assign(**converted) if converted else frame


def _spreadsheet_column(column: pd.Series, decimal_comma: bool) -> pd.Series | None:
    cells = column.dropna()
    if cells.empty or not all(isinstance(c, str) for c in cells):
        return None
    text = cells.str.strip()
    no_value = text.str.fullmatch(_NO_VALUE)
    if no_value.all():
        return None
    text = text[~no_value]
    before_unit = _numbers_before_one_unit(text)
    if before_unit is not None:
        text = before_unit
    if not text.str.contains(",", regex=False).any():
        if before_unit is None:
            return None  # nothing a spreadsheet wrote: leave it to the usual rules
        plain = text
    elif decimal_comma and text.str.match(_DECIMAL_COMMA).all():
        plain = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    elif (text.str.match(_THOUSANDS_COMMA) | pd.to_numeric(text, errors="coerce").notna()).all():
        plain = text.str.replace(",", "", regex=False)
    else:
        return None
    numbers = pd.to_numeric(plain, errors="coerce")
    if numbers.isna().any():
        return None
    if no_value.any():  # kept as written: bad points, not gaps
        return column.astype(object).where(~column.index.isin(numbers.index), numbers)
    return numbers.reindex(column.index)


def _numbers_before_one_unit(text: pd.Series) -> pd.Series | None:
    """What comes before the unit of cells that all end in the same one (``45%``,
    ``12.5 ms``), else None. The first cells are tried alone first: most text columns
    (times such as ``01:00 AM``, names) fail there, without a pass over the whole column."""
    for cells in (text.head(20), text):
        split = cells.str.extract(_WITH_UNIT)
        if split["unit"].isna().any() or split["unit"].nunique() != 1:
            return None
        digits = split["number"].str.replace(",", "", regex=False).str.replace(".", "", regex=False)
        if not digits.str.fullmatch(r"[+-]?\d+(e[+-]?\d+)?").all():
            return None
    return split["number"]


def listed(names) -> str:
    """Column names for a one-line message: line breaks and tabs in a name shown escaped."""
    table = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})
    return ", ".join(str(name).translate(table) for name in names)


def time_column(frame: pd.DataFrame, named: str = "", where: str = "file") -> str:
    """The time column: ``named`` if given (``InputError`` if absent), else the first whose
    name is a usual one (any case), else the first whose cells read as dates."""
    columns = [str(c) for c in frame.columns]
    if named:
        if named not in columns:
            raise InputError(f"{where}: no column {named!r}; found {listed(columns)}")
        return named
    found = next((c for c in columns if c.strip().lower() in TIMESTAMP_NAMES), "")
    found = found or next((c for c in columns if looks_like_time(frame[c])), "")
    if not found:
        others = frame.attrs.get("other_sheets")
        sheets = (f"; that is the workbook's first sheet, --sheet (SHEET) picks another: "
                  f"{listed(repr(n) for n in others)}") if others else ""
        raise InputError(
            f"{where}: no timestamp column found among {listed(columns) or 'no columns'}; "
            "name it with --timestamp-column (or use the long layout series,timestamp,value)"
            + sheets
        )
    return found


def value_columns(frame: pd.DataFrame, time: str, named: str | list[str] = "",
                  label: str = "", where: str = "file") -> list[str]:
    """A wide file's series: ``named`` (comma-separated or a list; ``InputError`` for one
    that is absent), else every numeric column but ``time`` and ``label``; ``InputError``
    naming the text columns when there is none."""
    columns = [str(c) for c in frame.columns]
    if isinstance(named, str):
        named = [c.strip() for c in named.split(",") if c.strip()]
    if named:
        missing = [c for c in named if c not in columns]
        if missing:
            raise InputError(f"{where}: no column(s) {listed(missing)}; found {listed(columns)}")
        return list(named)
    others = [c for c in columns if c not in (time, label)]
    numeric = [c for c in others if _mostly_numbers(frame[c])]
    if numeric:
        return numeric
    text = [c for c in others if frame[c].notna().any()]
    why = "; ".join(
        f"{c!r} holds text such as {frame[c].dropna().iloc[0]!r}" for c in text[:3]
    )
    raise InputError(f"{where}: no numeric value column besides {time!r}" + (f" ({why})" if why else ""))


def _mostly_numbers(column: pd.Series) -> bool:
    """A column of numbers, or of text at least half of whose cells are numbers (a series
    with some bad cells, which become bad points, not a column of names)."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    if column.dtype != object:
        return False
    cells = column.dropna()
    return len(cells) > 0 and pd.to_numeric(cells, errors="coerce").notna().mean() >= 0.5


def looks_like_time(column: pd.Series) -> bool:
    """Whether a column's first cells all read as dates (numbers do not: they may be
    values)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if column.dtype != object:
        return False
    sample = column.dropna().head(20)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
    return len(sample) > 0 and parsed.notna().all()


__all__ = [
    "InputError", "is_table_file", "looks_like_time", "read_table", "sniff_delimiter",
    "spreadsheet_numbers", "table_name", "time_column", "value_columns",
]
