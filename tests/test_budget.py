"""budget_usd: no call starts past the budget, calls in flight count at their worst case (so
the budget is never exceeded), simulated calls are never money, the "cost so far" line, and
raising the budget continues where the run stopped. The run tests use the simulator on a
loopback port as if it were the real provider: the money is real money to bookgen."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from bookgen.config import ConfigError
from bookgen.fsutil import append_line
from bookgen.locks import section_lock
from bookgen.money.budget import (
    BudgetReached,
    begin_call,
    book_spending,
    check_budget_config,
    end_call,
    progress_line,
    run_spending,
    spending,
    total_spending,
    worst_case_usd,
)
from bookgen.money.usage import zero_usage
from bookgen.provider.journal import CallJournal
from tests.book import Book, pending_sections, short_sections
from tests.conftest import load_config
from tests.loopback import LoopbackSimulator

CORES = 4
BUDGET = 0.003
SMALL_CALLS = {  # ~300-word sections written in two calls each, lasting a moment
    "sections": short_sections(300),
    "generation": {"max_tokens": 400, "max_continuations": 10},
    "simulator": {"tokens_per_s": 2000},
}
PROGRESS_RE = re.compile(
    r"^\[(\d+)/11\] section_(\d\d) done · \$(\d+\.\d{4}) so far \(([\d,]+) tokens"
)


def call_record(sid: str, cost: float | None, status: str = "ok", simulated: bool = False) -> dict:
    """A journal entry as bookgen.writing.section writes it."""
    return {
        "section": sid,
        "status": status,
        "simulated": simulated,
        "usage_reported": True,
        **zero_usage(),
        "completion_tokens": 100,
        "prompt_tokens": 50,
        "prompt_cache_miss_tokens": 50,
        "estimated_prompt_tokens": 0,
        "estimated_completion_tokens": 0,
        "cost_usd": cost,
        "estimated_cost_usd": None,
        "duration_s": 0.5,
    }


def journal(root: Path, sid: str, *records: dict) -> None:
    for r in records:
        append_line(root / "calls" / f"section_{sid}.jsonl", json.dumps(r))


def request(config: dict) -> dict:
    return {
        "model": config["model"],
        "messages": [{"role": "user", "content": "word " * 400}],
        "max_tokens": config["generation"]["max_tokens"],
    }


def test_worst_case_is_all_input_missed_full_output_at_peak_rates(demo_config):
    peak = demo_config["prices"]["deepseek-flash"]["peak"]
    req = request(demo_config)
    worst = worst_case_usd(demo_config, req)
    assert worst >= (400 * peak["cache_miss"] + req["max_tokens"] * peak["output"]) / 1e6
    assert worst_case_usd({**demo_config, "model": "unpriced"}, {**req, "model": "x"}) is None


def test_no_call_starts_when_spent_plus_worst_case_exceeds_budget(demo_config, tmp_path):
    journal(tmp_path, "01", call_record("01", 0.004), call_record("01", 0.001, status="failed"))
    assert book_spending(tmp_path).cost_usd == pytest.approx(0.005)  # failed attempts count
    worst = worst_case_usd(demo_config, request(demo_config))
    begin_call({**demo_config, "budget_usd": None}, request(demo_config), "a", tmp_path)
    begin_call({**demo_config, "budget_usd": 0.005 + worst}, request(demo_config), "b", tmp_path)
    end_call("b")
    with pytest.raises(BudgetReached, match=r"^budget reached: \$0\.0050 of \$0\.0060 spent"):
        begin_call({**demo_config, "budget_usd": 0.006}, request(demo_config), "c", tmp_path)


def test_calls_in_flight_count_at_their_worst_case_until_journaled(demo_config, tmp_path):
    worst = worst_case_usd(demo_config, request(demo_config))
    config = {**demo_config, "budget_usd": 2.5 * worst}
    begin_call(config, request(demo_config), "first", tmp_path)
    begin_call(config, request(demo_config), "second", tmp_path)
    with pytest.raises(BudgetReached, match=r"more in flight"):
        begin_call(config, request(demo_config), "third", tmp_path)
    end_call("first")  # its record is journaled: now it is spent at what it really cost
    journal(tmp_path, "01", call_record("01", worst / 10))
    begin_call(config, request(demo_config), "third", tmp_path)
    end_call("second")
    end_call("third")


def test_journal_records_follow_the_file_and_ask_about_open_calls_each_time(tmp_path):
    journal = CallJournal(tmp_path / "calls" / "section_01.jsonl")
    journal.append({**call_record("01", 0.001), "call_id": "a"})
    journal.records().clear()  # each caller gets a list of its own
    assert [r["call_id"] for r in journal.records()] == ["a"]
    journal.begin({**call_record("01", None, status="failed"), "call_id": "b"})
    busy = True
    assert [r["call_id"] for r in journal.records(in_flight=lambda: busy)] == ["a"]
    busy = False  # its process died: the begun call counts as failed
    assert [r["call_id"] for r in journal.records(in_flight=lambda: busy)] == ["a", "b"]
    journal.append({**call_record("01", 0.002), "call_id": "b"})
    calls = journal.records(in_flight=lambda: True)
    assert [(r["call_id"], r["cost_usd"]) for r in calls] == [("a", 0.001), ("b", 0.002)]
    assert not any("unfinished" in r for r in calls)


def test_the_book_s_spending_follows_every_journal_and_open_calls_each_time(demo_config, tmp_path):
    """Each journal's spending is kept per version of its file; a journal with a call left open
    is asked about again each time (whether that call counts depends on its section being
    written right now, not on the file)."""
    journal(tmp_path, "01", call_record("01", 0.001))
    journal(tmp_path, "02", call_record("02", 0.002), call_record("02", 0.004, status="error"))
    assert run_spending(demo_config, tmp_path).cost_usd == pytest.approx(0.007)
    assert run_spending(demo_config, tmp_path).calls == 3  # from what was kept: the same
    journal(tmp_path, "01", call_record("01", 0.010))  # the file changed: read again
    assert run_spending(demo_config, tmp_path).cost_usd == pytest.approx(0.017)
    CallJournal(tmp_path / "calls" / "section_03.jsonl").begin(
        {
            **call_record("03", None, status="failed"),
            "call_id": "c",
            "usage_reported": False,
            "estimated_cost_usd": 0.5,
        }
    )
    with section_lock("03", tmp_path):  # being written: its open call is not spent yet
        during = run_spending(demo_config, tmp_path)
    after = run_spending(demo_config, tmp_path)  # its process died: a failed call, estimated
    assert (during.calls, during.failed_calls, during.total_usd) == (4, 1, pytest.approx(0.017))
    assert (after.calls, after.failed_calls) == (5, 2)
    assert after.estimated_cost_usd == pytest.approx(0.5)
    every_call = [
        r for f in sorted((tmp_path / "calls").glob("*.jsonl")) for r in CallJournal(f).records()
    ]
    assert asdict(after) == pytest.approx(asdict(spending(every_call)))
    (tmp_path / "calls" / "section_02.jsonl").unlink()
    assert run_spending(demo_config, tmp_path).calls == 3


def test_simulated_calls_are_never_money(demo_config, tmp_path):
    journal(tmp_path, "01", call_record("01", 0.004, simulated=True), call_record("01", 0.001))
    assert book_spending(tmp_path).cost_usd == pytest.approx(0.001)
    assert book_spending(tmp_path, simulated=True).cost_usd == pytest.approx(0.004)
    real = {**demo_config, "budget_usd": 0.002 + worst_case_usd(demo_config, request(demo_config))}
    begin_call(real, request(demo_config), "real", tmp_path)  # the simulated $0.004 is not spent
    end_call("real")


def test_a_run_whose_budget_is_used_up_starts_no_section(demo_config, tmp_path):
    from bookgen.config import sections_from_config
    from bookgen.money.budget import exhausted_message

    sections = sections_from_config(demo_config)
    journal(tmp_path, "01", call_record("01", 0.0095))
    config = {**demo_config, "budget_usd": 0.01}
    message = exhausted_message(config, sections, tmp_path)
    assert message.startswith("bookgen: budget reached: $0.0095 of $0.0100 spent")
    assert "No section was started" in message and "budget_usd=0.02" in message
    assert exhausted_message({**config, "budget_usd": 1.0}, sections, tmp_path) is None


def test_budget_without_a_price_is_a_config_error():
    config = load_config({"budget_usd": 1.0, "model": "mystery-model"})
    with pytest.raises(ConfigError, match=r"budget_usd.*mystery-model.*prices"):
        check_budget_config(config)
    with pytest.raises(Exception, match="budget_usd"):
        load_config({"budget_usd": -1})


def test_progress_line_format():
    from bookgen.money.budget import Spending

    line = progress_line("04", 3, 11, Spending(0.0456, 24_500, 5, 0))
    assert line == "[3/11] section_04 done · $0.0456 so far (24,500 tokens)"
    assert "cost unknown so far" in progress_line("04", 3, 11, Spending(None, 10, 1, 0))
    simulated = progress_line("04", 3, 11, Spending(0.0456, 24_500, 5, 0, simulated=True))
    assert simulated == (
        "[3/11] section_04 done · simulated, would have cost $0.0456 so far (24,500 tokens)"
    )


def test_total_spending_of_parts_is_the_spending_of_all_their_calls():
    """The live board sums each journal's spending: the same as spending of every call,
    failed, cut (estimated) and unknown-price calls included."""
    cut = {**call_record("02", None), "usage_reported": False, "estimated_cost_usd": 0.0004}
    cut.update(estimated_prompt_tokens=10, estimated_completion_tokens=20)
    groups = [
        [call_record("01", 0.001), call_record("01", 0.002, status="error")],
        [cut, call_record("02", 0.003, simulated=True)],
        [],
    ]
    for simulated in (False, True):
        parts = [spending(g, simulated) for g in groups]
        want = spending([c for g in groups for c in g], simulated)
        assert asdict(total_spending(parts, simulated)) == pytest.approx(asdict(want))
    assert total_spending([], False) == spending([], False)
    unknown = [spending([call_record("03", None)]), spending(groups[0])]
    assert total_spending(unknown).cost_usd is None  # an unknown price stays unknown


KEY = {"DEEPSEEK_API_KEY": "sk-budget-test-0000"}


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The simulator on a loopback port, configured like a real DeepSeek endpoint."""
    with LoopbackSimulator(tmp_path_factory.mktemp("sim"), SMALL_CALLS["simulator"]) as sim:
        yield sim


