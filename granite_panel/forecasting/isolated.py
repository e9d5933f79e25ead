"""Train in a child process, so a run does not share the stream's interpreter.

In a thread, the training loop holds the server's GIL between torch ops while the live
ticks need it (they ran ~2x slower while it trained, issue #11). A spawned child (``multiprocessing``'s "spawn":
no fork of a process that has threads) runs ``training.train_ttm`` with its own GIL and
``threads`` torch threads; the parent keeps the same interface: progress arrives through a
queue, ``cancel`` is forwarded, the best weights come back through ``save_pretrained`` in a
temporary folder. The child exits on its own when the parent dies (kill -9 included), and
then removes that folder (a copy of the training data) itself.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import training

PROGRESS_EVERY_S = 0.25  # the dashboard polls at ~1 Hz; more messages would only cost pickling
START_TIMEOUT_S = 120.0  # importing torch + tsfm_public in the child, on a loaded machine


def load_saved_weights(folder: str | Path):
    from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

    return TinyTimeMixerForPrediction.from_pretrained(str(folder)).eval()


def train_ttm_in_child(
    train: np.ndarray,
    valid: np.ndarray,
    context_length: int,
    horizon: int,
    *,
    base_model=None,
    cancel: threading.Event | None = None,
    progress: Callable[[training.TrainingProgress], None] | None = None,
    **options,
) -> training.TrainingResult:
    """``training.train_ttm`` in a spawned process; same arguments, same result.

    Raises ``TrainingCancelled`` when ``cancel`` is set, RuntimeError with the child's error
    (or its exit code) when it fails.
    """
    cancel = cancel or threading.Event()
    report = progress or (lambda p: None)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="granite-panel-train-") as tmp:
        folder = Path(tmp)
        np.save(folder / "train.npy", np.asarray(train, dtype=float))
        np.save(folder / "valid.npy", np.asarray(valid, dtype=float))
        if base_model is not None:
            base_model.save_pretrained(folder / "base")
        messages, stop = context.Queue(), context.Event()
        child = context.Process(
            target=_child_main,
            args=(str(folder), context_length, horizon, base_model is not None, options,
                  messages, stop, os.getpid()),
            name="ttm-trainer-process",
            daemon=True,
        )  # fmt: skip
        report(training.TrainingProgress(
            phase="preparing", message="starting the training process (torch, tsfm_public)"
        ))  # fmt: skip
        child.start()
        try:
            meta = _follow(child, messages, cancel, report)
        finally:
            stop.set()  # a cancelled or failed run: the child ends at its next step ...
            child.join(2 if cancel.is_set() else 10)
            if child.is_alive():  # ... or is still importing: nothing of it is kept
                child.kill()
                child.join(5)
        model = load_saved_weights(folder / "result")
    return training.TrainingResult(model=model, **meta)


def _follow(child, messages, cancel, report) -> dict:
    """Relay the child's progress until it reports a result or an error, or ``cancel``."""
    started = time.monotonic()
    heard = False
    while True:
        if cancel.is_set():
            raise training.TrainingCancelled("training cancelled")
        try:
            kind, body = messages.get(timeout=0.2)
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(
                    f"the training process ended without a result (exit code {child.exitcode})"
                ) from None
            if not heard and time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(f"the training process did not start in {START_TIMEOUT_S:.0f} s")
            continue
        heard = True
        if kind == "progress":
            report(training.TrainingProgress(**body))
        elif kind == "cancelled":
            raise training.TrainingCancelled("training cancelled")
        elif kind == "error":
            raise RuntimeError(body)
        elif kind == "done":
            return body


def _child_main(folder, context_length, horizon, fine_tune, options, messages, stop, parent):
    """The child: load the windows, train with the parent's options, save the best weights."""
    folder = Path(folder)
    last = [0.0]

    def relay(state: training.TrainingProgress) -> None:
        if os.getppid() != parent:  # the parent died (kill -9): stop instead of training on
            stop.set()
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or state.phase != "training":
            last[0] = now
            messages.put(("progress", state.as_dict()))

    try:
        base = load_saved_weights(folder / "base") if fine_tune else None
        result = training.train_ttm(
            np.load(folder / "train.npy"), np.load(folder / "valid.npy"),
            context_length, horizon, base_model=base, cancel=stop, progress=relay,
            **options,
        )  # fmt: skip
        result.model.save_pretrained(folder / "result")
        meta = {k: v for k, v in result.__dict__.items() if k != "model"}
        messages.put(("done", meta))
    except training.TrainingCancelled:
        messages.put(("cancelled", ""))
    except BaseException as exc:  # the parent shows it; the child only reports
        messages.put(("error", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        if os.getppid() != parent:  # the parent's TemporaryDirectory will never be cleaned:
            shutil.rmtree(folder, ignore_errors=True)  # do not leave the user's data behind
        messages.close()
        messages.join_thread()
