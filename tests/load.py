"""Load machinery shared by tests/ui/test_load.py and benchmarks/{load,latency,soak}.py.

Everything here is the real thing: a ``granite-panel serve`` process, Debian's Chromium
through Playwright (one browser, one context and page per session), Debian's ``wrk``
against the REST API, and psutil reading the server's own process.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from tests.serving import FAST_STREAM, _answers, free_port, wait_for
from tests.ui.conftest import CHROMIUM_ARGS, PageErrors

WRK = "/usr/bin/wrk"
CHROMIUM = "/usr/bin/chromium"
# Many pages of one headless browser must all keep drawing: no throttling of any of them.
LOAD_CHROMIUM_ARGS = CHROMIUM_ARGS + [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

VIEWPORT = {"width": 1280, "height": 900}  # every session's page (and page_cost's references)

# A stream at 10 Hz as the issue states it; the rest as tests.serving's fast stream.
TEN_HZ = {**FAST_STREAM, "DATA_GENERATION_INTERVAL": "0.1", "TRAINING": "off"}
WARM_TICKS = 30  # the first tick compiles and fits the fallback (~20 s here): measure after


def percentile(values, q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ----------------------------------------------------------------- the server


@dataclass
class Sample:
    """One reading of the server process (psutil)."""

    at: float  # seconds since sampling began
    cpu_percent: float  # of one core, over the interval since the previous sample
    rss_mib: float
    fds: int
    threads: int


class ServerProcess:
    """A ``granite-panel serve`` whose output goes to a file (a pipe nobody reads would
    block a long run) and whose process psutil samples once per ``period``.

    Without ``autostart`` the stream waits for a page's Start: pages then open while
    polls are cheap (on the shared 2-core machine a page opening beside a busy 10 Hz
    stream took 20-60 s, and sometimes longer than a minute)."""

    def __init__(self, env: dict | None = None, period: float = 1.0, timeout: float = 120.0,
                 autostart: bool = True, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="granite-panel-serve-", suffix=".log")
        environment = {**os.environ, **TEN_HZ, **(env or {})}
        command = [sys.executable, "-m", "granite_panel.cli", "serve",
                   "--port", str(self.port), "--session-check-ms", "500"]
        command += (["--autostart"] if autostart else []) + list(args)
        self.process = subprocess.Popen(command, env=environment, stdout=self.log,
                                        stderr=subprocess.STDOUT, text=True)
        self.psutil = psutil.Process(self.process.pid)
        self.samples: list[Sample] = []
        self.period = period
        self._stop = threading.Event()
        self._sampler = None
        try:
            wait_for(lambda: _answers(self.base), timeout, self)
        except BaseException:
            self.close()
            raise

    # wait_for's process protocol, with the output read from the log file
    def poll(self):
        return self.process.poll()

    @property
    def returncode(self):
        return self.process.returncode

    @property
    def stdout(self):
        self.log.seek(0)
        return self.log

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def start_sampling(self) -> None:
        self.samples.clear()
        self.psutil.cpu_percent(None)  # the first call only sets the reference point
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample, daemon=True, name="psutil-sampler")
        self._sampler.start()

    def stop_sampling(self) -> list[Sample]:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(5)
        return list(self.samples)

    def read(self, since: float) -> Sample:
        with self.psutil.oneshot():
            return Sample(
                at=time.monotonic() - since,
                cpu_percent=self.psutil.cpu_percent(None),
                rss_mib=self.psutil.memory_info().rss / 2**20,
                fds=self.psutil.num_fds(),
                threads=self.psutil.num_threads(),
            )

    def _sample(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(self.period):
            if self.process.poll() is not None:
                return
            self.samples.append(self.read(began))

    def close(self) -> None:
        self.stop_sampling()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def open_then_start(server: ServerProcess, chromium: Browsers, sessions: int) -> list:
    """Open ``sessions`` pages on a stopped stream, press Start in the first, and return
    them once the engine has ticked WARM_TICKS times."""
    pages = [chromium.open(server.base) for _ in range(sessions)]
    pages[0].start_stream()
    deadline = time.monotonic() + 240
    while status_ticks(server.base) < WARM_TICKS:
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"the stream did not warm up:\n{server.output()}")
        chromium.pump(1.0, pages[0])
    return pages


def status_ticks(base: str) -> int:
    return server_status(base)["ticks"]


def server_status(base: str) -> dict:
    """/api/status with a long timeout: a loaded server answering slowly is a figure to
    report, not a reason to abandon the run (10 sessions at 10 Hz on the shared machine
    kept it from answering within 5 s)."""
    return requests.get(f"{base}/api/status", timeout=60).json()


def summarize_samples(samples: list[Sample], warmup: float = 0.0) -> dict:
    """CPU% (mean, p95), RSS (first after warm-up, last, peak, growth), fds and threads."""
    kept = [s for s in samples if s.at >= warmup] or samples
    if not kept:
        return {}
    cpu = [s.cpu_percent for s in kept]
    first, last = kept[0], kept[-1]
    return {
        "samples": len(kept),
        "cpu_mean": sum(cpu) / len(cpu),
        "cpu_p95": percentile(cpu, 0.95),
        "rss_start_mib": first.rss_mib,
        "rss_end_mib": last.rss_mib,
        "rss_peak_mib": max(s.rss_mib for s in kept),
        "rss_growth_pct": 100.0 * (last.rss_mib - first.rss_mib) / first.rss_mib,
        "fds_start": first.fds,
        "fds_end": last.fds,
        "fds_max": max(s.fds for s in kept),
        "threads_start": first.threads,
        "threads_end": last.threads,
        "threads_max": max(s.threads for s in kept),
    }


# ----------------------------------------------------------------- the browsers

PROBE_SAMPLES = """() => {
  const p = window.granitePanelLatency;
  return p ? {samples: p.samples, stamps: p.stamps, sent: p.sent, arrived: p.arrived}
           : {samples: [], stamps: [], sent: [], arrived: []};
}"""


RESTART_PROBE = """() => {
  const p = window.granitePanelLatency;
  if (p) for (const key of ['samples', 'stamps', 'sent', 'arrived']) p[key] = [];
}"""


@dataclass
class Session:
    """One browser context with one dashboard page, and what went wrong in it."""

    context: object
    page: object
    errors: PageErrors
    opened_at: float = field(default_factory=time.monotonic)

    def latency(self) -> dict:
        """The probe's records so far (ms, one per drawn tick): ``samples`` (point to pixel),
        ``stamps`` (server time of the tick), ``sent`` (when the poll sent it), ``arrived``."""
        return self.page.evaluate(PROBE_SAMPLES)

    def start_stream(self) -> None:
        """Press Start (it starts the engine every session shares)."""
        self.page.get_by_role("button", name="Start").click()

    def restart_latency(self) -> None:
        """Forget what the probe recorded so far (measure from now on)."""
        self.page.evaluate(RESTART_PROBE)

    def close(self) -> None:
        self.context.close()


class Browsers:
    """One headless Debian Chromium; each session a fresh context (its own cookies, so
    its own Bokeh session) showing the dashboard."""

    def __init__(self, playwright, nice: int | str = 0):
        self._wrapper = niced_chromium(nice) if nice else None
        executable = self._wrapper.name if self._wrapper else CHROMIUM
        self.browser = playwright.chromium.launch(executable_path=executable, args=LOAD_CHROMIUM_ARGS)

    def open(self, url: str, timeout_ms: float = 120_000) -> Session:
        context = self.browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(url, timeout=timeout_ms)
        page.get_by_role("button", name="Start").wait_for(timeout=timeout_ms)
        page.locator("canvas").first.wait_for(timeout=timeout_ms)
        return Session(context, page, errors)

    def blank(self) -> Session:
        """A page that is no dashboard, to let the browser run when no session is open."""
        if getattr(self, "_blank", None) is None:
            context = self.browser.new_context()
            page = context.new_page()
            self._blank = Session(context, page, PageErrors(page))
        return self._blank

    def pump(self, seconds: float, session: Session) -> None:
        """Let every page run (the sync API dispatches page events only while it waits)."""
        session.page.wait_for_timeout(seconds * 1000)

    def close(self) -> None:
        self.browser.close()
        if self._wrapper is not None:
            os.unlink(self._wrapper.name)


def cpu_seconds(processes) -> float:
    """User + system CPU seconds of ``processes`` (psutil), skipping any that ended."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def chromium_processes() -> list:
    """Every Chromium process on this machine (browser, renderers, GPU, utilities)."""
    return [p for p in psutil.process_iter(["name"]) if "chrom" in (p.info["name"] or "")]


