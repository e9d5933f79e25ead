"""Batch scale-out on Dask distributed: series in chunks, one task per chunk.

``granite-panel forecast --dask`` and ``granite-panel detect --dask`` cut their series into
chunks (``CHUNK_SERIES`` each, never one task per series) and map the very function the
single-process path runs over each chunk, so the results are the same numbers. With no
address a ``LocalCluster`` starts with one single-threaded worker process per core; with an
address (``tcp://host:8786``) the user's own scheduler runs the chunks. A TTM is loaded once
per worker by ``TTMWorkerPlugin`` (``client.register_plugin``), not shipped with every task.

statsforecast can distribute itself through fugue when given a Dask DataFrame, but that fits
each model on the whole series; the CLI fits the last ``FALLBACK_CONTEXT`` gap-filled points
and keeps seasonal naive where a model fails, so mapping the CLI's own chunk function is what
keeps Dask results equal to the single-process ones.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Sequence

from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

CHUNK_SERIES = 128  # series per task (and per TTM batch): 8 tasks for 1,000 series
CONNECT_TIMEOUT = "5s"  # a live scheduler answers in milliseconds; a wrong address fails fast
PLUGIN_NAME = "granite-panel-ttm"


class DaskUnavailable(RuntimeError):
    """No Dask cluster to run on; the message is one line for the user."""


def chunk_bounds(n_items: int, chunk: int = CHUNK_SERIES) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of at most ``chunk`` rows covering ``n_items``."""
    return [(start, min(start + chunk, n_items)) for start in range(0, n_items, chunk)]


@contextmanager
def dask_client(address: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: on a new ``LocalCluster`` (``address`` None) or at ``address``.

    The local cluster has ``workers`` (default: one per core) single-threaded worker
    processes, the shape that makes per-worker model memory and CPU use predictable.
    """
    quiet_dask_logging()
    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DaskUnavailable(
                f"--dask {address}: no Dask scheduler answered ({first}); give a running "
                "scheduler's address (tcp://host:8786) or no address for a local cluster"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never collides with a running dashboard
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def quiet_dask_logging() -> None:
    """distributed logs every worker start and stop at INFO; a batch run keeps warnings."""
    import logging

    logging.getLogger("distributed").setLevel(logging.WARNING)
    logging.getLogger("bokeh").setLevel(logging.ERROR)  # the scheduler dashboard's host note


def run_partitioned(
    parts: Sequence,
    per_part_fn: Callable,
    address: str | None = None,
    workers: int | None = None,
    client=None,
    plugin=None,
    **kwargs,
) -> list:
    """``[per_part_fn(part, **kwargs) for part in parts]``, each part a Dask task.

    ``parts`` are series chunks (arrays or frames); results come back in order. Pass a live
    ``client`` to reuse a cluster, else one is made from ``address``/``workers``. ``plugin``
    (a ``WorkerPlugin``) is registered first, e.g. to load a model once per worker.
    """
    if client is None:
        with dask_client(address, workers) as own:
            return run_partitioned(parts, per_part_fn, client=own, plugin=plugin, **kwargs)
    if plugin is not None:
        client.register_plugin(plugin, name=PLUGIN_NAME)
    scattered = client.scatter(list(parts))
    futures = client.map(per_part_fn, scattered, pure=False, **kwargs)
    return client.gather(futures)


class TTMWorkerPlugin(WorkerPlugin):
    """Loads one TTM when a worker starts (or joins); tasks read it with ``worker_ttm()``.

    ``loads`` counts the loads on this worker, so a test can see it is one per worker.
    """

    name = PLUGIN_NAME

    def __init__(self, model_name: str, context_length: int, horizon: int, freq=None,
                 freq_prefix_tuning: bool = False, label: str | None = None):
        self.model_name = model_name
        self.context_length = context_length
        self.horizon = horizon
        self.freq = freq
        self.freq_prefix_tuning = freq_prefix_tuning
        self.label = label
        self.ttm = None
        self.loads = 0

    def setup(self, worker=None):
        from .ttm import load_ttm

        self.ttm = load_ttm(self.model_name, self.context_length, self.horizon, "cpu",
                            freq=self.freq, freq_prefix_tuning=self.freq_prefix_tuning)
        if self.label:
            self.ttm.name = self.label
        self.loads += 1

    def teardown(self, worker=None):
        self.ttm = None


def worker_ttm():
    """The TTM this worker's plugin loaded (inside a task), or None outside a worker."""
    try:
        plugin = get_worker().plugins.get(PLUGIN_NAME)
    except ValueError:
        return None
    return None if plugin is None else plugin.ttm


def ttm_loads_per_worker(client) -> dict[str, int]:
    """Worker address -> how many times its plugin loaded the TTM."""

    def loads(dask_worker):
        plugin = dask_worker.plugins.get(PLUGIN_NAME)
        return 0 if plugin is None else plugin.loads

    return client.run(loads)
