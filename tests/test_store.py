"""The store on real SQLite files and a real PostgreSQL server (issue 10)."""

from __future__ import annotations

import io
import itertools
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from granite_panel.store import Batch, StoreError, open_store
from granite_panel.store import schema
from tests import postgres

_names = itertools.count()


def _batch(tick: int, n_series: int = 3) -> Batch:
    return Batch(points=[(f"s{k}", float(tick), tick * 1.5 + k, 0.1 * k, k % 3, tick % 2)
                         for k in range(n_series)])


def test_write_path_and_read_back(url):
    store = open_store(url)
    futures = [store.submit(_batch(t)) for t in range(50)]
    assert [f.result(10) for f in futures] == [3] * 50
    store.submit(Batch(
        points=[("s0", 10.0, -1.0, 9.0, 2, 1)],  # overwrites tick 10 of s0: last write wins
        forecasts=[{"series": "s0", "made_at": 49.0, "model": "AutoTheta",
                    "horizon": [1.0, 2.0], "lower": [0.5, 1.5], "upper": [1.5, 2.5]}],
        incidents=[{"id": "i1", "series": "s1", "start": 3.0, "end": None, "peak_score": 0.9,
                    "severity": 2, "points": 4, "band": {"lo": 1}}],
        model_runs=[{"model": "ttm", "started": 0.0, "reason": "loaded"}])).result(10)
    store.close()
    store = open_store(url)
    assert [s["name"] for s in store.series()] == ["s0", "s1", "s2"]
    assert store.series()[0]["first_seen"] == 0.0 and store.series()[0]["last_seen"] == 49.0
    ts, value, score, severity, flag = store.history("s0")
    assert np.array_equal(ts, np.arange(50.0))
    expected = np.arange(50) * 1.5
    expected[10] = -1.0
    assert np.array_equal(value, expected)
    assert score[10] == 9.0 and severity[10] == 2 and flag[10] == 1 and flag[11] == 1
    recent = store.recent(5)
    assert set(recent) == {"s0", "s1", "s2"}
    assert np.array_equal(recent["s2"][0], np.arange(45.0, 50.0))
    assert np.array_equal(recent["s2"][1], np.arange(45, 50) * 1.5 + 2)
    assert np.array_equal(store.history("s1", 5, 7)[0], [5.0, 6.0, 7.0])
    store.close()


def test_export_round_trip(url):
    store = open_store(url)
    for t in range(120):
        store.submit(_batch(t, 4))
    store.submit(Batch(
        forecasts=[{"series": "s0", "made_at": 1.0, "model": "m", "horizon": [1.25, 2.5],
                    "lower": None, "upper": None}],
        incidents=[{"id": "x", "series": "s2", "start": 5.0, "end": 9.0, "peak_score": 0.7,
                    "severity": 1, "points": 5}])).result(10)
    expected = pd.DataFrame({
        "series": np.repeat(["s1", "s3"], 61),
        "ts": np.tile(np.arange(20.0, 81.0), 2)})
    k = expected.series.str[1].astype(int)
    expected["value"] = expected.ts * 1.5 + k
    expected["score"] = 0.1 * k
    expected["severity"] = k % 3
    expected["flag"] = expected.ts.astype(int) % 2
    csv = b"".join(store.export(["s1", "s3"], 20, 80, fmt="csv"))
    pd.testing.assert_frame_equal(
        pd.read_csv(io.BytesIO(csv), float_precision="round_trip"), expected, check_exact=True)
    parquet = b"".join(store.export(["s1", "s3"], 20, 80, fmt="parquet"))
    pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(parquet)).to_pandas(), expected,
                                  check_exact=True)
    forecasts = pq.read_table(io.BytesIO(b"".join(store.export(kind="forecasts",
                                                                fmt="parquet")))).to_pylist()
    assert forecasts == [{"series": "s0", "made_at": 1.0, "model": "m", "horizon": [1.25, 2.5],
                          "lower": None, "upper": None}]
    incidents = pd.read_csv(io.BytesIO(b"".join(store.export(kind="incidents"))))
    assert incidents.loc[0, "id"] == "x" and incidents.loc[0, "end"] == 9.0
    with pytest.raises(StoreError, match="format='xml' is not allowed"):
        next(store.export(fmt="xml"))
    store.close()


