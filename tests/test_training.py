"""Training a TTM here: real series, tiny models, seconds per test.

A TTM of context 64 / horizon 16 trains at tens of steps per second on one core, so each
run here lasts a few seconds; the ETT figures come from benchmarks/ett_zero_shot.py.
"""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from granite_panel.forecasting import store, training
from granite_panel.forecasting.selection import choose_fallback, seasonal_naive
from granite_panel.forecasting.service import ForecastService, StatisticalForecaster, load_ttm
from granite_panel.forecasting.trainer import Trainer

ETTH1 = Path("/work/shared/data/ett/ETTh1.csv")
CONTEXT, HORIZON, SEASON = 64, 16, 24

pytestmark = pytest.mark.skipif(not ETTH1.is_file(), reason="needs the shared ETTh1 file")


def real_series(rows=1200, channels=("HUFL", "MUFL", "OT")) -> np.ndarray:
    """[3, rows] of ETTh1's first rows: real hourly series with daily cycles."""
    frame = pd.read_csv(ETTH1, nrows=rows)
    return frame[list(channels)].to_numpy(dtype=float).T


def offline_service(models_dir, expect: str = "failed", **kw) -> ForecastService:
    service = ForecastService(
        model_name="/nonexistent-ttm",
        context_length=CONTEXT,
        horizon=HORIZON,
        use_gpu=False,
        fallback=StatisticalForecaster("SeasonalNaive", HORIZON, season_length=SEASON),
        models_dir=str(models_dir),
        **kw,
    )
    assert service.wait_until_loaded(30) == expect  # "ready" once a model was promoted there
    return service


def test_training_lowers_validation_loss_and_saves_a_loadable_model(tmp_path):
    service = offline_service(tmp_path)
    trainer = Trainer(
        real_series, service, context_length=CONTEXT, horizon=HORIZON, season_length=SEASON,
        models_dir=str(tmp_path), threads=1, max_seconds=6, step_seconds=3600,
    )  # fmt: skip
    card = trainer.run_once()
    assert card["validation_loss"]["best"] < card["validation_loss"]["start"]
    folder = tmp_path / card["folder"]
    assert (folder / "config.json").is_file() and (folder / store.CARD_FILE).is_file()
    saved = json.loads((folder / store.CARD_FILE).read_text())
    assert saved["label"] == "TTM trained here" and "TTM-R2" not in saved["label"]
    assert saved["series"] == 3 and saved["data_span"] == "50 days"
    assert saved["training_loss"] == "mae"  # a random start's default
    assert set(saved["validation"]) == {"candidate", "serving", "seasonal_naive"}
    assert saved["decision"].startswith(("promoted", "not promoted"))
    # The saved folder loads back through the hub model's loading code (get_model).
    loaded = load_ttm(str(folder), CONTEXT, HORIZON)
    context = real_series()[:, -CONTEXT:]
    in_memory = service.ttm if saved["promoted"] else None
    if in_memory is not None:
        np.testing.assert_allclose(loaded.predict(context), in_memory.predict(context), atol=1e-4)
        again = offline_service(tmp_path, expect="ready")  # a restart serves the promoted model
        assert again.status()["active_model"] == "TTM trained here"
    assert loaded.predict(context).shape == (3, HORIZON)


def test_promotion_refuses_a_worse_model_and_the_banner_names_what_serves(tmp_path):
    service = offline_service(tmp_path)
    candidate = training.random_ttm(CONTEXT, HORIZON)
    from granite_panel.forecasting.service import TTMForecaster

    forecaster = TTMForecaster(candidate, name="TTM trained here", horizon=HORIZON)
    worse = {"validation": {"candidate": 1.07, "serving": 1.0}, "compared_with": "SeasonalNaive"}
    promoted, why = service.promote(forecaster, worse)
    assert not promoted and why.startswith("not promoted") and "1.07" in why
    assert service.status(n_valid=CONTEXT)["active_model"] == "SeasonalNaive"
    assert service.status()["last_refusal"] == why
    better = {
        "label": "TTM trained here", "series": 3, "data_span": "14 days",
        "validation": {"candidate": 0.71, "serving": 0.93}, "compared_with": "AutoTheta",
    }  # fmt: skip
    promoted, why = service.promote(forecaster, better)
    assert promoted
    assert service.status(n_valid=CONTEXT)["banner"] == (
        "TTM trained here on 14 days of 3 series "
        "(validation MASE 0.71; AutoTheta 0.93; seasonal naive 1.00)"
    )
    assert service.predict(real_series()[:, -CONTEXT:], CONTEXT).model == "TTM trained here"