def niced_chromium(nice: int | str):
    """A script that starts Debian's Chromium at a lower CPU priority, so that the browsers
    take only the CPU the server leaves, as browsers on the viewers' own machines would.

    ``nice`` a number: ``nice -n``. It does not hold: Chromium sets its processes' nice
    values itself and, run as root, raises them (seen: renderers at 0 and 5, one process at
    -8, under ``nice -n 19``). ``"idle"``: the Linux ``SCHED_IDLE`` policy (``chrt --idle``),
    inherited by every process and thread Chromium starts and not undone by its nice
    changes: its processes run only when nothing else wants the CPU."""
    script = tempfile.NamedTemporaryFile("w", prefix="chromium-nice-", suffix=".sh", delete=False)
    lower = "chrt --idle 0" if nice == "idle" else f"nice -n {int(nice)}"
    script.write(f'#!/bin/sh\nexec {lower} {CHROMIUM} "$@"\n')
    script.close()
    os.chmod(script.name, 0o755)
    return script


@contextmanager
def browsers(playwright=None, nice: int | str = 0):
    """Chromium sessions on ``playwright`` (in the test suite: pytest-playwright's session
    object - a second ``sync_playwright()`` in one thread refuses to start), or on a
    Playwright of its own (the benchmarks); ``nice``: the browsers' CPU priority (see
    ``niced_chromium``)."""
    if playwright is not None:
        chromium = Browsers(playwright, nice)
        try:
            yield chromium
        finally:
            chromium.close()
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as own:
        with browsers(own, nice) as chromium:
            yield chromium


