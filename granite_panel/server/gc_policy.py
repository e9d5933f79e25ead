"""Garbage collection for a long-running server: what start-up loaded is never walked again.

A served process holds millions of long-lived objects (torch, transformers, tsfm_public,
pandas, HoloViews, Bokeh). Python's full collection walked all of them every few seconds
once 20 viewers watched a 10 Hz stream, 0.4 to 1.3 s each time, on the thread that serves
every page and REST call: the REST answers that timed out under load. ``gc.freeze()``
moves the objects alive at that moment into a permanent generation that no collection
walks (objects freed by reference counting are still freed at once). It runs when the
server is built, and again once the model's background load (and with it the tsfm_public
import) has ended: the bulk of the heap is loaded by then.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)


def freeze_after_start_up(engine, timeout: float = 900.0) -> threading.Thread:
    """Freeze now, and again in a background thread once ``engine``'s model load ends."""
    gc.freeze()

    def after_the_model_load() -> None:
        state = engine.forecasts.wait_until_loaded(timeout)
        gc.freeze()
        log.info("gc: %d start-up objects frozen (model %s)", gc.get_freeze_count(), state)

    thread = threading.Thread(target=after_the_model_load, name="gc-freeze", daemon=True)
    thread.start()
    return thread
