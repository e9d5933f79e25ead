"""The served app: one shared engine per process, one Dashboard per browser session.

``granite-panel serve`` uses ``create_app``; ``panel serve granite_panel/app.py
--plugins granite_panel.api`` serves this file directly (the plugin adds the REST API).
"""

from __future__ import annotations

import panel as pn

from granite_panel.server import auth, runtime
from ..ui.dashboard import Dashboard, extension

TITLE = "granite-panel"


def create_app() -> Dashboard | pn.pane.Markdown:
    """A Dashboard for the current session, with what its user's role may do; its
    callbacks end with the session. A signed-in user without a role gets a refusal."""
    identity = auth.current().session_identity()
    if identity is None:
        return pn.pane.Markdown(
            f"## Access refused\n\n{pn.state.user or 'This account'} has no role on this "
            "dashboard. [Log out](./logout)", css_classes=["gp-refused"])
    user = identity.name if identity.via == "session" else ""
    dashboard = Dashboard(engine=runtime.shared_engine(), role=identity.role, user=user)
    dashboard.controller.select_series(requested_series())
    runtime.viewer_joined()

    # the controller detaches itself when the session ends (StreamController.attach)
    pn.state.on_session_destroyed(lambda _session_context: runtime.viewer_left())
    return dashboard


def requested_series() -> str | None:
    """``?series=NAME`` of the page's URL (the link a notification carries), if any."""
    values = (pn.state.session_args or {}).get("series") or []
    return values[0].decode(errors="replace") if values else None


def serve_page() -> pn.viewable.Viewable:
    extension()
    page = pn.Column(create_app(), sizing_mode="stretch_width")
    return page


if __name__.startswith("bokeh"):  # executed by `panel serve granite_panel/app.py`
    serve_page().servable(title=TITLE)
