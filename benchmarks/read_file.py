"""Seconds to read a file into the replay's batch (``serve --source FILE`` at start-up, and
``detect``/``forecast`` before they score), for the ways files are exported.

Writes one series of ``--rows`` minutely points in each format to a temporary folder, then
times ``read_table`` + ``frame_to_batch`` (median of ``--repeats``) and, beside it, the
time of reading the same time column cell by cell (``pd.to_datetime(format="mixed")``,
the way every column was read before 2026-12-07), so the ratio is measured in one run.

    python benchmarks/read_file.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from granite_panel.sources.replay import frame_to_batch  # noqa: E402
from granite_panel.sources.table_file import read_table  # noqa: E402

FORMATS = {  # name: (file name, time format, writer options)
    "ISO 8601, comma": ("iso.csv", "%Y-%m-%d %H:%M:%S", {}),
    "ISO 8601, gzip": ("iso.csv.gz", "%Y-%m-%d %H:%M:%S", {}),
    # the Berlin wall clock, no offset, read with TIMEZONE (four DST switches in 1M minutes)
    "ISO 8601, Berlin clock (TIMEZONE)": ("berlin.csv", "%Y-%m-%d %H:%M:%S",
                                          {"timezone": "Europe/Berlin"}),
    "US Excel (12-hour clock)": ("us.csv", "%m/%d/%Y %I:%M %p", {}),
    "German Excel (; and 1.234,5)": ("de.csv", "%d.%m.%Y %H:%M", {"sep": ";", "decimal": ","}),
    "Excel workbook (.xlsx)": ("book.xlsx", None, {}),  # date cells, written by openpyxl
    "JSON records (ISO 8601)": ("records.json", "%Y-%m-%dT%H:%M:%SZ", {}),
    "JSON Lines (epoch ms)": ("lines.jsonl", None, {}),
}


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = pd.date_range("2024-01-01", periods=args.rows, freq="min")
    values = np.round(np.random.default_rng(0).normal(1000, 50, args.rows), 2)
    print(f"{args.rows:,} rows, median of {args.repeats}")
    print(f"{'format':<34} {'read (s)':>9} {'rows/s':>11} {'cell by cell (s)':>17}")
    with tempfile.TemporaryDirectory() as folder:
        for name, (file, form, options) in FORMATS.items():
            path = Path(folder) / file
            zone = options.get("timezone", "")
            options = {k: v for k, v in options.items() if k != "timezone"}
            clock = times.tz_localize("UTC").tz_convert(zone) if zone else times
            if file.endswith(".xlsx"):
                pd.DataFrame({"timestamp": times, "value": values}).to_excel(path, index=False)
            elif file.endswith(".json"):
                pd.DataFrame({"timestamp": times.strftime(form), "value": values}).to_json(
                    path, orient="records")
            elif file.endswith(".jsonl"):
                pd.DataFrame({"timestamp": times.astype("int64") // 10**6, "value": values}
                             ).to_json(path, orient="records", lines=True)
            else:
                pd.DataFrame({"timestamp": clock.strftime(form), "value": values}).to_csv(
                    path, index=False, **options)
            batch = frame_to_batch(read_table(path), where=str(path), timezone=zone)
            assert np.array_equal(batch.timestamps, times.astype("int64") / 1e9), name
            seconds = median_seconds(lambda: frame_to_batch(read_table(path), timezone=zone),
                                     args.repeats)
            if form is None or zone:  # no text read cell by cell (zone: as the ISO row)
                print(f"{name:<34} {seconds:>9.2f} {args.rows / seconds:>11,.0f} {'-':>17}",
                      flush=True)
                continue
            text = pd.Series(times.strftime(form))
            mixed = median_seconds(
                lambda: pd.to_datetime(text, format="mixed", utc=True), 1)
            print(f"{name:<34} {seconds:>9.2f} {args.rows / seconds:>11,.0f} {mixed:>17.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
