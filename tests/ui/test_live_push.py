"""A served page gets each tick pushed on its event loop, without waiting for a poll."""

from __future__ import annotations

import functools
import gc
import inspect
import re
import socket
import time
import weakref

import objgraph
import panel as pn
import pytest
import requests
from playwright.sync_api import Page, expect

from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.ui.controller import StreamController
from granite_panel.ui.dashboard import Dashboard, extension
from tests.serving import free_port, wait_for
from tests.ui.test_dashboard_browser import chart_lengths

pytestmark = pytest.mark.ui

SETTINGS = dict(n_series=2, context_length=32, forecast_horizon=8, history_limit=200,
                fallback_model="SeasonalNaive", model_name="/nonexistent/model-folder",
                database_url="memory", training="off", backfill=False)


def listening(port: int) -> bool:
    """The port accepts connections (a GET of the page would open a session of its own)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def serve(app):
    """``app`` served on a free port by a thread, sessions discarded 500 ms after they
    close; (port, server) once it accepts connections."""
    port = free_port()
    server = pn.serve(app, port=port, threaded=True, show=False, start=True,
                      check_unused_sessions_milliseconds=500,
                      unused_session_lifetime_milliseconds=500)
    wait_for(lambda: listening(port), timeout=30)
    return port, server


def serve_dashboards(**settings):
    """(port, server, engine, the dashboards made) of an app served in this process."""
    engine = Engine(Settings(**{**SETTINGS, **settings}))
    dashboards = []

    def app():
        extension()
        dashboards.append(Dashboard(controller=StreamController(engine, role="operator")))
        return dashboards[-1]

    port, server = serve(app)
    return port, server, engine, dashboards


def pushed_only_app(engine: Engine):
    """(app, the controllers it made): dashboards whose periodic poll is a minute apart,
    so that only the engine's push moves their charts within a test."""
    controllers = []

    def app():
        extension()
        controller = StreamController(engine, poll_period=60_000, status_period=60_000)
        controllers.append(controller)
        return Dashboard(controller=controller)

    return app, controllers


def holders(obj) -> str:
    """The chain of references from a module to ``obj`` (what keeps it alive), each link
    named by its type, a partial by its function: for a leak test's failure message."""
    chain = objgraph.find_backref_chain(obj, objgraph.is_proper_module, max_depth=30)

    def name(link) -> str:
        if isinstance(link, functools.partial):
            return f"partial({getattr(link.func, '__qualname__', link.func)})"
        if inspect.ismodule(link) or inspect.isclass(link):
            return link.__name__
        return f"{type(link).__module__}.{type(link).__qualname__}"

    return " -> ".join(name(link) for link in chain)


def weakly_recorded_app(engine: Engine):
    """(app, weak references to the controllers and documents it made)."""
    controllers, documents = [], []

    def app():
        extension()
        controller = StreamController(engine)
        controllers.append(weakref.ref(controller))
        documents.append(weakref.ref(pn.state.curdoc))
        return Dashboard(controller=controller)

    return app, controllers, documents


def test_ticks_reach_the_chart_without_a_poll(page: Page, console_errors):
    engine = Engine(Settings(**SETTINGS))
    app, controllers = pushed_only_app(engine)
    port, server = serve(app)
    try:
        page.goto(f"http://127.0.0.1:{port}")
        expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=30_000)
        expect(page.locator("canvas").first).to_be_visible(timeout=30_000)
        wait_for(lambda: controllers and controllers[-1].attached, timeout=10)  # the page's
        assert chart_lengths(page).get("history", 0) == 0
        now = time.time()
        for k in range(5):  # ticks made on this thread, as a push or a tick thread would
            engine.step(now + k)
        wait_for(lambda: chart_lengths(page).get("history") == 5, timeout=10)
        assert chart_lengths(page)["forecast"] == 8
        # the closed page's controller stops listening (the Dashboard sees to it itself)
        page.context.close()
        wait_for(lambda: not controllers[-1].attached, timeout=30)
        assert engine._listeners == ()  # no page left, no listener left
    finally:
        server.stop()
        engine.stop()
    assert not console_errors