def test_a_corrupt_saved_model_falls_back_with_a_reason(tmp_path):
    model = training.random_ttm(CONTEXT, HORIZON)
    folder = store.save_model(model, tmp_path, {"label": "TTM trained here"})
    store.mark_promoted(tmp_path, folder)
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    service = offline_service(tmp_path)
    status = service.status(n_valid=CONTEXT)
    assert folder.name in status["saved_model_error"] and "could not be loaded" in status["saved_model_error"]
    assert status["active_model"] == "SeasonalNaive"
    assert service.predict(real_series()[:, -CONTEXT:], CONTEXT).values.shape == (3, HORIZON)


def test_cancel_stops_training_cleanly_and_saves_nothing(tmp_path):
    service = offline_service(tmp_path)
    trainer = Trainer(
        real_series, service, context_length=CONTEXT, horizon=HORIZON, season_length=SEASON,
        models_dir=str(tmp_path), threads=1, max_seconds=120,
    )  # fmt: skip
    assert trainer.start()
    deadline = time.time() + 30
    while trainer.status()["step"] < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert trainer.status()["phase"] == "training"
    assert service.status()["training"]["phase"] == "training"  # /api/status sees it
    started = time.perf_counter()
    trainer.cancel()
    assert time.perf_counter() - started < 5
    status = trainer.status()
    assert status["phase"] == "cancelled" and not status["running"]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- fine-tuning a pretrained TTM


def pretrained_folder(tmp_path) -> Path:
    """A TTM pretrained by the test (TTM-R2's weights cannot be downloaded here): trained from
    random on two ETTh1 channels, saved as ``fetch-model`` saves TTM-R2, loaded by MODEL_NAME."""
    windows = training.cut_windows(real_series(channels=("HUFL", "MUFL")), CONTEXT, HORIZON)
    result = training.train_ttm(windows[::3], windows[-200:], CONTEXT, HORIZON,
                                max_seconds=600, max_epochs=2, threads=1)  # fmt: skip
    folder = tmp_path / "pretrained-ttm"
    result.model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("isolation", ["process", "thread"])  # serve's default, the old path
def test_fine_tuning_freezes_the_backbone_and_names_the_model_after_its_base(tmp_path, isolation):
    import torch

    service = ForecastService(
        model_name=str(pretrained_folder(tmp_path)), context_length=CONTEXT, horizon=HORIZON,
        use_gpu=False, fallback=StatisticalForecaster("SeasonalNaive", HORIZON, season_length=SEASON),
        models_dir=str(tmp_path / "models"),
    )  # fmt: skip
    assert service.wait_until_loaded(30) == "ready"
    base_name, base = service.fine_tune_base()
    assert base_name == "TTM (local: pretrained-ttm)"
    before = {name: value.clone() for name, value in base.state_dict().items()}
    trainer = Trainer(
        lambda: real_series(channels=("OT", "LUFL", "HULL")), service, context_length=CONTEXT,
        horizon=HORIZON, season_length=SEASON, models_dir=str(tmp_path / "models"), threads=1,
        max_seconds=8, step_seconds=3600, isolation=isolation,
    )  # fmt: skip
    card = trainer.run_once()
    assert card["label"] == "TTM (local: pretrained-ttm) fine-tuned here"
    assert card["base"] == base_name and "TTM-R2" not in json.dumps(card)
    assert card["steps"] > 0
    assert card["validation_loss"]["best"] < card["validation_loss"]["start"]
    tuned = load_ttm(str(tmp_path / "models" / card["folder"]), CONTEXT, HORIZON).model
    assert tuned.config.head_dropout == 0.7  # IBM's few-shot recipe
    assert card["training_loss"] == "mse"  # IBM's loss too (a random start trains on "mae")
    after = tuned.state_dict()
    frozen = [n for n in before if n.startswith("backbone.")]
    trained = [n for n in before if n.startswith(("head.", "decoder."))]
    assert frozen and trained
    assert all(torch.equal(after[n], before[n]) for n in frozen)  # the backbone did not move
    assert any(not torch.equal(after[n], before[n]) for n in trained)  # head/decoder learnt
    assert all(torch.equal(base.state_dict()[n], before[n]) for n in before)  # base untouched


