"""``schedule: off_peak``: calls wait for the end of the model's peak window, say so once with
the saving, and Ctrl-C ends the wait at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bookgen import interrupt
from bookgen.config import sections_from_config
from bookgen.money import schedule
from bookgen.money.pricing import format_usd
from bookgen.writing.errors import SectionFailed
from bookgen.writing.section import SectionWriter
from tests.book import Book
from tests.conftest import load_config
from tests.test_faults import ledger, make_job

MONDAY_PEAK = datetime(2026, 11, 23, 9, 58, 30, tzinfo=UTC)  # peak until 10:00


class FakeClock:
    """bookgen's clock for one test: ``sleep`` advances it instead of waiting."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def fresh_run(monkeypatch, tmp_path):
    """A new run: no wait announced yet, no stop requested, an empty book directory."""
    monkeypatch.setattr(schedule, "_messages", {})
    monkeypatch.chdir(tmp_path)
    interrupt.reset()
    yield
    interrupt.reset()


def wait(config: dict, start: datetime) -> tuple[FakeClock, list[str]]:
    clock, log = FakeClock(start), []
    sections = sections_from_config(config)
    schedule.wait_for_off_peak(config, sections, log.append, clock.now, clock.sleep)
    return clock, log


def test_a_call_in_peak_waits_for_the_window_to_end(capsys):
    config = load_config({"schedule": "off_peak"})
    clock, log = wait(config, MONDAY_PEAK)
    assert clock.t == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert clock.sleeps == [60.0, 30.0]  # the clock is read again at least every minute
    saving = schedule.pending_saving(config, sections_from_config(config))
    assert saving and saving > 0
    (line,) = log
    assert line.startswith(f"waiting for off-peak at 10:00 UTC, saves about {format_usd(saving)}")
    assert capsys.readouterr().out == f"bookgen: {line}\n"


def test_the_console_line_is_printed_once_per_run(capsys):
    config = load_config({"schedule": "off_peak"})
    _, first = wait(config, MONDAY_PEAK)
    _, second = wait(config, MONDAY_PEAK + timedelta(seconds=20))  # another section, same wait
    assert first == second  # each section's log has it...
    assert capsys.readouterr().out.count("waiting for off-peak") == 1  # ...the console once


@pytest.mark.parametrize(
    ("overrides", "start"),
    [
        ({"schedule": "now"}, MONDAY_PEAK),  # the default: pay peak rates
        ({"schedule": "off_peak"}, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),  # off-peak now
        ({"schedule": "off_peak"}, datetime(2026, 11, 28, 9, 0, tzinfo=UTC)),  # Saturday
        ({"schedule": "off_peak", "model": "flat-model"}, MONDAY_PEAK),  # no peak prices
        ({"schedule": "off_peak", "model": "unpriced-model"}, MONDAY_PEAK),
    ],
)
def test_no_wait(overrides, start, capsys):
    config = load_config(overrides)
    config["prices"]["flat-model"] = {"cache_hit": 0.1, "cache_miss": 1.0, "output": 2.0}
    clock, log = wait(config, start)
    assert clock.sleeps == [] and log == []
    assert capsys.readouterr().out == ""