def latency_summary(records: dict) -> dict:
    """p50/p95/p99/max of point-to-pixel, and the medians of its three parts: engine to
    the poll that sent the tick, send to arrival in the page, arrival to the drawn frame."""
    samples = records["samples"]
    finite = [s for s in samples if isinstance(s, (int, float)) and math.isfinite(s)]
    rows = list(zip(records["stamps"], records["sent"], records["arrived"], samples))
    return {
        "samples": len(finite),
        "p50_ms": percentile(finite, 0.5),
        "p95_ms": percentile(finite, 0.95),
        "p99_ms": percentile(finite, 0.99),
        "max_ms": max(finite) if finite else math.nan,
        "non_finite": len(samples) - len(finite),
        "wait_for_poll_p50_ms": percentile([t - s for s, t, _, _ in rows], 0.5),
        "transit_p50_ms": percentile([a - t for _, t, a, _ in rows], 0.5),
        "to_frame_p50_ms": percentile([s + x - a for s, _, a, x in rows], 0.5),
    }


def merge_records(records: list[dict]) -> dict:
    return {key: [v for r in records for v in r[key]] for key in ("samples", "stamps", "sent", "arrived")}


def tick_gaps(stamps: list[float], interval_s: float) -> dict:
    """How a page's drawn ticks were spaced: the largest gap between consecutive server
    stamps (ms) and how many gaps exceeded 1.5 intervals (ticks the engine ran late)."""
    ordered = sorted(set(stamps))
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    return {
        "ticks_drawn": len(ordered),
        "max_gap_ms": max(gaps) if gaps else math.nan,
        "late_gaps": sum(g > 1.5 * interval_s * 1000 for g in gaps),
    }


# ----------------------------------------------------------------- wrk

WRK_SCRIPT = """
-- alternate /api/status and /api/history; an optional pause between a connection's requests
local paths = {"/api/status", "/api/history"}
local counter = 0
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
delay = function()
  return pause
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    non_2xx: int
    socket_errors: int
    output: str
    socket_error_kinds: dict = field(default_factory=dict)  # connect/read/write/timeout


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(output: str) -> WrkResult:
    """The figures of ``wrk --latency`` output (requests, rates, latency, errors)."""
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if done is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    seconds = _ms(done.group(2) + done.group(3)) / 1000
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.M))
    maximum = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=seconds,
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        latency_p50_ms=_ms(latency["50"]) if "50" in latency else math.nan,
        latency_p99_ms=_ms(latency["99"]) if "99" in latency else math.nan,
        latency_max_ms=_ms(maximum.group(1)) if maximum else math.nan,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
        output=output,
        socket_error_kinds=dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, errors.groups()))) if errors else {},
    )


class Wrk:
    """``wrk`` against the REST API in the background, for ``seconds``."""

    def __init__(self, base: str, seconds: float, connections: int = 2, delay_ms: float = 0.0):
        self._script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        self._script.write(WRK_SCRIPT)
        self._script.close()
        self.seconds = seconds
        command = [WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                   "--timeout", "10s", "-s", self._script.name, base]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "WRK_DELAY_MS": str(int(delay_ms))},
        )

    def result(self) -> WrkResult:
        try:
            output, _ = self.process.communicate(timeout=self.seconds + 60)
        finally:
            Path(self._script.name).unlink(missing_ok=True)
        if self.process.returncode != 0:
            raise RuntimeError(f"wrk exited {self.process.returncode}:\n{output}")
        return parse_wrk(output)