def test_incidents_export_as_parquet_has_every_column_of_the_csv(tmp_path):
    """Regression (found by tests/test_openapi.py): schema version 3's last_flagged and muted
    columns had no parquet type, so ?format=parquet&kind=incidents answered 500."""
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    store.submit(Batch(incidents=[{"id": "x", "series": "s2", "start": 5.0, "end": None,
                                   "last_flagged": 7.0, "peak_score": 0.7, "severity": 1,
                                   "points": 3, "muted": True, "band": {"lower": 1.0}}])).result(10)
    table = pq.read_table(io.BytesIO(b"".join(store.export(kind="incidents", fmt="parquet"))))
    csv = pd.read_csv(io.BytesIO(b"".join(store.export(kind="incidents"))))
    assert table.column_names == list(csv.columns)
    row = table.to_pylist()[0]
    assert row["last_flagged"] == 7.0 and row["muted"] is True and row["end"] is None
    assert row["band"] == '{"lower": 1.0}'
    store.close()


def test_export_streams_in_chunks(tmp_path, monkeypatch):
    from granite_panel.store import store as store_module
    monkeypatch.setattr(store_module, "EXPORT_CHUNK_ROWS", 100)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    store.submit(Batch(points=[("a", float(t), 1.0, 0.0, 0, 0) for t in range(1000)])).result(10)
    chunks = list(store.export(fmt="parquet"))
    assert len(chunks) >= 10
    assert pq.ParquetFile(io.BytesIO(b"".join(chunks))).num_row_groups == 10
    store.close()


def test_retention_trims_old_rows(url):
    store = open_store(url)
    store.submit(Batch(points=[("a", float(t), 1.0, 0.0, 0, 0) for t in range(100)],
                       incidents=[{"id": "old", "series": "a", "start": 1.0, "end": 2.0},
                                  {"id": "open", "series": "a", "start": 1.0, "end": None}]
                       )).result(10)
    assert store.trim(older_than=40, now=100.0) == 60
    assert np.array_equal(store.history("a")[0], np.arange(60.0, 100.0))
    incidents = b"".join(store.export(kind="incidents")).decode()
    assert "open" in incidents and "old" not in incidents
    assert store.status()["trimmed"] == 60
    store.close()


def test_schema_created_and_versioned(url):
    open_store(url).close()
    engine = sa.create_engine(url.replace("sqlite:///", "sqlite:///"))
    with engine.connect() as connection:
        assert connection.execute(sa.select(schema.schema_version.c.version)).scalar() == 4
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert {"series", "points", "forecasts", "incidents", "model_runs", "engine_state"} <= tables


def test_newer_schema_refused(url):
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.update(schema.schema_version).values(version=99))
    engine.dispose()
    with pytest.raises(StoreError, match=r"schema version 99, newer than this granite-panel "
                                         r"knows \(4\)"):
        open_store(url)


def test_older_schema_migrated(url):
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        schema.create_v1(connection)
        connection.execute(sa.text("INSERT INTO series (name) VALUES ('old')"))
        connection.execute(sa.text("INSERT INTO points (series_id, ts, value, score, severity) "
                                   "VALUES (1, 1.0, 5.0, 0.5, 1)"))
        connection.execute(sa.text("INSERT INTO incidents (id, series_id, start, severity, "
                                   "points, acknowledged) VALUES ('old@1', 1, 1.0, 2, 1, FALSE)"))
    engine.dispose()
    store = open_store(url)
    assert [(i["id"], i["kind"]) for i in store.incidents()] == [("old@1", "anomaly")]
    ts, value, score, severity, flag = store.history("old")
    assert list(value) == [5.0] and list(flag) == [0]
    store.submit(Batch(points=[("old", 2.0, 6.0, 0.0, 0, 1)], state={"k": b"v"})).result(10)
    assert list(store.history("old")[4]) == [0, 1]
    assert store.load_state("k") == b"v"  # version 3's table made by the migration
    store.close()


@pytest.mark.parametrize("bad", ["", "mysql://x/y", "sqlite://", "nonsense",
                                 "postgresql://u@h/d"])