def test_closed_pages_leave_no_controller_or_document_alive(browser, console_errors):
    """The soak's growth: Panel 1.9.4 kept every closed session's notification view, so its
    Document, and the poll queued on it kept the controller, buffers and chart. After the
    pages close (while the engine ticks), neither is alive (session_release)."""
    from panel.io.state import state

    engine = Engine(Settings(**{**SETTINGS, "data_generation_interval": 0.05}))
    app, controllers, documents = weakly_recorded_app(engine)
    port, server = serve(app)
    try:
        engine.start()  # ticks queue polls on the pages right up to their close
        for _ in range(2):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            expect(page.locator("canvas").first).to_be_visible(timeout=30_000)
            wait_for(lambda: controllers and controllers[-1]() is not None
                     and controllers[-1]().attached, timeout=10)
            page.wait_for_timeout(1000)  # pushed polls run on the page
            context.close()
        wait_for(lambda: engine._listeners == (), timeout=30)  # every session destroyed
        engine.stop()

        def released():
            gc.collect()
            return all(ref() is None for ref in controllers)

        wait_for(released, timeout=10)
        gc.collect()
        alive = [ref() for ref in documents if ref() is not None]
        assert not [v for v in state._views.values() if any(v[2] is doc for doc in alive)]
    finally:
        server.stop()
        engine.stop()


def test_ticks_between_the_pull_and_document_ready_reach_the_chart(page: Page, console_errors):
    """The page pulls its document over the websocket, renders it, then says it is ready.
    Panel (1.9.4) drops the changes a hold collects before "ready" ("the document is
    serialized in full once the session connects"), but the pull has serialized it
    already, so ticks pushed in that window never reached the chart (the flake behind
    ``test_ticks_reach_the_chart_without_a_poll``). Here the window is held open: the
    page's messages after the pull wait until five ticks have been made."""
    engine = Engine(Settings(**SETTINGS))
    app, controllers = pushed_only_app(engine)
    pulled, held, holding = [], [], [True]

    def route(ws):
        server = ws.connect_to_server()

        def from_page(message):
            if pulled and holding[0]:
                held.append((server, message))
            else:
                server.send(message)

        def from_server(message):
            ws.send(message)
            if isinstance(message, str) and '"PULL-DOC-REPLY"' in message:
                pulled.append(True)

        ws.on_message(from_page)
        server.on_message(from_server)

    page.route_web_socket(re.compile(r".*/ws(\?.*)?$"), route)
    port, server = serve(app)
    try:
        page.goto(f"http://127.0.0.1:{port}")
        expect(page.locator("canvas").first).to_be_visible(timeout=30_000)  # rendered
        assert pulled and held, "the page's messages after the pull are held"
        controller = controllers[-1]
        assert controller.attached
        now = time.time()
        for k in range(5):  # the window: pulled and drawn, "ready" not yet received
            engine.step(now + k)
        wait_for(lambda: not controller._poll_queued, timeout=10)  # the pushed poll ran
        assert chart_lengths(page).get("history", 0) == 0
        holding[0] = False
        for socket, message in held:  # "ready" (and whatever else waited) goes through
            socket.send(message)
        wait_for(lambda: chart_lengths(page).get("history") == 5, timeout=10)
        assert chart_lengths(page)["forecast"] == 8
    finally:
        server.stop()
        engine.stop()
    assert not console_errors


