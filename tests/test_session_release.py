"""A served page's Document is released by ``ui/session_release`` once its session ends."""

from __future__ import annotations

import gc
import threading
import weakref

import panel as pn
from bokeh.application.handlers import FunctionHandler
from bokeh.document import Document
from bokeh.io.doc import patch_curdoc
from bokeh.io.state import curstate
from panel.io.handlers import run_app
from panel.io.state import state

from granite_panel.ui.session_release import release_views


def test_every_view_of_an_ended_document_is_unregistered():
    """A view Panel keeps in ``state._views`` holds its Document (and what that refers to)
    until someone removes it; ``release_views`` removes those of one Document only."""
    ended, other = Document(), Document()
    pn.Row(pn.pane.Markdown("ended")).get_root(ended)
    kept = pn.Row(pn.pane.Markdown("kept"))
    kept_root = kept.get_root(other)
    gone = weakref.ref(ended)
    try:
        assert any(doc is ended for _, _, doc, _ in state._views.values())
        assert release_views(ended) == 1
        del ended
        gc.collect()
        assert gone() is None
        assert [v for v in state._views.values() if v[2] is other] != []
    finally:
        kept._cleanup(kept_root)
        release_views(other)


def test_a_document_built_beside_another_session_is_not_kept_as_bokehs_default():
    """Bokeh keeps the documents being built in one process-wide list, and Panel's
    ``run_app`` restores Bokeh's default document from it: a session built while another
    thread builds its own leaves that other session's Document as Bokeh's default, held
    after its session ended (seen in the full test suite, where servers run in threads)."""
    building, other = Document(), Document()
    entered, finish = threading.Event(), threading.Event()

    def build_a_session_on_another_thread():
        with patch_curdoc(building):
            entered.set()
            finish.wait(10)

    thread = threading.Thread(target=build_a_session_on_another_thread)
    thread.start()
    entered.wait(10)
    run_app(FunctionHandler(lambda doc: None), None, other)
    finish.set()
    thread.join()
    assert curstate().document is building  # Panel 1.9.4 and Bokeh 3.9, as they are
    gone = weakref.ref(building)
    release_views(building)  # its session ended
    del building
    gc.collect()
    assert gone() is None
    assert curstate().document is not None