def test_bad_database_url_one_line(bad):
    with pytest.raises(StoreError) as error:
        open_store(bad)
    assert "\n" not in str(error.value) and "is not allowed" in str(error.value)


def test_unreachable_postgres_one_line():
    with pytest.raises(StoreError, match="cannot connect") as error:
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    assert "\n" not in str(error.value)


def test_second_writer_refused_reader_allowed(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = open_store(url)
    store.submit(_batch(1)).result(10)
    code = ("from granite_panel.store import open_store, StoreError\n"
            f"try:\n    open_store({url!r})\nexcept StoreError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=os.getcwd()).stdout
    assert "already open for writing by another granite-panel process" in out
    reader = open_store(url, read_only=True)
    assert len(reader.history("s0")[0]) == 1
    with pytest.raises(StoreError, match="read-only"):
        reader.submit(_batch(2))
    reader.close()
    store.close()
    open_store(url).close()  # the lock goes with the process that held it


def test_corrupt_and_read_only_files_refused_untouched(tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database at all" * 100)
    before = corrupt.read_bytes()
    with pytest.raises(StoreError, match="is not a SQLite database"):
        open_store(f"sqlite:///{corrupt}")
    assert corrupt.read_bytes() == before
    # A real header with garbage after it: SQLite itself must say no.
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    before = damaged.read_bytes()
    with pytest.raises(StoreError, match="cannot be read as a SQLite database"):
        open_store(f"sqlite:///{damaged}")
    assert damaged.read_bytes() == before

    good = tmp_path / "ro.db"
    store = open_store(f"sqlite:///{good}")
    store.submit(_batch(1)).result(10)
    store.close()
    os.chmod(good, 0o444)
    before = good.read_bytes()
    with pytest.raises(StoreError, match="is read-only"):
        open_store(f"sqlite:///{good}")
    assert good.read_bytes() == before


def test_postgres_stopped_mid_stream_then_recovered(pg_cluster, pg_url):
    store = open_store(pg_url)
    futures = [store.submit(_batch(t)) for t in range(20)]
    [f.result(10) for f in futures]
    pg_cluster.stop()
    futures += [store.submit(_batch(t)) for t in range(20, 40)]
    deadline = time.time() + 20
    while store.healthy and time.time() < deadline:
        time.sleep(0.05)
    status = store.status()
    assert status["state"] == "degraded" and status["reason"] and status["queued"] > 0
    assert not futures[-1].done()
    pg_cluster.start()
    assert [f.result(30) for f in futures] == [3] * 40
    assert store.status()["state"] == "ok" and store.status()["queued"] == 0
    engine = sa.create_engine(pg_url)
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM points")).scalar()
    engine.dispose()
    assert count == 120
    assert np.array_equal(store.history("s1")[0], np.arange(40.0))
    store.close()


KILLED_WRITER = """
import sys
from granite_panel.store import Batch, open_store
store = open_store(sys.argv[1])
for t in range(10_000):
    store.submit(Batch(points=[(f"s{k}", float(t), float(t + k), 0.0, 0, 0)
                               for k in range(5)])).result(30)
    print(t, flush=True)
"""


def test_kill_9_after_acknowledged_keeps_every_batch(url):
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, url], text=True,
                               stdout=subprocess.PIPE, cwd=os.getcwd())
    acknowledged = -1
    for line in process.stdout:
        acknowledged = int(line)
        if acknowledged >= 200:
            break
    process.kill()
    process.wait(10)
    store = open_store(url)
    for k in range(5):
        ts = store.history(f"s{k}")[0]
        assert len(ts) >= acknowledged + 1
        assert np.array_equal(ts[: acknowledged + 1], np.arange(acknowledged + 1.0))
    store.close()


def test_a_caller_that_stops_waiting_does_not_stop_the_writer(tmp_path):
    """The ingest handler gives up after its timeout; the write must still land, and later."""
    store = open_store(f"sqlite:///{tmp_path / 'gp.db'}")
    futures = [store.submit(_batch(t)) for t in range(20)]
    cancelled = [f.cancel() for f in futures]  # some are still queued: cancelled for real
    assert store.submit(_batch(20)).result(10) == 3
    assert np.array_equal(store.history("s0")[0], np.arange(21.0))
    assert store.healthy
    store.close()
