"""Let a closed browser session's page be freed: a work-around for Panel 1.9.4.

With ``pn.extension(notifications=True)`` every served session gets a ``NotificationArea``,
whose view Panel registers in ``pn.state._views`` and never removes when the session ends
(holoviz/panel#8605, fixed upstream by #8607, not released in 1.9.4). That entry holds
the session's Document, and through it whatever the Document still references (for this
dashboard: a queued poll, so the controller, its buffers and its chart): the soak's
server grew by about 8 MiB a minute while sessions came and went. ``release_on_close``
drops those entries when the session is destroyed, as Panel's fix does.
"""

from __future__ import annotations

import panel as pn
from panel.io.notifications import NotificationAreaBase
from panel.io.state import state


def release_on_close() -> None:
    """(In a served session.) When it ends, forget the notification views of its page."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    pn.state.on_session_destroyed(lambda _context: release_notification_views(doc))


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
