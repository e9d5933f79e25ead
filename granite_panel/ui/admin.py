"""The admin's screen: API tokens (list, create, revoke) and the settings the server runs with.

Built into the dashboard only for the admin role; every command goes through the
controller, which checks the role again (a forged event from another role changes nothing).
A new token is shown once, in this view only; the file keeps its sha256. Settings are shown,
not edited: they come from the environment and ``.env`` and apply at the next start.
"""

from __future__ import annotations

import html

import panel as pn

from ..server.auth import ROLES, SCOPES
from .controller import StreamController


def render_tokens(tokens: dict[str, dict], configured: bool) -> str:
    if not configured:
        return "<p>No token file: set <code>API_TOKENS=tokens.json</code> to manage tokens here.</p>"
    if not tokens:
        return "<p>No tokens yet.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(entry['role'])}</td>"
        f"<td>{html.escape(', '.join(entry['scopes']) or '-')}</td></tr>"
        for name, entry in sorted(tokens.items()))
    return ('<table class="gp-tokens"><tr><th>name</th><th>role</th><th>scopes</th></tr>'
            f"{rows}</table>")


def render_settings(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f'<table class="gp-settings">{body}</table>'


class AdminView(pn.viewable.Viewer):
    """Tokens and settings for the admin role (see the module docstring)."""

    def __init__(self, controller: StreamController, **params):
        super().__init__(**params)
        self.controller = c = controller
        configured = bool(c.engine.settings.api_tokens)
        self.table = pn.pane.HTML("", sizing_mode="stretch_width")
        self.name_input = pn.widgets.TextInput(label="Token name", placeholder="e.g. node-exporter",
                                               width=200)
        self.role_input = pn.widgets.Select(label="Role", options=list(ROLES), value="operator",
                                            width=120)
        self.scopes_input = pn.widgets.CheckBoxGroup(label="Scopes", options=list(SCOPES),
                                                     value=list(SCOPES), inline=True)
        self.create_button = pn.widgets.Button(label="Create token", color="primary",
                                               disabled=not configured)
        self.revoke_input = pn.widgets.Select(label="Revoke", width=200)
        self.revoke_button = pn.widgets.Button(label="Revoke", color="danger",
                                               disabled=not configured)
        self.message = pn.pane.HTML("", css_classes=["gp-admin-message"],
                                    sizing_mode="stretch_width")
        self.create_button.on_click(self.create)
        self.revoke_button.on_click(self.revoke)
        self.refresh()  # the token file, read once for the table and the revoke list

    def refresh(self) -> None:
        tokens = self.controller.tokens()
        self.table.object = render_tokens(tokens, bool(self.controller.engine.settings.api_tokens))
        self.revoke_input.options = sorted(tokens)

    def create(self, *_) -> None:
        token, message = self.controller.create_token(
            self.name_input.value, self.role_input.value, self.scopes_input.value)
        shown = f"<p>{html.escape(message)}</p>"
        if token is not None:
            shown += f'<pre class="gp-new-token">{html.escape(token)}</pre>'
            self.name_input.value = ""
        self.message.object = shown
        self.refresh()

    def revoke(self, *_) -> None:
        if self.revoke_input.value:
            self.message.object = f"<p>{html.escape(self.controller.revoke_token(self.revoke_input.value))}</p>"
        self.refresh()

    def __panel__(self):
        return pn.Column(
            "#### API tokens",
            self.table,
            pn.Row(self.name_input, self.role_input, self.scopes_input, self.create_button,
                   align="end"),
            pn.Row(self.revoke_input, self.revoke_button, align="end"),
            self.message,
            "#### Settings (from the environment and .env; they apply at the next start)",
            pn.pane.HTML(render_settings(self.controller.settings_rows()),
                         sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