def real(sim: LoopbackSimulator, budget: float) -> dict:
    return {"provider": "deepseek", "base_url": sim.base_url, **SMALL_CALLS, "budget_usd": budget}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, provider) -> tuple[Book, object]:
    """A book run at --cores 4 with a budget that stops it part-way."""
    book = Book(tmp_path_factory.mktemp("budget") / "book", real(provider, BUDGET))
    proc = book.run("--cores", str(CORES), env=KEY)
    return book, proc


def test_budget_stops_new_calls_and_says_so(stopped):
    book, proc = stopped
    assert proc.returncode != 0
    written, missing = book.sections(), 11 - len(book.sections())
    assert len(written) > 0 and missing > 0
    assert re.search(rf"budget reached: \$\d\.\d{{4}} of \${BUDGET:.4f} spent", proc.stderr)
    assert "Raise budget_usd" in proc.stderr
    status = book.bookgen("status", "--json")
    assert status.returncode == 0, status.stderr
    states = json.loads(status.stdout)["sections"]
    failed = [s for s in states if s["state"] == "failed"]
    assert len(failed) == missing
    assert all(s["detail"].startswith("budget reached: $") for s in failed)


def test_the_budget_is_never_exceeded(stopped):
    book, _ = stopped
    calls = [
        call
        for path in (book.path / ".bookgen" / "calls").glob("*.jsonl")
        for call in CallJournal(path).records()
    ]
    assert calls and not any(c["simulated"] for c in calls)
    spent = book_spending(book.path / ".bookgen").cost_usd
    assert spent == pytest.approx(sum(c["cost_usd"] for c in calls))
    # Sections are threads of one process: a call starts only when spent + the worst case of
    # every call in flight + its own worst case fits, so the total stays within the budget.
    assert 0 < spent <= BUDGET