def test_an_averaged_run_keeps_and_returns_the_weights_it_validated():
    """``ema_decay``: what is validated, kept and returned is the moving average of the
    weights (torch's AveragedModel), not the last step's weights."""
    import torch

    train, valid = small_windows()
    options = dict(max_seconds=600, max_epochs=4, validate_every_s=600, threads=1, seed=3)
    plain = training.train_ttm(train, valid, CONTEXT, HORIZON, **options)
    averaged = training.train_ttm(train, valid, CONTEXT, HORIZON, ema_decay=0.999, **options)
    assert averaged.steps == plain.steps
    assert averaged.best_validation_loss != plain.best_validation_loss
    assert averaged.best_validation_loss < 0.8 * averaged.first_validation_loss
    scaled = torch.as_tensor(training.scale_windows(valid, CONTEXT), dtype=torch.float32)
    with torch.no_grad():
        out = averaged.model(past_values=scaled[:, :CONTEXT, None]).prediction_outputs
    loss = float(((out[:, :HORIZON, 0] - scaled[:, CONTEXT:]) ** 2).mean())
    assert loss == pytest.approx(averaged.best_validation_loss, rel=1e-5)


def test_fine_tuning_schedule_is_one_cycle_over_the_budget():
    peak = 1e-3
    rates = [training.one_cycle(share / 100, peak) for share in range(101)]
    assert rates[0] == pytest.approx(peak / 25)  # torch OneCycleLR's div_factor
    assert max(rates) == pytest.approx(peak) and rates.index(max(rates)) == 30
    assert rates[-1] == pytest.approx(peak / 25 / 1e4)
    assert training.cosine_decay(0.0, peak) == peak and training.cosine_decay(1.0, peak) == 0.0


def test_prepare_for_fine_tuning_raises_the_head_dropout_only():
    import torch

    base = training.random_ttm(CONTEXT, HORIZON)
    tuned = training.prepare_for_fine_tuning(base, head_dropout=0.7)
    dropouts = {n: m.p for n, m in tuned.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert {n: p for n, p in dropouts.items() if n.startswith("head.")} == {"head.dropout_layer": 0.7}
    assert all(p != 0.7 for n, p in dropouts.items() if not n.startswith("head."))
    grads = {n: p.requires_grad for n, p in tuned.named_parameters()}
    assert not any(g for n, g in grads.items() if n.startswith("backbone."))
    assert all(g for n, g in grads.items() if not n.startswith("backbone."))
    assert all(p.requires_grad for p in base.parameters())  # the base model is a copy's source


def test_a_random_start_trains_with_the_chosen_dropout_everywhere():
    """``dropout`` reaches every dropout of the model (backbone, decoder, head), its config
    and the model a run returns; without it the run keeps get_random_ttm's 0.2."""
    import torch

    def dropouts(model):
        return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}

    assert dropouts(training.random_ttm(CONTEXT, HORIZON)) == {0.2}  # get_random_ttm's own
    model = training.random_ttm(CONTEXT, HORIZON, dropout=0.45)
    assert dropouts(model) == {0.45}
    assert model.config.dropout == model.config.head_dropout == 0.45
    train, valid = small_windows()
    options = dict(max_seconds=600, max_epochs=1, threads=1)
    default = training.train_ttm(train, valid, CONTEXT, HORIZON, **options)
    raised = training.train_ttm(train, valid, CONTEXT, HORIZON, dropout=0.6, **options)
    assert default.model.config.dropout == 0.2 and raised.model.config.dropout == 0.6
    assert raised.best_validation_loss != default.best_validation_loss


