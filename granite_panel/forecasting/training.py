"""Train a TinyTimeMixer on the user's own history: global, channel-independent, bounded CPU.

Without TTM-R2 weights (no hub) a TTM of the same family starts from random weights
(``tsfm_public.toolkit.get_model.get_random_ttm``); with a loaded TTM-R2 (``base_model``)
IBM's few-shot recipe applies: frozen backbone, head dropout, OneCycle schedule. Both keep
the checkpoint with the best validation loss and stop early when it stops improving.

What we wrote ourselves, and why: the window cutting and the training loop (a plain torch
loop, ~60 lines). tsfm_public's ``ForecastDFDataset`` + HF ``Trainer`` need a DataFrame per
series and spawn their own progress/logging machinery; the loop here must be cancellable
between steps, report phase/epoch/ETA to the dashboard and stay inside a time budget and a
thread budget, which a plain loop gives directly.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


class TrainingCancelled(RuntimeError):
    """``cancel()`` was called while training ran; nothing is saved or promoted."""


@dataclass
class TrainingProgress:
    """What the dashboard shows while a model trains (plain values, safe to copy)."""

    phase: str = "idle"  # idle -> preparing -> training -> validating -> done | cancelled | failed
    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    train_loss: float | None = None
    validation_loss: float | None = None
    best_validation_loss: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TrainingResult:
    model: object  # a TinyTimeMixerForPrediction with the best validation weights
    best_validation_loss: float
    first_validation_loss: float  # before any step: the starting point's loss
    validation_losses: list[float] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    windows: int = 0
    fine_tuned: bool = False
    loss: str = "mse"  # what the training step minimised (TRAIN_LOSSES); validation is MSE


def cut_windows(
    series: np.ndarray, context_length: int, horizon: int, stride: int = 1
) -> np.ndarray:
    """[windows, context + horizon] channel-independent windows of every series, NaN-free.

    ``series`` is [n_series, time] with NaN gaps; a window that touches a gap is dropped
    (a gap is missing data, not a value to learn).
    """
    series = np.atleast_2d(np.asarray(series, dtype=np.float32))
    span = context_length + horizon
    if series.shape[1] < span:
        return np.empty((0, span), dtype=np.float32)
    views = np.lib.stride_tricks.sliding_window_view(series, span, axis=1)[:, ::stride]
    windows = views.reshape(-1, span)
    return np.ascontiguousarray(windows[np.isfinite(windows).all(axis=1)])


FLAT_CONTEXT = 1e-3  # a context whose std is below this share of the median is "flat"


def scale_windows(windows: np.ndarray, context_length: int) -> np.ndarray:
    """Each window scaled by its own context's mean and std, as ``TTMForecaster.predict`` does.

    Windows with a flat context (std below ``FLAT_CONTEXT`` x the median context std) are
    dropped: scaled by a near-zero std their targets reach 1e5 and more, and one such
    window would dominate the loss (ETTm1's validation split has some).
    """
    context = windows[:, :context_length]
    mean = context.mean(axis=1, keepdims=True)
    std = context.std(axis=1, keepdims=True)
    keep = std[:, 0] > max(1e-8, FLAT_CONTEXT * float(np.median(std)))
    return ((windows - mean) / np.where(std > 1e-8, std, 1.0))[keep]


def random_ttm(
    context_length: int, horizon: int, size: str = "small", dropout: float | None = None
):
    """A TTM of the TTM-R2 family with random weights (tsfm_public's ``get_random_ttm``).

    ``dropout`` (None: ``get_random_ttm``'s 0.2) replaces the dropout of the backbone, the
    decoder and the head; ``get_random_ttm`` fixes it, so the model is built again from its
    config with the new value.
    """
    from .ttm import import_tsfm

    import_tsfm()  # the lock-guarded import of tsfm_public
    from tsfm_public.toolkit.get_model import get_random_ttm

    model = get_random_ttm(context_length, horizon, size)
    if dropout is None:
        return model
    config = model.config
    config.dropout = config.head_dropout = float(dropout)
    return type(model)(config)


def prepare_for_fine_tuning(model, head_dropout: float = 0.7):
    """IBM's few-shot recipe: freeze the backbone, train decoder and head, the head's dropout
    raised (``head_dropout``); the pretrained model itself is left untouched (a copy)."""
    import torch

    model = copy.deepcopy(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not name.startswith("backbone.")
    for name, module in model.named_modules():
        if name.startswith("head.") and isinstance(module, torch.nn.Dropout):
            module.p = head_dropout
    model.config.head_dropout = head_dropout
    return model


def cosine_decay(share: float, peak: float) -> float:
    """A random start: the rate decays from ``peak`` to 0 along a half cosine."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * share))


def one_cycle(share: float, peak: float, warm_up: float = 0.3) -> float:
    """IBM's fine-tuning schedule, torch's ``OneCycleLR`` with its defaults (cosine warm-up
    from peak/25 over the first 30%, then cosine annealing to peak/25/1e4), as a function of
    the share of the budget spent."""
    start, end = peak / 25.0, peak / 25.0 / 1e4
    if share < warm_up:
        return start + (peak - start) * 0.5 * (1.0 - math.cos(math.pi * share / warm_up))
    rest = (share - warm_up) / (1.0 - warm_up)
    return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * rest))


# The training step's loss, by name. Validation (which checkpoint is kept, and promotion) is
# always the MSE, whatever the model is trained on. A random start trains on the absolute
# error by default: on 2026-12-05 it lowered the validation MSE of ETTh1 and ETTm1 against
# the squared error, two seeds each (benchmarks/ett_zero_shot.py --loss; README). Fine-tuning
# keeps IBM's recipe, the squared error: without TTM-R2 weights here nothing was measured.
TRAIN_LOSSES = {"mse": "mse_loss", "mae": "l1_loss", "huber": "huber_loss"}  # torch's names


def train_ttm(
    train: np.ndarray,
    valid: np.ndarray,
    context_length: int,
    horizon: int,
    *,
    base_model=None,
    max_seconds: float = 300.0,
    max_epochs: int = 50,
    patience: int = 5,
    learning_rate: float = 1e-3,
    batch_size: int = 112,
    threads: int | None = None,
    validate_every_s: float = 30.0,
    max_valid_windows: int = 4096,
    seed: int = 0,
    ema_decay: float | None = None,
    dropout: float | None = None,
    loss: str | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
) -> TrainingResult:
    """Train on ``train`` windows, keep the weights with the best loss on ``valid`` windows.

    ``train`` and ``valid`` are [windows, context + horizon] (``cut_windows``). Validation
    runs at the end of every epoch and every ``validate_every_s`` seconds, so a time budget
    shorter than one epoch still yields a checkpoint chosen on validation. Stops at
    ``max_seconds``, ``max_epochs``, ``patience`` validations without improvement, or
    ``cancel`` (``TrainingCancelled``). ``threads`` bounds torch's CPU threads.
    ``ema_decay`` (off by default) validates and keeps a moving average of the weights; on
    ETTh1 it did not lower the validation loss (1.1820 vs 1.1660, one run each), so it
    stays an option (``benchmarks/ett_zero_shot.py --ema-decay``). ``dropout`` (a random
    start only; None keeps ``get_random_ttm``'s 0.2): 0.4 and 0.6 raised the mean validation
    loss over ETTh1 and ETTm1 at a 600 s budget (ETTh1 1.1859 and 1.1830 vs 1.1660, ETTm1
    1.2235 and 1.2137 vs 1.2165), so it stays an option too (``--dropout``). ``loss`` is
    the training step's loss (``TRAIN_LOSSES``; None: "mae" from a random start, IBM's "mse"
    when fine-tuning); validation, and so the checkpoint kept, is always the MSE.
    """
    import torch

    if loss is None:
        loss = "mse" if base_model is not None else "mae"
    if loss not in TRAIN_LOSSES:
        raise ValueError(f"loss {loss!r}: one of {', '.join(TRAIN_LOSSES)}")
    if len(train) == 0 or len(valid) == 0:
        raise ValueError(
            f"{len(train)} training and {len(valid)} validation windows of "
            f"{context_length}+{horizon} points; need at least one of each"
        )
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return _train(
            train, valid, context_length, horizon, base_model, max_seconds, max_epochs,
            patience, learning_rate, batch_size, validate_every_s, max_valid_windows, seed,
            ema_decay, dropout, loss, cancel or threading.Event(),
            progress or (lambda p: None),
        )  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)


