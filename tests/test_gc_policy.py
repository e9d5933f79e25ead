"""The served process freezes what start-up loaded, so full collections stop walking it."""

import gc
import threading

from granite_panel.engine.core import Engine
from granite_panel.server.gc_policy import freeze_after_start_up
from granite_panel.settings import Settings


def test_start_up_objects_are_frozen_now_and_again_after_the_model_load():
    engine = Engine(Settings(model_name="/nonexistent/model-folder", database_url="memory",
                             training="off", fallback_model="SeasonalNaive"))
    # The missing folder fails to load at once; the load is held until the objects that
    # "the load" creates exist, or the second freeze could come before them (it did once).
    loaded = threading.Event()
    real_wait = engine.forecasts.wait_until_loaded

    def wait_until_loaded(timeout=None):
        loaded.wait(60)
        return real_wait(timeout)

    engine.forecasts.wait_until_loaded = wait_until_loaded
    gc.unfreeze()
    try:
        thread = freeze_after_start_up(engine)
        frozen_at_start = gc.get_freeze_count()
        assert frozen_at_start > 10_000  # this test process's modules, at least
        loaded_later = [object() for _ in range(5)] + [[] for _ in range(5_000)]
        assert thread.is_alive()  # still waiting for the load
        loaded.set()
        thread.join(60)
        assert not thread.is_alive()
        assert engine.forecasts.state != "loading"  # it waited for the model load
        assert gc.get_freeze_count() >= frozen_at_start + len(loaded_later) - 5
    finally:
        gc.unfreeze()
        engine.stop()
