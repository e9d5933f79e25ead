"""Bodies of ``POST /api/ingest`` -> ``Points``: JSON, CSV (long or wide) and InfluxDB line
protocol.

All or nothing: a malformed object, row or line raises ``InputError`` naming where and why,
and nothing of the body is kept. Bad values (null, NaN, inf, text) are bad points, not errors.

Epoch numbers in JSON and CSV are seconds, or milliseconds when ``abs(t) >= 1e11`` (1e11 s is
the year 5138, 1e11 ms is March 1973), so both common clocks work without a flag. ISO times
without an offset are UTC, or with ``?timezone=ZONE`` clock times of that zone (a logger's
local clock; ``local_time.settle_repeated_hour`` tells the hour that the end of summer time
repeats apart).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from datetime import datetime, timezone

import numpy as np

from .local_time import check_timezone, pushed_clock_time, settle_repeated_hour
from .points import SECONDS_LIMIT, InputError, Points, series_name

MILLISECONDS_FROM = 1e11
NAN_WORDS = frozenset(("nan", "inf", "-inf", "+inf", "infinity", "-infinity", "null", "none"))
# Limits every point of a body is checked against (all formats): a timestamp within
# SECONDS_LIMIT, a name the store can keep (its series.name column holds 512 characters;
# PostgreSQL text takes no NUL, and UTF-8 no lone surrogate, which a JSON \ud800 escape can
# make).
MAX_NAME_CHARS = 512

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
LINE_PROTOCOL_TYPES = ("text/plain", "application/x-influx-line-protocol", "application/x-influxdb-line-protocol")
ACCEPTED_TYPES = JSON_TYPES + CSV_TYPES + LINE_PROTOCOL_TYPES

# InfluxDB precisions (v2: ns, us, ms, s; v1 adds n, u, m, h) as (multiplier, divisor) to seconds.
PRECISIONS = {
    "ns": (1, 10**9), "n": (1, 10**9),
    "us": (1, 10**6), "u": (1, 10**6),
    "ms": (1, 10**3),
    "s": (1, 1),
    "m": (60, 1),
    "h": (3600, 1),
}


class UnsupportedMediaType(InputError):
    """A body in a format the ingest endpoint does not read (the handler answers 415)."""


def parse_body(body: bytes, content_type: str, precision: str | None = None,
               now: float | None = None, series: str | None = None, timezone: str = "",
               newest=None) -> Points:
    """Points of one ingest body, read by its media type (parameters such as charset
    ignored); ``series`` names a wide CSV's lone value column; ``timezone`` the zone of ISO
    times without an offset (JSON, CSV), with ``newest`` (names -> {name: epoch seconds} the
    stream holds) to place the repeated hour's second run."""
    zone = check_timezone(timezone or "")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"unsupported media type {media_type or '(none)'!r}; accepted: {', '.join(ACCEPTED_TYPES)}"
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"body is not UTF-8 (byte {error.start})") from None
    if series and media_type not in CSV_TYPES:
        raise InputError("?series= names the lone value column of a CSV body (timestamp,value)")
    if media_type in JSON_TYPES:
        points = parse_json(text, zone, newest)
    elif media_type in CSV_TYPES:
        points = parse_csv(text, series, zone, newest)
    else:
        points = parse_line_protocol(text, precision=precision, now=now)
    return checked(points)


def checked(points: Points) -> Points:
    """``points`` unchanged, or InputError for the first point out of range or badly named."""
    far = np.flatnonzero(~(np.abs(points.timestamps) < SECONDS_LIMIT))
    if len(far):
        i = int(far[0])
        raise InputError(
            f"point {i + 1} ({points.series[i][:60]!r}): timestamp {points.timestamps[i]:.6g} s "
            "is out of range: expected a time in the years 1 to 5138"
        )
    for name in dict.fromkeys(points.series):
        problem = name_problem(name)
        if problem:
            raise InputError(f"series name {name[:60]!r} is not allowed: {problem}")
    return points


def name_problem(name: str) -> str:
    """Why the store cannot keep ``name`` ('' when it can)."""
    if not name.strip():
        return "it is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"{len(name)} characters, at most {MAX_NAME_CHARS}"
    if "\x00" in name:
        return "it contains a NUL character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode (a lone surrogate)"
    return ""


# ----------------------------------------------------------------------------------- shared


def _epoch_from_number(t: float) -> float:
    return t / 1000.0 if abs(t) >= MILLISECONDS_FROM else float(t)


