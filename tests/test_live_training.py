"""Training inside ``serve`` and the per-series fallback by live MASE: a real served process,
a tiny TTM (context 64, horizon 16), a few seconds of training."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from granite_panel.forecasting.selection import seasonal_naive
from granite_panel.settings import Settings
from granite_panel.ui.dashboard import engine_for_frame, render_serving

from .serving import running_server, wait_for


def status(base: str) -> dict:
    """/api/status; the first tick (torch and tsfm_public import) can hold it a few seconds."""
    return requests.get(f"{base}/api/status", timeout=30).json()


def test_serve_trains_in_the_background_and_promotes_or_refuses_with_the_reason(tmp_path):
    env = {
        "TRAINING": "auto", "MODEL_NAME": str(tmp_path / "no-hub-model"),
        "MODELS_DIR": str(tmp_path / "models"), "CONTEXT_LENGTH": "64",
        "FORECAST_HORIZON": "16", "HISTORY_LIMIT": "400", "TRAIN_SECONDS": "3",
        "TRAIN_THREADS": "1", "DATA_GENERATION_INTERVAL": "0.02",
    }  # fmt: skip
    with running_server("--autostart", env=env, timeout=90) as base:
        first = status(base)["model"]["training"]
        assert first is not None and first["phase"] in ("idle", "waiting", "preparing", "training")

        def card():
            return (status(base)["model"]["training"] or {}).get("last_card")

        # The run starts a child process (TRAIN_ISOLATION=process): importing torch there
        # takes ~5 s on a quiet machine, over a minute at load 8.
        card = wait_for(card, timeout=240, interval=0.5)
        now = status(base)
    assert card["label"] == "TTM trained here" and card["series"] == 1
    assert card["validation"]["seasonal_naive"] == 1.0
    decision = card["decision"]
    saved = json.loads((tmp_path / "models" / card["folder"] / "model_card.json").read_text())
    assert saved["decision"] == decision
    if card["promoted"]:
        assert decision.startswith("promoted")
        assert now["model"]["active_model"] == "TTM trained here"
        assert now["model"]["banner"].startswith("TTM trained here on ")
        assert "TTM-R2" not in now["model"]["banner"]
        promoted = json.loads((tmp_path / "models" / "promoted.json").read_text())
        assert promoted["folder"] == card["folder"]
    else:
        assert decision.startswith("not promoted: validation MASE")
        assert now["model"]["last_refusal"] == decision
        assert not (tmp_path / "models" / "promoted.json").exists()


def repeating_and_trending(rows: int = 260) -> pd.DataFrame:
    """Two hourly series: one repeats a daily shape exactly, one climbs a trend with noise."""
    hours = np.arange(rows)
    day = np.sin(2 * np.pi * hours / 24) + 0.5 * np.cos(4 * np.pi * hours / 24)
    noise = np.random.default_rng(3).normal(0, 0.3, rows)
    return pd.DataFrame(
        {
            "ds": pd.date_range("2026-01-01", periods=rows, freq="h"),
            "repeating": 10 + 3 * day,
            "trending": 0.8 * hours + 3 * day + noise,
        }
    )


def test_a_series_where_seasonal_naive_wins_live_falls_back_to_it():
    settings = Settings(
        context_length=96, forecast_horizon=12, season_length=24, history_limit=512,
        accuracy_window=30, model_name="/nonexistent-ttm", fallback_model="AutoTheta",
        training="off",
    )  # fmt: skip
    engine = engine_for_frame(repeating_and_trending(), settings=settings)
    engine.forecasts.wait_until_loaded(30)  # fails at once: AutoTheta serves
    engine.forecasts.fallback.fit_budget_s = 30  # fit every series on its first tick
    for _ in range(60):  # the first tick backfills one context; 48 forecasts mature
        engine.step()
    state = engine.status()
    assert state["active_model"] == "AutoTheta"
    assert state["naive_series"] == ["repeating"]  # AutoTheta still wins on the trend
    # The forecast served for that series is seasonal naive's, the other one is AutoTheta's.
    last = engine.predictions[-1]
    context = engine.ring.last_values(96)
    naive = seasonal_naive(context, 12, 24)
    np.testing.assert_allclose(last.values[0], naive[0])
    assert not np.allclose(last.values[1], naive[1])
    html = render_serving(state)
    assert "Seasonal naive for 1 series" in html and "repeating" in html
    # The tracker scores the model's own forecast per series, so the choice stays stable.
    own = np.array([s.series_mase for s in engine.accuracy.scores])
    naive_mase = np.array([s.series_naive_mase for s in engine.accuracy.scores])
    assert own[:, 0].mean() > naive_mase[:, 0].mean() and own[:, 1].mean() < naive_mase[:, 1].mean()


def test_engine_reset_cancels_its_trainer_and_saves_nothing(tmp_path):
    from granite_panel.engine.core import Engine

    settings = Settings(
        context_length=64, forecast_horizon=16, history_limit=400, model_name="/nonexistent-ttm",
        models_dir=str(tmp_path), train_seconds=120, train_threads=1, fallback_model="SeasonalNaive",
    )  # fmt: skip
    engine = Engine(settings)
    engine.use_trained_models(train=True)
    engine.trainer.poll_seconds = 0.0
    engine.forecasts.wait_until_loaded(30)
    assert engine.trainer.min_points() == 160
    engine.step()  # the backfill: 64 points, too few
    assert engine.status()["model"]["training"]["phase"] == "waiting"
    assert "160 points per series" in engine.status()["model"]["training"]["message"]
    deadline = time.time() + 180  # the child process imports torch first
    while engine.trainer.status()["phase"] != "training" and time.time() < deadline:
        engine.step()
    assert engine.trainer.running
    started = time.perf_counter()
    engine.reset()
    assert time.perf_counter() - started < 5
    assert not engine.trainer.running and engine.trainer.finished_at is None
    assert engine.status()["model"]["training"]["phase"] == "idle"
    assert list(tmp_path.iterdir()) == []  # nothing saved, nothing promoted
