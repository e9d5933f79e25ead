"""Let a closed browser session's page be freed: a work-around for Panel 1.9.4.

With ``pn.extension(notifications=True)`` every served session gets a ``NotificationArea``,
whose view Panel registers in ``pn.state._views`` and never removes when the session ends
(holoviz/panel#8605, fixed upstream by #8607, not released in 1.9.4). That entry holds
the session's Document, and through it whatever the Document still references (for this
dashboard: a queued poll, so the controller, its buffers and its chart): the soak's
server grew by about 8 MiB a minute while sessions came and went. ``release_on_close``
drops those entries when the session is destroyed, as Panel's fix does, and then any
other view still registered for the ended session's Document: nothing can draw into a
Document whose session is gone, and such an entry is what keeps it alive.

One more holder, seen when sessions are built on two threads at once (servers in threads,
as the tests run them): Bokeh keeps the documents being built in a process-wide list
(``bokeh.io.doc.patch_curdoc``), and Panel's ``run_app`` restores Bokeh's default document
from it when it ends, so one thread's session Document can become Bokeh's default
document (``curstate().document``) for good. One at a time, so it does not grow; it is
replaced when that session ends all the same.
"""

from __future__ import annotations

import logging

import panel as pn
from bokeh.document import Document
from bokeh.io.doc import set_curdoc
from bokeh.io.state import curstate
from panel.io.notifications import NotificationAreaBase
from panel.io.state import state

log = logging.getLogger(__name__)


def release_on_close() -> None:
    """(In a served session.) When it ends, let go of its Document (``release_views``)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    pn.state.on_session_destroyed(lambda _context: release_views(doc))


def release_views(doc) -> int:
    """Unregister every view still held for ``doc`` (notification areas first), and stop it
    being Bokeh's default document; how many holders were let go."""
    released = release_notification_views(doc)
    for ref, (viewable, root, view_doc, _comm) in list(state._views.items()):
        if view_doc is doc:
            try:
                viewable._cleanup(root)
            except Exception:  # a view half torn down by Panel already: unregister it anyway
                log.debug("cleaning up a view of an ended session failed", exc_info=True)
            state._views.pop(ref, None)
            released += 1
    if curstate().document is doc:  # see the module docstring
        set_curdoc(Document())
        released += 1
    return released


def release_notification_views(doc) -> int:
    """Clean up and unregister the notification areas rendered into ``doc``; how many."""
    released = 0
    for ref, (viewable, root, view_doc, _comm) in list(state._views.items()):
        if view_doc is doc and isinstance(viewable, NotificationAreaBase):
            viewable._cleanup(root)
            viewable._documents.pop(doc, None)
            state._views.pop(ref, None)
            released += 1
    return released
