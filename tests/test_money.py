"""Trustworthy money through the real snakemake CLI: the offline demo never stands in for a
real provider, a reply replays only for the endpoint that sold it (as a $0 replay naming the
paying call), and simulated calls are never counted as money."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bookgen.provider.journal import CallJournal
from tests.book import Book, pending_sections, short_sections
from tests.loopback import LoopbackSimulator
from tests.test_topic import SMALL_TOPIC

KEY = {"DEEPSEEK_API_KEY": "sk-money-test-4242"}
SMALL = {"sections": short_sections(300), "formats": []}


def real(sim: LoopbackSimulator) -> dict:
    return {"provider": "deepseek", "base_url": sim.base_url, **SMALL}


def journal(book: Book) -> list[dict]:
    return [
        c
        for path in sorted((book.path / ".bookgen" / "calls").glob("*.jsonl"))
        for c in CallJournal(path).records()
    ]


def requested_sections(sim: LoopbackSimulator) -> set[str]:
    return {e["section"] for e in sim.ledger()["entries"]}


def test_demo_first_then_a_real_run_requests_every_section(tmp_path):
    book = Book(tmp_path / "book", SMALL)
    proc = book.run("--cores", "2")  # the offline demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    demo = book.json("output/cost_report.json")
    assert demo["simulated_sections"] == [f"{i:02d}" for i in range(1, 12)]
    assert demo["totals"]["cost_usd"] == 0 and demo["totals"]["simulated_cost_usd"] > 0

    with LoopbackSimulator(tmp_path / "provider") as sim:
        book.set_overrides(real(sim))
        jobs = book.pending()
        assert len(pending_sections(jobs)) == 11
        assert all("Params have changed" in jobs[s] for s in pending_sections(jobs))
        proc = book.run("--cores", "2", env=KEY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "replayed" not in proc.stdout + proc.stderr
        ledger = sim.ledger()
        assert requested_sections(sim) == set(range(1, 12))  # every section reached it

    report = book.json("output/cost_report.json")
    assert report["simulated"] is False and report["simulated_sections"] == []
    assert report["providers"] == ["deepseek"]
    t = report["totals"]
    assert t["replays"] == 0
    assert t["completion_tokens"] >= ledger["totals"]["completion_tokens"]
    calls = journal(book)
    sent = [c for c in calls if not c["simulated"]]
    assert len(sent) == len(ledger["entries"])
    assert all(c["endpoint"] == sim.base_url and c["provider"] == "deepseek" for c in sent)
    # the demo's simulated calls stay on record but are never money
    assert t["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in sent))
    assert t["simulated_cost_usd"] == pytest.approx(demo["totals"]["simulated_cost_usd"])
    status = json.loads(book.bookgen("status", "--json").stdout)
    assert status["totals"]["cost_usd"] == pytest.approx(t["cost_usd"])
    title_page = book.file("output/book.md").read_text().split("## Contents")[0]
    assert "Simulated" not in title_page


def test_a_reply_replays_only_for_the_endpoint_that_sold_it(tmp_path):
    book = Book(tmp_path / "book", SMALL)
    with LoopbackSimulator(tmp_path / "a") as a, LoopbackSimulator(tmp_path / "b") as b:
        book.set_overrides(real(a))
        assert book.run("--cores", "2", env=KEY).returncode == 0
        paid = len(a.ledger()["entries"])
        first = book.file("output/section_05.md").read_text()

        # Without its kept text (bookgen.writing.history would restore the deleted file with no
        # request at all), the rebuild sends the same requests again: they replay.
        book.forget_kept_texts()
        book.file("output/section_05.md").unlink()
        proc = book.run("--cores", "2", env=KEY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(a.ledger()["entries"]) == paid  # replayed, not bought again
        assert book.file("output/section_05.md").read_text() == first
        usage = book.json("output/usage/section_05.json")
        replays = [c for c in usage["calls"] if c["status"] == "replayed"]
        paying = {c["call_id"] for c in usage["calls"] if c["status"] == "ok"}
        assert replays and all(r["cost_usd"] == 0 and r["replay_of"] in paying for r in replays)
        assert usage["totals"]["calls"] == len(paying) and usage["totals"]["replays"] == 1

        # Another endpoint (same provider and model) is another seller: nothing replays.
        book.forget_kept_texts()
        book.file("output/section_05.md").unlink()
        book.set_overrides(real(b))
        proc = book.run("--cores", "2", env=KEY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert requested_sections(b) == {5}
        assert len(a.ledger()["entries"]) == paid


def test_cache_key_never_holds_credentials_and_ignores_spelling(tmp_path):
    from bookgen.provider.request_identity import endpoint, request_key

    config = {"provider": "deepseek", "base_url": "https://user:sk-secret@API.deepseek.com:443/"}
    assert endpoint(config) == "https://api.deepseek.com"
    same = {"provider": "deepseek", "base_url": "https://api.deepseek.com"}
    req = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert request_key(config, req) == request_key(same, req)
    assert request_key({**same, "provider": "simulator"}, req) != request_key(same, req)
    assert request_key({**same, "base_url": "http://127.0.0.1:8000/v1"}, req) != request_key(
        same, req
    )
    assert request_key(same, {**req, "model": "n"}) != request_key(same, req)
    assert "sk-secret" not in Path(tmp_path).as_posix()  # (nothing written: key is a hash)


KILLED_AFTER_THE_REPLY = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from bookgen.provider.journal import CallJournal
from bookgen.writing.section import SectionWriter
from tests.test_faults import Sleeps, make_job


class DiesBeforeTheRecord(CallJournal):
    def append(self, record):
        if record.get("status") == "ok":  # the reply has arrived: kill -9 right here
            os.kill(os.getpid(), signal.SIGKILL)
        super().append(record)


job = make_job(Path({tmp!r}))
writer = SectionWriter(job, sleep=Sleeps())
writer.journal = DiesBeforeTheRecord(writer.journal.path)
writer.write()
"""


