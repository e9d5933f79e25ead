"""The served process freezes what start-up loaded, so full collections stop walking it."""

import gc

from granite_panel.engine.core import Engine
from granite_panel.server.gc_policy import freeze_after_start_up
from granite_panel.settings import Settings


def test_start_up_objects_are_frozen_now_and_again_after_the_model_load():
    engine = Engine(Settings(model_name="/nonexistent/model-folder", database_url="memory",
                             training="off", fallback_model="SeasonalNaive"))
    gc.unfreeze()
    try:
        thread = freeze_after_start_up(engine)
        frozen_at_start = gc.get_freeze_count()
        assert frozen_at_start > 10_000  # this test process's modules, at least
        loaded_later = [object() for _ in range(5)] + [[] for _ in range(5_000)]
        thread.join(60)
        assert not thread.is_alive()
        assert engine.forecasts.state != "loading"  # it waited for the model load
        assert gc.get_freeze_count() >= frozen_at_start + len(loaded_later) - 5
    finally:
        gc.unfreeze()
        engine.stop()
