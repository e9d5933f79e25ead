"""The tables of the store and their versions (SQLAlchemy Core, one schema for both databases).

Why versioned: a user upgrades granite-panel over an existing file. ``SCHEMA_VERSION`` is what
this code writes; ``MIGRATIONS[v]`` lifts a database from version ``v`` to ``v + 1``.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 4

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)
series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("labels", sa.JSON, nullable=True),
    sa.Column("first_seen", sa.Double, nullable=True),
    sa.Column("last_seen", sa.Double, nullable=True),
)
points = sa.Table(
    "points",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
    sa.Column("ts", sa.Double, primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("score", sa.Double, nullable=True),
    # 0 none .. 3 critical; -1: written while its slot was still open (not scored yet; the
    # tick that closes the slot overwrites it, a restart puts it back into its open slot).
    sa.Column("severity", sa.Integer, nullable=False, server_default="0"),
    # 0 ok / 1 bad point; a gap is no row (added in version 2).
    sa.Column("flag", sa.Integer, nullable=False, server_default="0"),
    # Why: rows clustered by (series, ts) make history() and recent() range scans in SQLite.
    sqlite_with_rowid=False,
)
forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
    sa.Column("made_at", sa.Double, primary_key=True),
    sa.Column("model", sa.String(256), primary_key=True),
    sa.Column("horizon", sa.JSON, nullable=False),
    sa.Column("lower", sa.JSON, nullable=True),
    sa.Column("upper", sa.JSON, nullable=True),
)
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
    sa.Column("start", sa.Double, nullable=False),
    sa.Column("end", sa.Double, nullable=True),
    sa.Column("peak_score", sa.Double, nullable=True),
    sa.Column("severity", sa.Integer, nullable=False, server_default="0"),
    sa.Column("points", sa.Integer, nullable=False, server_default="0"),
    sa.Column("acknowledged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("band", sa.JSON, nullable=True),
    # version 3: the gap rule of an ongoing incident counts from its last flagged point
    sa.Column("last_flagged", sa.Double, nullable=True),
    sa.Column("muted", sa.Boolean, nullable=False, server_default=sa.false()),
    # version 4: "anomaly" (flagged points) or "no data" (the series stopped reporting)
    sa.Column("kind", sa.String(16), nullable=False, server_default="anomaly"),
)
model_runs = sa.Table(
    "model_runs",
    metadata,
    sa.Column("model", sa.String(256), primary_key=True),
    sa.Column("started", sa.Double, primary_key=True),
    sa.Column("reason", sa.String(1024), nullable=True),
)
engine_state = sa.Table(
    # Why: the detectors' state and the counters, checkpointed with the tick that made them,
    # so a restart replays only the points after the checkpoint (added in version 3).
    "engine_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("saved_at", sa.Double, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

ROLLUP_SECONDS = (60, 3600)  # the widths of the rollup levels (a minute, an hour)


def _rollup(width: int) -> sa.Table:
    """Per series and time bucket: the envelope of every value written in it (version 3).

    Why: a chart of a year reads ~9k hourly rows instead of scanning millions of points.
    """
    return sa.Table(
        f"rollup_{width}",
        metadata,
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),  # floor(ts / width)
        sa.Column("first_ts", sa.Double, nullable=False),
        sa.Column("last_ts", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=True),
        sa.Column("high", sa.Double, nullable=True),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("score", sa.Double, nullable=True),
        sa.Column("count", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )


rollups = {width: _rollup(width) for width in ROLLUP_SECONDS}
sa.Index("points_ts", points.c.ts)
sa.Index("incidents_series_start", incidents.c.series_id, incidents.c.start)


def create_v1(connection) -> None:
    """The first schema (points without ``flag``), kept to test the migration for real."""
    old = sa.MetaData()
    added = {(points, "flag"), (incidents, "last_flagged"), (incidents, "muted"),
             (incidents, "kind")}
    for table in metadata.sorted_tables:
        if table is engine_state or table in rollups.values():
            continue
        columns = [c.copy() for c in table.columns if (table, c.name) not in added]
        sa.Table(table.name, old, *columns)
    old.create_all(connection)
    connection.execute(sa.insert(old.tables["schema_version"]).values(version=1))


def _v1_to_v2(connection) -> None:
    connection.execute(
        sa.text("ALTER TABLE points ADD COLUMN flag INTEGER NOT NULL DEFAULT 0")
    )


def _v2_to_v3(connection) -> None:
    engine_state.create(connection)
    for table in rollups.values():  # (points stored before version 3 are not rolled up)
        table.create(connection)
    connection.execute(sa.text("ALTER TABLE incidents ADD COLUMN last_flagged DOUBLE PRECISION"))
    connection.execute(sa.text(
        "ALTER TABLE incidents ADD COLUMN muted BOOLEAN NOT NULL DEFAULT FALSE"))


def _v3_to_v4(connection) -> None:
    connection.execute(sa.text(
        "ALTER TABLE incidents ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'anomaly'"))


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}
