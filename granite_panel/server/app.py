"""The served app: one shared engine per process, one Dashboard per browser session.

``granite-panel serve`` uses ``create_app``; ``panel serve granite_panel/app.py
--plugins granite_panel.api`` serves this file directly (the plugin adds the REST API).
"""

from __future__ import annotations

import panel as pn

from granite_panel.server import runtime
from ..ui.dashboard import Dashboard, extension

TITLE = "granite-panel"


def create_app() -> Dashboard:
    """A Dashboard for the current session; its callbacks end with the session."""
    dashboard = Dashboard(engine=runtime.shared_engine())
    dashboard.controller.select_series(requested_series())
    runtime.viewer_joined()

    def release(_session_context) -> None:
        dashboard.controller.detach()
        runtime.viewer_left()

    pn.state.on_session_destroyed(release)
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
