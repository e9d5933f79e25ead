"""``granite-panel forecast``: real long-format input, a check computed here, bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from granite_panel.cli.main import main

ETTH1 = Path("/work/shared/data/ett/ETTh1.csv")
HORIZON = 24

pytestmark = pytest.mark.skipif(not ETTH1.is_file(), reason="needs the shared ETTh1 file")


CHANNELS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def long_file(tmp_path, rows=1500, held_out=HORIZON):
    """ETTh1's first rows in Nixtla's long format, minus the last day (kept as the truth)."""
    frame = pd.read_csv(ETTH1, nrows=rows)[["date", *CHANNELS]]
    long = frame.melt(id_vars=["date"], var_name="unique_id", value_name="y")
    long = long.rename(columns={"date": "ds"})
    cut = frame["date"].iloc[rows - held_out]
    path = tmp_path / "input.csv"
    long[long["ds"] < cut].to_csv(path, index=False)
    return path, long[long["ds"] >= cut]


def test_forecast_cli_beats_seasonal_naive_on_held_out_real_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_NAME", str(tmp_path / "no-model"))  # offline, as here
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("TRAIN_THREADS", "1")
    path, truth = long_file(tmp_path)
    out = tmp_path / "out.csv"
    argv = ["forecast", str(path), "-o", str(out), "--horizon", str(HORIZON), "--train",
            "--context-length", "64", "--train-seconds", "8"]  # fmt: skip
    assert main(argv) == 0
    forecast = pd.read_csv(out, parse_dates=["ds"])
    assert list(forecast.columns) == ["unique_id", "ds", "forecast", "lo", "hi"]
    assert len(forecast) == len(CHANNELS) * HORIZON
    assert (forecast["lo"] <= forecast["forecast"]).all() and (forecast["forecast"] <= forecast["hi"]).all()
    truth = truth.assign(ds=pd.to_datetime(truth["ds"]))
    merged = forecast.merge(truth, on=["unique_id", "ds"], validate="one_to_one")
    assert len(merged) == len(CHANNELS) * HORIZON  # the future timestamps are the held-out ones
    history = pd.read_csv(path).pivot(index="ds", columns="unique_id", values="y")
    naive = history.iloc[-HORIZON:].reset_index(drop=True)  # yesterday, same hour
    naive_errors = [
        np.abs(naive[sid].to_numpy() - merged[merged.unique_id == sid]["y"].to_numpy())
        for sid in naive.columns
    ]
    model_mae = float(np.mean(np.abs(merged["forecast"] - merged["y"])))
    assert model_mae < float(np.mean(naive_errors))
    assert "forecast 7 series x 24 steps" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("a,b\n1,2\n", [], "expected unique_id,ds,y"),
        ("unique_id,ds,y\nA,2020-01-01,1\nA,2020-01-02,x\n", [], "'x' on data row 2 is not a number"),
        ("unique_id,ds,y\nA,yesterday,1\n", [], "'yesterday' on data row 1 is not a date/time"),
        ("unique_id,ds,y\nA,2020-01-01,1\n", ["--model", "prophet"], "--model 'prophet' is not allowed"),
        ("unique_id,ds,y\nA,2020-01-01,1\n", ["--horizon", "0"], "--horizon must be"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    argv = ["forecast", str(path), "--horizon", "4", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("granite-panel forecast: error:")


def test_missing_file_is_named(tmp_path, capsys):
    assert main(["forecast", str(tmp_path / "nope.csv"), "--horizon", "4"]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
