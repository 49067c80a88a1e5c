"""``bookgen reprice``: past calls' costs recomputed from the current price table, the journals,
usage files, cost report and ``bookgen status`` following; nothing regenerated or re-billed."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from bookgen.fsutil import append_line
from bookgen.money.pricing import format_usd
from bookgen.money.reprice import Repriced, reprice_journal
from tests.book import Book
from tests.loopback import LoopbackSimulator

THREE = [
    {"title": f"Topic {n}", "key_points": [f"idea {n}a", f"idea {n}b"], "words": 300}
    for n in range(1, 4)
]
MODEL = "house-model"  # a model with no price in the shipped config
PRICE = {
    "cache_hit": 0.05,
    "cache_miss": 0.5,
    "output": 2.0,
    "peak": {
        "cache_hit": 0.1,
        "cache_miss": 1.0,
        "output": 4.0,
        "hours_utc": ["06:00-10:00"],
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
    },
}
COSTS = ("rates", "cost_usd", "estimated_cost_usd")
MONDAY_PEAK = {"BOOKGEN_CLOCK": "2026-11-23T08:00:00Z"}
KEY = {"DEEPSEEK_API_KEY": "sk-reprice-test-1234"}


def set_price(book: Book, price: dict | None) -> None:
    def edit(config: dict) -> None:
        if price is None:
            config["prices"].pop(MODEL, None)
        else:
            config["prices"][MODEL] = price

    book.edit_config(edit)


def usage_docs(book: Book) -> list[dict]:
    return [book.json(f"output/usage/section_{n:02d}.json") for n in (1, 2, 3)]


def expected_cost(calls: list[dict], price: dict) -> float:
    """The calls at ``price``'s off-peak rates (the tests' clock is a Saturday)."""
    return sum(
        (
            c["prompt_cache_hit_tokens"] * price["cache_hit"]
            + c["prompt_cache_miss_tokens"] * price["cache_miss"]
            + c["completion_tokens"] * price["output"]
        )
        / 1e6
        for c in calls
        if c["usage_reported"] and c["status"] != "replayed"
    )


def without_costs(docs: list[dict]) -> list[list[dict]]:
    return [[{k: v for k, v in c.items() if k not in COSTS} for c in d["calls"]] for d in docs]


def mtimes(book: Book) -> dict[str, int]:
    files = [*(book.path / ".bookgen" / "calls").glob("*.jsonl")]
    files += [*(book.path / "output").glob("usage/*.json"), *(book.path / "output").glob("*.md")]
    files += [*(book.path / "output").glob("cost_report.*")]
    return {str(f): f.stat().st_mtime_ns for f in files}


@pytest.fixture(scope="module")
def unpriced(tmp_path_factory) -> Book:
    """A book written by a real provider (the simulator on loopback) with a model that has no
    price: every cost is unknown. Section 2 was then rebuilt, without its kept text, from the
    response cache (a $0 replay in its journal)."""
    tmp = tmp_path_factory.mktemp("reprice")
    with LoopbackSimulator(tmp / "sim") as sim:
        book = Book(
            tmp / "book",
            {"provider": "deepseek", "base_url": sim.base_url, "sections": THREE, "model": MODEL},
        )
        proc = book.run("--cores", "2", env=KEY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        book.forget_kept_texts()
        book.file("output/section_02.md").unlink()
        proc = book.run("--cores", "2", env=KEY)
        assert proc.returncode == 0, proc.stderr[-3000:]
    report = book.json("output/cost_report.json")
    assert report["totals"]["cost_usd"] is None and report["unknown_price_models"] == [MODEL]
    assert report["totals"]["replays"] >= 1 and not report["simulated"]
    return book


def test_a_price_added_later_turns_unknown_into_money(unpriced):
    book = unpriced
    before_docs = usage_docs(book)
    set_price(book, PRICE)
    # Repriced on a Monday in peak: each call keeps the period of its own start (a Saturday).
    proc = book.bookgen("reprice", env=MONDAY_PEAK)
    assert proc.returncode == 0, proc.stderr
    calls = [c for d in before_docs for c in d["calls"]]
    replays = [c for c in calls if c["status"] == "replayed"]
    assert replays and all(c["cost_usd"] == 0 for c in replays)
    assert f"{len(calls) - len(replays)} call(s) repriced" in proc.stdout
    assert f"spent on this book: unknown -> {format_usd(expected_cost(calls, PRICE))}" in (
        proc.stdout
    )
    docs = usage_docs(book)
    sent = [c for d in docs for c in d["calls"] if c["status"] != "replayed"]
    assert {c["rates"]["period"] for c in sent} == {"off-peak"}
    # Only the costs changed: tokens, times, ids, provider and endpoint are as they were, and
    # a replay still cost nothing.
    assert without_costs(docs) == without_costs(before_docs)
    replayed = [c for d in docs for c in d["calls"] if c["status"] == "replayed"]
    assert [c["cost_usd"] for c in replayed] == [0.0] * len(replays)
    for d in docs:
        assert d["totals"]["cost_usd"] == pytest.approx(expected_cost(d["calls"], PRICE))
    report = book.json("output/cost_report.json")
    assert report["totals"]["cost_usd"] == pytest.approx(expected_cost(calls, PRICE))
    assert report["unknown_price_models"] == [] and report["warnings"] == []
    assert set(report["price_table"][MODEL]) == {"off-peak"}
    md = book.file("output/cost_report.md").read_text()
    assert (
        "unknown" not in md and f"**Total spent: {format_usd(report['totals']['cost_usd'])}**" in md
    )
    status = json.loads(book.bookgen("status", "--json").stdout)
    assert status["totals"]["cost_usd"] == pytest.approx(report["totals"]["cost_usd"])
    # Nothing is regenerated (prices are no section's fingerprint) and the report is current.
    pending = book.pending()
    assert not any(job.startswith(("section_", "cost_report")) for job in pending), pending

    # Running it again changes nothing, not even a file's time.
    stamps = mtimes(book)
    proc = book.bookgen("reprice")
    assert proc.returncode == 0 and "nothing changed" in proc.stdout, proc.stdout
    assert mtimes(book) == stamps

    # A provider's price change: the totals follow (output now 3.0 instead of 2.0 per M).
    raised = {**PRICE, "output": 3.0}
    set_price(book, raised)
    assert book.bookgen("reprice").returncode == 0
    report = book.json("output/cost_report.json")
    assert report["totals"]["cost_usd"] == pytest.approx(expected_cost(calls, raised))
    completion = sum(c["completion_tokens"] for c in calls if c["status"] == "ok")
    assert report["totals"]["cost_usd"] == pytest.approx(
        expected_cost(calls, PRICE) + completion * 1.0 / 1e6
    )
    status = json.loads(book.bookgen("status", "--json").stdout)
    assert status["totals"]["cost_usd"] == pytest.approx(report["totals"]["cost_usd"])

    # And a price removed again is unknown again, never $0.
    set_price(book, None)
    proc = book.bookgen("reprice")
    assert f"no price for model {MODEL!r}" in proc.stdout
    assert book.json("output/cost_report.json")["totals"]["cost_usd"] is None


def test_reprice_waits_for_no_run_and_refuses_during_one(unpriced):
    lock = os.open(unpriced.path / ".bookgen" / "run.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running snakemake holds it
        proc = unpriced.bookgen("reprice")
    finally:
        os.close(lock)
    assert proc.returncode == 2 and "another snakemake run is writing this book" in proc.stderr


def test_a_journal_keeps_every_line_and_only_its_costs_change(tmp_path):
    call = {
        "call_id": "a",
        "model": MODEL,
        "started_at": "2026-11-23T09:59:59.000+00:00",  # Monday, peak
        "status": "failed",
        "usage_reported": False,
        "prompt_tokens": 0,
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 0,
        "completion_tokens": 0,
        "reasoning_tokens": 0,
        "estimated_prompt_tokens": 1_000_000,
        "estimated_completion_tokens": 0,
        "cost_usd": None,
        "estimated_cost_usd": None,
        "rates": None,
    }
    journal = tmp_path / "section_01.jsonl"
    append_line(journal, json.dumps({**call, "unfinished": True}))
    append_line(
        journal,
        json.dumps(
            {**call, "status": "ok", "usage_reported": True, "prompt_cache_miss_tokens": 10}
        ),
    )
    done = Repriced()
    reprice_journal(journal, {MODEL: PRICE}, done)
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert done.calls == 1 and len(lines) == 2 and lines[0]["unfinished"] is True
    assert lines[0]["estimated_cost_usd"] == pytest.approx(1.0)  # peak cache-miss rate
    assert lines[0]["rates"]["period"] == "peak"
    assert lines[1]["cost_usd"] == pytest.approx(10 * 1.0 / 1e6)
    assert lines[1]["estimated_cost_usd"] is None


def test_simulated_calls_stay_simulated(tmp_path):
    """Repricing a simulated book prices what its calls would have cost; none becomes money."""
    book = Book(tmp_path / "book", {"sections": THREE[:2], "model": MODEL, "formats": []})
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = [book.json(f"output/usage/section_{n:02d}.json") for n in (1, 2)]
    set_price(book, PRICE)
    proc = book.bookgen("reprice")
    assert proc.returncode == 0, proc.stderr
    assert "spent on this book: $0.0000 -> $0.0000" in proc.stdout
    assert "simulated calls (never billed) would have cost: unknown -> $" in proc.stdout
    docs = [book.json(f"output/usage/section_{n:02d}.json") for n in (1, 2)]
    assert without_costs(docs) == without_costs(before)
    assert all(c["simulated"] for d in docs for c in d["calls"])
    report = book.json("output/cost_report.json")
    calls = [c for d in docs for c in d["calls"]]
    assert report["totals"]["cost_usd"] == 0  # never money
    assert report["totals"]["simulated_cost_usd"] == pytest.approx(expected_cost(calls, PRICE))
