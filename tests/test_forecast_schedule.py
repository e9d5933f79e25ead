"""FORECAST_EVERY: each tick forecasts a share of the series in turn; readers, the accuracy
tracker and the store see each series' newest forecast."""

import io

import numpy as np
import pandas as pd
import pytest

from granite_panel.engine.accuracy import Score, series_summary
from granite_panel.engine.core import Engine
from granite_panel.engine.records import latest_forecast
from granite_panel.settings import Settings, SettingsError
from granite_panel.store import open_store
from granite_panel.ui.controller import forecast_frame
from tests.test_engine import SMALL, T0, make_engine, run_steps

N, EVERY = 7, 3


def test_each_tick_forecasts_one_share_in_turn_and_no_forecast_gets_older_than_the_schedule():
    engine = make_engine(n_series=N, forecast_every=EVERY)
    ticks = run_steps(engine, 12)
    first = ticks[0].prediction
    assert list(first.covered()) == list(range(N))  # nothing forecast yet: all at once
    shares = [list(t.prediction.covered()) for t in ticks[1:]]
    assert shares[:3] == [[1, 4], [2, 5], [0, 3, 6]]  # the turn after the first share's
    assert shares[3:6] == shares[:3]
    assert all(t.prediction.values.shape == (len(s), SMALL["forecast_horizon"])
               for t, s in zip(ticks[1:], shares))
    ages = engine.forecast_ages()
    assert ages.max() <= (EVERY - 1) * engine.step_seconds and np.isfinite(ages).all()
    assert engine.status()["forecast_age_max_s"] == ages.max()
    assert engine.status()["config"]["forecast_every"] == EVERY


def test_readers_take_each_series_newest_forecast():
    engine = make_engine(n_series=N, forecast_every=EVERY)
    run_steps(engine, 8)
    snap = engine.snapshot()
    last = snap.predictions[-1]
    for row in range(N):
        prediction, j = latest_forecast(snap.predictions, row)
        assert prediction.made_at == engine.forecast_made_at[row]
        assert np.array_equal(prediction.values[j], forecast_frame(prediction, row)["value"])
        if last.index_of(row) is None:  # not in the newest share: no line from that one
            assert forecast_frame(last, row).empty
    payload = last.as_dict(list(range(N)), list(snap.names))
    assert sorted(payload["series"]) == sorted(snap.names[i] for i in last.covered())


def test_accuracy_scores_every_series_and_keeps_window_times_share_forecasts():
    engine = make_engine(n_series=N, forecast_every=EVERY, accuracy_window=5)
    run_steps(engine, SMALL["forecast_horizon"] + 3 * EVERY + 2)
    assert engine.accuracy.scores.maxlen == 5 * EVERY
    summary = engine.series_accuracy()
    assert (summary["scored"] > 0).all() and np.isfinite(summary["mase"]).all()
    # a share's score has per-series MASE for its own rows only
    score = engine.accuracy.scores[-1]
    assert len(score.series_mase) == N and 0 < np.isfinite(score.series_mase).sum() < N


def test_series_summary_by_hand():
    def score(own, naive):
        return Score("m", 0, 0, 0, 0, 0, 0, np.array(own), np.array(naive))

    scores = [score([1.0, np.nan, 3.0], [2.0, np.nan, 1.0]),
              score([3.0, 4.0, np.nan], [2.0, 1.0, np.nan]),
              score([5.0], [1.0])]  # older than series 1 and 2: scores series 0 only
    out = series_summary(scores, 4)
    assert list(out["scored"]) == [3, 1, 1, 0]
    assert out["mase"][:3].tolist() == [3.0, 4.0, 3.0] and np.isnan(out["mase"][3])
    assert out["naive_mase"][:3].tolist() == [pytest.approx(5 / 3), 1.0, 1.0]


def test_the_store_keeps_each_series_forecast_once_a_horizon():
    store = open_store("memory")
    settings = Settings(**{**SMALL, "n_series": N, "forecast_every": EVERY})
    engine = Engine(settings, forecasts=make_engine().forecasts, store=store)
    horizon = settings.forecast_horizon
    run_steps(engine, 2 * horizon)
    engine.wait_stored(30)
    text = b"".join(store.export(kind="forecasts")).decode()
    stored = pd.read_csv(io.StringIO(text))
    per_series = stored.groupby("series").size()
    assert len(per_series) == N and (per_series == 2).all()  # ticks 0 and one horizon on
    engine.close()


def test_forecast_every_out_of_bounds_is_one_clear_error():
    with pytest.raises(SettingsError, match="FORECAST_EVERY"):
        Settings.from_env({"FORECAST_EVERY": "0"})


def test_the_fallback_fits_and_forecasts_each_series_by_its_row_whatever_share_a_tick_holds():
    # A fitted fallback (AutoETS) keeps one state per engine row: after the shares have gone
    # round, every row has its own, and each tick's forecast of a row is that row's state
    # applied to that row's context (the tick before this change used position i's state).
    engine = make_engine(n_series=N, forecast_every=EVERY, fallback_model="AutoETS")
    engine.forecasts.fallback.fit_budget_s = 60.0
    ticks = run_steps(engine, 2 * EVERY + 2)
    fallback = engine.forecasts.fallback
    assert sorted(fallback._fitted) == list(range(N))
    last = ticks[-1].prediction
    rows = last.covered()
    context = engine.ring.last_values(SMALL["context_length"], rows)
    expected = np.stack([fallback._fitted[r].forward(y=c, h=SMALL["forecast_horizon"])["mean"]
                         for r, c in zip(rows, context)])
    np.testing.assert_allclose(last.values, expected)
