"""``bookgen status --watch``'s refresh logic, without a run or a terminal: a block per change,
the end of the run it saw ends it, in place in a terminal (the tmux test is in test_display)."""

from __future__ import annotations

import io

from bookgen.run.watch import Watch, watch


class Fake:
    """Files that change between refreshes: what the status says and whether a run holds the
    run lock, one value per refresh."""

    def __init__(self, texts: list[str], running: list[bool]) -> None:
        self.texts, self.runs, self.sleeps = texts, running, 0

    def render(self) -> str:
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]

    def running(self) -> bool:
        return self.runs.pop(0) if len(self.runs) > 1 else self.runs[0]

    def sleep(self, seconds: float) -> None:
        assert seconds == 0.5
        self.sleeps += 1


def test_a_block_per_change_until_the_run_that_was_seen_ends():
    fake = Fake(
        ["0/3 written", "0/3 written", "1/3 written", "1/3 written", "3/3 written"],
        [False, True, True, True, False],
    )
    out = io.StringIO()
    watch(Watch(fake.render, fake.running, 0.5), out, fake.sleep)
    blocks = out.getvalue().strip().split("\n\n")
    head = "bookgen status --watch (every 0.5 s, Ctrl-C to stop): "
    assert blocks == [
        f"{head}no run is writing this book; waiting for one\n0/3 written",
        f"{head}a run is writing this book\n0/3 written",
        f"{head}a run is writing this book\n1/3 written",  # unchanged refreshes print nothing
        f"{head}the run has ended\n3/3 written",  # the files as the run left them
    ]
    assert fake.sleeps == 4  # five refreshes, and none after the end


def test_without_a_run_it_waits_and_prints_nothing_new():
    fake = Fake(["0/3 written"], [False])
    w = Watch(fake.render, fake.running, 0.5)
    assert w.step() == (w.last, False) and "waiting for one" in w.last
    assert [w.step() for _ in range(3)] == [(None, False)] * 3


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_terminal_the_status_is_redrawn_in_place(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    fake = Fake(["1/3 written", "3/3 written"], [True, False])
    out = Terminal()
    watch(Watch(fake.render, fake.running, 0.5), out, fake.sleep)
    screen = out.getvalue()
    first, redrawn = screen.split("1/3 written")
    assert "a run is writing this book" in first
    # Cursor up, line erased: the second block is drawn over the first, not below it.
    assert "\x1b[1A\x1b[2K" in redrawn and "the run has ended\n3/3 written" in redrawn
