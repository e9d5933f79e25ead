"""Bodies of ``POST /api/ingest`` -> ``Points``: JSON, long CSV, InfluxDB line protocol.

All or nothing: a malformed line or row raises ``InputError`` naming it, and nothing of the
body is used. Values that are not numbers (null, "NaN", inf, strings) are bad points, not
errors (the engine's bad-point rule).

- JSON: ``{"series": NAME, "points": [[timestamp, value], ...]}`` or a list of such objects.
- CSV: a header ``series,timestamp,value`` (or Nixtla's ``unique_id,ds,y``), one point a row.
- Line protocol (what Telegraf's HTTP output sends): every field is one point named
  ``measurement.field{tag="value",...}`` (``series_name``); booleans are 1/0; string fields
  are not metrics (status texts, versions) and are skipped; a line without timestamp gets
  the time of receipt.

Timestamps: ISO 8601 (no zone = UTC), or epoch numbers: seconds, or milliseconds when above
1e11 (2001-09-09 in milliseconds, year 5138 in seconds, so the two cannot be confused).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time

import numpy as np
import pandas as pd

from .points import InputError, Points, series_name

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
LINE_TYPES = ("text/plain", "application/x-influxdb-line-protocol", "application/octet-stream")
# seconds per unit of a line-protocol timestamp, for every precision InfluxDB v1 and v2 allow
PRECISIONS = {"ns": 1e-9, "n": 1e-9, "us": 1e-6, "u": 1e-6, "ms": 1e-3, "s": 1.0,
              "m": 60.0, "h": 3600.0}
MS_THRESHOLD = 1e11


class UnsupportedMediaType(InputError):
    """A content type ``/api/ingest`` does not read (the handler answers 415)."""


def parse_body(body: bytes, content_type: str, precision: str | None = None,
               now: float | None = None) -> Points:
    """The points of one request body, by its media type (parameters such as charset ignored)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in JSON_TYPES:
        return parse_json(body)
    if media in CSV_TYPES:
        return parse_csv(body)
    if media in LINE_TYPES:
        return parse_line_protocol(body, precision, now)
    accepted = ", ".join(JSON_TYPES + CSV_TYPES + LINE_TYPES[:2])
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not accepted; send one of {accepted}"
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the body is not UTF-8 text (byte {exc.start})") from None


def epoch_seconds(stamp, where: str) -> float:
    """Epoch seconds of an ISO 8601 string or an epoch number (s, or ms above 1e11)."""
    if isinstance(stamp, bool):
        raise InputError(f"{where}: timestamp {stamp!r} is not a date/time or epoch number")
    if isinstance(stamp, int | float):
        value = float(stamp)
        if not np.isfinite(value):
            raise InputError(f"{where}: timestamp {stamp!r} is not finite")
        return value / 1000.0 if abs(value) > MS_THRESHOLD else value
    if isinstance(stamp, str):
        text = stamp.strip()
        try:
            return epoch_seconds(float(text), where)
        except ValueError:
            pass
        try:
            parsed = pd.Timestamp(text)
        except (ValueError, TypeError):
            parsed = None
        if parsed is not None and parsed is not pd.NaT:
            if parsed.tzinfo is None:
                parsed = parsed.tz_localize("UTC")
            return parsed.timestamp()
    raise InputError(f"{where}: timestamp {stamp!r} is not a date/time or epoch number")


def _value(raw) -> float:
    """A float; NaN for anything that is not a finite number (the bad-point rule)."""
    if isinstance(raw, bool):
        return float(raw)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return float("nan")
    return value if np.isfinite(value) else float("nan")


# --------------------------------------------------------------------------- JSON


