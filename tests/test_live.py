"""The live board's numbers (bookgen.run.live), without Snakemake: events in, lines out."""

from __future__ import annotations

import io
import json
import sys
import threading

import pytest
from rich.console import Console

from bookgen import interrupt
from bookgen.money.budget import run_spending
from bookgen.money.usage import zero_usage
from bookgen.run.live import (
    DRAW_EVERY_S,
    LATE_S,
    QUIET_S,
    Board,
    DrawTimer,
    HeldLines,
    RunInfo,
    eta_s,
)
from bookgen.run.progress import ProgressLog, last_progress, next_count, start_count
from snakemake_logger_plugin_bookgen import SHOW_CURSOR, BoardLive


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_eta_scales_the_model_by_the_measured_times_and_spreads_over_slots():
    predicted = {"01": 10.0, "02": 10.0, "03": 10.0, "04": 10.0}
    # Nothing measured yet: two running (4 s in), two waiting, two slots.
    before = eta_s(predicted, {"01": 96.0, "02": 96.0}, {}, ["03", "04"], 2, now=100.0)
    assert before == pytest.approx(6 + 10 + 4.0)  # + the run's own overhead (reports, exit)
    # The first two took twice the model: the rest is expected to as well.
    after = eta_s(predicted, {}, {"01": 20.0, "02": 20.0}, ["03", "04"], 2, now=100.0)
    assert after == pytest.approx(20 + 4.0)
    assert eta_s(predicted, {}, {"01": 20.0}, [], 2, now=100.0) == 0.0


def test_last_progress_reads_the_running_call_of_this_attempt_only(tmp_path):
    path = tmp_path / "section_05.log"
    log = ProgressLog(path, "section_05", interval_s=0)
    log.line("writing 'Memory' (300 words target)")
    log.progress("call 1 (write)", 1234, 10.0)
    log.close()
    assert last_progress(path) == ("call 1 (write)", 1234, 123.4)
    log = ProgressLog(path, "section_05", interval_s=0)  # the next run appends to the same log
    log.line("writing 'Memory' (300 words target)")
    log.close()
    assert last_progress(path) is None
    assert last_progress(tmp_path / "missing.log") is None


def journal_call(root, sid: str, cost: float) -> None:
    call = {**zero_usage(), "section": sid, "status": "ok", "usage_reported": True}
    call.update(prompt_tokens=100, completion_tokens=50, cost_usd=cost, duration_s=1.0)
    call.update(estimated_prompt_tokens=0, estimated_completion_tokens=0)
    call.update(estimated_cost_usd=None, call_id="c" + sid)
    path = root / "calls" / f"section_{sid}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as journal:  # journals only grow
        journal.write(json.dumps(call) + "\n")


def test_board_counts_sections_and_shows_running_ones_with_their_speed(tmp_path):
    state = tmp_path / ".bookgen"
    clock = FakeClock()
    board = Board(state_root=state, clock=clock, run=RunInfo({}, [], 2))
    board.job_times = {"01": 10.0, "02": 10.0, "03": 10.0}  # what estimate_book would give
    start_count(0, 3, state)
    for jobid, sid in ((1, "01"), (2, "02"), (3, "03")):
        board.job_info(jobid, "section", {"sid": sid})
    board.job_info(9, "cost_report", {})
    board.job_started([1, 2])
    clock.t += 4
    log = ProgressLog(tmp_path / "output" / "logs" / "section_01.log", "section_01", 0)
    log.line("writing 'Bits' (300 words target)")
    log.progress("call 1 (write)", 800, 4.0)
    log.close()
    lines = board.lines()
    assert lines[0].endswith("0/3 sections done · 2 running · 1 pending · 0 failed")
    assert "  section_01  call 1 (write): 800 tokens, 200.0 tokens/s  (4 s)" in lines
    assert "  section_02  starting  (4 s)" in lines
    assert lines[-1].startswith("$0.0000 spent so far on this book (0 tokens) · 4 s so far · ETA")

    journal_call(state, "01", 0.0012)
    with next_count(3, state):
        pass
    board.job_finished(1)
    board.job_error(2)
    board.job_started([3, 9])
    lines = board.lines()
    assert lines[0].endswith("1/3 sections done · 1 running · 0 pending · 1 failed")
    assert "  running: cost_report" in lines
    assert "$0.0012 spent so far on this book (150 tokens)" in lines[-1]
    board.end()
    assert board.lines()[-1] == "$0.0012 spent so far on this book (150 tokens) · took 4 s"


def test_the_board_s_money_is_the_book_s_spending_at_each_draw(tmp_path):
    """The board counts money as the "[N/M]" lines and the budget do (run_spending): a call
    journaled since the last draw shows at the next, whichever section's, the outline's too."""
    state = tmp_path / ".bookgen"
    board = Board(state_root=state, clock=FakeClock(), run=RunInfo({}, [], 2))
    journal_call(state, "01", 0.001)
    assert board.spent().cost_usd == pytest.approx(0.001)
    journal_call(state, "01", 0.002)  # the running section's next call
    journal_call(state, "02", 0.010)
    assert board.spent().cost_usd == pytest.approx(0.013)
    journal_call(state, "outline", 0.100)
    assert board.spent().cost_usd == pytest.approx(0.113)
    assert board.spent() == run_spending({"provider": "deepseek"}, state)


