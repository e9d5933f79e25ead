"""One store over SQLite or PostgreSQL: a writer thread that commits each tick in one
transaction, retries through database trouble without dropping anything, and reads that
stream.

Why a writer thread: the UI's event loop and the engine's tick must never wait on a disk or a
network; the caller gets a ``Future`` that resolves after the commit (the ingest handler waits
on it before acknowledging). Every write is an upsert on a natural key, so a batch retried
after an unclear failure is still stored exactly once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import dataclasses
import fcntl
import io
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from granite_panel.store import schema

SQLITE_HEADER = b"SQLite format 3\x00"
BACKOFF_START_S = 0.05  # first retry after database trouble
BACKOFF_CAP_S = 2.0  # retries never wait longer than this
EXPORT_CHUNK_ROWS = 50_000  # rows per CSV chunk / parquet row group
TRIM_EVERY_S = 60.0  # the writer trims rows past RETENTION at most this often
UPDATE_SEEN = (
    "UPDATE series SET first_seen = CASE WHEN first_seen IS NULL OR first_seen > {p} THEN {p} "
    "ELSE first_seen END, last_seen = CASE WHEN last_seen IS NULL OR last_seen < {p} THEN {p} "
    "ELSE last_seen END WHERE id = {p}"
)
# The merge keeps each bucket's envelope: min/max over every value written into it.
UPSERT_ROLLUP = (
    "INSERT INTO rollup_{w} (series_id, bucket, first_ts, last_ts, low, high, severity, score, "
    "count) VALUES ({p}) ON CONFLICT (series_id, bucket) DO UPDATE SET "
    "first_ts = CASE WHEN excluded.first_ts < rollup_{w}.first_ts THEN excluded.first_ts "
    "ELSE rollup_{w}.first_ts END, "
    "last_ts = CASE WHEN excluded.last_ts > rollup_{w}.last_ts THEN excluded.last_ts "
    "ELSE rollup_{w}.last_ts END, "
    "low = CASE WHEN rollup_{w}.low IS NULL OR excluded.low < rollup_{w}.low THEN excluded.low "
    "ELSE rollup_{w}.low END, "
    "high = CASE WHEN rollup_{w}.high IS NULL OR excluded.high > rollup_{w}.high "
    "THEN excluded.high ELSE rollup_{w}.high END, "
    "severity = CASE WHEN excluded.severity > rollup_{w}.severity THEN excluded.severity "
    "ELSE rollup_{w}.severity END, "
    "score = CASE WHEN rollup_{w}.score IS NULL OR excluded.score > rollup_{w}.score "
    "THEN excluded.score ELSE rollup_{w}.score END, "
    "count = rollup_{w}.count + excluded.count"
)
OPEN = -1  # severity of a point written while its slot was open (not scored yet)
# Why raw SQL here: the same upsert is valid on SQLite and PostgreSQL, and handing tuples to
# the driver's executemany stores ~9x more points per second than SQLAlchemy's per-row dicts
# (benchmarks/store.py). Everything else goes through SQLAlchemy Core.
UPSERT_POINTS = (
    "INSERT INTO points (series_id, ts, value, score, severity, flag) VALUES ({p}) "
    "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value, "
    "score = excluded.score, severity = excluded.severity, flag = excluded.flag"
)


class StoreError(RuntimeError):
    """The store cannot be opened or used as asked; the message is one line for the user."""


@dataclasses.dataclass
class Batch:
    """One tick's rows. ``points``: (series, timestamp, value, score, severity, flag) tuples."""

    points: Sequence[tuple] = ()
    forecasts: Sequence[dict] = ()  # series, made_at, model, horizon, lower, upper
    incidents: Sequence[dict] = ()  # id, series, start, end, peak_score, severity, ...
    model_runs: Sequence[dict] = ()  # model, started, reason
    labels: dict | None = None  # series name -> labels dict (stored on first sight)
    state: dict | None = None  # key -> bytes (engine checkpoints), committed with the rows


