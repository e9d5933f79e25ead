"""Forecasters: seasonal naive, statsforecast fallback, TTM via tsfm_public, the service."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from granite_panel.forecasting import service as forecasting
from granite_panel.forecasting.service import (
    ForecastService,
    StatisticalForecaster,
    TTMForecaster,
    describe_load_error,
    fill_gaps,
    is_hub_id,
    load_ttm,
    model_label,
    pick_device,
    seasonal_naive,
)

HUB_ID = "ibm-granite/granite-timeseries-ttm-r2"
SEASON = 12


def seasonal_series(n_series=3, n_points=120, seed=0, trend=0.2):
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    level = 100 + 10 * np.arange(n_series)[:, None]
    cycle = 8 * np.sin(2 * np.pi * t / SEASON)[None, :]
    return level + cycle + trend * t[None, :] + rng.normal(0, 0.5, (n_series, n_points))


def naive_fallback(horizon=16):
    return StatisticalForecaster(model="SeasonalNaive", horizon=horizon, season_length=SEASON)


def no_ttm(*args):
    raise RuntimeError("TTM switched off for this test")


# --------------------------------------------------------------------------- helpers


def test_seasonal_naive_repeats_the_last_season():
    context = np.array([[1.0, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]])
    np.testing.assert_array_equal(seasonal_naive(context, 5, 3), [[4, 5, 6, 4, 5], [40, 50, 60, 40, 50]])
    np.testing.assert_array_equal(seasonal_naive(context, 3, 1), [[6, 6, 6], [60, 60, 60]])
    # A season longer than the context uses what there is.
    np.testing.assert_array_equal(seasonal_naive(context[:, :2], 4, 24), [[1, 2, 1, 2], [10, 20, 10, 20]])
    out = seasonal_naive(context, 4, 3)
    out[0, 0] = -1
    assert context[0, 3] == 4  # a copy, not a view


def test_fill_gaps_carries_the_last_good_value():
    context = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [5.0, np.inf, 6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(fill_gaps(context), [[1, 1, 1, 3, 3], [5, 5, 6, 7, 8]])


# --------------------------------------------------------------------------- statistical


@pytest.mark.parametrize("model", ["AutoETS", "AutoTheta", "SeasonalNaive"])
def test_statistical_forecaster_gives_finite_n_by_horizon(model):
    forecaster = StatisticalForecaster(model=model, horizon=16, season_length=SEASON, fit_budget_s=5)
    context = seasonal_series(n_series=2, n_points=96)
    out = forecaster.predict(context)
    assert out.shape == (2, 16)
    assert np.isfinite(out).all()
    assert forecaster.name == model
    # Close to the truth on an easy seasonal series (the next season continues the pattern).
    t = np.arange(96, 112)
    truth = (100 + 10 * np.arange(2)[:, None]) + 8 * np.sin(2 * np.pi * t / SEASON) + 0.2 * t
    assert np.abs(out - truth).mean() < 6


def test_fits_within_budget_then_uses_forward(monkeypatch):
    forecaster = StatisticalForecaster(
        model="AutoTheta", horizon=8, season_length=SEASON, fit_budget_s=0.0, refit_every=50
    )
    fits = []
    real_new_model = forecaster._new_model

    def counting_new_model(season):
        fits.append(season)
        return real_new_model(season)

    monkeypatch.setattr(forecaster, "_new_model", counting_new_model)
    context = seasonal_series(n_series=3, n_points=96)
    naive = seasonal_naive(context, 8, SEASON)
    seen = []
    for _ in range(3):
        out = forecaster.predict(context)
        seen.append(forecaster.fitted_series)
    # A spent budget still fits one series a call: the stalest first.
    assert seen == [1, 2, 3]
    assert len(fits) == 3
    # Once fitted, further calls only apply the fitted models (forward): no more fits.
    for _ in range(5):
        out = forecaster.predict(context + 0.0)
    assert len(fits) == 3
    assert out.shape == (3, 8) and np.isfinite(out).all()
    assert not np.allclose(out, naive)  # forward of a fitted model, not the naive stand-in


def test_fitting_stops_when_the_budget_is_spent():
    # 40 AutoTheta fits take well over a second; a 0.1 s budget must stop long before.
    forecaster = StatisticalForecaster(model="AutoTheta", horizon=8, season_length=SEASON, fit_budget_s=0.1)
    context = seasonal_series(n_series=40, n_points=96)
    forecaster.predict(context)
    first = forecaster.fitted_series
    assert 1 <= first < 40
    forecaster.predict(context)
    assert forecaster.fitted_series > first  # the next call fits the ones still waiting


def test_unfitted_series_get_seasonal_naive_until_their_turn():
    forecaster = StatisticalForecaster(model="AutoTheta", horizon=8, season_length=SEASON, fit_budget_s=0.0)
    context = seasonal_series(n_series=3, n_points=96)
    out = forecaster.predict(context)
    naive = seasonal_naive(context, 8, SEASON)
    np.testing.assert_array_equal(out[1:], naive[1:])


def test_refits_after_refit_every_calls(monkeypatch):
    forecaster = StatisticalForecaster(
        model="AutoTheta", horizon=8, season_length=SEASON, fit_budget_s=10.0, refit_every=3
    )
    fits = []
    real_new_model = forecaster._new_model
    monkeypatch.setattr(forecaster, "_new_model", lambda s: fits.append(s) or real_new_model(s))
    context = seasonal_series(n_series=2, n_points=60)
    for _ in range(4):
        forecaster.predict(context)
    assert len(fits) == 4  # 2 at the first call, 2 again at the fourth
    forecaster.reset()
    assert forecaster.fitted_series == 0


def test_a_share_of_the_series_is_forecast_with_each_series_own_fitted_state():
    # FORECAST_EVERY > 1: each call holds other rows. Each series must be forecast from the
    # state fitted on it, as if every call held all series (keyed by position, rows 1 and 3
    # used the states fitted on rows 0 and 2).
    context = seasonal_series(n_series=4, n_points=96)
    context[1::2] = context[1::2][:, ::-1] * 3.0 + 50.0  # odd rows unlike the even ones
    every = StatisticalForecaster(model="AutoETS", horizon=8, season_length=SEASON, fit_budget_s=10)
    share = StatisticalForecaster(model="AutoETS", horizon=8, season_length=SEASON, fit_budget_s=10)
    whole = every.predict(context)
    for rows in (np.array([0, 2]), np.array([1, 3]), np.array([0, 2])):
        np.testing.assert_allclose(share.predict(context[rows], rows=rows), whole[rows])
    assert share.fitted_series == 4
    with pytest.raises(ValueError, match="rows names 3 series; the context has 2"):
        share.predict(context[:2], rows=np.array([0, 1, 2]))


def test_nans_in_context_are_filled():
    context = seasonal_series(n_series=2, n_points=96)
    context[0, -1] = np.nan
    context[1, 10:20] = np.nan
    context[1, 0] = np.nan
    for model in ("AutoTheta", "SeasonalNaive"):
        out = StatisticalForecaster(model=model, horizon=8, season_length=SEASON, fit_budget_s=5).predict(context)
        assert out.shape == (2, 8) and np.isfinite(out).all(), model


@pytest.mark.parametrize("n_points", [1, 2, 3, 5, 2 * SEASON - 1, 2 * SEASON])
def test_short_contexts(n_points):
    context = seasonal_series(n_series=2, n_points=n_points)
    out = StatisticalForecaster(model="AutoTheta", horizon=8, season_length=SEASON, fit_budget_s=5).predict(context)
    assert out.shape == (2, 8) and np.isfinite(out).all()


# --------------------------------------------------------------------------- names and errors


def test_pick_device():
    import torch

    assert pick_device(False) == "cpu"
    assert pick_device(True) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_is_hub_id(tmp_path, monkeypatch):
    assert is_hub_id(HUB_ID)
    assert is_hub_id("ibm-granite/granite-timeseries-ttm-r1")
    assert not is_hub_id("/models/granite-timeseries-ttm-r2")
    assert not is_hub_id("./granite-timeseries-ttm-r2")
    assert not is_hub_id("~/granite-timeseries-ttm-r2")
    assert not is_hub_id("a/b/c")
    assert not is_hub_id("no-slash")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "ttm").mkdir(parents=True)
    assert not is_hub_id("models/ttm")  # an existing folder is a folder


def test_model_label_is_ttm_r2_only_for_ibms_r2_repository():
    assert model_label(HUB_ID) == "TTM-R2"
    assert model_label("ibm-granite/granite-timeseries-ttm-r1") == "TTM-R1"
    # Someone else's copy, and local folders, are not IBM's TTM-R2.
    for name in (
        "someone/granite-timeseries-ttm-r2",
        "/models/granite-timeseries-ttm-r2",
        "./granite-timeseries-ttm-r2",
        "models/granite-timeseries-ttm-r2",
    ):
        assert "TTM-R2" not in model_label(name), name


def test_describe_load_error():
    offline = OSError(
        "We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find "
        "them in the cached files.\nCheck your internet connection."
    )
    assert describe_load_error(offline).startswith("no network")
    assert describe_load_error(ConnectionError("Connection refused")).startswith("no network")
    try:
        try:
            raise ConnectionError("Max retries exceeded: Name resolution failed")
        except ConnectionError as inner:
            raise OSError("could not fetch config.json") from inner
    except OSError as chained:
        assert describe_load_error(chained).startswith("no network")
    other = describe_load_error(ValueError("bad shape\nsecond line"))
    assert other == "ValueError: bad shape"
    assert len(describe_load_error(RuntimeError("x" * 1000))) <= 200


# --------------------------------------------------------------------------- TTM


@pytest.fixture(scope="module")
def tiny_ttm(tiny_ttm_dir) -> TTMForecaster:
    return load_ttm(tiny_ttm_dir, context_length=64, horizon=16, device="cpu")


def test_load_ttm_goes_through_get_model(tiny_ttm_dir, monkeypatch):
    import importlib

    from granite_panel.forecasting import service

    # The engine calls tsfm_public's own get_model, kept in the namespace import_tsfm builds
    # once (the namespace, not the module, is what a spy must replace: it may exist already).
    tsfm = service.import_tsfm()
    real = importlib.import_module("tsfm_public.toolkit.get_model").get_model
    assert tsfm.get_model is real
    calls = []

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(tsfm, "get_model", spy)
    ttm = load_ttm(tiny_ttm_dir, context_length=64, horizon=16, device="cpu")
    assert calls and calls[0][0][0] == tiny_ttm_dir
    assert isinstance(ttm, TTMForecaster)
    assert ttm.min_context == 64
    assert ttm.model_horizon == 16
    assert "TTM-R2" not in ttm.name
    assert ttm.name.startswith("TTM")


def test_ttm_predicts_a_batch_with_per_series_scaling(tiny_ttm):
    base = seasonal_series(n_series=1, n_points=100)[0]
    batch = np.stack([base, base + 1000.0, 10.0 * base - 5.0, base[::-1].copy()])
    out = tiny_ttm.predict(batch)
    assert out.shape == (4, 16)
    assert np.isfinite(out).all()
    # Each series is scaled by its own context: a shifted series gives a shifted forecast,
    # a scaled series a scaled one.
    np.testing.assert_allclose(out[1], out[0] + 1000.0, atol=1e-2)
    np.testing.assert_allclose(out[2], 10.0 * out[0] - 5.0, rtol=1e-4, atol=1e-2)
    # One series does not leak into another: alone it gets the same forecast.
    np.testing.assert_allclose(tiny_ttm.predict(batch[1:2]), out[1:2], atol=1e-3)
    # Only the last min_context points matter.
    longer = np.concatenate([np.full((4, 50), -1e6), batch], axis=1)
    np.testing.assert_allclose(tiny_ttm.predict(longer), out, atol=1e-3)


def test_ttm_handles_flat_and_gappy_series(tiny_ttm):
    flat = np.full((1, 64), 42.0)
    gappy = seasonal_series(n_series=1, n_points=64)
    gappy[0, [0, 10, 63]] = np.nan
    out = tiny_ttm.predict(np.concatenate([flat, gappy]))
    assert np.isfinite(out).all()
    # Zero spread must not divide by zero: the forecast stays at the level (up to what
    # random weights make of an all-zero input).
    np.testing.assert_allclose(out[0], 42.0, atol=0.5)


def test_ttm_horizon_shorter_than_the_model(tiny_ttm_dir):
    ttm = load_ttm(tiny_ttm_dir, context_length=64, horizon=8, device="cpu")
    assert ttm.predict(seasonal_series(n_series=2, n_points=64)).shape == (2, 8)


# --------------------------------------------------------------------------- service


def test_service_with_local_ttm_goes_loading_then_ready(tiny_ttm_dir):
    release = threading.Event()

    def slow_loader(*args):
        assert release.wait(30)
        return load_ttm(*args)

    service = ForecastService(
        model_name=tiny_ttm_dir,
        context_length=64,
        horizon=16,
        use_gpu=False,
        fallback=naive_fallback(),
        loader=slow_loader,
    )
    assert service.state == "not loaded"
    service.start_loading()
    assert service.state == "loading"
    status = service.status(n_valid=100)
    assert status["model_loaded"] is False
    assert status["active_model"] == "SeasonalNaive"
    assert "loading" in status["fallback_reason"]
    # While loading, the fallback serves.
    result = service.predict(seasonal_series(n_series=2, n_points=100), n_valid=100)
    assert result.model == "SeasonalNaive" and "loading" in result.reason
    release.set()
    assert service.wait_until_loaded(60) == "ready"
    status = service.status(n_valid=100)
    assert status["model_loaded"] is True
    assert status["device"] == "cpu"
    assert status["active_model"] == status["ttm_model"] == service.ttm.name
    assert status["ttm_model"].startswith("TTM")
    assert status["fallback_reason"] is None
    assert service.load_seconds is not None


def test_service_uses_fallback_until_the_context_is_long_enough(tiny_ttm_dir):
    service = ForecastService(
        model_name=tiny_ttm_dir, context_length=64, horizon=16, use_gpu=False, fallback=naive_fallback()
    )
    assert service.wait_until_loaded(60) == "ready"
    context = seasonal_series(n_series=3, n_points=64)
    short = service.predict(context[:, -30:], n_valid=30)
    assert short.model == "SeasonalNaive"
    assert "30 of 64" in short.reason
    assert short.values.shape == (3, 16) and np.isfinite(short.values).all()
    assert service.status(n_valid=30)["active_model"] == "SeasonalNaive"
    full = service.predict(context, n_valid=64)
    assert full.model == service.ttm.name and full.reason == ""
    assert full.values.shape == (3, 16) and np.isfinite(full.values).all()
    assert full.inference_ms >= 0


def test_service_with_hub_id_offline_fails_and_says_why():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    service = ForecastService(
        model_name=HUB_ID, context_length=512, horizon=96, use_gpu=False, fallback=naive_fallback(96)
    )
    assert service.wait_until_loaded(60) == "failed"
    status = service.status(n_valid=1000)
    assert status["model_loaded"] is False
    assert status["active_model"] == "SeasonalNaive"
    reason = status["fallback_reason"]
    assert "unavailable" in reason and "SeasonalNaive" in reason
    assert "TTM-R2" in reason  # the hub id is IBM's R2: that is what is missing
    assert "no network" in reason
    result = service.predict(seasonal_series(n_series=2, n_points=600), n_valid=600)
    assert result.model == "SeasonalNaive" and "unavailable" in result.reason


def test_service_loader_that_raises_fails_with_the_reason():
    service = ForecastService(
        model_name=HUB_ID, context_length=64, horizon=16, use_gpu=False, fallback=naive_fallback(), loader=no_ttm
    )
    assert service.wait_until_loaded(10) == "failed"
    status = service.status()
    assert status["load_error"] == "RuntimeError: TTM switched off for this test"
    assert "TTM switched off for this test" in status["fallback_reason"]
    assert service.ttm is None


@pytest.mark.parametrize(
    "folder", ["{tmp}/granite-timeseries-ttm-r2", "models/granite-timeseries-ttm-r2", "./ttm-r2"]
)
def test_service_with_missing_local_folder_fails_and_is_never_ttm_r2(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = folder.format(tmp=tmp_path)
    service = ForecastService(model_name=name, context_length=64, horizon=16, use_gpu=False, fallback=naive_fallback())
    assert service.wait_until_loaded(60) == "failed"
    status = service.status(n_valid=100)
    assert status["model_loaded"] is False
    assert "unavailable" in status["fallback_reason"]
    assert "TTM-R2" not in repr(status)


def test_local_copy_named_like_r2_is_not_called_ttm_r2(tiny_ttm_dir, tmp_path):
    folder = tmp_path / "granite-timeseries-ttm-r2"
    shutil.copytree(tiny_ttm_dir, folder)
    service = ForecastService(model_name=str(folder), context_length=64, horizon=16, use_gpu=False, fallback=naive_fallback())
    assert service.wait_until_loaded(60) == "ready"
    assert "TTM-R2" not in repr(service.status(n_valid=100))
    assert "TTM-R2" not in service.predict(seasonal_series(n_points=64), n_valid=64).model


def test_ttm_failure_at_predict_time_falls_back_for_that_call(tiny_ttm_dir):
    service = ForecastService(
        model_name=tiny_ttm_dir, context_length=64, horizon=16, use_gpu=False, fallback=naive_fallback()
    )
    assert service.wait_until_loaded(60) == "ready"

    def broken(context, rows=None):
        raise RuntimeError("CUDA out of memory")

    service.ttm.predict = broken
    result = service.predict(seasonal_series(n_points=64), n_valid=64)
    assert result.model == "SeasonalNaive"
    assert "failed" in result.reason
    assert np.isfinite(result.values).all()


def test_module_does_not_import_panel():
    # forecasting knows nothing of the UI (DESIGN.md layers).
    source = open(forecasting.__file__).read()
    assert "import panel" not in source and "holoviews" not in source