def test_drawn_lines_are_computed_again_only_at_a_redraw_or_the_end(tmp_path):
    """Rich draws the board under every printed line, in the job that printed it: those draws
    reuse the last lines; the display's timed refresh (redraw) and the run's end compute
    them again."""
    state = tmp_path / ".bookgen"
    clock = FakeClock()
    board = Board(state_root=state, clock=clock, run=RunInfo({}, [], 2))
    board.job_times = {}
    start_count(0, 2, state)
    assert board.drawn_lines()[0].endswith("0/2 sections done · 0 running · 2 pending · 0 failed")
    with next_count(2, state):
        pass
    clock.t += 60
    assert "0/2 sections done" in board.drawn_lines()[0]
    board.redraw()
    assert "1/2 sections done" in board.drawn_lines()[0]
    with next_count(2, state):
        pass
    assert "1/2 sections done" in board.drawn_lines()[0]
    board.end()
    assert "2/2 sections done" in board.drawn_lines()[0]


def test_the_board_is_drawn_about_once_a_second_but_not_in_a_hand_over():
    """A slot that has just finished a section (its line, then Snakemake's job events) sends
    its next request some 40 ms later: a due draw waits QUIET_S after the last sign of it,
    and waits no longer than LATE_S when the signs never stop."""
    clock = FakeClock()
    timer = DrawTimer(clock=clock)
    assert timer.wait_s() == pytest.approx(DRAW_EVERY_S)
    clock.t += DRAW_EVERY_S
    assert timer.wait_s() == 0  # nothing going on: draw now
    timer.drawn()
    clock.t += DRAW_EVERY_S - 0.05
    timer.activity()  # a section's "[N/M]" line, just before the draw is due
    assert timer.wait_s() == pytest.approx(0.05)  # not due yet
    clock.t += 0.05
    assert timer.wait_s() == pytest.approx(QUIET_S - 0.05)  # due, but a hand-over is going on
    clock.t += 0.04
    timer.activity()  # Snakemake's job events of the same hand-over
    assert timer.wait_s() == pytest.approx(QUIET_S)
    clock.t += QUIET_S
    assert timer.wait_s() == 0
    timer.drawn()
    # Sections ending faster than QUIET_S apart: the draw is late, never later than LATE_S.
    waited = 0.0
    while timer.wait_s() > 0:
        clock.t += 0.1
        waited += 0.1
        timer.activity()
    assert waited == pytest.approx(DRAW_EVERY_S + LATE_S)


def test_held_lines_keep_whole_lines_for_the_display_to_print():
    real = io.StringIO()
    written = []
    held = HeldLines(real, on_write=lambda: written.append(1))
    held.write("[1/2] section_01 done\n[2/2] sec")
    assert held.take() == "[1/2] section_01 done"
    assert held.take() == ""
    held.write("tion_02 done\n")
    held.write("no newline yet")
    assert held.take() == "[2/2] section_02 done"
    assert held.take(everything=True) == "no newline yet"
    assert real.getvalue() == ""  # the display prints them, the writer does not
    assert len(written) == 3  # each write tells the display's timer (a job finished a section)
    assert held.getvalue() == ""  # what it does not have is the real stream's

    def write(n: int) -> None:  # jobs are threads: each line stays whole
        for i in range(200):
            held.write(f"[{n}.{i}] section done\n")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = held.take().split("\n")
    assert sorted(lines) == sorted(f"[{n}.{i}] section done" for n in range(4) for i in range(200))


def test_stderr_scrolls_above_the_board_and_a_second_ctrl_c_gives_the_terminal_back(
    tmp_path, monkeypatch
):
    """While the board is up, a line written to stderr is printed above it at once (after the
    lines held from stdout); a second Ctrl-C (which ends the process at once) first writes the
    held lines below the board and shows the cursor rich hid."""
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # put back after the test
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    terminal = io.StringIO()
    board = Board(state_root=tmp_path / ".bookgen", run=RunInfo({}, [], 2))
    board.job_times = {}
    live = BoardLive(board, hold_stdout=True, console=Console(file=terminal, force_terminal=True))
    live.start()
    try:
        print("[1/3] section_01 done")
        assert "section_01" not in terminal.getvalue()  # held until the next draw
        print("bookgen: a warning", file=sys.stderr)
        shown = terminal.getvalue()
        assert shown.index("[1/3] section_01 done") < shown.index("bookgen: a warning")
        print("[2/3] section_02 done")
        interrupt.run_before_hard_exit()
        assert terminal.getvalue().endswith("\n[2/3] section_02 done\n" + SHOW_CURSOR)
        assert not isinstance(sys.stdout, HeldLines) and not isinstance(sys.stderr, HeldLines)
    finally:
        live.stop()
    before = len(terminal.getvalue())
    interrupt.run_before_hard_exit()  # a display that has ended does nothing more
    assert len(terminal.getvalue()) == before
