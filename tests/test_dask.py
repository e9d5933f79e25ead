"""``--dask``: forecast and detect on a real LocalCluster equal the single-process results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from granite_panel.cli.main import main

N_SERIES, LENGTH, CHUNK = 50, 200, 8  # 7 chunks: every worker gets several tasks


@pytest.fixture(scope="module")
def cluster():
    """A real two-process cluster, one thread each, as ``--dask`` with no address makes."""
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(local)
    yield local.scheduler_address, client
    client.close()
    local.close()


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory):
    """50 hourly series in the long format: daily seasons, trends, noise, a few spikes."""
    rng = np.random.default_rng(13)
    stamps = pd.date_range("2024-01-01", periods=LENGTH, freq="h")
    t = np.arange(LENGTH)
    frames = []
    for i in range(N_SERIES):
        y = (1 + i % 5) * np.sin(2 * np.pi * t / 24 + i) + 0.01 * i * t + rng.normal(0, 0.3, LENGTH)
        y[rng.integers(50, LENGTH, 2)] += 6
        frames.append(pd.DataFrame({"unique_id": f"host-{i:02d}", "ds": stamps, "y": y}))
    path = tmp_path_factory.mktemp("dask") / "fleet.csv"
    pd.concat(frames).sample(frac=1, random_state=0).to_csv(path, index=False)  # rows shuffled
    return path


def run(argv) -> int:
    return main([*map(str, argv)])


def test_detect_on_dask_equals_single_process(cluster, long_csv, tmp_path):
    address, _ = cluster
    single, spread = tmp_path / "single.csv", tmp_path / "dask.csv"
    assert run(["detect", long_csv, "-o", single, "--chunk-series", CHUNK]) == 0
    assert run(["detect", long_csv, "-o", spread, "--chunk-series", CHUNK, "--dask", address]) == 0
    a, b = pd.read_csv(single), pd.read_csv(spread)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.columns) == ["unique_id", "ds", "y", "anomaly_score"]
    # scored per series: each series alone, as a one-series timestamp,value file, scores the same
    one = a[a.unique_id == "host-07"]
    alone = tmp_path / "alone.csv"
    one.rename(columns={"ds": "timestamp", "y": "value"})[["timestamp", "value"]].to_csv(alone, index=False)
    assert run(["detect", alone, "-o", tmp_path / "alone-scored.csv"]) == 0
    expected = pd.read_csv(tmp_path / "alone-scored.csv")["anomaly_score"].to_numpy()
    assert np.array_equal(one["anomaly_score"].to_numpy(), expected)
    # the injected spikes are found: flagged (>= 0.25, the live threshold), not alerts (1.0),
    # since 200 points are inside the detector's 288-point learning period
    assert 0.25 <= one["anomaly_score"].max() < 0.5


def test_detect_reads_a_partitioned_parquet_folder(cluster, long_csv, tmp_path):
    address, _ = cluster
    folder = tmp_path / "fleet.parquet"
    frame = pd.read_csv(long_csv)
    frame.to_parquet(folder, partition_cols=["unique_id"])
    assert run(["detect", long_csv, "-o", tmp_path / "csv.csv"]) == 0
    assert run(["detect", folder, "-o", tmp_path / "pq.csv", "--dask", address]) == 0
    keys = ["unique_id", "ds"]
    a = pd.read_csv(tmp_path / "csv.csv").sort_values(keys).reset_index(drop=True)
    b = pd.read_csv(tmp_path / "pq.csv").sort_values(keys).reset_index(drop=True)
    assert np.array_equal(a["anomaly_score"].to_numpy(), b["anomaly_score"].to_numpy())


def test_statistical_forecast_on_dask_equals_single_process(cluster, long_csv, tmp_path, monkeypatch):
    address, _ = cluster
    monkeypatch.setenv("MODEL_NAME", str(tmp_path / "no-model"))  # no TTM: statsforecast only
    common = ["forecast", long_csv, "--horizon", 12, "--model", "AutoTheta", "--chunk-series", CHUNK]
    assert run([*common, "-o", tmp_path / "single.csv"]) == 0
    assert run([*common, "-o", tmp_path / "dask.csv", "--dask", address]) == 0
    a, b = pd.read_csv(tmp_path / "single.csv"), pd.read_csv(tmp_path / "dask.csv")
    assert len(a) == N_SERIES * 12 and a["unique_id"].nunique() == N_SERIES
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)
    assert a["forecast"].std() > 0.5  # real forecasts, not a constant


def test_ttm_forecast_on_dask_equals_single_process_and_loads_once_per_worker(
    cluster, long_csv, tmp_path, monkeypatch, tiny_ttm_dir
):
    from granite_panel.forecasting.distributed import ttm_loads_per_worker

    address, client = cluster
    monkeypatch.setenv("MODEL_NAME", tiny_ttm_dir)
    common = ["forecast", long_csv, "--horizon", 16, "--model", "ttm", "--context-length", 64,
              "--chunk-series", CHUNK]  # fmt: skip
    assert run([*common, "-o", tmp_path / "single.csv"]) == 0
    assert run([*common, "-o", tmp_path / "dask.csv", "--dask", address]) == 0
    a, b = pd.read_csv(tmp_path / "single.csv"), pd.read_csv(tmp_path / "dask.csv")
    assert len(a) == N_SERIES * 16
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)
    loads = ttm_loads_per_worker(client)
    assert len(loads) == 2 and set(loads.values()) == {1}, loads


@pytest.mark.parametrize("command", [["detect"], ["forecast", "--horizon", "4"]])
def test_no_scheduler_at_the_address_is_one_line_and_exit_2(command, long_csv, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_NAME", str(tmp_path / "no-model"))
    argv = [command[0], long_csv, *command[1:], "-o", tmp_path / "out.csv"]
    if command[0] == "forecast":
        argv += ["--model", "seasonal-naive"]
    assert run([*argv, "--dask", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dask tcp://127.0.0.1:1: no Dask scheduler answered" in err[0], err
    assert not (tmp_path / "out.csv").exists()