def _epoch_from_iso(text: str, zone: str = "") -> tuple[float, bool]:
    """(epoch seconds, whether the text had no offset): UTC, or a clock time of ``zone``."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is not None:
        return moment.timestamp(), False
    if zone:
        return pushed_clock_time(moment, zone), True
    return moment.replace(tzinfo=timezone.utc).timestamp(), True


def _in_zone(points: Points, naive, zone: str, newest) -> Points:
    """``points`` with the repeated hour's second run placed (see ``settle_repeated_hour``)."""
    if not zone or not len(points):
        return points
    stamps = settle_repeated_hour(points.series, points.timestamps,
                                  np.asarray(naive, dtype=bool), zone, newest)
    return Points(points.series, stamps, points.values)


def _finite(number: int | float) -> bool:
    """Whether a JSON number fits a float (an integer of 400 digits does not)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    values[~np.isfinite(values)] = np.nan
    return values


# ------------------------------------------------------------------------------------- JSON


def parse_json(text: str, zone: str = "", newest=None) -> Points:
    """``{"series": name, "points": [[timestamp, value], ...]}`` or a list of such objects;
    ISO times without an offset are clock times of ``zone`` (default UTC)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    objects = document if isinstance(document, list) else [document]
    names: list[str] = []
    stamps: list[float] = []
    naive: list[bool] = []  # per point: an ISO time without an offset
    values: list[float] = []
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise InputError(f"object {index}: expected an object with \"series\" and \"points\", got {type(obj).__name__}")
        name = obj.get("series")
        if not isinstance(name, str) or not name:
            raise InputError(f"object {index}: missing \"series\" (a non-empty string)")
        points = obj.get("points")
        if not isinstance(points, list):
            raise InputError(f"object {index} ({name}): missing \"points\" (a list of [timestamp, value])")
        for position, point in enumerate(points):
            if not isinstance(point, list) or len(point) != 2:
                raise InputError(
                    f"object {index} ({name}), point {position}: expected [timestamp, value], got {json.dumps(point)[:60]}"
                )
            stamp, value = point
            if type(stamp) is float or type(stamp) is int:
                if not _finite(stamp):
                    raise InputError(f"object {index} ({name}), point {position}: timestamp "
                                     f"{str(stamp)[:30]} is not finite")
                stamps.append(_epoch_from_number(stamp))
                naive.append(False)
            elif isinstance(stamp, str):
                try:
                    instant, without_offset = _epoch_from_iso(stamp, zone)
                except InputError as error:  # a clock time the zone skipped
                    raise InputError(
                        f"object {index} ({name}), point {position}: {error}") from None
                except ValueError:
                    raise InputError(
                        f"object {index} ({name}), point {position}: timestamp {stamp!r} is not ISO 8601 "
                        "or epoch seconds/milliseconds"
                    ) from None
                stamps.append(instant)
                naive.append(without_offset)
            else:
                raise InputError(
                    f"object {index} ({name}), point {position}: timestamp {json.dumps(stamp)} is not ISO 8601 "
                    "or epoch seconds/milliseconds"
                )
            values.append(value if type(value) is float or (type(value) is int and _finite(value))
                          else math.nan)
        names.extend([name] * len(points))
    points = Points(tuple(names), np.array(stamps, dtype=float),
                    _finite_or_nan(np.array(values, dtype=float)))
    return _in_zone(points, naive, zone, newest)


# -------------------------------------------------------------------------------------- CSV

CSV_HEADERS = (("series", "timestamp", "value"), ("unique_id", "ds", "y"))


def parse_csv(text: str, series: str | None = None, zone: str = "", newest=None) -> Points:
    """CSV with a header: long (``series,timestamp,value`` or Nixtla's ``unique_id,ds,y``) or
    wide, as files are (a time column named ``timestamp``, ``ds``, ``date``, ``datetime`` or
    ``time``, and one column per series, named by its header; an empty cell is no point).
    ``series`` names a wide body's lone value column (NAB's ``timestamp,value``); ISO times
    without an offset are clock times of ``zone`` (default UTC)."""
    reader = csv.reader(io.StringIO(text, newline=""))  # the csv module's own line endings
    try:
        rows = [row for row in reader if row]
    except csv.Error as error:  # e.g. a quote left open
        raise InputError(f"CSV line {reader.line_num}: {error}") from None
    if not rows:
        raise InputError("CSV body is empty; expected a header series,timestamp,value or unique_id,ds,y")
    header = tuple(cell.strip().lower() for cell in rows[0])
    if header not in CSV_HEADERS:
        return _wide_csv(rows, series, zone, newest)
    if series:
        raise InputError("?series= names the lone value column of a wide CSV (timestamp,value); "
                         "a long CSV names its series in its rows")
    data = rows[1:]
    for number, row in enumerate(data, start=1):
        if len(row) != 3:
            raise InputError(f"CSV row {number}: expected 3 columns, got {len(row)}: {','.join(row)[:80]!r}")
    if not data:
        return Points.empty()
    names, stamp_cells, value_cells = zip(*data)
    stamps, naive = _csv_stamps(stamp_cells, zone)
    try:
        values = np.array(value_cells, dtype=float)
    except ValueError:
        values = np.array([_float_or_nan(cell) for cell in value_cells])
    points = Points(tuple(name.strip() for name in names), stamps, _finite_or_nan(values))
    return _in_zone(points, naive, zone, newest)


