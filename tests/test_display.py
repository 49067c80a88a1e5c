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
            "new-session", "-d", "-s", "run", "-x", "150", "-y", "40", "-c", str(cwd), command
        )

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self) -> str:
        """What the terminal shows now, scrolled-off lines included, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "run")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def test_a_run_in_a_terminal_shows_the_board_and_ends_with_everything_done(tmp_path):
    book = Book(tmp_path / "book", SLOW)
    # A terminal's own size, not a COLUMNS inherited from whatever started the tests.
    env = (
        "env -u DEEPSEEK_API_KEY -u COLUMNS -u LINES "
        f"BOOKGEN_CLOCK={PINNED_CLOCK} PATH={BIN}:{os.environ['PATH']}"
    )
    run = "snakemake --cores 2 --configfile config/config.yaml overrides.yaml"
    pane = Pane(f"{env} {run}; echo EXIT=$?; sleep 600", book.path)
    try:
        seen_running = None
        deadline = time.monotonic() + 240
        while "EXIT=" not in (screen := pane.screen()) and time.monotonic() < deadline:
            lines = screen.splitlines()
            board = [i for i, line in enumerate(lines) if BOARD.search(line)]
            if board and seen_running is None:
                block = lines[board[-1] :]
                if any(map(RUNNING.match, block)) and any(" · ETA " in b for b in block):
                    seen_running = block
            time.sleep(0.25)
        final = pane.screen()
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