def open_store(url: str, read_only: bool = False, retention: float | None = None) -> Store:
    """The store at ``url``: ``memory``, ``sqlite:///PATH`` or ``postgresql+psycopg://...``."""
    text = (url or "").strip()
    if text == "memory":
        engine = sa.create_engine(
            "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
        )
        _sqlite_pragmas(engine, wal=False)
        return Store(engine, read_only=read_only, retention=retention)
    try:
        parsed = sa.engine.make_url(text)
    except Exception:
        parsed = None
    allowed = "memory, sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    if parsed is None or parsed.drivername not in ("sqlite", "postgresql+psycopg"):
        raise StoreError(f"DATABASE_URL={text!r} is not allowed: expected {allowed}")
    if parsed.drivername == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError(f"DATABASE_URL={text!r} is not allowed: expected {allowed}")
        return _open_sqlite(parsed.database, read_only, retention)
    engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=2)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        raise StoreError(f"DATABASE_URL={parsed.render_as_string(hide_password=True)!r}: "
                         f"cannot connect: {_one_line(error)}") from None
    return Store(engine, read_only=read_only, retention=retention)


def _open_sqlite(path: str, read_only: bool, retention: float | None = None) -> Store:
    path = os.path.abspath(path)
    if os.path.exists(path):
        if os.path.getsize(path) > 0:
            with open(path, "rb") as handle:
                if handle.read(16) != SQLITE_HEADER:
                    raise StoreError(f"{path} is not a SQLite database (corrupt or another "
                                     "file); move it away or set DATABASE_URL")
        if not read_only and not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise StoreError(f"{path} is read-only; make it writable or open it read-only")
    elif read_only:
        raise StoreError(f"{path} does not exist (asked to open it read-only)")
    lock = None
    if not read_only:
        lock = open(path + ".lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise StoreError(f"{path} is already open for writing by another granite-panel "
                             "process; stop it or open this one read-only") from None
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    engine = sa.create_engine(
        "sqlite://", creator=lambda: __import__("sqlite3").connect(
            uri, uri=True, check_same_thread=False, timeout=5),
        poolclass=sa.pool.QueuePool, pool_size=2, max_overflow=2,
    )
    _sqlite_pragmas(engine, wal=not read_only)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("PRAGMA quick_check(1)")).scalar()
    except sa.exc.SQLAlchemyError as error:
        if lock:
            lock.close()
        raise StoreError(f"{path} cannot be read as a SQLite database: {_one_line(error)}") from None
    store = Store(engine, read_only=read_only, retention=retention)
    store._lock_file = lock
    return store