def _wide_csv(rows: list[list[str]], series: str | None, zone: str = "",
              newest=None) -> Points:
    from .table_file import TIMESTAMP_NAMES

    header = [cell.strip() for cell in rows[0]]
    lowered = [cell.lower() for cell in header]
    time_at = next((i for i, cell in enumerate(lowered) if cell in TIMESTAMP_NAMES), None)
    if time_at is None:
        raise InputError(
            f"CSV header {','.join(rows[0])[:80]!r} is not series,timestamp,value or "
            "unique_id,ds,y, and has no time column (timestamp, ds, date, datetime or time) "
            "for a wide CSV"
        )
    columns = [i for i, cell in enumerate(lowered) if i != time_at and cell != "label"]
    if not columns:
        raise InputError(f"CSV header {','.join(rows[0])[:80]!r} has no value column")
    names = [header[i] for i in columns]
    if series:
        if len(columns) != 1:
            raise InputError(f"?series= names a wide CSV's lone value column; this one has "
                             f"{len(columns)} ({', '.join(names)[:80]})")
        names = [series]
    elif len(columns) == 1 and lowered[columns[0]] in ("value", "y"):
        raise InputError(f"a CSV of one {header[columns[0]]!r} column needs ?series=NAME "
                         "to name its series")
    data = rows[1:]
    for number, row in enumerate(data, start=1):
        if len(row) != len(header):
            raise InputError(f"CSV row {number}: expected {len(header)} columns, got "
                             f"{len(row)}: {','.join(row)[:80]!r}")
    if not data:
        return Points.empty()
    stamps, naive = _csv_stamps([row[time_at] for row in data], zone)
    cells = [(name, stamp, row[i].strip(), without_offset) for name, i in zip(names, columns)
             for stamp, row, without_offset in zip(stamps, data, naive)]
    cells = [cell for cell in cells if cell[2]]  # an empty cell: no point of that series
    if not cells:
        return Points.empty()
    point_names, point_stamps, value_cells, point_naive = zip(*cells)
    values = np.array([_float_or_nan(cell) for cell in value_cells])
    names_array = np.array(point_names, dtype=object)
    for name, i in zip(names, columns):  # a column of names or tags is not a series
        own = names_array == name
        if own.any() and np.isnan(values[own]).all() and not any(
                row[i].strip().lower() in NAN_WORDS for row in data):
            first = next(row[i] for row in data if row[i].strip())
            raise InputError(
                f"CSV column {header[i]!r} holds no number (first cell {first[:40]!r}): in a "
                "wide CSV every column but the time is a series; name series in rows with "
                "series,timestamp,value")
    points = Points(point_names, np.array(point_stamps, dtype=float), _finite_or_nan(values))
    return _in_zone(points, point_naive, zone, newest)  # each column's points in row order


