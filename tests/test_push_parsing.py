"""Ingest bodies -> Points: JSON, long CSV, InfluxDB line protocol; bad input, exact messages."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import numpy as np
import pytest

from granite_panel.sources.points import InputError
from granite_panel.sources.push import UnsupportedMediaType, parse_body

T = 1_700_000_000  # 2023-11-14T22:13:20Z
ISO = "2023-11-14T22:13:20"


def rows(points):
    return [(s, t, None if math.isnan(v) else v) for s, t, v in zip(points.series, points.timestamps, points.values)]


# ---------------------------------------------------------------------------------- JSON


def test_json_object_and_list_with_every_timestamp_form():
    one = parse_body(b'{"series": "a", "points": [[1700000000, 1.5], [1700000001.5, 2]]}', "application/json")
    assert rows(one) == [("a", T, 1.5), ("a", T + 1.5, 2.0)]
    body = (
        '[{"series": "a", "points": [["%s", 1], ["%sZ", 2], ["%s+01:00", 3]]},'
        ' {"series": "b", "points": [[1700000000000, 4], [1700000000500, 5]]}]' % (ISO, ISO, ISO)
    )
    both = parse_body(body.encode(), "application/json; charset=utf-8")
    assert rows(both) == [("a", T, 1.0), ("a", T, 2.0), ("a", T - 3600, 3.0), ("b", T, 4.0), ("b", T + 0.5, 5.0)]


def test_json_bad_values_are_nan_points():
    body = b'{"series": "a", "points": [[1, null], [2, "NaN"], [3, "inf"], [4, "high"], [5, NaN], [6, Infinity], [7, 7]]}'
    points = parse_body(body, "application/json")
    assert len(points) == 7 and np.isnan(points.values[:6]).all() and points.values[6] == 7


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"points": []}', 'object 0: missing "series" (a non-empty string)'),
        (b'[{"series": "a", "points": []}, {"series": 3, "points": []}]', 'object 1: missing "series" (a non-empty string)'),
        (b'{"series": "a"}', 'object 0 (a): missing "points" (a list of [timestamp, value])'),
        (b'{"series": "a", "points": [[1, 2], [3]]}', "object 0 (a), point 1: expected [timestamp, value], got [3]"),
        (b'{"series": "a", "points": [5]}', "object 0 (a), point 0: expected [timestamp, value], got 5"),
        (b'{"series": "a", "points": [["yesterday", 1]]}',
         "object 0 (a), point 0: timestamp 'yesterday' is not ISO 8601 or epoch seconds/milliseconds"),
        (b'{"series": "a", "points": [[true, 1]]}',
         "object 0 (a), point 0: timestamp true is not ISO 8601 or epoch seconds/milliseconds"),
        (b'{"series": "a",\n "points": [[1, 2],]}', "invalid JSON at line 2, column 20: Expecting value"),
        (b'[1]', "object 0: expected an object with \"series\" and \"points\", got int"),
    ],
)
def test_json_structure_errors_name_object_point_and_reason(body, message):
    with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
        parse_body(body, "application/json")


# ----------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("content_type", ["text/csv", "application/csv; charset=utf-8"])
def test_csv_both_headers_numbers_iso_and_bad_values(content_type):
    ours = parse_body(f"series,timestamp,value\na,{T},1\nb,{ISO}Z,x\na,{T}000,\n".encode(), content_type)
    assert rows(ours) == [("a", T, 1.0), ("b", T, None), ("a", T, None)]
    nixtla = parse_body(f"unique_id,ds,y\nm1,{ISO},2.5\n\nm2,{T + 1},3\n".encode(), content_type)
    assert rows(nixtla) == [("m1", T, 2.5), ("m2", T + 1, 3.0)]


@pytest.mark.parametrize(
    "body, message",
    [
        ("series,timestamp,value\na,1,2\nb,1\n", "CSV row 2: expected 3 columns, got 2: 'b,1'"),
        ("series,timestamp,value\na,1,2\na,2,3,4\n", "CSV row 2: expected 3 columns, got 4: 'a,2,3,4'"),
        ("series,timestamp,value\na,1,2\na,soon,3\n", "CSV row 2: timestamp 'soon' is not ISO 8601 or epoch seconds/milliseconds"),
        ("name,time,v\na,1,2\n", "CSV column 'name' holds no number (first cell 'a'): in a "
         "wide CSV every column but the time is a series; name series in rows with "
         "series,timestamp,value"),
        ("name,when,v\na,1,2\n", "CSV header 'name,when,v' is not series,timestamp,value or "
         "unique_id,ds,y, and has no time column (timestamp, ds, date, datetime or time) for a "
         "wide CSV"),
        ("timestamp,value\n1,2\n", "a CSV of one 'value' column needs ?series=NAME to name its "
         "series"),
        ("timestamp,cpu,label\n1,2\n", "CSV row 1: expected 3 columns, got 2: '1,2'"),
        ("ds,label\n1,0\n", "CSV header 'ds,label' has no value column"),
        ("", "CSV body is empty; expected a header series,timestamp,value or unique_id,ds,y"),
    ],
)
def test_csv_errors_name_the_data_row(body, message):
    with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
        parse_body(body.encode(), "text/csv")


def test_a_wide_csv_is_one_series_a_column():
    """As files are: a time column of any usual name (any case), one series a column (a
    lone value column named by ``series``), an empty cell no point, a text cell a bad
    point, a label column ignored; epoch or ISO times."""
    body = f"Timestamp,cpu,mem,label\n{T},1.5,70,0\n{ISO}Z,,x,1\n{T}000,2,71,0\n".encode()
    assert rows(parse_body(body, "text/csv")) == [
        ("cpu", T, 1.5), ("cpu", T, 2.0), ("mem", T, 70.0), ("mem", T, None), ("mem", T, 71.0)]
    nab = f"timestamp,value\n{T},1\n{T + 1},2\n".encode()
    assert rows(parse_body(nab, "text/csv", series="app.cpu")) == [("app.cpu", T, 1.0),
                                                                   ("app.cpu", T + 1, 2.0)]
    assert rows(parse_body(b"date,a\n", "text/csv")) == []
    for body, content_type, message in [
        (b"date,a,b\n1,2,3\n", "text/csv", "?series= names a wide CSV's lone value column; "
         "this one has 2 (a, b)"),
        (f"series,timestamp,value\na,{T},1\n".encode(), "text/csv", "?series= names the "
         "lone value column of a wide CSV (timestamp,value); a long CSV names its series in its rows"),
        (b'{"series": "a", "points": []}', "application/json", "?series= names the lone value "
         "column of a CSV body (timestamp,value)"),
    ]:
        with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
            parse_body(body, content_type, series="x")


def test_csv_line_endings_and_malformed_text_are_parsed_or_refused_never_a_crash():
    """Old Mac (CR) and Windows (CRLF) line endings are rows; what the csv module refuses
    (a field past its size limit) and other line separators (NEL, LS, PS, VT, FF: text, not
    row ends, to csv) are a 400 naming the line, not an uncaught csv.Error (a fuzzer's 500)."""
    mixed = f"series,timestamp,value\r\na,{T},1\rb,{T},2\na,{T + 1},3\r\n".encode()
    assert rows(parse_body(mixed, "text/csv")) == [("a", T, 1.0), ("b", T, 2.0), ("a", T + 1, 3.0)]
    odd = "a\nb\rc\x85d\x0be\x0cf\u2028g\u2029h\r\ni".encode()
    with pytest.raises(InputError, match="^CSV header 'a' is not"):
        parse_body(odd, "text/csv")
    huge = f"series,timestamp,value\na,{T},1\na,{T},{'9' * 200_000}\n".encode()
    with pytest.raises(InputError, match="^CSV line 3: field larger than field limit"):
        parse_body(huge, "text/csv")

# ------------------------------------------------------------------------- line protocol


def test_the_brief_example():
    points = parse_body(b"cpu,host=web-1 usage_idle=93.5 1700000000000000000", "text/plain")
    assert rows(points) == [('cpu.usage_idle{host="web-1"}', T, 93.5)]


@pytest.mark.parametrize(
    "precision, stamp",
    [(None, T * 10**9), ("ns", T * 10**9), ("n", T * 10**9), ("us", T * 10**6), ("u", T * 10**6),
     ("ms", T * 1000), ("s", T), ("m", T // 60), ("h", T // 3600)],
)
def test_every_influx_precision(precision, stamp):
    points = parse_body(f"m f=1 {stamp}".encode(), "application/x-influx-line-protocol", precision=precision)
    expected = {"m": T // 60 * 60, "h": T // 3600 * 3600}.get(precision, T)
    assert points.timestamps[0] == expected


def test_unknown_precision_lists_the_allowed_ones():
    with pytest.raises(InputError, match=r"^unknown precision 'sec'; allowed: ns, us, ms, s \(v2\) and n, u, ms, s, m, h \(v1\)$"):
        parse_body(b"m f=1", "text/plain", precision="sec")


def test_escapes_quoted_strings_and_field_types():
    body = (
        'my\\ meas\\,ure=x,tag\\ key=va\\=l\\,ue\\ 1 fi\\=eld\\ 1=1i,u=7u,b=true,B=F,s="say \\"hi\\", x=1 y",'
        'neg=-3i,e=1.5e3 1700000000000000000\n'
    )
    points = parse_body(body.encode(), "text/plain")
    name = 'my meas,ure=x.{}{{tag key="va=l,ue 1"}}'
    assert rows(points) == [
        (name.format("fi=eld 1"), T, 1.0),
        (name.format("u"), T, 7.0),
        (name.format("b"), T, 1.0),
        (name.format("B"), T, 0.0),
        (name.format("neg"), T, -3.0),
        (name.format("e"), T, 1500.0),
    ]  # the string field s is skipped: text is not a series


def test_missing_timestamp_is_the_time_of_receipt_and_comments_blank_lines_are_ignored():
    body = b"# telegraf header\n\n  m f=1\r\nm g=2 1700000000000000000\n"
    points = parse_body(body, "text/plain", now=123.5)
    assert rows(points) == [("m.f", 123.5, 1.0), ("m.g", T, 2.0)]
    assert rows(parse_body(b'm s="only text"', "text/plain")) == []


def test_telegraf_shaped_batch():
    body = """\
cpu,cpu=cpu0,host=web-1 usage_idle=93.5,usage_user=4.25,usage_system=2.25 1700000000000000000
cpu,cpu=cpu1,host=web-1 usage_idle=90,usage_user=6.5,usage_system=3.5 1700000000000000000
mem,host=web-1 used=8123456i,available_percent=52.1,active=true 1700000000000000000
system,host=web-1 load1=0.52,n_cpus=2i,uptime_format="3 days,  1:02" 1700000010000000000
disk,device=sda1,fstype=ext4,host=web-1,mode=rw,path=/ free=1234567890u,inodes_used=12345i 1700000010000000000
"""
    points = parse_body(body.encode(), "text/plain")
    assert len(points) == 13  # 3 + 3 + 3 + 2 + 2 numeric fields; the string field is skipped
    got = dict(zip(points.series, zip(points.timestamps, points.values)))
    assert got['cpu.usage_user{cpu="cpu1",host="web-1"}'] == (T, 6.5)
    assert got['mem.used{host="web-1"}'] == (T, 8123456.0)
    assert got['mem.active{host="web-1"}'] == (T, 1.0)
    assert got['system.n_cpus{host="web-1"}'] == (T + 10, 2.0)
    assert got['disk.free{device="sda1",fstype="ext4",host="web-1",mode="rw",path="/"}'] == (T + 10, 1234567890.0)
    assert not any(name.startswith("system.uptime_format") for name in points.series)


@pytest.mark.parametrize(
    "body, message",
    [
        ("m f=1\nm f=abc", "line 2: field 'f' value 'abc' is not a float, integer (i), unsigned (u), boolean or \"string\": 'm f=abc'"),
        ("m f=-1u", "line 1: field 'f' value '-1u' is not a float, integer (i), unsigned (u), boolean or \"string\": 'm f=-1u'"),
        ("m f=1_000", "line 1: field 'f' value '1_000' is not a float, integer (i), unsigned (u), boolean or \"string\": 'm f=1_000'"),
        ("m f=1 soon", "line 1: timestamp 'soon' is not an integer: 'm f=1 soon'"),
        ("m", "line 1: missing fields: 'm'"),
        ("m,host f=1", "line 1: tag without key=value: 'm,host f=1'"),
        ("m,host= f=1", "line 1: tag 'host' without a value: 'm,host= f=1'"),
        ("m f", "line 1: field without key=value: 'm f'"),
        ("m f=", "line 1: field 'f' without a value: 'm f='"),
        ('m s="open', "line 1: field 's': unterminated string: 'm s=\"open'"),
        ("m f=1 1 2", "line 1: expected at most one timestamp after the fields: 'm f=1 1 2'"),
        (",t=1 f=1", "line 1: missing measurement: ',t=1 f=1'"),
    ],
)
def test_line_protocol_errors_name_the_line(body, message):
    with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
        parse_body(body.encode(), "text/plain")


def test_all_or_nothing_and_unsupported_media_type():
    with pytest.raises(InputError, match="^line 3: "):
        parse_body(b"m f=1\nm f=2\nm f=x", "text/plain")
    with pytest.raises(
        UnsupportedMediaType,
        match=r"^unsupported media type 'application/xml'; accepted: application/json, text/csv, application/csv, "
        r"text/plain, application/x-influx-line-protocol, application/x-influxdb-line-protocol$",
    ):
        parse_body(b"<a/>", "application/xml")
    with pytest.raises(InputError, match=r"^body is not UTF-8 \(byte 0\)$"):
        parse_body(b"\xff m f=1", "text/plain")
    assert issubclass(UnsupportedMediaType, InputError)
    assert datetime.fromtimestamp(T, timezone.utc).isoformat().startswith(ISO)


def test_whole_body_fast_path_agrees_with_the_line_by_line_parser():
    """Plain bodies take a whole-body path; a comment line forces the line-by-line one."""
    body = "".join(
        f"cpu,host=web-{i % 3},dc=eu usage_idle={90 + i * 0.25},usage_user={i}.5 {T + i}000000000\n"
        for i in range(50)
    ) + "mem,host=a used=nan 1700000000000000000\n"
    fast = parse_body(body.encode(), "text/plain")
    slow = parse_body(("# force the line-by-line parser\n" + body).encode(), "text/plain")
    assert len(fast) == 101 and fast.series == slow.series
    np.testing.assert_array_equal(fast.timestamps, slow.timestamps)
    np.testing.assert_array_equal(fast.values, slow.values)
    assert fast.series[1] == 'cpu.usage_user{dc="eu",host="web-0"}' and np.isnan(fast.values[-1])
    for precision in ("s", "h"):
        small = parse_body(b"m f=1 5\nm f=2 6", "text/plain", precision=precision)
        assert small.timestamps.tolist() == ([5.0, 6.0] if precision == "s" else [18000.0, 21600.0])


# ------------------------------------------------------- out of range (found by fuzzing)
BIG = "9" * 400  # an integer no float holds


@pytest.mark.parametrize("body, content_type, message", [
    (f'{{"series": "a", "points": [[{BIG}, 1]]}}', "application/json",
     f"object 0 (a), point 0: timestamp {BIG[:30]} is not finite"),
    ('{"series": "a", "points": [[1e300, 1]]}', "application/json",
     "point 1 ('a'): timestamp 1e+297 s is out of range: expected a time in the years 1 to 5138"),
    ('{"series": "a", "points": [[-1e14, 1]]}', "application/json",  # milliseconds
     "point 1 ('a'): timestamp -1e+11 s is out of range: expected a time in the years 1 to 5138"),
    ("series,timestamp,value\na,1,1\nb,1e300,1\n", "text/csv",
     "point 2 ('b'): timestamp 1e+297 s is out of range: expected a time in the years 1 to 5138"),
    (f"m f=1 {BIG}", "text/plain", f"line 1: timestamp {BIG[:30]} is out of range: 'm f=1 {BIG[:74]}'"),
    ("m f=1 9223372036854775807\nm f=1 9223372036854775808", "text/plain",
     "line 2: timestamp 9223372036854775808 is out of range: 'm f=1 9223372036854775808'"),
    ('{"series": "\\ud800", "points": [[1, 1]]}', "application/json",
     "series name '\\ud800' is not allowed: it is not valid Unicode (a lone surrogate)"),
    ('{"series": "a\\u0000b", "points": [[1, 1]]}', "application/json",
     "series name 'a\\x00b' is not allowed: it contains a NUL character"),
    ('{"series": " ", "points": [[1, 1]]}', "application/json",
     "series name ' ' is not allowed: it is empty"),
    ("series,timestamp,value\n,1,1\n", "text/csv", "series name '' is not allowed: it is empty"),
    ('{"series": "%s", "points": [[1, 1]]}' % ("x" * 513), "application/json",
     f"series name '{'x' * 60}' is not allowed: 513 characters, at most 512"),
])
def test_numbers_beyond_range_and_names_the_store_cannot_keep_are_400(body, content_type, message):
    """Each of these answered 500 (OverflowError) or, for the names, was acknowledged and then
    failed every commit, leaving the store degraded for good."""
    with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
        parse_body(body.encode(), content_type)


def test_integers_beyond_float_range_as_values_are_bad_points():
    body = f'{{"series": "a", "points": [[1, {BIG}], [2, 3]]}}'.encode()
    assert rows(parse_body(body, "application/json")) == [("a", 1.0, None), ("a", 2.0, 3.0)]
    line = parse_body(f"m f={BIG}i 1\nm f={BIG}u 2\nm f=1e400 3".encode(), "text/plain",
                      precision="s")
    assert rows(line) == [("m.f", 1.0, None), ("m.f", 2.0, None), ("m.f", 3.0, None)]
    assert rows(parse_body(b"series,timestamp,value\na,1,1e400\n", "text/csv")) == [("a", 1.0, None)]
