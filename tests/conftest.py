"""Shared test setup: no network for Hugging Face, and a tiny TinyTimeMixer on disk."""

from __future__ import annotations

import os

import pytest

# Set before anything imports huggingface_hub (it reads the flag at import time): a hub
# model then fails to load at once instead of waiting on the network.
os.environ["HF_HUB_OFFLINE"] = "1"
# Served engines (the real ``serve`` processes the tests start inherit this) do not train in
# the background: a test stream stays deterministic. tests/test_live_training.py turns it on.
os.environ["TRAINING"] = "off"


@pytest.fixture(scope="session")
def tiny_ttm_dir(tmp_path_factory) -> str:
    """Folder of a small, randomly initialised TTM (context 64, horizon 16) saved with
    ``save_pretrained``, so the real ``tsfm_public.toolkit.get_model`` path loads it."""
    import torch

    from granite_panel.forecasting.service import import_tsfm

    import_tsfm()  # under the product's lock: an engine's background import may be running
    from tsfm_public import TinyTimeMixerConfig, TinyTimeMixerForPrediction

    config = TinyTimeMixerConfig(
        context_length=64,
        prediction_length=16,
        patch_length=8,
        patch_stride=8,
        num_input_channels=1,
        d_model=16,
        num_layers=2,
        decoder_num_layers=1,
        decoder_d_model=16,
    )
    folder = tmp_path_factory.mktemp("tiny-ttm")
    with torch.random.fork_rng():  # the same weights every run, without touching others' RNG
        torch.manual_seed(0)
        TinyTimeMixerForPrediction(config).save_pretrained(folder)
    return str(folder)


# ---------------------------------------------------------------- databases (issue 10)
# One throwaway PostgreSQL cluster for the whole run (tests/postgres.py), a fresh database
# per test; `url` runs a test on a SQLite file and on PostgreSQL.
import itertools  # noqa: E402

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    if not _postgres().available():
        pytest.fail("PostgreSQL is not installed: tests/run.sh installs it (postgresql)")
    cluster = _postgres().PostgresCluster()
    cluster.init()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_url(pg_cluster):
    database = f"granite_test_{next(_names)}"
    pg_cluster.psql(f"CREATE DATABASE {database}")
    yield pg_cluster.url(database)
    pg_cluster.psql(f"DROP DATABASE {database} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'panel.db'}"
    return request.getfixturevalue("pg_url")




def _postgres():
    from tests import postgres

    return postgres
