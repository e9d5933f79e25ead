"""Where points come from. One interface for every source:

- ``series_names``: the names it starts with (may be empty: names come with the points);
- ``step``: seconds between the slots of its grid;
- ``backfill(now, points)`` -> history at start; ``poll(now)`` -> what is new;
  each returns a ``Batch`` (whole slots: synthetic, file replay) or ``Points`` (named points
  the engine puts on its grid: Prometheus);
- ``reset()``, ``status() -> dict`` (``kind``, ``state`` ok/down/finished, ``error``).

Pushed points (``/api/ingest``) need no source: the engine takes them whatever the source.
"""

from __future__ import annotations

from .points import InputError, Points, SourceError, series_name
from .synthetic import ANOMALY_KINDS, DIP, LEVEL_SHIFT, NORMAL, SPIKE, Batch, SyntheticSource
from .table_file import is_table_file

NAMED_SOURCES = ("synthetic", "push", "prometheus")


def open_source(settings):
    """The source ``settings.source`` names; ``SourceError`` (one line) when it cannot be had."""
    kind = settings.source.strip()
    if kind == "synthetic":
        return SyntheticSource(
            n_series=settings.n_series,
            base_value=settings.base_value,
            noise_level=settings.noise_level,
            trend=settings.trend_enabled,
            seasonality=settings.seasonality_enabled,
            season_length=settings.season_length,
            anomaly_probability=settings.anomaly_probability,
            interval=settings.data_generation_interval,
            seed=settings.seed,
        )
    if kind == "push":
        from .push_only import PushOnlySource

        return PushOnlySource(settings.data_generation_interval)
    if kind == "prometheus":
        return _prometheus(settings)
    if is_table_file(kind):
        from .replay import ReplaySource

        try:
            return ReplaySource.from_file(
                kind,
                timestamp_column=settings.timestamp_column,
                value_columns=settings.value_columns,
                label_column=settings.label_column,
                timezone=settings.timezone,
                sheet=settings.sheet,
                speed=settings.replay_speed,
                interval=settings.data_generation_interval,
            )
        except InputError as exc:  # its message starts with the path already, mostly
            message = str(exc).removeprefix(f"{kind}: ")
            raise SourceError(f"SOURCE={kind!r}: {message}") from None
    raise SourceError(
        f"SOURCE={kind!r} is not allowed: expected {', '.join(NAMED_SOURCES)} or the path of "
        "a .csv, .parquet, .json, .jsonl or spreadsheet (.xlsx, .xls, .ods) file (also .tsv, "
        ".txt, or compressed: .csv.gz, .csv.zip, ...)"
    )


def _prometheus(settings):
    from .prometheus import PrometheusSource

    missing = [k for k in ("prometheus_url", "prometheus_query") if not getattr(settings, k)]
    if missing:
        raise SourceError(
            f"SOURCE=prometheus needs {' and '.join(m.upper() for m in missing)}"
        )
    source = PrometheusSource(
        url=settings.prometheus_url,
        query=settings.prometheus_query,
        step=settings.data_generation_interval,
    )
    source.check()
    return source


__all__ = [
    "ANOMALY_KINDS", "DIP", "LEVEL_SHIFT", "NORMAL", "SPIKE", "Batch", "InputError",
    "Points", "SourceError", "SyntheticSource", "open_source", "series_name",
]
