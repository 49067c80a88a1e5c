"""Snakemake logger plugin ``bookgen``: a live display of a bookgen run in a terminal.

``snakemake --logger bookgen`` (the workflow profile sets it). In a terminal it replaces
Snakemake's job blocks with one board, redrawn about once a second: sections done / running /
pending / failed, each running section's tokens so far and tokens per second, the money spent
so far on the book and an ETA (bookgen.run.live computes all of it). Errors, warnings and the
"[N/11] section_NN done" lines still scroll above it (lines written to stdout, such as those,
at its next draw: the job that writes them draws nothing). The board is drawn between the
run's hand-overs, not during them (bookgen.run.live.DrawTimer). Anywhere else (a pipe, a file,
CI, a dry run) it prints exactly what Snakemake prints without it.

Snakemake finds logger plugins as top-level packages named ``snakemake_logger_plugin_*``;
this one is part of the bookgen distribution (pyproject.toml), so ``pip install -e .`` brings it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text
from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent

from bookgen import interrupt
from bookgen.run.live import Board, DrawTimer, HeldLines, as_text, is_terminal

MIN_WAIT_S = 0.01  # the display's thread sleeps at least this long between looks at its timer
SHOW_CURSOR = "\x1b[?25h"  # rich hides the cursor while the board is drawn
# Events the board shows instead of Snakemake's text for them.
ON_THE_BOARD = {
    LogEvent.JOB_INFO,
    LogEvent.JOB_STARTED,
    LogEvent.JOB_FINISHED,
    LogEvent.PROGRESS,
    LogEvent.RUN_INFO,
    LogEvent.RESOURCES_INFO,
    LogEvent.SHELLCMD,
    LogEvent.GROUP_INFO,
    LogEvent.WORKFLOW_STARTED,
}
# Snakemake's running commentary, which the board replaces (the full text stays in
# .snakemake/log/, as always).
CHATTER = (
    "Select jobs to execute",
    "Building DAG of jobs",
    "Using shell:",
    "Execute ",
    "Provided cores:",
    "Rules claiming more threads",
    "Assuming unrestricted shared filesystem",
    "Job stats:",
)


class BoardView:
    """A rich renderable that draws the board's lines (``Board.drawn_lines``)."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def __rich__(self) -> Text:
        try:
            return as_text(self.board.drawn_lines())
        except Exception as e:  # never let a display problem end the refresh thread
            return Text(f"(bookgen display: {e})")


