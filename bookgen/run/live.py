"""What the live display of a run shows, computed from Snakemake's job events and bookgen's files.

The logger plugin (``snakemake_logger_plugin_bookgen``) feeds ``Board`` the job events it
receives (in Snakemake's logging thread) and renders ``Board.lines()`` a few times a second (in
the display's own thread). Everything here reads files the jobs write anyway: the counter of
finished sections (bookgen.run.progress), each running section's log (its tokens so far and tokens
per second), the call journals (money so far, bookgen.money.budget: real money, or in a simulated
run what its calls would have cost). Section jobs do no extra work for the display.

The ETA is ``bookgen estimate``'s per-section model (job time of each pending section), scaled by
how long this run's finished sections took against that model, spread over the run's parallel
slots (bookgen.money.estimate.makespan).
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from bookgen import paths
from bookgen.config import Section
from bookgen.money.budget import Spending, book_spending, spent_text
from bookgen.money.estimate import RUN_OVERHEAD_S, format_duration, makespan, pending_job_times
from bookgen.provider.request_identity import is_simulated
from bookgen.run.progress import last_progress, read_count
from bookgen.run.status import section_states


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal that can redraw in place."""
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def as_text(lines: list[str]) -> Text:
    """Lines for a display redrawn in place: cropped, not wrapped, in a narrow terminal, so one
    line stays one line."""
    return Text("\n".join(lines), no_wrap=True, overflow="ellipsis")


class HeldLines(io.TextIOBase):
    """``sys.stdout`` while the board is drawn: whole lines written to it are kept until the
    display prints them above the board (``take``), at its next refresh. The "[N/M]" lines are
    written by the job that has just finished a section, on the way to its slot's next request:
    that thread then draws nothing and waits for no display lock."""

    def __init__(self, stream: Any, on_write: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.stream = stream  # the real stdout, put back when the display ends
        self.on_write = on_write  # e.g. DrawTimer.activity: a job has just finished a section
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        with self._lock:
            *whole, self._partial = (self._partial + text).split("\n")
            self._lines.extend(whole)
        self.on_write()
        return len(text)

    def take(self, everything: bool = False, wait_s: float = -1) -> str:
        """The whole lines written since the last ``take`` (``everything``: an unfinished last
        line too), joined, or "". ``wait_s``: wait at most this long for a writer (a signal
        handler must not wait for the thread it interrupted); then ""."""
        if not self._lock.acquire(timeout=wait_s):
            return ""
        try:
            lines, self._lines = self._lines, []
            if everything and self._partial:
                lines.append(self._partial)
                self._partial = ""
        finally:
            self._lock.release()
        return "\n".join(lines)

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # e.g. ``buffer``: bytes go to the real stdout
        return getattr(self.stream, name)

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.stream, "encoding", "utf-8"))


DRAW_EVERY_S = 1.0  # the board shows seconds: it is computed and drawn about once a second
QUIET_S = 0.15  # ...but not this soon after a job event or a finished section's line
LATE_S = 1.0  # unless the draw is this late (a run whose sections end faster than QUIET_S)


@dataclass
class DrawTimer:
    """When the display's own thread draws the board: about every DRAW_EVERY_S, but out of
    the run's hand-overs. A slot that has just finished a section (its "[N/M]" line, then
    Snakemake's job events) sends its next section's request some 40 ms later, all of it in the
    interpreter the display shares; a draw then (a few ms of CPU) delays the request. So a due
    draw waits until QUIET_S has passed since the last sign of a hand-over (``activity``), or
    until it is LATE_S late. Thread-safe enough: each field is one float, written whole."""

    clock: Callable[[], float] = time.monotonic
    last_draw: float = 0.0
    last_activity: float = -1e9

    def __post_init__(self) -> None:
        self.last_draw = self.clock()

    def activity(self) -> None:
        """Something of a hand-over happened now (a job event, a line from a job)."""
        self.last_activity = self.clock()

    def wait_s(self) -> float:
        """Seconds until the display should draw; 0: now."""
        now = self.clock()
        waited = now - self.last_draw
        left = DRAW_EVERY_S - waited
        if left <= 0:
            quiet_in = QUIET_S - (now - self.last_activity)
            left = min(quiet_in, DRAW_EVERY_S + LATE_S - waited)
        return left if left > 0.001 else 0.0  # within a ms: now

    def drawn(self) -> None:
        self.last_draw = self.clock()


BAR_WIDTH = 30


@dataclass
class RunInfo:
    """What the Snakefile knows when the run starts and the display needs for its ETA."""

    config: dict[str, Any]
    sections: list[Section]
    slots: int  # sections written at once: min(--cores, the api resource)


_run: RunInfo | None = None


def register_run(config: dict[str, Any], sections: list[Section], slots: int) -> None:
    """Called by the Snakefile's ``onstart``: costs nothing unless a display asks for it."""
    global _run
    _run = RunInfo(config, sections, max(1, slots))


def registered_run() -> RunInfo | None:
    return _run


def predicted_job_times(run: RunInfo) -> dict[str, float]:
    """Seconds each pending section's job should take, by ``bookgen estimate``'s model."""
    return pending_job_times(run.config, run.sections, section_states(run.config, run.sections))


def eta_s(
    predicted: dict[str, float],
    running: dict[str, float],
    finished: dict[str, float],
    pending: list[str],
    slots: int,
    now: float,
) -> float:
    """Seconds until the run ends: the model's job times, scaled by how this run's finished
    sections (id: seconds taken) compared with it; ``running`` maps id to start time."""
    measured = [(took, predicted[sid]) for sid, took in finished.items() if sid in predicted]
    expected = sum(p for _, p in measured)
    scale = sum(t for t, _ in measured) / expected if expected > 0 else 1.0
    default = sum(predicted.values()) / len(predicted) if predicted else 0.0
    left = [
        max(0.0, predicted.get(sid, default) * scale - (now - start))
        for sid, start in running.items()
    ]
    left += [predicted.get(sid, default) * scale for sid in pending]
    return makespan(left, slots) + (RUN_OVERHEAD_S if left else 0.0)