def test_the_training_loss_is_a_choice_and_validation_stays_mse():
    """A random start trains on the absolute error by default ("mae"), ``loss="mse"`` on the
    squared error (another run); either way the checkpoint is chosen, and reported, by its
    validation MSE. An unknown loss is refused before any work."""
    import torch

    train, valid = small_windows()
    options = dict(max_seconds=600, max_epochs=2, validate_every_s=600, threads=1, seed=3)
    mae = training.train_ttm(train, valid, CONTEXT, HORIZON, **options)
    mse = training.train_ttm(train, valid, CONTEXT, HORIZON, loss="mse", **options)
    assert (mae.loss, mse.loss) == ("mae", "mse")
    assert mae.steps == mse.steps and mae.first_validation_loss == mse.first_validation_loss
    assert mae.best_validation_loss != mse.best_validation_loss
    assert mae.best_validation_loss < 0.9 * mae.first_validation_loss  # it learnt (1.38 -> 1.12)
    scaled = torch.as_tensor(training.scale_windows(valid, CONTEXT), dtype=torch.float32)
    with torch.no_grad():
        out = mae.model(past_values=scaled[:, :CONTEXT, None]).prediction_outputs
    squared = float(((out[:, :HORIZON, 0] - scaled[:, CONTEXT:]) ** 2).mean())
    assert squared == pytest.approx(mae.best_validation_loss, rel=1e-5)
    with pytest.raises(ValueError, match="loss 'rmse'"):
        training.train_ttm(train, valid, CONTEXT, HORIZON, loss="rmse", **options)


def test_prefer_naive_serves_those_series_by_seasonal_naive(tmp_path):
    service = offline_service(tmp_path)
    service.fallback = StatisticalForecaster("AutoTheta", HORIZON, season_length=SEASON, fit_budget_s=30)
    context = real_series(400)
    mask = np.array([True, False, True])
    result = service.predict(context, 400, prefer_naive=mask)
    np.testing.assert_array_equal(result.values[mask], seasonal_naive(context[mask], HORIZON, SEASON))
    assert not np.allclose(result.values[1], seasonal_naive(context[1:2], HORIZON, SEASON)[0])
    assert result.naive_series == 2
    with pytest.raises(ValueError, match="prefer_naive has shape"):
        service.predict(context, 400, prefer_naive=np.array([True]))


def test_fallback_is_chosen_by_backtest_not_fixed():
    hours = np.arange(600)
    trend = 0.5 * hours + 3 * np.sin(2 * np.pi * hours / 24)  # naive lags a trend by a day
    best, scores = choose_fallback(trend[None, :], HORIZON, SEASON)
    assert best != "SeasonalNaive" and scores[best] < 0.5 < scores["SeasonalNaive"]
    # On flat-then-seasonal real data every candidate is scored and the lowest wins.
    best, scores = choose_fallback(real_series(600), HORIZON, SEASON)
    assert set(scores) == {"SeasonalNaive", "AutoTheta", "AutoETS", "MSTL"}
    assert scores[best] == min(scores.values())


# ---------------------------------------------------------------- training in a child process


def small_windows():
    from granite_panel.forecasting.selection import validation_split

    train_part, valid_part = validation_split(real_series(), CONTEXT, HORIZON, 0.2)
    return (training.cut_windows(train_part, CONTEXT, HORIZON)[::4],
            training.cut_windows(valid_part, CONTEXT, HORIZON))  # fmt: skip