def test_a_reply_is_never_bought_twice_across_a_kill(tmp_path):
    """kill -9 between a reply's arrival and its journal record: the rerun replays the reply
    (the provider served it once) and the section's usage lists that call once, billed in full."""
    import subprocess
    import sys

    from bookgen.writing.section import SectionWriter
    from tests.conftest import REPO
    from tests.test_faults import Sleeps, ledger, make_job

    script = KILLED_AFTER_THE_REPLY.format(repo=str(REPO), tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert proc.returncode == -9, proc.stderr
    job = make_job(tmp_path)
    assert len(ledger(job).ledger()) == 1
    writer = SectionWriter(job, sleep=Sleeps())
    doc = writer.usage_document(writer.write(), 1.0)
    assert len(ledger(job).ledger()) == 1  # not bought again
    calls = doc["calls"]
    assert [c["status"] for c in calls] == ["ok", "replayed"]
    assert calls[1]["replay_of"] == calls[0]["call_id"] and calls[0]["usage_reported"]
    assert doc["totals"]["calls"] == 1 and doc["totals"]["failed_calls"] == 0


def test_a_topic_book_with_a_budget_and_status_shows_what_the_budget_counts(tmp_path):
    """budget_usd works before the outline exists, and `bookgen status` reports the spending the
    budget enforces, the outline's call included, equal to the cost report's total."""
    topic = {**SMALL_TOPIC, "budget_usd": 1.0}
    book = Book(tmp_path / "book")
    with LoopbackSimulator(tmp_path / "provider") as sim:
        book.set_overrides({**topic, "provider": "deepseek", "base_url": sim.base_url})
        proc = book.run("--cores", "2", env=KEY)
        assert proc.returncode == 0, proc.stderr[-3000:]
    report = book.json("output/cost_report.json")
    assert report["sections"][0]["id"] == "outline"
    status = json.loads(book.bookgen("status", "--json").stdout)
    assert status["budget_spent_usd"] == pytest.approx(report["totals"]["cost_usd"])
    assert status["totals"]["cost_usd"] == pytest.approx(report["totals"]["cost_usd"])
    assert report["totals"]["cost_usd"] > sum(
        s["cost_usd"] for s in report["sections"] if s["id"] != "outline"
    )
