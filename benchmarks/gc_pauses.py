"""Garbage-collection pauses in a served process while browser sessions watch a 10 Hz stream.

Starts ``granite-panel serve`` with a ``sitecustomize`` (a temporary folder on PYTHONPATH)
that times every collection through ``gc.callbacks`` and writes those over 20 ms to a
file, opens ``--sessions`` pages in headless Chromium, presses Start, and after
``--seconds`` prints the pauses per generation and thread (count, median, max). A full
collection on the event loop's thread stops every page and REST answer for its length;
see ``granite_panel/server/gc_policy.py``.

    python -m benchmarks.gc_pauses [--sessions 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.load import ServerProcess, browsers, open_then_start  # noqa: E402

HOOK = '''
import gc, os, threading, time
_log, _started = os.environ["GC_PAUSE_LOG"], {}
def _timed(phase, info):
    if phase == "start":
        _started[threading.get_ident()] = time.perf_counter()
        return
    seconds = time.perf_counter() - _started.pop(threading.get_ident(), time.perf_counter())
    if seconds > 0.02:
        with open(_log, "a") as out:
            out.write(f"{info['generation']} {seconds:.4f} {threading.current_thread().name}\\n")
gc.callbacks.append(_timed)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "sitecustomize.py").write_text(HOOK)
        log = Path(folder, "pauses.txt")
        log.touch()
        env = {"PYTHONPATH": folder, "GC_PAUSE_LOG": str(log)}
        with ServerProcess(env=env, autostart=False) as server, browsers() as chromium:
            pages = open_then_start(server, chromium, args.sessions)
            chromium.pump(args.seconds, pages[0])
            for page in pages:
                page.close()
        rows = [line.split() for line in log.read_text().splitlines()]
    pauses = defaultdict(list)
    for generation, seconds, thread in rows:
        pauses[(int(generation), thread)].append(1000 * float(seconds))
    print(f"{args.sessions} sessions, {args.seconds:.0f} s after Start (pages opened first); "
          "collections over 20 ms:")
    print(f"{'gen':>3} {'thread':<18} {'count':>5} {'median ms':>10} {'max ms':>8}")
    for (generation, thread), ms in sorted(pauses.items()):
        print(f"{generation:>3} {thread:<18} {len(ms):>5} {statistics.median(ms):>10.0f} "
              f"{max(ms):>8.0f}")


if __name__ == "__main__":
    main()