class BoardLive(Live):
    """rich's Live display of the board. Its timed refresh (its own thread, when its
    ``DrawTimer`` says) computes the board's lines and prints the lines held from stdout
    (``HeldLines``) above it; draws under other printed lines reuse the last lines. Lines
    written to stderr (bookgen's Ctrl-C notice, the failed sections' summary, warnings) are
    printed above it at once, after the held ones; written straight to the terminal they would
    land inside the board and be drawn over."""

    def __init__(self, board: Board, hold_stdout: bool, **kwargs: Any) -> None:
        super().__init__(
            BoardView(board),
            redirect_stdout=False,
            redirect_stderr=False,
            auto_refresh=False,
            **kwargs,
        )
        self.board = board
        self.hold_stdout = hold_stdout
        self.held: HeldLines | None = None
        self.errors: HeldLines | None = None
        self.timer = DrawTimer()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._forget_exit: Callable[[], None] | None = None

    def start(self, refresh: bool = False) -> None:
        if self.hold_stdout and not isinstance(sys.stdout, HeldLines):
            self.held = HeldLines(sys.stdout, on_write=self.timer.activity)
            sys.stdout = self.held
        if not isinstance(sys.stderr, HeldLines):
            self.errors = HeldLines(sys.stderr, on_write=self.print_errors)
            sys.stderr = self.errors
        self._forget_exit = interrupt.before_hard_exit(self.abandon)
        super().start(refresh)
        if self._thread is None:
            self._thread = threading.Thread(target=self._timed, name="bookgen-board", daemon=True)
            self._thread.start()

    def _timed(self) -> None:
        """The display's own thread: draws when its timer says (not in a hand-over). It
        wakes about twice per draw: a thread waking in a hand-over costs the run a switch."""
        while not self._done.wait(max(MIN_WAIT_S, self.timer.wait_s())):
            if self.timer.wait_s() == 0:
                with self._lock:
                    if not self._done.is_set():
                        self.refresh()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._forget_exit is not None:
            self._forget_exit()
        self.print_errors()
        super().stop()  # its last refresh prints what is held
        for stream, rest in self._put_back():
            if rest:
                stream.write(rest + "\n")

    def abandon(self) -> None:
        """A second Ctrl-C ends the process at once (bookgen.interrupt): the lines held and
        the cursor go straight to the terminal, below the board as last drawn, waiting for
        no lock (the signal handler may have interrupted a thread holding one)."""
        held = [rest for _, rest in self._put_back(wait_s=0.1) if rest]
        self.console.file.write("\n" + "".join(f"{rest}\n" for rest in held) + SHOW_CURSOR)
        self.console.file.flush()

    def _put_back(self, wait_s: float = -1) -> list[tuple[Any, str]]:
        """Put the real stdout and stderr back; each with what was held from it and not
        printed yet (stdout's first). ``wait_s``: as ``HeldLines.take``."""
        out = []
        if self.held is not None:
            sys.stdout = self.held.stream
            out.append((self.held.stream, self.held.take(everything=True, wait_s=wait_s)))
        if self.errors is not None:
            sys.stderr = self.errors.stream
            out.append((self.errors.stream, self.errors.take(everything=True, wait_s=wait_s)))
        self.held = self.errors = None
        return out

    def print_held(self) -> None:
        """Print the lines held from stdout above the board."""
        if self.held is not None and (text := self.held.take()):
            self.console.print(Text.from_ansi(text), soft_wrap=True)

    def print_errors(self) -> None:
        """Print the whole lines written to stderr above the board (the held ones first: the
        order they came in)."""
        if self.errors is not None and (text := self.errors.take()):
            self.print_held()
            self.console.print(Text.from_ansi(text), soft_wrap=True)

    def refresh(self) -> None:
        with contextlib.suppress(Exception):  # BoardView shows it; the refresh thread goes on
            self.board.redraw()
        self.print_held()
        super().refresh()
        self.timer.drawn()


class LogHandler(LogHandlerBase):
    """Snakemake's plain handler where there is no terminal, the board where there is one."""

    def __post_init__(self) -> None:
        s = self.common_settings
        self.stream = sys.stdout if s.stdout else sys.stderr
        self.plain = ColorizingTextHandler(nocolor=s.nocolor, stream=self.stream)
        self.plain.addFilter(
            DefaultFilter(s.quiet, s.debug_dag, s.verbose, s.dryrun, s.printshellcmds)
        )
        self.plain.setFormatter(DefaultFormatter(s.quiet, s.show_failed_logs))
        self.board: Board | None = None
        self.live: BoardLive | None = None
        if is_terminal(self.stream) and not s.dryrun:
            self.board = Board()
            self.console = Console(file=self.stream)
            self.live = BoardLive(
                self.board, hold_stdout=is_terminal(sys.stdout), console=self.console
            )

    def emit(self, record: logging.LogRecord) -> None:
        if self.board is None or self.live is None:
            self.plain.handle(record)
            return
        self.live.timer.activity()  # Snakemake is at work: maybe a slot handing over
        event = getattr(record, "event", None)
        if event == LogEvent.JOB_INFO:
            self.board.job_info(record.jobid, record.rule_name, getattr(record, "wildcards", {}))
            if not self.live.is_started:
                self.live.start()
        elif event == LogEvent.JOB_STARTED:
            self.board.job_started(list(record.jobs))
        elif event == LogEvent.JOB_FINISHED:
            self.board.job_finished(record.job_id)
        elif event == LogEvent.JOB_ERROR:
            self.board.job_error(record.jobid)
        if event in ON_THE_BOARD or not self.plain.filter(record):
            return
        if event is None and str(record.msg).startswith(CHATTER):
            return
        text = self.plain.format(record)
        if text and text != "None":
            self.live.print_held()  # in the order they came
            self.console.print(Text(text), soft_wrap=True)

    def close(self) -> None:
        if self.live is not None and self.live.is_started and self.board is not None:
            self.board.end()
            self.live.refresh()
            self.live.stop()
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False
