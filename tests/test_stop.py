"""Stopping a run in the middle: Ctrl-C abandons the streams in flight and records what their
calls cost; a call whose process is killed outright is still on the bill, as an estimate."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from bookgen import interrupt, paths
from bookgen.money.usage import sum_calls
from bookgen.provider.journal import CallJournal
from bookgen.writing.errors import SectionFailed
from bookgen.writing.section import UNFINISHED_CALL, SectionWriter
from tests.conftest import REPO
from tests.test_faults import ledger, make_job

# About 4 s a section: long enough to be mid-stream when the stop comes.
SLOW = {"ttft_s": 0.05, "tokens_per_s": 150}


@pytest.fixture(autouse=True)
def fresh_stop_flag():
    interrupt.reset()
    yield
    interrupt.reset()


def write_in_thread(writer: SectionWriter) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(writer.write())
        except SectionFailed as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_ctrl_c_abandons_the_stream_and_records_what_it_cost(tmp_path):
    job = make_job(tmp_path, sim=SLOW)
    writer = SectionWriter(job)
    thread, outcome = write_in_thread(writer)
    threading.Timer(1.0, interrupt.request_stop).start()
    thread.join(20)
    assert not thread.is_alive(), "the writer did not stop at Ctrl-C"
    assert isinstance(outcome[0], SectionFailed) and "interrupted (Ctrl-C)" in str(outcome[0])
    calls = writer.journal.records()
    assert len(calls) == 1
    cut = calls[0]
    assert cut["status"] == "failed" and "interrupted (Ctrl-C)" in cut["error"]
    assert not cut["usage_reported"]
    assert cut["estimated_prompt_tokens"] > 0 and cut["estimated_completion_tokens"] > 0
    assert cut["estimated_cost_usd"] > 0
    # The simulated provider billed the call but never reported its usage to us.
    (entry,) = ledger(job).ledger()
    assert entry["reported_to_client"] is False
    assert entry["finish_reason"] is None  # it was still generating when abandoned
    assert not job.out_md.exists()


def test_no_request_starts_after_ctrl_c(tmp_path):
    job = make_job(tmp_path)
    interrupt.request_stop()
    with pytest.raises(SectionFailed, match="not started: the run was interrupted"):
        SectionWriter(job).write()
    assert ledger(job).ledger() == []


def test_a_retry_wait_ends_at_ctrl_c(tmp_path):
    job = make_job(
        tmp_path,
        faults=[{"kind": "http_503", "section": 2}],
        retry={"initial_delay_s": 60, "max_delay_s": 60, "max_attempts": 5},
    )
    writer = SectionWriter(job)  # the real wait (bookgen.interrupt.sleep), not a recorder
    thread, outcome = write_in_thread(writer)
    threading.Timer(0.5, interrupt.request_stop).start()
    thread.join(20)
    assert not thread.is_alive(), "the 60 s retry wait did not end at Ctrl-C"
    assert "not started: the run was interrupted" in str(outcome[0])
    # the failed attempt, and no retry after the stop
    assert [c["http_status"] for c in writer.journal.records()] == [503]


def unfinished(call_id: str) -> dict:
    return {
        "call_id": call_id,
        "status": "failed",
        "error": UNFINISHED_CALL,
        "usage_reported": False,
        "estimated_prompt_tokens": 900,
        "estimated_cost_usd": 0.0009,
    }


def test_a_call_killed_mid_request_stays_on_the_bill_as_an_estimate(tmp_path):
    journal = CallJournal(tmp_path / "section_03.jsonl")
    journal.begin(unfinished("a"))
    assert [c["status"] for c in journal.records()] == ["failed"]
    assert journal.records(in_flight=lambda: True) == []
    journal.append({"call_id": "a", "status": "ok", "usage_reported": True, "prompt_tokens": 950})
    assert [c["status"] for c in journal.records()] == ["ok"]
    journal.begin(unfinished("b"))  # ...and the process was killed before the reply
    calls = journal.records()
    assert [(c["call_id"], c["status"]) for c in calls] == [("a", "ok"), ("b", "failed")]
    assert calls[1]["error"] == UNFINISHED_CALL and "unfinished" not in calls[1]
    # While the section is being written, its open call is in flight, not failed.
    assert [c["call_id"] for c in journal.records(in_flight=lambda: True)] == ["a"]


def test_the_usage_file_bills_a_call_lost_by_a_killed_run(tmp_path):
    job = make_job(tmp_path)
    CallJournal(paths.calls_journal(job.section.key, job.state_root)).begin(
        {
            **unfinished("lost"),
            "section": "02",
            "purpose": "write",
            "attempt": 1,
            "started_at": "2026-11-27T23:00:00.000+00:00",
            "duration_s": 0,
            "http_status": None,
            "finish_reason": None,
            **dict.fromkeys(
                [
                    "prompt_tokens",
                    "prompt_cache_hit_tokens",
                    "prompt_cache_miss_tokens",
                    "completion_tokens",
                    "reasoning_tokens",
                    "estimated_completion_tokens",
                ],
                0,
            ),
            "cost_usd": 0.0,
            "rates": None,
            "model": "deepseek-flash",
            "request_hash": "x",
        }
    )
    writer = SectionWriter(job)
    text = writer.write()
    doc = writer.usage_document(text, 1.0)  # validated against usage.schema.yaml
    assert [c["status"] for c in doc["calls"]] == ["failed", "ok"]
    totals = sum_calls(doc["calls"])
    assert totals["failed_calls"] == 1 and totals["estimated_prompt_tokens"] == 900


CTRL_C_IN_A_LOOP = """
import asyncio, os, signal, sys
sys.path.insert(0, {repo!r})
from bookgen import interrupt

interrupt.install()
steps = []

async def main():
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside the loop's step
    steps.append("stopping" if interrupt.stopping() else "not stopping")
    await asyncio.sleep(30)

runner = asyncio.Runner()
try:
    runner.run(main())
except KeyboardInterrupt:
    steps.append("interrupted")
runner.close()  # Snakemake's tear-down: cancels what is left, must not wait forever
print(" ".join(steps))
try:
    os.kill(os.getpid(), signal.SIGINT)  # second Ctrl-C: ends the process at once
finally:
    print("not reached")
"""


def test_ctrl_c_in_an_event_loop_interrupts_between_its_steps():
    """Snakemake's main thread runs coroutines on asyncio: the KeyboardInterrupt must come from
    the loop between steps, never from inside them (which can leave a task no step wakes, and a
    tear-down that waits for it forever), and still arrive at once."""
    script = CTRL_C_IN_A_LOOP.format(repo=str(REPO))
    cmd = [sys.executable, "-c", script]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert proc.stdout.split("\n")[0] == "stopping interrupted", proc.stdout + proc.stderr
    assert "not reached" not in proc.stdout and proc.returncode == 130, proc
    assert "Ctrl-C: stopping" in proc.stderr and "second Ctrl-C" in proc.stderr
