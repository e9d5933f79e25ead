"""TTM the way IBM intends: revision choice, frequency token, local folders, fetch-model."""

import json
import subprocess
import sys

import numpy as np
import pytest

from granite_panel.forecasting.service import check_folder_fits, choose_revision, load_ttm

R2 = "ibm-granite/granite-timeseries-ttm-r2"


@pytest.mark.parametrize(
    "context,horizon,freq,ft,expected",
    [
        (512, 96, None, False, "512-96-r2"),  # the default
        (1024, 96, None, False, "1024-96-r2"),
        (700, 96, None, False, "512-96-r2"),  # longest context that fits
        (512, 192, None, False, "512-192-r2"),
        (512, 96, "h", True, "512-96-ft-r2.1"),  # frequency prefix tuning preferred
        (512, 96, "d", False, "512-96-ft-r2.1"),  # daily data: r2.1 revisions only
        (52, 16, None, False, "52-16-ft-r2.1"),
    ],
)
def test_revision_choice_follows_get_model(context, horizon, freq, ft, expected):
    assert choose_revision(R2, context, horizon, freq, ft) == expected


def test_too_short_a_context_has_no_revision():
    with pytest.raises(ValueError, match="context length"):
        choose_revision(R2, 30, 16)


def tiny_config(**overrides):
    from tsfm_public import TinyTimeMixerConfig

    options = dict(context_length=64, prediction_length=16, patch_length=8, patch_stride=8,
                   num_input_channels=1, d_model=16, num_layers=2, decoder_num_layers=1,
                   decoder_d_model=16)
    return TinyTimeMixerConfig(**{**options, **overrides})


def test_frequency_token_reaches_a_prefix_tuned_model(tmp_path, monkeypatch):
    from tsfm_public import TinyTimeMixerForPrediction

    TinyTimeMixerForPrediction(tiny_config(resolution_prefix_tuning=True, frequency_token_vocab_size=10)).save_pretrained(tmp_path)
    ttm = load_ttm(str(tmp_path), 64, 16, freq="15min")
    assert ttm.freq_token == 5  # tsfm_public's DEFAULT_FREQUENCY_MAPPING["15min"]
    seen = {}
    forward = ttm.model.forward

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return forward(*args, **kwargs)

    monkeypatch.setattr(ttm.model, "forward", spy)
    out = ttm.predict(np.random.default_rng(0).normal(size=(3, 64)))
    assert out.shape == (3, 16) and np.isfinite(out).all()
    assert seen["freq_token"].tolist() == [5, 5, 5]


def test_models_without_prefix_tuning_get_no_token(tiny_ttm_dir):
    assert load_ttm(tiny_ttm_dir, 64, 16, freq="h").freq_token is None


def test_a_folder_must_fit_the_context_and_horizon(tiny_ttm_dir):
    from pathlib import Path

    check_folder_fits(Path(tiny_ttm_dir), 64, 16)
    with pytest.raises(ValueError, match="needs 64 points of context; CONTEXT_LENGTH is 32"):
        load_ttm(tiny_ttm_dir, 32, 16)
    with pytest.raises(ValueError, match="forecasts 16 points; FORECAST_HORIZON is 96"):
        load_ttm(tiny_ttm_dir, 512, 96)


def test_fetch_model_offline_fails_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "fetch-model", "--dest", str(tmp_path / "m")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"granite-panel: error: cannot fetch {R2}: no network (Hugging Face hub unreachable)"
    ]
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_fetch_model_saves_what_load_ttm_reads(tmp_path, monkeypatch):
    """The folder fetch-model writes (save_pretrained) is what MODEL_NAME=<folder> loads."""
    import granite_panel.forecasting.ttm as forecasting
    from tsfm_public import TinyTimeMixerForPrediction

    model = TinyTimeMixerForPrediction(tiny_config())
    real = forecasting.import_tsfm()
    fake_hub = type(real)(**{**vars(real), "get_model": lambda *a, **k: "64-16-r2" if k.get(
        "return_model_key") else model})
    monkeypatch.setattr(forecasting, "import_tsfm", lambda: fake_hub)
    revision, dest = forecasting.fetch_model(R2, tmp_path / "saved", 64, 16)
    assert revision == "64-16-r2"
    assert json.loads((dest / "config.json").read_text())["context_length"] == 64
    monkeypatch.undo()
    ttm = load_ttm(str(dest), 64, 16)
    assert ttm.name == "TTM (local: saved)"
    assert ttm.predict(np.ones((2, 64))).shape == (2, 16)


def test_fetch_model_refuses_a_local_folder(tmp_path):
    import os

    env = {**os.environ, "MODEL_NAME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "fetch-model"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 2 and "local folder" in result.stderr


def test_frequency_list_matches_tsfm():
    from tsfm_public.toolkit.time_series_preprocessor import DEFAULT_FREQUENCY_MAPPING

    from granite_panel.settings import FREQUENCIES

    assert set(FREQUENCIES) <= set(DEFAULT_FREQUENCY_MAPPING)