def parse_json(body: bytes) -> Points:
    try:
        payload = json.loads(_text(body))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    objects = payload if isinstance(payload, list) else [payload]
    names, stamps, values = [], [], []
    for i, obj in enumerate(objects):
        where = f"object {i}" if isinstance(payload, list) else "the object"
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected {{\"series\": ..., \"points\": [...]}}")
        name = obj.get("series")
        if not isinstance(name, str) or not name:
            raise InputError(f"{where}: \"series\" must be a non-empty string")
        points = obj.get("points")
        if not isinstance(points, list):
            raise InputError(f"{where}: \"points\" must be a list of [timestamp, value]")
        for j, point in enumerate(points):
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise InputError(f"{where}, point {j}: expected [timestamp, value], got {point!r}")
            stamps.append(epoch_seconds(point[0], f"{where}, point {j}"))
            values.append(_value(point[1]))
            names.append(name)
    return Points(tuple(names), np.array(stamps, float), np.array(values, float))


# --------------------------------------------------------------------------- CSV

CSV_HEADERS = (("series", "timestamp", "value"), ("unique_id", "ds", "y"))


def parse_csv(body: bytes) -> Points:
    rows = list(csv.reader(io.StringIO(_text(body))))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise InputError("the CSV body is empty")
    header = tuple(cell.strip() for cell in rows[0])
    layout = next((h for h in CSV_HEADERS if set(h) <= set(header)), None)
    if layout is None:
        raise InputError(
            f"CSV header {','.join(header)!r} is not allowed: expected series,timestamp,value "
            "or unique_id,ds,y"
        )
    columns = [header.index(c) for c in layout]
    names, stamps, values = [], [], []
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise InputError(f"CSV data row {number}: {len(row)} fields, the header has {len(header)}")
        name, stamp, value = (row[c] for c in columns)
        if not name.strip():
            raise InputError(f"CSV data row {number}: the series name is empty")
        stamps.append(epoch_seconds(stamp, f"CSV data row {number}"))
        names.append(name.strip())
        values.append(_value(value))
    return Points(tuple(names), np.array(stamps, float), np.array(values, float))


# --------------------------------------------------------------------------- line protocol

_SPECIAL = re.compile(r'[\\"]')


def parse_line_protocol(body: bytes, precision: str | None = None,
                        now: float | None = None) -> Points:
    unit = PRECISIONS.get(precision or "ns")
    if unit is None:
        raise InputError(
            f"precision={precision!r} is not allowed: expected one of {', '.join(PRECISIONS)}"
        )
    now = time.time() if now is None else now
    names: list[str] = []
    raw_stamps: list[str | None] = []
    values: list[float] = []
    known: dict[tuple[str, str], str] = {}  # (series key, field) -> name: agents repeat them
    for number, line in enumerate(_text(body).split("\n"), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key, fields, stamp = _split_line(line)
        except InputError as exc:
            raise InputError(f"line {number}: {exc}") from None
        for field, raw in fields:
            value = _field_value(raw, field, number)
            if value is None:  # a string field: not a metric
                continue
            name = known.get((key, field))
            if name is None:
                measurement, tags = _series_key(key, number)
                name = known[key, field] = series_name(f"{measurement}.{field}", tags)
            names.append(name)
            values.append(value)
            raw_stamps.append(stamp)
        if stamp is not None and not _INT.fullmatch(stamp):
            raise InputError(f"line {number}: timestamp {stamp!r} is not an integer")
    stamps = np.array(
        [now if s is None else int(s) * unit for s in raw_stamps], dtype=float
    )
    return Points(tuple(names), stamps, np.array(values, float))


_INT = re.compile(r"-?\d+")


def _split_line(line: str) -> tuple[str, list[tuple[str, str]], str | None]:
    """(series key, [(field, raw value)], timestamp or None) of one line."""
    if not _SPECIAL.search(line):  # the common case: no escapes, no quoted strings
        parts = line.split(" ")
        parts = [p for p in parts if p]
        if len(parts) not in (2, 3):
            raise InputError("expected 'measurement[,tags] field=value[,...] [timestamp]'")
        fields = []
        for item in parts[1].split(","):
            field, eq, raw = item.partition("=")
            if not eq or not field or not raw:
                raise InputError(f"field {item!r} is not key=value")
            fields.append((field, raw))
        return parts[0], fields, parts[2] if len(parts) == 3 else None
    return _split_escaped(line)


def _split_escaped(line: str) -> tuple[str, list[tuple[str, str]], str | None]:
    """The full grammar: backslash escapes and double-quoted string fields."""
    sections, current, quoted, i = [], [], False, 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            current.append(line[i : i + 2])
            i += 2
            continue
        if ch == '"' and len(sections) == 1:
            quoted = not quoted
        if ch == " " and not quoted:
            if current:
                sections.append("".join(current))
                current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise InputError("a string field's closing quote is missing")
    if current:
        sections.append("".join(current))
    if len(sections) not in (2, 3):
        raise InputError("expected 'measurement[,tags] field=value[,...] [timestamp]'")
    fields = []
    for item in _split_unescaped(sections[1], ",", quotes=True):
        pair = _split_unescaped(item, "=", quotes=True, limit=1)
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise InputError(f"field {item!r} is not key=value")
        fields.append((_unescape(pair[0]), pair[1]))
    return sections[0], fields, sections[2] if len(sections) == 3 else None


def _split_unescaped(text: str, sep: str, quotes: bool = False, limit: int = -1) -> list[str]:
    out, current, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quotes and ch == '"':
            quoted = not quoted
        if ch == sep and not quoted and (limit < 0 or len(out) < limit):
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current))
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text) if "\\" in text else text


def _series_key(key: str, number: int) -> tuple[str, dict[str, str]]:
    parts = _split_unescaped(key, ",") if "\\" in key else key.split(",")
    measurement = _unescape(parts[0])
    if not measurement:
        raise InputError(f"line {number}: the measurement name is empty")
    tags = {}
    for item in parts[1:]:
        pair = _split_unescaped(item, "=", limit=1) if "\\" in item else item.split("=", 1)
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise InputError(f"line {number}: tag {item!r} is not key=value")
        tags[_unescape(pair[0])] = _unescape(pair[1])
    return measurement, tags


_BOOLEANS = {"t": 1.0, "T": 1.0, "true": 1.0, "True": 1.0, "TRUE": 1.0,
             "f": 0.0, "F": 0.0, "false": 0.0, "False": 0.0, "FALSE": 0.0}


def _field_value(raw: str, field: str, number: int) -> float | None:
    """A float, None for a string field; ``InputError`` for a malformed value."""
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise InputError(f"line {number}: field {field!r} has an unterminated string")
        return None
    if raw in _BOOLEANS:
        return _BOOLEANS[raw]
    text = raw[:-1] if raw[-1] in "iu" else raw
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {number}: field {field!r} value {raw!r} is not a number") from None
    if raw[-1] in "iu" and not _INT.fullmatch(text):
        raise InputError(f"line {number}: field {field!r} value {raw!r} is not an integer")
    return value if np.isfinite(value) else float("nan")
