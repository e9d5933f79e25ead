"""Flagged points against incidents: NAB files replayed through the live engine.

    .venv/bin/python benchmarks/incidents.py --data ../shared/data/nab/data \\
        [--files realKnownCause/nyc_taxi.csv,...] [--gaps 0,1,2,3,5,10,20] [--detector NAME]

Each file is replayed as the dashboard replays it (``SOURCE=<file> REPLAY_SPEED=max``, the
first ``CONTEXT_LENGTH`` rows as backfill, which raise no alerts), with the live detector
(the default unless ``--detector``) and the seasonal-naive fallback (forecasts do not change
what is flagged). The points flagged live are then grouped by ``IncidentTracker`` once per
gap (the tracker is pure, so the detector runs once a file). Columns: live flagged points
(one alert each, what the feed listed before), then incidents for each ``INCIDENT_GAP``; the
last line sums the files. This is the data behind
``INCIDENT_GAP``'s default (see granite_panel/detection/incidents.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.detection.detectors import DEFAULT_DETECTOR  # noqa: E402
from granite_panel.detection.incidents import FlaggedPoint, IncidentTracker  # noqa: E402
from granite_panel.engine.core import Engine  # noqa: E402
from granite_panel.settings import Settings  # noqa: E402


def replay(path: Path, detector: str) -> tuple[Engine, list]:
    """Replay ``path`` to its end; the engine and its ticks (each with its live alerts)."""
    settings = Settings(
        source=str(path), replay_speed="max", fallback_model="SeasonalNaive",
        model_name="/nonexistent/model-folder", detector=detector, history_limit=2048,
    )
    engine = Engine(settings)
    ticks = []
    while not engine.source.finished:
        tick = engine.step()
        if tick is not None:
            ticks.append(tick)
    return engine, ticks


def incidents_for_gap(ticks, names, step: float, gap: int) -> int:
    tracker = IncidentTracker(gap=gap)
    for tick in ticks:
        points = [FlaggedPoint(a.series, a.timestamp, a.score, a.severity) for a in tick.alerts]
        tracker.update(tick.timestamps, points, names, step, now=0.0)
    return tracker.total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="NAB data folder")
    parser.add_argument("--files", default="", help="comma-separated paths under --data "
                        "(default: every CSV there)")
    parser.add_argument("--gaps", default="0,1,2,3,5,10,20")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    args = parser.parse_args(argv)
    files = ([args.data / f for f in args.files.split(",") if f] if args.files
             else sorted(args.data.glob("*/*.csv")))
    gaps = [int(g) for g in args.gaps.split(",")]
    header = f"{'file':48s} {'rows':>6s} {'flagged':>8s} " + " ".join(f"{'gap ' + str(g):>7s}" for g in gaps)
    print(header)
    totals = [0] * (len(gaps) + 1)
    started = time.perf_counter()
    for path in files:
        engine, ticks = replay(path, args.detector)
        flagged = sum(len(t.alerts) for t in ticks)
        counts = [incidents_for_gap(ticks, engine.names, engine.step_seconds, g) for g in gaps]
        if engine.settings.incident_gap in gaps:  # the engine's own tracker agrees
            assert engine.incidents.total == counts[gaps.index(engine.settings.incident_gap)]
        totals = [a + b for a, b in zip(totals, [flagged, *counts])]
        name = f"{path.parent.name}/{path.name}"
        print(f"{name:48s} {engine.source.rows:6d} {flagged:8d} " + " ".join(f"{c:7d}" for c in counts))
    print(f"{'total (' + str(len(files)) + ' files)':48s} {'':6s} {totals[0]:8d} "
          + " ".join(f"{c:7d}" for c in totals[1:]))
    print(f"# {time.perf_counter() - started:.0f} s, detector {args.detector}")


if __name__ == "__main__":
    main()