def test_wait_across_a_weekend_names_the_day():
    config = load_config({"schedule": "off_peak"})
    config["prices"]["deepseek-flash"]["peak"]["hours_utc"] = ["22:00-02:00"]
    clock, log = wait(config, datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # Friday night
    assert clock.t == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert log[0].startswith("waiting for off-peak at Sat 2026-11-28 02:00 UTC, saves about $")


def test_a_peak_that_never_ends_is_not_waited_for():
    config = load_config({"schedule": "off_peak"})
    config["prices"]["deepseek-flash"]["peak"]["hours_utc"] = ["00:00-24:00"]
    config["prices"]["deepseek-flash"]["peak"].pop("weekdays")
    clock, log = wait(config, MONDAY_PEAK)
    assert clock.sleeps == [] and "never end" in log[0]


def test_ctrl_c_ends_the_wait_at_once_and_no_request_starts(tmp_path):
    # The pinned clock is a Saturday noon: make all of Saturday peak, so the writer would wait
    # until Sunday 00:00 on the real (interruptible) sleep.
    peak = {"hours_utc": ["00:00-24:00"], "weekdays": ["Sat"]}
    job = make_job(tmp_path, schedule="off_peak")
    job.config["prices"]["deepseek-flash"]["peak"].update(peak)
    writer = SectionWriter(job)
    outcome: list = []

    def run() -> None:
        try:
            writer.write()
        except SectionFailed as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    threading.Timer(0.5, interrupt.request_stop).start()
    thread.join(10)
    assert not thread.is_alive(), "the off-peak wait did not end at Ctrl-C"
    assert "not started: the run was interrupted" in str(outcome[0])
    assert writer.journal.records() == [] and ledger(job).ledger() == []
    assert "waiting for off-peak at 00:00 UTC" not in job.log.read_text()  # another day
    assert "waiting for off-peak at Sun 2026-12-06 00:00 UTC" in job.log.read_text()


# -- real snakemake runs ------------------------------------------------------------------------

THREE = [
    {"title": f"Topic {n}", "key_points": [f"idea {n}a", f"idea {n}b"], "words": 300}
    for n in range(1, 4)
]
PEAK_END = "2026-11-23T10:00:00"  # a Monday: DeepSeek's 06:00-10:00 UTC peak window ends


def test_an_off_peak_run_waits_for_the_window_to_end(tmp_path):
    """The clock starts 15 s before a peak window ends (snakemake takes a few of them to start):
    the run says once that it waits, and no call starts, or is billed, before 10:00."""
    book = Book(tmp_path / "book", {"sections": THREE, "schedule": "off_peak"})
    proc = book.run("--cores", "2", env={"BOOKGEN_CLOCK": "2026-11-23T09:59:45Z"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    waits = [line for line in proc.stdout.splitlines() if "waiting for off-peak" in line]
    assert len(waits) == 1, proc.stdout
    assert waits[0].startswith("bookgen: waiting for off-peak at 10:00 UTC, saves about $")
    calls = [c for n in (1, 2, 3) for c in book.json(f"output/usage/section_{n:02d}.json")["calls"]]
    assert calls and all(c["started_at"] >= PEAK_END for c in calls), calls
    assert {c["rates"]["period"] for c in calls} == {"off-peak"}
    assert set(book.json("output/cost_report.json")["price_table"]["deepseek-flash"]) == {
        "off-peak"
    }
    logs = [(book.path / f"output/logs/section_{n:02d}.log").read_text() for n in (1, 2, 3)]
    assert any("waiting for off-peak at 10:00 UTC" in log for log in logs)


def test_ctrl_c_during_the_off_peak_wait_stops_the_run_at_once(tmp_path):
    book = Book(tmp_path / "book", {"sections": THREE, "schedule": "off_peak"})
    clock = {"BOOKGEN_CLOCK": "2026-11-23T09:00:00Z"}  # an hour before the peak window ends
    with (tmp_path / "console.txt").open("w") as console:
        proc = book.start("--cores", "2", env=clock, output=console)
        try:
            deadline = time.monotonic() + 120
            while "waiting for off-peak" not in (tmp_path / "console.txt").read_text():
                assert proc.poll() is None and time.monotonic() < deadline, "no wait began"
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)
            stopped = time.monotonic()
            assert proc.wait(timeout=60) != 0
            assert time.monotonic() - stopped < 20  # not the hour the wait had left
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert "waiting for off-peak at 10:00 UTC" in (tmp_path / "console.txt").read_text()
    assert book.sections() == []
    assert not list((book.path / ".bookgen" / "calls").glob("*.jsonl"))  # no call started
