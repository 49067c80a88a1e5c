"""The live board as a person sees it: a real run of the demo book in a tmux pane (a real
terminal), read with ``capture-pane`` while it runs and when it has ended."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest

from tests.book import BIN, Book, short_sections
from tests.conftest import PINNED_CLOCK

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"
)
SLOW = {"sections": short_sections(300), "simulator": {"tokens_per_s": 120}}  # ~4 s a section
BOARD = re.compile(r"\] (\d+)/11 sections done · (\d+) running · (\d+) pending · (\d+) failed")
RUNNING = re.compile(r"^  section_\d\d  call \d+ \(write\): [\d,]+ tokens, [\d.]+ tokens/s  \(")
# The demo runs on the simulator: what its calls would have cost, never called money.
MONEY = re.compile(r"^simulated, would have cost \$\d+\.\d{4} so far \([\d,]+ tokens\)")


class Pane:
    """A tmux server of its own (its own socket) with one 150x40 pane running ``command``."""

    def __init__(self, command: str, cwd) -> None:
        self.socket = f"bookgen-test-{os.getpid()}"
        self.tmux(
            *("new-session", "-d", "-s", "run", "-n", "run", "-x", "150", "-y", "40"),
            *("-c", str(cwd), command),
        )

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self, window: str = "run") -> str:
        """What the terminal shows now, scrolled-off lines included, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", f"run:{window}")

    def window(self, name: str, command: str, cwd) -> None:
        """Another terminal (a tmux window of the same size) running ``command``."""
        self.tmux("new-window", "-d", "-t", "run:", "-n", name, "-c", str(cwd), command)

    def visible(self, window: str) -> str:
        """Only what the window shows now (a display redrawn in place)."""
        return self.tmux("capture-pane", "-p", "-t", f"run:{window}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def terminal_env() -> str:
    """The environment of a command in a pane: a terminal's own size, not a COLUMNS inherited
    from whatever started the tests; no key; the pinned clock; the venv's commands."""
    return (
        "env -u DEEPSEEK_API_KEY -u COLUMNS -u LINES "
        f"BOOKGEN_CLOCK={PINNED_CLOCK} PATH={BIN}:{os.environ['PATH']}"
    )


FILES = "--configfile config/config.yaml overrides.yaml"


def run_in_pane(book: Book) -> Pane:
    """The book's run, ``snakemake --cores 2``, in a new terminal; "EXIT=<status>" when done."""
    return Pane(f"{terminal_env()} snakemake --cores 2 {FILES}; echo EXIT=$?; sleep 600", book.path)


def test_a_run_in_a_terminal_shows_the_board_and_ends_with_everything_done(tmp_path):
    book = Book(tmp_path / "book", SLOW)
    pane = run_in_pane(book)
    # `bookgen status --watch` in a second terminal, beside the run.
    status = f"{terminal_env()} bookgen status --watch --interval 0.5 {FILES}"
    pane.window("watch", f"{status}; echo WATCH_EXIT=$?; sleep 600", book.path)
    try:
        seen_running, watched = None, set()
        deadline = time.monotonic() + 240
        while "EXIT=" not in (screen := pane.screen()) and time.monotonic() < deadline:
            lines = screen.splitlines()
            board = [i for i, line in enumerate(lines) if BOARD.search(line)]
            if board and seen_running is None:
                block = lines[board[-1] :]
                if any(map(RUNNING.match, block)) and any(" · ETA " in b for b in block):
                    seen_running = block
            if view := watch_view(pane.visible("watch")):
                watched.add(view)
            time.sleep(0.25)
        final = pane.screen()
        deadline = time.monotonic() + 30
        while "WATCH_EXIT=" not in (watch_end := pane.visible("watch")):
            assert time.monotonic() < deadline, watch_end
            time.sleep(0.25)
        # Another watch when no run is going waits for one, until Ctrl-C: exit 0, no traceback.
        pane.window("idle", f"{status}; echo IDLE_EXIT=$?; sleep 600", book.path)
        while "waiting for one" not in (idle := pane.visible("idle")):
            assert time.monotonic() < deadline + 30, idle
            time.sleep(0.25)
        pane.tmux("send-keys", "-t", "run:idle", "C-c")
        while "IDLE_EXIT=" not in (idle := pane.visible("idle")):
            assert time.monotonic() < deadline + 60, idle
            time.sleep(0.25)
    finally:
        pane.close()
    assert "EXIT=0" in final, final[-3000:]
    # While it ran: a progress count, a running section with its tokens/s, money so far, an ETA.
    assert seen_running is not None, final[-3000:]
    done, running, pending, failed = map(int, BOARD.search(seen_running[0]).groups())
    assert running >= 1 and done + running + pending + failed == 11
    money = next(line for line in seen_running if MONEY.match(line))
    assert re.search(r"· \d+ s so far · ETA \d+ (s|min)$", money)
    # At the end: every section done, the money the cost report totals, no job blocks.
    lines = final.splitlines()
    board = lines[max(i for i, line in enumerate(lines) if BOARD.search(line)) :]
    assert BOARD.search(board[0]).groups() == ("11", "0", "0", "0")
    last = re.search(r"^\[11/11\] section_\d\d done · (.+ so far \([\d,]+ tokens\))", final, re.M)
    assert MONEY.match(board[1]) and board[1].startswith(last.group(1))
    assert [int(n) for n in re.findall(r"^\[(\d+)/11\] section_\d\d done", final, re.M)] == list(
        range(1, 12)
    )
    assert "rule section:" not in final and "Select jobs to execute" not in final

    # The watching terminal redrew one status in place: while the run went, sections running
    # and the count written rising; at the end all 11 written, and the watch ended by itself.
    during = {(done, running) for header, done, running in watched if header == "writing"}
    assert len({done for done, _ in during}) >= 2 and any(r for _, r in during), watched
    assert watch_view(watch_end) == ("ended", 11, 0), watch_end
    assert "WATCH_EXIT=0" in watch_end and watch_end.count("bookgen status --watch") == 1
    assert "IDLE_EXIT=0" in idle and "Traceback" not in idle, idle


def watch_view(screen: str) -> tuple[str, int, int] | None:
    """What a person reads on the watching terminal: whether a run is writing the book, how
    many sections are written, how many running; None before it shows a status."""
    header = re.search(
        r"^bookgen status --watch .*: (a run is writing|the run has ended)", screen, re.M
    )
    written = re.search(r"^Total +(\d+)/11 written", screen, re.M)
    if not header or not written:
        return None
    running = len(re.findall(r"^\d\d +running ", screen, re.M))
    return header[1].split()[-1], int(written[1]), running


def test_ctrl_c_under_the_board_shows_bookgen_s_notice_and_summary_whole(tmp_path):
    """Lines written to stderr while the board is up (bookgen's Ctrl-C notice, the failed
    sections' summary) scroll above the board, each on a line of its own; written straight to
    the terminal they landed inside the board and were drawn over or glued to its last line."""
    pane = run_in_pane(Book(tmp_path / "book", SLOW))
    try:
        deadline = time.monotonic() + 120
        while not any(map(RUNNING.match, (screen := pane.screen()).splitlines())):
            assert time.monotonic() < deadline, screen[-3000:]
            time.sleep(0.25)
        pane.tmux("send-keys", "-t", "run:run", "C-c")
        while "EXIT=" not in (screen := pane.screen()):
            assert time.monotonic() < deadline, screen[-3000:]
            time.sleep(0.25)
    finally:
        pane.close()
    lines = screen.splitlines()
    assert "EXIT=1" in screen, screen[-3000:]
    assert any(line.startswith("bookgen: Ctrl-C: stopping.") for line in lines), screen[-3000:]
    summary = [
        i for i, line in enumerate(lines) if re.match(r"bookgen: \d section\(s\) failed:$", line)
    ]
    assert summary, screen[-3000:]
    # The board as the run left it, after everything that scrolled above it.
    board = max(i for i, line in enumerate(lines) if BOARD.search(line))
    assert board > summary[0] and BOARD.search(lines[board]).group(2) == "0"
    assert not any(" · ETA " in line and "bookgen:" in line for line in lines), screen[-3000:]
