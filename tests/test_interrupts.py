"""Ctrl-C and kill -9 in the middle of a real run: nothing half-written is taken as finished,
the next plain run generates only what is missing, and no section is paid for twice."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import time

from bookgen.money.pricing import format_usd
from bookgen.provider.journal import CallJournal
from bookgen.writing.section import UNFINISHED_CALL
from tests.book import Book
from tests.loopback import LoopbackSimulator

# About 450 tokens a section at 400 tokens/s: ~1.3 s each, slow enough to interrupt mid-section.
SLOW = {"ttft_s": 0.2, "tokens_per_s": 400, "words_factor": 0.2}
# The sections are a fifth of their target on purpose (fast): quality control only checks
# (and flags) them, or its repairs would be calls this test does not count.
CHECK_ONLY = {"qc": {"max_attempts": 0, "on_fail": "warn"}}
KEY = {"DEEPSEEK_API_KEY": "sk-interrupt-test"}


def start(book: Book) -> subprocess.Popen:
    return book.start("--cores", "2", env=KEY)


def assert_finished_sections_are_whole(book: Book) -> None:
    for md in (book.path / "output").glob("section_*.md"):
        text = md.read_text()
        usage = book.json(f"output/usage/{md.stem}.json")
        assert usage["calls"][-1]["finish_reason"] == "stop", md
        assert text.rstrip().endswith((".", "!", "?")), md
        assert "### Summary" in text, md
    assert not list((book.path / "output").glob(".*.tmp")), "a temporary file was left behind"


def assert_each_section_billed_once(sim: LoopbackSimulator) -> None:
    reported = [e for e in sim.ledger()["entries"] if e["reported_to_client"]]
    per_section = collections.Counter(e["section"] for e in reported)
    assert per_section == {n: 1 for n in range(1, 12)}, per_section


def journal(book: Book, name: str) -> list[dict]:
    path = book.journal(name.removeprefix("section_"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def resume(book: Book) -> str:
    """The same command again; its console output."""
    proc = book.run("--cores", "2", env=KEY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(book.sections()) == 11
    assert_finished_sections_are_whole(book)
    assert book.pending() == {}
    return proc.stdout + proc.stderr


def snakemake_finished_sections(book: Book) -> list[str]:
    """The section files whose jobs Snakemake's log of the (only) run so far says finished."""
    (log,) = (book.path / ".snakemake" / "log").glob("*.snakemake.log")
    text = log.read_text()
    sids = dict(re.findall(r"^Job (\d+): Writing section (\d+)", text, re.MULTILINE))
    done = re.findall(r"^Finished jobid: (\d+) \(Rule: section\)", text, re.MULTILINE)
    return sorted(f"section_{sids[job]}.md" for job in done)


def test_ctrl_c_mid_run_then_resume(tmp_path):
    with LoopbackSimulator(tmp_path / "sim", SLOW) as sim:
        book = Book(
            tmp_path / "book", {"provider": "deepseek", "base_url": sim.base_url, **CHECK_ONLY}
        )
        proc = start(book)
        streaming = book.wait_mid_run(proc)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) != 0
        assert 2 <= len(book.sections()) < 11
        assert_finished_sections_are_whole(book)
        # The stream in flight was abandoned at once, and what it cost so far is on record.
        cut = [c for name in streaming for c in journal(book, name)]
        assert any("interrupted (Ctrl-C)" in (c["error"] or "") for c in cut), cut
        # A section Snakemake saw finish before the interrupt is kept, not rewritten. (One whose
        # job was ending as Ctrl-C came is incomplete to Snakemake: the rerun puts its kept
        # text back, no request, which assert_each_section_billed_once below checks.)
        finished = snakemake_finished_sections(book)
        assert finished, "no section finished before the interrupt"
        output = book.path / "output"
        before = {name: (output / name).stat().st_mtime_ns for name in finished}
        console = resume(book)
        after = {name: (output / name).stat().st_mtime_ns for name in finished}
        rewritten = [name for name, mtime in before.items() if after[name] != mtime]
        assert not rewritten, (rewritten, console[-4000:])
        assert_each_section_billed_once(sim)


def test_kill_9_mid_run_then_plain_rerun(tmp_path):
    with LoopbackSimulator(tmp_path / "sim", SLOW) as sim:
        book = Book(
            tmp_path / "book", {"provider": "deepseek", "base_url": sim.base_url, **CHECK_ONLY}
        )
        proc = start(book)
        streaming = book.wait_mid_run(proc)
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as `kill -9 PID` does
        proc.wait(timeout=30)
        assert_finished_sections_are_whole(book)
        # No --unlock needed, and nothing is paid twice.
        out = resume(book)
        assert_each_section_billed_once(sim)
        # The call cut by the kill stays on the bill: a failed call, its input estimated.
        lost = [
            c
            for name in streaming
            for c in book.json(f"output/usage/{name}.json")["calls"]
            if c["error"] == UNFINISHED_CALL
        ]
        assert lost and all(c["estimated_prompt_tokens"] > 0 for c in lost), streaming
        report = book.json("output/cost_report.json")
        assert report["totals"]["failed_calls"] >= len(lost)
        # The last "so far" line and the cost report count the same money, the cut call's
        # estimate apart in both.
        t = report["totals"]
        spent, cut = format_usd(t["cost_usd"]), format_usd(t["estimated_cost_usd"])
        assert t["estimated_cost_usd"] > 0, t
        last = re.search(r"^\[11/11\] section_\d\d done · (.*) so far (.*)$", out, re.M)
        assert last and last[1] == spent, (out[-2000:], spent)
        assert last[2].startswith(f"(+ {cut} estimated for cut calls)"), (last[0], cut)
        md = (book.path / "output" / "cost_report.md").read_text()
        assert f"**Total spent: {spent}**" in md and f"({cut})." in md, md


def test_ctrl_c_before_the_first_token_exits_at_once(tmp_path):
    """Every request queued for 60 s, keep-alives only (no chunk to check the stop flag
    between): Ctrl-C shuts the connections down instead of waiting for the first token."""
    queued = {"faults": [{"kind": "queued", "duration_s": 60}], "keepalive_interval_s": 0.5}
    with LoopbackSimulator(tmp_path / "sim", queued) as sim:
        book = Book(
            tmp_path / "book", {"provider": "deepseek", "base_url": sim.base_url, **CHECK_ONLY}
        )
        proc = start(book)
        logs = book.path / "output" / "logs"
        deadline = time.monotonic() + 60
        while len([p for p in logs.glob("section_*.log") if "requesting" in p.read_text()]) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # the requests are on the wire, answered by keep-alives only
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        assert proc.wait(timeout=60) != 0
        elapsed = time.monotonic() - t0
        assert elapsed < 5, elapsed  # was bounded only by the queue (or generation.timeout_s)
        calls = book.path / ".bookgen" / "calls"
        cut = [c for path in calls.glob("*.jsonl") for c in CallJournal(path).records()]
        assert len(cut) == 2 and all("interrupted (Ctrl-C)" in c["error"] for c in cut), cut
