"""The dashboard's stored-history view and downloads, and /api/export, over a real store."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests

from granite_panel.engine.core import Engine
from granite_panel.settings import Settings
from granite_panel.store import Batch, open_store
from granite_panel.ui.controller import StreamController
from granite_panel.ui.history import SPANS, HistoryView

from .serving import running_server

YEAR = 365 * 24 * 12  # a year of 5-minute points


@pytest.fixture
def year_store(tmp_path):
    """One series with a year of points (5 minutes apart), 30 flagged points among them."""
    store = open_store(f"sqlite:///{tmp_path / 'gp.db'}")
    t0 = 1_700_000_000.0
    ts = t0 + 300.0 * np.arange(YEAR)
    value = np.sin(np.arange(YEAR) / 288 * 2 * np.pi)
    flagged = set(np.linspace(1000, YEAR - 1000, 30).astype(int).tolist())
    rows = [("cpu", float(ts[i]), float(value[i]) + (8.0 if i in flagged else 0.0),
             0.99 if i in flagged else 0.1, 3 if i in flagged else 0, 0) for i in range(YEAR)]
    for start in range(0, YEAR, 20_000):
        store.submit(Batch(points=rows[start:start + 20_000]))
    store.flush(60)
    yield store, ts, sorted(flagged)
    store.close()


def _view(store, **params) -> HistoryView:
    settings = Settings(source="push", model_name="/nonexistent", fallback_model="SeasonalNaive")
    engine = Engine(settings, store=store)
    controller = StreamController(engine)
    return HistoryView(controller, **params)


def test_a_year_is_drawn_from_a_few_thousand_points_with_every_anomaly(year_store):
    store, ts, flagged = year_store
    view = _view(store, range="everything stored")
    assert view.series_name == "cpu"
    curve = view.curve()
    assert len(curve) <= 2 * SPANS  # min and max of each span, not 105,120 points
    assert curve.data["time"].min() == pd.Timestamp(ts[0], unit="s")
    markers = view.markers()
    assert len(markers) == len(flagged)  # none downsampled away
    assert markers.data["value"].min() > 6.0
    # the spikes survive the aggregation: each span keeps its max
    assert curve.data["value"].max() == pytest.approx(markers.data["value"].max())
    # zooming into one day re-reads that day, point by point
    day = (pd.Timestamp(ts[5000], unit="s"), pd.Timestamp(ts[5000 + 287], unit="s"))
    zoomed = view.curve(x_range=day)
    assert len(zoomed) == 288
    # the chart renders (the HoloViews pane builds a Bokeh model)
    import panel as pn

    pn.panel(view).get_root()


def test_a_plot_with_nothing_drawn_yet_reads_the_chosen_range(year_store):
    """Bokeh reports an empty plot's x range as (NaN, NaN): every served page of a fresh
    server logged a traceback from ``curve`` ('NaTType does not support timestamp')."""
    store, ts, flagged = year_store
    view = _view(store, range="everything stored")
    for empty in ((np.nan, np.nan), (np.datetime64("NaT"), np.datetime64("NaT")), (None, None)):
        assert len(view.curve(x_range=empty)) == len(view.curve())
        assert len(view.markers(x_range=empty)) == len(flagged)


def test_downloads_are_the_range_of_the_selected_series(year_store):
    store, ts, flagged = year_store
    view = _view(store, custom=(pd.Timestamp(ts[100], unit="s").to_pydatetime(),
                                pd.Timestamp(ts[199], unit="s").to_pydatetime()))
    csv = pd.read_csv(view.export_bytes("points", "csv"))
    assert len(csv) == 100 and (csv.series == "cpu").all()
    assert np.array_equal(csv.ts.to_numpy(), ts[100:200])
    table = pq.read_table(view.export_bytes("points", "parquet")).to_pandas()
    pd.testing.assert_frame_equal(table, csv, check_dtype=False)


def test_export_over_http_memory_and_store(tmp_path):
    """/api/export streams CSV and parquet; what is exported reads back equal; bad queries 400."""
    url = f"sqlite:///{tmp_path / 'gp.db'}"
    t0 = 1_700_000_000
    for database in ("memory", url):
        env = {"DATABASE_URL": database, "DATA_GENERATION_INTERVAL": "60",
               "FALLBACK_MODEL": "SeasonalNaive", "MODEL_NAME": "/nonexistent"}
        with running_server("--source", "push", "--autostart", env=env) as base:
            body = "".join(f"m,host=a v={i * 0.5} {t0 + 60 * i}\n" for i in range(300))
            answer = requests.post(f"{base}/api/ingest?precision=s", data=body,
                                   headers={"Content-Type": "text/plain"}, timeout=30)
            assert answer.status_code == 200, answer.text
            requests.post(f"{base}/api/ingest?precision=s", data=f"m,host=a v=1 {t0 + 60 * 400}\n",
                          headers={"Content-Type": "text/plain"}, timeout=30)
            got = requests.get(f"{base}/api/export", params={
                "series": 'm.v{host="a"}', "start": t0 + 60 * 10, "end": t0 + 60 * 109},
                timeout=30)
            assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in got.headers["Content-Disposition"]
            csv = pd.read_csv(io.BytesIO(got.content))
            assert np.array_equal(csv.value.to_numpy(), np.arange(10, 110) * 0.5), database
            parquet = requests.get(f"{base}/api/export", params={
                "format": "parquet", "start": t0 + 60 * 10, "end": t0 + 60 * 109}, timeout=30)
            table = pq.read_table(io.BytesIO(parquet.content)).to_pandas()
            pd.testing.assert_frame_equal(table, csv, check_dtype=False)
            forecasts = requests.get(f"{base}/api/export", params={"kind": "forecasts"},
                                     timeout=30)
            assert forecasts.status_code == 200
            assert forecasts.text.startswith("series,made_at,model,horizon,lower,upper")
            for query, word in (({"format": "xml"}, "format"), ({"kind": "x"}, "kind"),
                                ({"start": "yesterday-ish"}, "start"), ({"series": "nope"},
                                                                        "series")):
                bad = requests.get(f"{base}/api/export", params=query, timeout=30)
                assert bad.status_code == 400 and word in bad.json()["error"], query


def test_a_served_page_with_a_store_logs_no_traceback(tmp_path):
    """The README's run command keeps a SQLite store, so every page has the history view.
    Its first render used to log a traceback per page (an empty plot's x range is NaN); the
    browser tests run with DATABASE_URL=memory (no history chart) and never saw it."""
    from .serving import start_server

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'gp.db'}", "MODEL_NAME": "/nonexistent",
           "FALLBACK_MODEL": "SeasonalNaive"}
    process, base = start_server(env=env)
    try:
        assert requests.get(f"{base}/", timeout=60).status_code == 200
        time.sleep(2.0)
    finally:
        process.terminate()
        process.wait(10)
    log = process.output.text()
    process.stdout.close()
    assert "resumed from the store" in log  # the store was on
    assert "Traceback" not in log and "Callable raised" not in log, log[-3000:]
