"""Browser-side work-arounds for what BokehJS (3.9) costs a page that redraws at 10 Hz.

One so far. At every paint each renderer view of a plot (every glyph, grid, axis, title,
annotation and the toolbar) rewrites its position stylesheet (``RendererView.update_position``
sets the ``<style>`` element's text), even when the text is the same as before; each write
makes Chromium re-parse the sheet and restyle that shadow tree: 13 rewrites and 5 style
recalculations per tick for the live chart. The patch makes an identical write a no-op (the
text, and so the page's style, is what it would have been). Measured with one page at 10 Hz
(renderer CPU per tick; see the README's "Proven under load").

It is installed on a Document's ``document_ready`` (as Panel does for its own page code),
guarded: if a BokehJS release renames what it patches, the page runs unpatched.
"""

from __future__ import annotations

from bokeh.document import Document
from bokeh.models import CustomJS

PATCH_NAME = "granite-panel: skip identical stylesheet writes"

SKIP_IDENTICAL_STYLESHEET_WRITES = """
const sheet = window.Bokeh?.require?.("core/dom")?.InlineStyleSheet?.prototype;
if (sheet == null || typeof sheet._update !== "function" || sheet._granitePanelSkipsSame) return;
const write = sheet._update;
sheet._update = function (css) {
  if (this.el == null || this.el.textContent !== css) write.call(this, css);
};
sheet._granitePanelSkipsSame = true;
"""


def install(doc: Document | None) -> None:
    """Patch the pages of ``doc`` once (a no-op without a document, e.g. building offline)."""
    if doc is None:
        return
    ready = doc.callbacks.js_event_callbacks.get("document_ready", [])
    if any(getattr(callback, "name", None) == PATCH_NAME for callback in ready):
        return
    doc.js_on_event("document_ready", CustomJS(code=SKIP_IDENTICAL_STYLESHEET_WRITES,
                                               name=PATCH_NAME))