def test_cost_so_far_line_after_every_finished_section(stopped):
    book, proc = stopped
    lines = [m for m in map(PROGRESS_RE.match, proc.stdout.splitlines()) if m]
    assert sorted(m.group(2) for m in lines) == [s[8:10] for s in book.sections()]
    dollars = [float(m.group(3)) for m in lines]
    spent = book_spending(book.path / ".bookgen").cost_usd
    # printed to 4 decimals: never more than the spending, give or take the rounding
    assert min(dollars) > 0 and max(dollars) <= spent + 0.00005


def test_raising_the_budget_continues_where_it_stopped(stopped, provider):
    book, _ = stopped
    written = {s: book.file(f"output/{s}").read_text() for s in book.sections()}
    proc = book.run("--cores", str(CORES), env=KEY)  # the same budget: still stops, says so
    assert proc.returncode != 0 and "budget reached: $" in proc.stderr
    written = {s: book.file(f"output/{s}").read_text() for s in book.sections()}
    book.set_overrides(real(provider, 5.0))
    missing = {f"section_{i:02d}" for i in range(1, 12)} - {s[:-3] for s in written}
    assert pending_sections(book.pending()) == missing  # the budget is not in any fingerprint
    proc = book.run("--cores", str(CORES), env=KEY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(book.sections()) == 11
    assert all(book.file(f"output/{s}").read_text() == t for s, t in written.items())
    lines = [m for m in map(PROGRESS_RE.match, proc.stdout.splitlines()) if m]
    assert max(int(m.group(1)) for m in lines) == 11
    book.set_overrides(real(provider, 50.0))
    assert book.pending() == {}