@dataclass
class Board:
    """The run as the display shows it. Event methods and ``lines`` may run in two threads."""

    state_root: Path = paths.STATE
    clock: Callable[[], float] = time.monotonic
    run: RunInfo | None = None
    jobs: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id: (rule, sid)
    started: dict[int, float] = field(default_factory=dict)
    section_times: dict[str, float] = field(default_factory=dict)  # finished in this run
    failed: set[str] = field(default_factory=set)
    other_failures: int = 0
    finished_jobs: int = 0
    t0: float = 0.0
    ended: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    job_times: dict[str, float] | None = None  # the model's, per pending section; None: ask it
    _drawn: list[str] | None = None  # the lines of the last redraw

    def __post_init__(self) -> None:
        self.t0 = self.clock()

    # Snakemake's job events ---------------------------------------------------------------
    def job_info(self, jobid: int, rule: str, wildcards: dict[str, Any] | None) -> None:
        sid = (wildcards or {}).get("sid")
        with self._lock:
            self.jobs[jobid] = (rule, sid if rule == "section" else None)

    def job_started(self, jobids: list[int]) -> None:
        now = self.clock()
        with self._lock:
            for jobid in jobids:
                self.started[jobid] = now

    def job_finished(self, jobid: int) -> None:
        now = self.clock()
        with self._lock:
            start = self.started.pop(jobid, now)
            sid = self.jobs.get(jobid, ("", None))[1]
            if sid is not None:
                self.section_times[sid] = now - start
            self.finished_jobs += 1

    def job_error(self, jobid: int) -> None:
        with self._lock:
            self.started.pop(jobid, None)
            sid = self.jobs.get(jobid, ("", None))[1]
            if sid is not None:
                self.failed.add(sid)
            else:
                self.other_failures += 1

    def end(self) -> None:
        self.ended = True

    # What the display reads ---------------------------------------------------------------
    def spent(self) -> Spending:
        """Money so far, counted as the "[N/M]" lines and the budget count it
        (bookgen.money.budget.book_spending: a journal is read again only when its file
        changed, or while a call in it is open)."""
        run = self.run or registered_run()
        simulated = is_simulated(run.config) if run and run.config else False
        return book_spending(self.state_root, simulated)

    def predicted(self) -> dict[str, float]:
        """The model's job time of each section pending when the display first asked (once)."""
        if self.job_times is None:
            run = self.run or registered_run()
            try:
                self.job_times = predicted_job_times(run) if run and run.sections else {}
            except Exception:  # an estimate is a nicety: the display must never stop a run
                self.job_times = {}
        return self.job_times

    def redraw(self) -> None:
        """Compute the lines ``drawn_lines`` returns (the display's timed refresh, in its own
        thread). When it fails, the next draw tries again (and the display shows why)."""
        self._drawn = None
        self._drawn = self.lines()

    def drawn_lines(self) -> list[str]:
        """The lines computed at the last ``redraw`` (all of them again once the run has
        ended). Rich also draws the board under every line printed above it, and the "[N/M]"
        lines are printed by the job that has just finished a section, on the way to its
        slot's next request: those draws read no file."""
        if self._drawn is None or self.ended:
            self._drawn = self.lines()
        return self._drawn

    def lines(self) -> list[str]:
        """The display as plain text lines (the plugin styles nothing; a test reads these)."""
        now = self.clock()
        with self._lock:
            running = {self.jobs.get(j, ("?", None)): start for j, start in self.started.items()}
            failed = len(self.failed)
        sections_running = {sid: start for (_, sid), start in running.items() if sid}
        others = sorted(rule for (rule, sid) in running if not sid)
        done, total = read_count(self.state_root)
        pending = max(0, total - done - len(sections_running) - failed)
        filled = round(BAR_WIDTH * done / total) if total else 0
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        out = [
            f"[{bar}] {done}/{total} sections done · {len(sections_running)} running · "
            f"{pending} pending · {failed} failed"
        ]
        for sid, start in sorted(sections_running.items()):
            seen = last_progress(self.state_root.parent / paths.section_log(sid))
            what = "starting"  # no token yet; the first progress line may say 0
            if seen and seen[1]:
                what = f"{seen[0]}: {seen[1]:,} tokens, {seen[2]:.1f} tokens/s"
            out.append(f"  section_{sid}  {what}  ({format_duration(now - start)})")
        if others:
            out.append(f"  running: {', '.join(others)}")
        spent = self.spent()
        # as the [N/11] lines and the cost report count it
        money = spent_text(spent, "so far" if spent.simulated else "spent so far on this book")
        money += f" ({spent.tokens:,} tokens)"
        elapsed = format_duration(now - self.t0)
        if self.ended:
            out.append(f"{money} · took {elapsed}")
            return out
        predicted = self.predicted()
        waiting = [
            sid
            for sid in predicted
            if sid not in sections_running
            and sid not in self.section_times
            and sid not in self.failed
        ]
        run = self.run or registered_run()
        eta = None
        if predicted and run is not None:
            eta = eta_s(predicted, sections_running, self.section_times, waiting, run.slots, now)
        out.append(
            f"{money} · {elapsed} so far"
            + ("" if eta is None else f" · ETA {format_duration(eta)}")
        )
        return out