def _train(
    train, valid, context_length, horizon, base_model, max_seconds, max_epochs, patience,
    learning_rate, batch_size, validate_every_s, max_valid_windows, seed, ema_decay, dropout,
    loss, cancel, report,
):  # fmt: skip
    import torch

    started = time.perf_counter()
    state = TrainingProgress(phase="preparing", message="cutting and scaling windows")
    report(state)
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if len(valid) > max_valid_windows:  # evenly spaced: the whole validation span, bounded cost
        valid = valid[np.linspace(0, len(valid) - 1, max_valid_windows).astype(int)]
    train_t = torch.as_tensor(scale_windows(train, context_length), dtype=torch.float32)
    valid_t = torch.as_tensor(scale_windows(valid, context_length), dtype=torch.float32)
    if len(train_t) == 0 or len(valid_t) == 0:
        raise ValueError("every training or validation window has a flat context")
    fine_tuned = base_model is not None
    if fine_tuned:
        model = prepare_for_fine_tuning(base_model)
    else:
        model = random_ttm(context_length, horizon, dropout=dropout)
    model = model.to("cpu")
    weights = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(weights, lr=learning_rate)
    steps_per_epoch = max(1, math.ceil(len(train_t) / batch_size))
    total_steps = steps_per_epoch * max_epochs
    rate_at = one_cycle if fine_tuned else cosine_decay

    def set_rate(elapsed: float) -> None:
        """The schedule runs over whichever budget ends first, time or epochs: a budget
        rarely completes the epochs, and a schedule laid over epochs alone would then
        never leave its warm-up (fine-tuning) or never decay (a random start)."""
        share = min(1.0, max(elapsed / max_seconds, step / total_steps))
        for group in optimiser.param_groups:
            group["lr"] = rate_at(share, learning_rate)

    # What is validated and kept: an exponential moving average of the weights (torch's
    # AveragedModel), or the weights themselves when ``ema_decay`` is None.
    averaged = None
    if ema_decay is not None:
        from torch.optim.swa_utils import AveragedModel

        def ema_step(average, current, n_averaged):
            decay = min(ema_decay, (1.0 + float(n_averaged)) / (10.0 + float(n_averaged)))
            return decay * average + (1.0 - decay) * current

        averaged = AveragedModel(model, avg_fn=ema_step, use_buffers=True)
    kept = model if averaged is None else averaged.module

    def validation_loss() -> float:
        kept.eval()
        total = 0.0
        with torch.no_grad():
            for first in range(0, len(valid_t), 512):
                batch = valid_t[first : first + 512]
                out = kept(past_values=batch[:, :context_length, None]).prediction_outputs
                error = out[:, :horizon, 0] - batch[:, context_length:]
                total += float((error**2).sum())
        model.train()
        return total / (len(valid_t) * horizon)

    loss_of = getattr(torch.nn.functional, TRAIN_LOSSES[loss])
    step = 0
    set_rate(0.0)
    first_loss = validation_loss()
    best_loss, best_state = first_loss, copy.deepcopy(kept.state_dict())
    losses, bad_checks, epoch = [first_loss], 0, 0
    state.phase, state.total_steps = "training", total_steps
    state.validation_loss = state.best_validation_loss = first_loss
    last_check = time.perf_counter()
    model.train()
    stop = False
    while epoch < max_epochs and not stop:
        order = torch.as_tensor(generator.permutation(len(train_t)))
        for first in range(0, len(order), batch_size):
            if cancel.is_set():
                state.phase, state.message = "cancelled", "cancelled; nothing saved"
                report(state)
                raise TrainingCancelled("training cancelled")
            batch = train_t[order[first : first + batch_size]]
            out = model(past_values=batch[:, :context_length, None]).prediction_outputs
            step_loss = loss_of(out[:, :horizon, 0], batch[:, context_length:])
            optimiser.zero_grad()
            step_loss.backward()
            optimiser.step()
            if averaged is not None:
                averaged.update_parameters(model)
            step += 1
            elapsed = time.perf_counter() - started
            set_rate(elapsed)
            state.step, state.epoch, state.train_loss = step, epoch, step_loss.item()
            state.elapsed_s = elapsed
            rate = step / max(elapsed, 1e-9)
            state.eta_s = max(0.0, min(max_seconds - elapsed, (total_steps - step) / rate))
            report(state)
            end_of_epoch = first + batch_size >= len(order)
            out_of_time = elapsed >= max_seconds
            if end_of_epoch or out_of_time or time.perf_counter() - last_check >= validate_every_s:
                current = validation_loss()
                last_check = time.perf_counter()
                losses.append(current)
                state.validation_loss = current
                if current < best_loss:
                    best_loss, best_state, bad_checks = current, copy.deepcopy(kept.state_dict()), 0
                else:
                    bad_checks += 1
                state.best_validation_loss = best_loss
                report(state)
                if out_of_time or bad_checks >= patience:
                    stop = True
                    break
        epoch += 1
    model.load_state_dict(best_state)
    model.eval()
    state.phase, state.epoch, state.eta_s = "validating", epoch, 0.0
    state.elapsed_s = time.perf_counter() - started
    report(state)
    return TrainingResult(
        model=model,
        best_validation_loss=best_loss,
        first_validation_loss=first_loss,
        validation_losses=losses,
        epochs=epoch,
        steps=step,
        seconds=time.perf_counter() - started,
        windows=len(train_t),
        fine_tuned=fine_tuned,
        loss=loss,
    )