def test_a_run_in_a_child_process_learns_what_a_thread_learns():
    """Same seed, one thread, a step budget (not a time budget): the child learns what a run
    here learns, its best weights come back, and its progress reaches the parent. Not
    bit-equal: two runs in one process already differ by ~1e-4 in validation loss (torch on
    CPU), so the runs are compared within 1e-2; the weights that came back reproduce the
    child's best validation loss exactly."""
    import torch

    from granite_panel.forecasting.isolated import train_ttm_in_child

    train, valid = small_windows()
    options = dict(max_seconds=600, max_epochs=4, validate_every_s=600, threads=1, seed=3)
    here = training.train_ttm(train, valid, CONTEXT, HORIZON, **options)
    seen = []
    there = train_ttm_in_child(train, valid, CONTEXT, HORIZON, progress=seen.append, **options)
    assert there.steps == here.steps and there.epochs == here.epochs == 4
    np.testing.assert_allclose(there.validation_losses, here.validation_losses, rtol=1e-2)
    assert there.best_validation_loss < 0.8 * there.first_validation_loss  # it did learn
    scaled = torch.as_tensor(training.scale_windows(valid, CONTEXT), dtype=torch.float32)
    with torch.no_grad():
        out = there.model(past_values=scaled[:, :CONTEXT, None]).prediction_outputs
    loss = float(((out[:, :HORIZON, 0] - scaled[:, CONTEXT:]) ** 2).mean())
    assert loss == pytest.approx(there.best_validation_loss, rel=1e-5)
    phases = [p.phase for p in seen]
    assert phases[0] == "preparing" and "training" in phases and phases[-1] == "validating"


def test_a_failing_child_raises_its_error_in_the_parent():
    from granite_panel.forecasting.isolated import train_ttm_in_child

    flat = np.ones((8, CONTEXT + HORIZON))
    with pytest.raises(RuntimeError, match="flat context"):
        train_ttm_in_child(flat, flat, CONTEXT, HORIZON, max_seconds=30, threads=1)


def test_cancel_stops_a_run_in_a_child_process(tmp_path):
    service = offline_service(tmp_path)
    trainer = Trainer(
        real_series, service, context_length=CONTEXT, horizon=HORIZON, season_length=SEASON,
        models_dir=str(tmp_path), threads=1, max_seconds=120, isolation="process",
    )  # fmt: skip
    assert trainer.start()
    deadline = time.time() + 90  # the child imports torch and tsfm_public first
    while trainer.status()["step"] < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert trainer.status()["phase"] == "training"
    import multiprocessing

    children = multiprocessing.active_children()
    assert [c.name for c in children] == ["ttm-trainer-process"]
    started = time.perf_counter()
    trainer.cancel()
    assert time.perf_counter() - started < 10
    status = trainer.status()
    assert status["phase"] == "cancelled" and not status["running"]
    assert not children[0].is_alive() and list(tmp_path.iterdir()) == []


def test_the_child_stops_when_its_parent_is_killed(tmp_path):
    """kill -9 of the server must not leave a training process behind, nor the copy of the
    training windows that it handed the process in a temporary folder."""
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, sys, numpy as np\n"
        "from granite_panel.forecasting.isolated import train_ttm_in_child\n"
        "sys.path.insert(0, %r)\n"
        "from tests.test_training import small_windows, CONTEXT, HORIZON\n"
        "def seen(p):\n"
        "    if p.phase == 'training':\n"
        "        print(multiprocessing.active_children()[0].pid, flush=True)\n"
        "if __name__ == '__main__':\n"
        "    train, valid = small_windows()\n"
        "    train_ttm_in_child(train, valid, CONTEXT, HORIZON, max_seconds=300, threads=1,\n"
        "                       progress=seen)\n" % str(Path(__file__).parent.parent)
    )
    temporary = tmp_path / "tmp"  # the parent's temporary folders go here, to be checked
    temporary.mkdir()
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(temporary)})
    try:
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the training process outlived its killed parent")
    assert list(temporary.glob("granite-panel-train-*")) == []