def _sqlite_pragmas(engine, wal: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return " ".join(text.split())[:300]


class Store:
    """Durable rows behind one interface; see the module docstring."""

    def __init__(self, engine: sa.Engine, read_only: bool = False,
                 retention: float | None = None):
        self.engine = engine
        self.read_only = read_only
        self.retention = retention  # seconds kept (None: everything); trimmed by the writer
        self._trimmed_at = 0.0
        self._lock_file = None
        self._series_ids: dict[str, int] = {}
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._state = {"state": "ok", "reason": ""}
        self.counters = {"batches": 0, "points": 0, "retries": 0, "trimmed": 0}
        self._prepare_schema()
        self._writer = None
        if not read_only:
            self._writer = threading.Thread(target=self._write_loop, name="store-writer",
                                            daemon=True)
            self._writer.start()

    # -- schema -------------------------------------------------------------------------
    def _prepare_schema(self) -> None:
        with self.engine.begin() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            if "schema_version" not in tables:
                if self.read_only:
                    raise StoreError("the database has no granite-panel schema (opened read-only)")
                schema.metadata.create_all(connection)
                connection.execute(sa.insert(schema.schema_version).values(
                    version=schema.SCHEMA_VERSION))
                return
            version = connection.execute(
                sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
            if version is None or version > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {version}, newer than this granite-panel "
                    f"knows ({schema.SCHEMA_VERSION}); upgrade granite-panel")
            if version < schema.SCHEMA_VERSION:
                if self.read_only:
                    raise StoreError(f"the database has an old schema version {version}; open it "
                                     "for writing once to migrate it")
                for step in range(version, schema.SCHEMA_VERSION):
                    schema.MIGRATIONS[step](connection)
                connection.execute(sa.update(schema.schema_version).values(
                    version=schema.SCHEMA_VERSION))

    # -- writes -------------------------------------------------------------------------
    def submit(self, batch: Batch) -> concurrent.futures.Future:
        """Queue one tick's rows; the future resolves after they are committed."""
        if self.read_only or self._closed:
            raise StoreError("the store is read-only" if self.read_only else "the store is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._wake:
            self._queue.append((batch, future))
            self._wake.notify()
        return future

    @property
    def kind(self) -> str:
        """'sqlite' or 'postgresql' (an in-memory SQLite store says 'sqlite' too)."""
        return self.engine.dialect.name

    @property
    def healthy(self) -> bool:
        return self._state["state"] == "ok"

    def status(self) -> dict:
        return {**self._state, "queued": len(self._queue), **self.counters}

    def _write_loop(self) -> None:
        delay = BACKOFF_START_S
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue and self._closed:
                    return
                batch, future = self._queue[0]
            try:
                with self.engine.begin() as connection:
                    self._write(connection, batch)
            except Exception as error:  # database trouble: keep the batch, retry later
                self._state = {"state": "degraded", "reason": _one_line(error)}
                self.counters["retries"] += 1
                if isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
                    self.engine.dispose()
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_S)
                continue
            delay = BACKOFF_START_S
            self._state = {"state": "ok", "reason": ""}
            self.counters["batches"] += 1
            self.counters["points"] += len(batch.points)
            with self._wake:
                self._queue.popleft()
            try:  # a caller that stopped waiting may have cancelled its future: still stored
                future.set_result(len(batch.points))
            except concurrent.futures.InvalidStateError:
                pass
            self._trim_due()

    def _trim_due(self) -> None:
        """RETENTION in the background: the writer trims after a commit, once a minute."""
        if self.retention is None or time.monotonic() - self._trimmed_at < TRIM_EVERY_S:
            return
        self._trimmed_at = time.monotonic()
        try:
            self.trim(self.retention)
        except Exception as error:  # trimming can wait for the next minute; writes cannot
            self._state = {"state": "degraded", "reason": f"trim: {_one_line(error)}"}

    def _insert(self, connection):
        if connection.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert

    def _ids(self, connection, names, labels, first, last) -> dict[str, int]:
        insert = self._insert(connection)
        table = schema.series
        missing = [n for n in names if n not in self._series_ids]
        if missing:
            connection.execute(insert(table).on_conflict_do_nothing(index_elements=["name"]), [
                {"name": n, "labels": (labels or {}).get(n), "first_seen": first.get(n),
                 "last_seen": last.get(n)} for n in missing])
            rows = connection.execute(sa.select(table.c.name, table.c.id).where(
                table.c.name.in_(missing))).all()
            self._series_ids.update(dict(rows))  # cached only after commit matters little:
            # ids never change once a name is inserted (a rolled back insert is re-done).
        return {n: self._series_ids[n] for n in names}

    def _write(self, connection, batch: Batch) -> None:
        insert = self._insert(connection)
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        for name, ts, *_ in batch.points:
            first[name] = min(first.get(name, ts), ts)
            last[name] = max(last.get(name, ts), ts)
        names = set(first) | {f["series"] for f in batch.forecasts} | {
            i["series"] for i in batch.incidents}
        try:
            ids = self._ids(connection, sorted(names), batch.labels, first, last)
        except Exception:
            self._series_ids.clear()
            raise
        if batch.points:
            rows = [(ids[p[0]], float(p[1]), _num(p[2]), _num(p[3]), int(p[4]), int(p[5]))
                    for p in batch.points]
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            connection.exec_driver_sql(UPSERT_POINTS.format(p=", ".join([mark] * 6)), rows)
            scored = [r for r in rows if r[4] >= 0]  # an open slot's point: rolled up once scored
            for width in schema.ROLLUP_SECONDS:
                merged = _rollup_rows(scored, width)
                if merged:
                    connection.exec_driver_sql(
                        UPSERT_ROLLUP.format(w=width, p=", ".join([mark] * 9)), merged)
            connection.exec_driver_sql(  # one executemany for all series of the tick
                UPDATE_SEEN.format(p=mark),
                [(first[n], first[n], last[n], last[n], ids[n]) for n in first])
        if batch.forecasts:
            rows = [{"series_id": ids[f["series"]], "made_at": float(f["made_at"]),
                     "model": f["model"], "horizon": list(map(float, f["horizon"])),
                     "lower": _list(f.get("lower")), "upper": _list(f.get("upper"))}
                    for f in batch.forecasts]
            statement = insert(schema.forecasts)
            connection.execute(statement.on_conflict_do_update(
                index_elements=["series_id", "made_at", "model"],
                set_={c: statement.excluded[c] for c in ("horizon", "lower", "upper")}), rows)
        if batch.incidents:
            rows = [{"id": str(i["id"]), "series_id": ids[i["series"]], "start": float(i["start"]),
                     "end": None if i.get("end") is None else float(i["end"]),
                     "peak_score": _num(i.get("peak_score")), "severity": int(i.get("severity", 0)),
                     "points": int(i.get("points", 0)),
                     "acknowledged": bool(i.get("acknowledged", False)), "band": i.get("band"),
                     "last_flagged": _num(i.get("last_flagged")),
                     "muted": bool(i.get("muted", False)),
                     "kind": str(i.get("kind") or "anomaly")}
                    for i in batch.incidents]
            statement = insert(schema.incidents)
            connection.execute(statement.on_conflict_do_update(
                index_elements=["id"],
                set_={c: statement.excluded[c] for c in
                      ("end", "peak_score", "severity", "points", "acknowledged", "band",
                       "last_flagged", "muted")}), rows)
        if batch.state:
            statement = insert(schema.engine_state)
            connection.execute(statement.on_conflict_do_update(
                index_elements=["key"], set_={"saved_at": statement.excluded.saved_at,
                                              "value": statement.excluded.value}),
                [{"key": k, "saved_at": time.time(), "value": v} for k, v in batch.state.items()])
        if batch.model_runs:
            statement = insert(schema.model_runs)
            connection.execute(statement.on_conflict_do_update(
                index_elements=["model", "started"], set_={"reason": statement.excluded.reason}),
                [{"model": r["model"], "started": float(r["started"]), "reason": r.get("reason")}
                 for r in batch.model_runs])

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is committed."""
        with self._wake:
            pending = [future for _, future in self._queue]
        concurrent.futures.wait(pending, timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued (up to ``timeout``), then release the database and lock."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._writer is not None:
            self._writer.join(timeout)
        self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- reads --------------------------------------------------------------------------
    def series(self) -> list[dict]:
        table = schema.series
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(table).order_by(table.c.name)).mappings().all()
        return [{k: row[k] for k in ("name", "labels", "first_seen", "last_seen")} for row in rows]

    def recent(self, limit_per_series: int) -> dict[str, tuple[np.ndarray, ...]]:
        """Each series' last points, oldest first: name -> (ts, value, score, severity, flag).

        One indexed range scan per series (its newest rows through the (series, ts) key), so
        the cost follows what is read, not what is stored.
        """
        p, s = schema.points, schema.series
        with self.engine.connect() as connection:
            ids = connection.execute(sa.select(s.c.name, s.c.id)).all()
        result = {}
        for name, series_id in ids:
            query = (sa.select(p.c.ts, p.c.value, p.c.score, p.c.severity, p.c.flag)
                     .where(p.c.series_id == series_id).order_by(p.c.ts.desc())
                     .limit(int(limit_per_series)))
            columns = _columns(self._raw_rows(query)[::-1])
            if len(columns[0]):
                result[name] = columns
        return result

    def incidents(self, limit: int = 1000) -> list[dict]:
        """The newest ``limit`` incidents (by start), oldest first, with the series' name."""
        i, s = schema.incidents, schema.series
        columns = [s.c.name.label("series")] + [c for c in i.columns if c.name != "series_id"]
        query = (sa.select(*columns).join(s, s.c.id == i.c.series_id)
                 .order_by(i.c.start.desc()).limit(int(limit)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [dict(row) for row in reversed(rows)]

    def load_state(self, key: str) -> bytes | None:
        """The newest checkpoint stored under ``key`` (None if there is none)."""
        table = schema.engine_state
        with self.engine.connect() as connection:
            return connection.execute(sa.select(table.c.value).where(table.c.key == key)).scalar()

    def history(self, name: str, start: float | None = None, end: float | None = None):
        """One series' (ts, value, score, severity, flag) over [start, end] as numpy arrays."""
        p, s = schema.points, schema.series
        query = (sa.select(p.c.ts, p.c.value, p.c.score, p.c.severity, p.c.flag)
                 .where(p.c.series_id == sa.select(s.c.id).where(s.c.name == name)
                        .scalar_subquery()))
        if start is not None:
            query = query.where(p.c.ts >= float(start))
        if end is not None:
            query = query.where(p.c.ts <= float(end))
        return _columns(self._raw_rows(query.order_by(p.c.ts)))

    def overview(self, name: str, start: float | None = None, end: float | None = None,
                 buckets: int = 2000) -> dict[str, np.ndarray]:
        """One series over [start, end] cut into ``buckets`` equal spans, aggregated in the
        database: each span's first and last time, min and max value, max severity and score,
        and how many points it holds.

        Why in SQL, and from rollups: a year of points never leaves the database. A range
        that spans at least ``buckets`` minutes (hours) is aggregated from the minute (hour)
        rollups, a shorter one from the points themselves (then at most ~``buckets`` minutes
        of points are scanned).
        """
        p, s = schema.points, schema.series
        with self.engine.connect() as connection:
            sid = connection.execute(sa.select(s.c.id).where(s.c.name == name)).scalar()
            if sid is None:
                return _empty_overview()
            r = schema.rollups[schema.ROLLUP_SECONDS[-1]]
            low, high = connection.execute(sa.select(sa.func.min(r.c.first_ts),
                                                     sa.func.max(r.c.last_ts))
                                           .where(r.c.series_id == sid)).one()
        if low is None:  # nothing rolled up (points from before version 3): the points
            low, high = -np.inf, np.inf
        low = low if start is None else max(low, float(start))
        high = high if end is None else min(high, float(end))
        if not np.isfinite(low) or not np.isfinite(high):
            return self._overview_of(p, sid, start, end, buckets, None)
        chosen = None
        for width in schema.ROLLUP_SECONDS[::-1]:
            if (high - low) / width >= buckets:
                chosen = width
                break
        if chosen is None:
            return self._overview_of(p, sid, low, high, buckets, None)
        return self._overview_of(schema.rollups[chosen], sid, low, high, buckets, chosen)

    def _overview_of(self, table, sid, start, end, buckets, width):
        c = table.c
        if width is None:  # points
            first = last = c.ts
            low_value = high_value = c.value
            severity, score, count = c.severity, c.score, sa.literal(1)
            where = [c.series_id == sid, c.severity >= 0]
            timed = c.ts
        else:
            first, last, low_value, high_value = c.first_ts, c.last_ts, c.low, c.high
            severity, score, count = c.severity, c.score, c.count
            where = [c.series_id == sid]
            timed = c.first_ts
        if start is not None and np.isfinite(start):
            where.append(timed >= float(start) - (width or 0))
        if end is not None and np.isfinite(end):
            where.append(timed <= float(end))
        with self.engine.connect() as connection:
            low, high = connection.execute(
                sa.select(sa.func.min(first), sa.func.max(last)).where(*where)).one()
        if low is None:
            return _empty_overview()
        span = max((high - low) / max(int(buckets), 1) * (1 + 1e-9), 1e-9)
        # (a hair wider than an exact split, so the newest point falls in the last span)
        bucket = sa.cast((first - low) / span, sa.Integer).label("bucket")
        query = (sa.select(bucket, sa.func.min(first), sa.func.max(last),
                           sa.func.min(low_value), sa.func.max(high_value),
                           sa.func.max(severity), sa.func.max(score), sa.func.sum(count))
                 .where(*where).group_by(bucket).order_by(bucket))
        table = np.array(self._raw_rows(query), dtype=float).reshape(-1, 8)
        names = ("first", "last", "low", "high", "severity", "score", "count")
        return {k: table[:, i + 1] for i, k in enumerate(names)}

    def anomalies(self, name: str, start: float | None = None, end: float | None = None,
                  limit: int = 5000) -> tuple[np.ndarray, ...]:
        """The flagged points of one series in [start, end], newest ``limit``: (ts, value,
        score, severity) - drawn on top of a downsampled chart so none disappears."""
        p, s = schema.points, schema.series
        query = (sa.select(p.c.ts, p.c.value, p.c.score, p.c.severity)
                 .where(p.c.series_id == sa.select(s.c.id).where(s.c.name == name)
                        .scalar_subquery(), p.c.severity > 0))
        if start is not None:
            query = query.where(p.c.ts >= float(start))
        if end is not None:
            query = query.where(p.c.ts <= float(end))
        rows = self._raw_rows(query.order_by(p.c.ts.desc()).limit(int(limit)))[::-1]
        table = np.array(rows, dtype=float).reshape(-1, 4)
        return tuple(table[:, i].copy() for i in range(4))

    def _raw_rows(self, query) -> list[tuple]:
        """Rows as plain tuples from the DBAPI cursor: why: a million SQLAlchemy Rows cost
        seconds, the driver's tuples a fraction of that."""
        with self.engine.connect() as connection:
            compiled = query.compile(dialect=connection.dialect,
                                     compile_kwargs={"render_postcompile": True})
            params = compiled.params
            if compiled.positiontup is not None:
                params = tuple(params[name] for name in compiled.positiontup)
            cursor = connection.connection.driver_connection.cursor()
            try:
                cursor.execute(str(compiled), params)
                return cursor.fetchall()
            finally:
                cursor.close()

    def _export_query(self, names, start, end, kind):
        s = schema.series
        table, time_column = {
            "points": (schema.points, schema.points.c.ts),
            "forecasts": (schema.forecasts, schema.forecasts.c.made_at),
            "incidents": (schema.incidents, schema.incidents.c.start),
        }[kind]
        columns = [s.c.name.label("series")] + [c for c in table.columns if c.name != "series_id"]
        query = sa.select(*columns).join(s, s.c.id == table.c.series_id)
        if names:
            query = query.where(s.c.name.in_(list(names)))
        if start is not None:
            query = query.where(time_column >= float(start))
        if end is not None:
            query = query.where(time_column <= float(end))
        return query.order_by(s.c.name, time_column), [c.name for c in columns]

    def export(self, names: Sequence[str] | None = None, start: float | None = None,
               end: float | None = None, kind: str = "points", fmt: str = "csv") -> Iterator[bytes]:
        """Rows streamed in chunks of bytes (CSV text or a parquet file); never all in memory."""
        if kind not in ("points", "forecasts", "incidents"):
            raise StoreError(f"export kind={kind!r} is not allowed: expected points, forecasts "
                             "or incidents")
        if fmt not in ("csv", "parquet"):
            raise StoreError(f"export format={fmt!r} is not allowed: expected csv or parquet")
        query, header = self._export_query(names, start, end, kind)
        json_columns = {"horizon", "lower", "upper", "band"}

        def chunks():
            with self.engine.connect().execution_options(
                    stream_results=True, yield_per=EXPORT_CHUNK_ROWS) as connection:
                result = connection.execute(query)
                while True:
                    rows = result.fetchmany(EXPORT_CHUNK_ROWS)
                    if not rows:
                        return
                    yield rows

        if fmt == "csv":
            import json

            def csv_bytes():
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(header)
                for rows in chunks():
                    for row in rows:
                        writer.writerow([json.dumps(v) if k in json_columns and v is not None
                                         else ("" if v is None else repr(v) if isinstance(v, float)
                                               else v) for k, v in zip(header, row)])
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
                if buffer.tell():  # the header alone, when no row matched
                    yield buffer.getvalue().encode()

            yield from csv_bytes()
            return
        yield from self._parquet(chunks(), header, kind)

    def _parquet(self, chunks, header, kind) -> Iterator[bytes]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        listed = pa.list_(pa.float64())
        types = {"series": pa.string(), "ts": pa.float64(), "value": pa.float64(),
                 "score": pa.float64(), "severity": pa.int64(), "flag": pa.int64(),
                 "made_at": pa.float64(), "model": pa.string(), "horizon": listed,
                 "lower": listed, "upper": listed, "id": pa.string(), "start": pa.float64(),
                 "end": pa.float64(), "peak_score": pa.float64(), "points": pa.int64(),
                 "acknowledged": pa.bool_(), "band": pa.string(),
                 "last_flagged": pa.float64(), "muted": pa.bool_(), "kind": pa.string()}
        arrow_schema = pa.schema([(name, types[name]) for name in header])
        sink = io.BytesIO()
        writer = pq.ParquetWriter(sink, arrow_schema)
        for rows in chunks:
            columns = list(zip(*rows))
            if "band" in header:
                import json
                at = header.index("band")
                columns[at] = [None if v is None else json.dumps(v) for v in columns[at]]
            writer.write_table(pa.table([pa.array(c, type=arrow_schema.field(i).type)
                                         for i, c in enumerate(columns)], schema=arrow_schema))
            yield sink.getvalue()
            sink.seek(0)
            sink.truncate()
        writer.close()
        yield sink.getvalue()

    # -- retention ----------------------------------------------------------------------
    def trim(self, older_than: float, now: float | None = None) -> int:
        """Delete points, forecasts and closed incidents older than ``older_than`` seconds."""
        cutoff = (time.time() if now is None else now) - float(older_than)
        with self.engine.begin() as connection:
            removed = connection.execute(sa.delete(schema.points).where(
                schema.points.c.ts < cutoff)).rowcount
            connection.execute(sa.delete(schema.forecasts).where(
                schema.forecasts.c.made_at < cutoff))
            for table in schema.rollups.values():
                connection.execute(sa.delete(table).where(table.c.last_ts < cutoff))
            connection.execute(sa.delete(schema.incidents).where(
                schema.incidents.c.end.is_not(None) & (schema.incidents.c.end < cutoff)))
        self.counters["trimmed"] += removed
        return removed


def _empty_overview() -> dict[str, np.ndarray]:
    return {k: np.empty(0) for k in ("first", "last", "low", "high", "severity", "score",
                                     "count")}


def _rollup_rows(rows, width: int) -> list[tuple]:
    """(series_id, bucket, first, last, low, high, severity, score, count) of the rows."""
    buckets: dict[tuple, list] = {}
    for sid, ts, value, score, severity, _ in rows:
        key = (sid, int(ts // width))
        b = buckets.get(key)
        finite = value is not None and value == value
        if b is None:
            buckets[key] = [ts, ts, value if finite else None, value if finite else None,
                            severity, score, 1]
            continue
        b[0], b[1] = min(b[0], ts), max(b[1], ts)
        if finite:
            b[2] = value if b[2] is None else min(b[2], value)
            b[3] = value if b[3] is None else max(b[3], value)
        b[4] = max(b[4], severity)
        if score is not None and (b[5] is None or score > b[5]):
            b[5] = score
        b[6] += 1
    return [(*key, *b) for key, b in buckets.items()]


def _num(value):
    return None if value is None else float(value)


def _list(values):
    return None if values is None else list(map(float, values))


def _columns(rows) -> tuple[np.ndarray, ...]:
    if not rows:
        return (np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.int8), np.empty(0, np.int8))
    table = np.array(rows, dtype=float)  # None (no score) becomes NaN
    return (table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(),
            table[:, 3].astype(np.int8), table[:, 4].astype(np.int8))