def _csv_stamps(stamp_cells, zone: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, whether each was an ISO time without an offset) of a CSV's time
    cells: epoch seconds or milliseconds, or ISO 8601 (UTC, or clock times of ``zone``)."""
    naive = np.zeros(len(stamp_cells), dtype=bool)
    try:
        raw = np.array(stamp_cells, dtype=float)
        if not np.isfinite(raw).all():
            raise ValueError
        return np.where(np.abs(raw) >= MILLISECONDS_FROM, raw / 1000.0, raw), naive
    except ValueError:
        stamps = np.empty(len(stamp_cells))
        for number, cell in enumerate(stamp_cells, start=1):
            try:
                number_value = float(cell)
                if not math.isfinite(number_value):
                    raise ValueError
                stamps[number - 1] = _epoch_from_number(number_value)
            except ValueError:
                try:
                    stamps[number - 1], naive[number - 1] = _epoch_from_iso(cell, zone)
                except InputError as error:  # a clock time the zone skipped
                    raise InputError(f"CSV row {number}: {error}") from None
                except ValueError:
                    raise InputError(
                        f"CSV row {number}: timestamp {cell!r} is not ISO 8601 or epoch seconds/milliseconds"
                    ) from None
        return stamps, naive


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


# ---------------------------------------------------------------------------- line protocol

_TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
_FALSE = frozenset(("f", "F", "false", "False", "FALSE"))
_STRING = object()  # marks a string field: string fields are skipped (not a numeric series)


def parse_line_protocol(text: str, precision: str | None = None, now: float | None = None) -> Points:
    """InfluxDB line protocol; each numeric field is a point ``measurement.field{tags}``.

    Booleans are 1/0; string fields are skipped (text is not a series: Telegraf sends status
    strings next to numbers); a line with no timestamp gets ``now`` (time of receipt).
    """
    unit = precision or "ns"
    if unit not in PRECISIONS:
        raise InputError(
            f"unknown precision {unit!r}; allowed: ns, us, ms, s (v2) and n, u, ms, s, m, h (v1)"
        )
    multiplier, divisor = PRECISIONS[unit]
    received = time.time() if now is None else float(now)
    if "\\" not in text and '"' not in text:
        batch = _fast_batch(text, multiplier, divisor)
        if batch is not None:
            return batch
    key_cache: dict[str, tuple[str, dict[str, str]]] = {}
    name_cache: dict[tuple[str, str], str] = {}
    names: list[str] = []
    values: list[float] = []
    stamps: list[int | None] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line or line[0] == "#":
            continue
        parsed = _fast_line(line, key_cache) if "\\" not in line and '"' not in line else None
        if parsed is None:
            parsed = _slow_line(line, number)
        key, measurement, tags, fields, stamp = parsed
        if stamp is not None:
            try:
                stamp = int(stamp)
            except ValueError:
                raise InputError(f"line {number}: timestamp {stamp!r} is not an integer: {line[:80]!r}") from None
            if not -(2**63) <= stamp < 2**63:  # InfluxDB's own range: a signed 64-bit integer
                raise InputError(f"line {number}: timestamp {str(stamp)[:30]} is out of range: "
                                 f"{line[:80]!r}")
        for field, raw in fields:
            value = raw if raw is _STRING or type(raw) is float else _field_value(raw, field, number, line)
            if value is _STRING:
                continue
            name = name_cache.get((key, field))
            if name is None:
                name = name_cache[(key, field)] = series_name(f"{measurement}.{field}", tags)
            names.append(name)
            values.append(value)
            stamps.append(stamp)
    if not names:
        return Points.empty()
    if None in stamps:
        seconds = np.array(
            [received if s is None else s * multiplier / divisor for s in stamps], dtype=float
        )
    elif divisor == 1:
        seconds = np.array(stamps, dtype=float) * multiplier
    else:
        seconds = np.array(stamps, dtype=np.int64) / divisor
    return Points(tuple(names), seconds, _finite_or_nan(np.array(values, dtype=float)))


def _fast_batch(text: str, multiplier: int, divisor: int) -> Points | None:
    """Whole body at once when every line is plain ``key fields timestamp`` with float fields
    (Telegraf's usual shape): a few C-level splits/joins and ``map(float)``, no Python loop per
    point. None: the line-by-line parser takes over (and words any error)."""
    text = text.strip()
    if not text or "#" in text or "\r" in text or "\t" in text or "\n\n" in text:
        return None
    n_lines = text.count("\n") + 1
    flat = text.replace("\n", " ").split(" ")
    if len(flat) != 3 * n_lines:
        return None
    keys, field_texts, stamp_texts = flat[0::3], flat[1::3], flat[2::3]
    pairs_text = ",".join(field_texts)
    n_pairs = pairs_text.count(",") + 1
    kv = pairs_text.replace("=", ",").split(",")
    if len(kv) != 2 * n_pairs:
        return None
    field_keys, raw_values = kv[0::2], kv[1::2]
    if "_" in "".join(raw_values) or "_" in "".join(stamp_texts):  # float() and int() allow 1_000
        return None
    try:
        values = np.fromiter(map(float, raw_values), dtype=float, count=n_pairs)
        stamps = np.fromiter(map(int, stamp_texts), dtype=np.int64, count=n_lines)
    except (ValueError, OverflowError):
        return None
    if n_pairs != n_lines:
        counts = np.fromiter(map(len, map(str.split, field_texts, [","] * n_lines)), dtype=np.int64, count=n_lines)
        keys = [key for key, count in zip(keys, counts.tolist()) for _ in range(count)]
        stamps = np.repeat(stamps, counts)
    combos = list(zip(keys, field_keys))
    names = {}
    for key, field in dict.fromkeys(combos):
        parsed = _plain_key(key)
        if parsed is None or not field:
            return None
        names[(key, field)] = series_name(f"{parsed[0]}.{field}", parsed[1])
    series = tuple(map(names.__getitem__, combos))
    seconds = stamps * float(multiplier) if divisor == 1 else stamps / divisor
    return Points(series, seconds, _finite_or_nan(values))


def _plain_key(key: str):
    measurement, *tag_parts = key.split(",")
    if not measurement:
        return None
    tags = {}
    for part in tag_parts:
        tag, _, value = part.partition("=")
        if not tag or not value or "=" in value:
            return None
        tags[tag] = value
    return measurement, tags


def _field_value(raw: str, field: str, number: int, line: str) -> float:
    last = raw[-1]
    try:
        if last == "i":
            return _float_or_inf(int(raw[:-1]))
        if last == "u":
            value = int(raw[:-1])
            if value < 0:
                raise ValueError
            return _float_or_inf(value)
        if raw in _TRUE:
            return 1.0
        if raw in _FALSE:
            return 0.0
        if "_" in raw:
            raise ValueError
        return float(raw)
    except ValueError:
        raise InputError(
            f"line {number}: field {field!r} value {raw!r} is not a float, integer (i), unsigned (u), "
            f"boolean or \"string\": {line[:80]!r}"
        ) from None


def _float_or_inf(integer: int) -> float:
    """An integer field as a float; one beyond float range is infinite (a bad point)."""
    try:
        return float(integer)
    except OverflowError:
        return math.inf


def _fast_line(line: str, key_cache: dict):
    """Line without escapes or quotes: plain splits. None sends an odd line to the slow path."""
    parts = line.split(" ")
    if len(parts) == 2:
        key, fields_text = parts
        stamp = None
    elif len(parts) == 3:
        key, fields_text, stamp = parts
    else:
        return None
    parsed_key = key_cache.get(key)
    if parsed_key is None:
        measurement, *tag_parts = key.split(",")
        if not measurement:
            return None
        tags = {}
        for part in tag_parts:
            tag, sep, value = part.partition("=")
            if not tag or not value or "=" in value:
                return None
            tags[tag] = value
        parsed_key = key_cache[key] = (measurement, tags)
    fields = []
    for part in fields_text.split(","):
        field, sep, value = part.partition("=")
        if not field or not value or "=" in value:
            return None
        fields.append((field, value))
    return key, parsed_key[0], parsed_key[1], fields, stamp


def _slow_line(line: str, number: int):
    """Full syntax: backslash escapes and quoted string fields, one character at a time."""

    def fail(reason: str):
        raise InputError(f"line {number}: {reason}: {line[:80]!r}")

    n = len(line)

    def read_token(i: int, stops: str, escapable: str) -> tuple[str, int]:
        out = []
        while i < n:
            c = line[i]
            if c == "\\" and i + 1 < n and line[i + 1] in escapable:
                out.append(line[i + 1])
                i += 2
                continue
            if c in stops:
                break
            out.append(c)
            i += 1
        return "".join(out), i

    # measurement
    measurement, i = read_token(0, ", ", ", ")
    if not measurement:
        fail("missing measurement")
    key_start = 0
    tags: dict[str, str] = {}
    while i < n and line[i] == ",":
        tag, i = read_token(i + 1, "=, ", ",= ")
        if i >= n or line[i] != "=" or not tag:
            fail("tag without key=value")
        value, i = read_token(i + 1, "=, ", ",= ")
        if not value or (i < n and line[i] == "="):
            fail(f"tag {tag!r} without a value")
        tags[tag] = value
    key = line[key_start:i]
    if i >= n or line[i] != " ":
        fail("missing fields")
    i += 1
    fields = []
    while True:
        field, i = read_token(i, "=, ", ",= ")
        if not field or i >= n or line[i] != "=":
            fail("field without key=value")
        i += 1
        if i < n and line[i] == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" and i + 1 < n else 1
            if i >= n:
                fail(f"field {field!r}: unterminated string")
            i += 1
            fields.append((field, _STRING))
        else:
            start = i
            while i < n and line[i] not in ", ":
                i += 1
            if i == start:
                fail(f"field {field!r} without a value")
            fields.append((field, line[start:i]))
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    stamp = None
    if i < n:
        rest = line[i + 1 :]
        if not rest or " " in rest:
            fail("expected at most one timestamp after the fields")
        stamp = rest
    return key, measurement, tags, fields, stamp
