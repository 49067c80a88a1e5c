"""``bookgen status --watch``: the status again every few seconds while a run writes the book.

It reads files only, as ``bookgen status`` does. In a terminal the status is redrawn in place
(rich's Live, as the run's own board: bookgen.run.live); anywhere else (a pipe, a file) one status
block is printed each time it changes. It ends by itself when the run it saw has ended (the run
lock, ``.bookgen/run.lock``, is free again), and on Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live

from bookgen.run.live import as_text, is_terminal


@dataclass
class Watch:
    """What to show at each refresh: the status with a line saying whether a run is going, and
    whether the watch is over. No terminal, clock or run needed (a unit test drives it)."""

    render: Callable[[], str]  # the status as text, read from the files now
    running: Callable[[], bool]  # whether a run is writing the book now
    interval_s: float = 2.0
    seen_run: bool = False
    last: str | None = None

    def header(self, running: bool) -> str:
        if running:
            state = "a run is writing this book"
        elif self.seen_run:
            state = "the run has ended"
        else:
            state = "no run is writing this book; waiting for one"
        return f"bookgen status --watch (every {self.interval_s:g} s, Ctrl-C to stop): {state}"

    def step(self) -> tuple[str | None, bool]:
        """``(text, over)``: the status when it changed since the last step (else None), and
        whether the run that was seen has ended (the text then shows its final state)."""
        running = self.running()  # before reading the files: the last read follows the end
        over = self.seen_run and not running
        text = f"{self.header(running)}\n{self.render().rstrip()}"
        self.seen_run = self.seen_run or running
        changed = None if text == self.last else text
        self.last = text
        return changed, over


def watch(w: Watch, stream: TextIO, sleep: Callable[[float], None] = time.sleep) -> None:
    """Refresh ``w`` every ``w.interval_s`` until its run ends (KeyboardInterrupt: Ctrl-C)."""
    if not is_terminal(stream):
        while True:
            text, over = w.step()
            if text is not None:
                stream.write(text + "\n\n")
                stream.flush()
            if over:
                return
            sleep(w.interval_s)
    with Live(console=Console(file=stream), auto_refresh=False, transient=False) as live:
        while True:
            text, over = w.step()
            if text is not None:
                live.update(as_text(text.splitlines()), refresh=True)
            if over:
                return
            sleep(w.interval_s)