def test_a_page_that_never_connects_leaves_nothing_alive():
    """A GET of the page makes a session whose websocket may never come (a health check, a
    client that gave up): once Bokeh discards it, its controller and document are freed,
    although the page's "ready" callbacks (``pn.state.onload``) never ran."""
    engine = Engine(Settings(**SETTINGS))
    app, controllers, documents = weakly_recorded_app(engine)
    port, server = serve(app)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
        assert len(controllers) == 1
        wait_for(lambda: engine._listeners == () and not controllers[0]().attached, timeout=30)

        def freed(ref):
            gc.collect()
            return ref() is None

        wait_for(lambda: freed(controllers[0]), timeout=30)
        try:
            wait_for(lambda: freed(documents[0]), timeout=30)
        except TimeoutError:
            # Seen before session_release let go of Bokeh's default document (2 of 3 full
            # runs of 2026-12-06): the message names what holds it, if anything else does.
            raise AssertionError(f"the page's Document is still held: "
                                 f"{holders(documents[0]())}") from None
    finally:
        server.stop()
        engine.stop()


# Counts, from now on, the writes of a <style> element inside the page's shadow trees
# (Bokeh's views live in shadow roots) that left its text as it was: ``window.styleWrites``
# per shadow host's class. (Setting a sheet's text replaces its text node.)
COUNT_STYLE_WRITES = """() => {
  const writes = window.styleWrites = {};
  const text = (nodes) => [...nodes].map((node) => node.textContent).join('');
  const watch = (root) => {
    new MutationObserver((records) => {
      for (const record of records) {
        if (record.target.nodeName !== 'STYLE') continue;
        if (text(record.removedNodes) !== text(record.addedNodes)) continue;
        const host = record.target.getRootNode().host;
        const name = host?.classList?.[0] ?? '?';
        writes[name] = (writes[name] ?? 0) + 1;
      }
    }).observe(root, {subtree: true, childList: true, characterData: true});
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) watch(el.shadowRoot);
  };
  watch(document);
}"""

# The text of the history layer's position stylesheet (its view's, found through the
# page's root views).
HISTORY_POSITION_SHEET = """() => {
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.type === 'GlyphRenderer' && model.name === 'live chart: history')
        for (const root of Object.values(Bokeh.index)) {
          const view = root.owner.find_one(model);
          if (view != null) return view.position.el.textContent;
        }
  return null;
}"""


def test_the_chart_rewrites_no_stylesheet_per_tick(page: Page, console_errors):
    """BokehJS rewrites every renderer's position stylesheet at each paint, identical or
    not (13 writes a tick for the live chart, each a restyle); the page's patch
    (``ui/bokehjs_patches``) skips the identical ones, and a resize still moves them."""
    engine = Engine(Settings(**SETTINGS))
    app, controllers = pushed_only_app(engine)
    port, server = serve(app)
    try:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}")
        expect(page.locator("canvas").first).to_be_visible(timeout=30_000)
        wait_for(lambda: controllers and controllers[-1].attached, timeout=10)
        now = time.time()
        engine.step(now)
        wait_for(lambda: chart_lengths(page).get("history") == 1, timeout=10)
        page.wait_for_timeout(500)  # the first draws settle
        assert page.evaluate("() => Bokeh.require('core/dom').InlineStyleSheet"
                             ".prototype._granitePanelSkipsSame") is True
        page.evaluate(COUNT_STYLE_WRITES)
        for k in range(1, 11):  # ten ticks, each drawn before the next
            engine.step(now + k)
            wait_for(lambda: chart_lengths(page).get("history") == k + 1, timeout=10)
            page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        writes = page.evaluate("() => window.styleWrites")
        # unpatched: at least the 6 glyph renderers' sheets at each of the 10 draws
        assert sum(writes.values()) == 0, writes

        before = page.evaluate(HISTORY_POSITION_SHEET)
        assert "left:" in before
        page.set_viewport_size({"width": 900, "height": 900})  # the layer moves: written
        wait_for(lambda: page.evaluate(HISTORY_POSITION_SHEET) not in (before, None), timeout=10)
    finally:
        server.stop()
        engine.stop()
    assert not console_errors
