"""Point-to-pixel latency, measured in the browser (``LATENCY_PROBE=on``; off by default).

Each poll that streams new points to the chart also streams, in the same batched update,
the server's wall-clock time of every tick it carries (``Tick.received_at``: when the
tick's points entered detection) into a tiny ``ColumnDataSource`` of its own. A
``CustomJS`` callback on that source's ``streaming`` event waits for the next
``requestAnimationFrame`` (the frame that draws the new points) and records
``Date.now() - stamp`` per tick in ``window.granitePanelLatency``, with the time the
viewer's poll sent it and the time it arrived, so a slow figure says where it was lost
(waiting for the poll, in transit and in the page's own work, or in drawing). Server and
browser run on one machine in the benchmarks, so they read one clock. A page without the
probe carries none of this.
"""

from __future__ import annotations

import time

import panel as pn
from bokeh.models import ColumnDataSource, CustomJS, Spacer

STAMPS_KEPT = 100  # the source only needs the newest stamps; the page keeps the samples

RECORD_DRAWN = """
const probe = window.granitePanelLatency ??= {samples: [], stamps: [], sent: [], arrived: [], last: -Infinity};
const arrived = Date.now();
const {stamp, sent} = cb_obj.data;
const fresh = [];
for (let i = stamp.length - 1; i >= 0 && stamp[i] > probe.last; i--) fresh.push(i);
if (!fresh.length) return;
probe.last = stamp[fresh[0]];
const rows = fresh.reverse().map((i) => [stamp[i], sent[i]]);
requestAnimationFrame(() => {
  const drawn = Date.now();
  for (const [s, t] of rows) {
    probe.stamps.push(s);
    probe.sent.push(t);
    probe.arrived.push(arrived);
    probe.samples.push(drawn - s);
  }
});
"""


class LatencyProbe:
    """The page's probe: a source of tick stamps and the callback that times their drawing."""

    def __init__(self) -> None:
        self.source = ColumnDataSource(data={"stamp": [], "sent": []})
        self.source.js_on_change("streaming", CustomJS(code=RECORD_DRAWN))

    def panel(self) -> pn.pane.Bokeh:
        """An empty, zero-size model that carries the source into the page's document."""
        return pn.pane.Bokeh(Spacer(width=0, height=0, tags=[self.source]), margin=0)

    def send(self, ticks) -> None:
        """Stream the stamps (ms) of ``ticks``; call inside the poll's ``pn.io.hold()``."""
        stamps = [tick.received_at * 1000.0 for tick in ticks]
        if stamps:
            sent = [time.time() * 1000.0] * len(stamps)
            self.source.stream({"stamp": stamps, "sent": sent}, rollover=STAMPS_KEPT)
