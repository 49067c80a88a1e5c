"""`bookgen estimate` before spending: from the outline it lands within ±30% of what the demo
book then costs; it reads only files and the config, and agrees with Snakemake on what is
pending."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bookgen.config import sections_from_config
from bookgen.money.estimate import estimate_book, makespan, pending_job_times, render_estimate
from bookgen.money.pricing import format_usd
from bookgen.run.status import SectionState
from tests.book import Book, pending_sections
from tests.conftest import load_config

ALL = [f"{i:02d}" for i in range(1, 12)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Book:
    """The demo book at full length: estimated first (no key, nothing written), then built."""
    book = Book(tmp_path_factory.mktemp("estimate") / "book")
    proc = book.bookgen("estimate", "--json", "--cores", "2")
    assert proc.returncode == 0, proc.stderr
    book.before = json.loads(proc.stdout)
    assert not (book.path / "output").exists() and not (book.path / ".bookgen").exists()
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return book


def test_estimate_from_the_outline_is_within_30_percent_of_the_demo_books_cost(demo):
    est = demo.before
    assert [r["id"] for r in est["pending"]] == ALL and "outline" in est["assumptions"]["source"]
    report = demo.json("output/cost_report.json")
    actual = report["totals"]
    assert est["totals"]["completion_tokens"] == pytest.approx(actual["completion_tokens"], rel=0.3)
    assert est["totals"]["prompt_tokens"] == pytest.approx(actual["prompt_tokens"], rel=0.3)
    periods = {p for s in report["price_table"].values() for p in s}
    assert len(periods) == 1  # the run did not straddle a peak-hour boundary
    cost = est["totals"]["cost_usd"]
    # simulated: what the calls would have cost at the model's prices
    assert cost["by_period"][periods.pop()] == pytest.approx(actual["simulated_cost_usd"], rel=0.3)
    assert cost["low"] <= cost["expected"] <= cost["high"]
    assert cost["by_period"]["peak"] == pytest.approx(2 * cost["by_period"]["off-peak"])


def test_estimate_after_the_run_compares_itself_with_the_bill(demo):
    proc = demo.bookgen("estimate")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing pending" in proc.stdout
    data = json.loads(demo.bookgen("estimate", "--json").stdout)
    check = data["finished"]
    assert check["sections"] == 11
    assert check["actual_usd"] == pytest.approx(
        demo.json("output/cost_report.json")["totals"]["simulated_cost_usd"]
    )
    assert abs(check["difference"]) <= 0.3
    assert f"{check['difference']:+.0%}" in proc.stdout


def test_estimate_and_status_agree_with_snakemake_on_what_is_pending(demo, tmp_path):
    book = demo.copy(tmp_path / "book")
    book.edit_config(lambda c: c["sections"][3]["key_points"].append("ECC memory"))
    (book.path / "output" / "section_09.md").unlink()
    assert pending_sections(book.pending()) == {"section_04", "section_09"}
    est = json.loads(book.bookgen("estimate", "--json").stdout)
    assert [r["id"] for r in est["pending"]] == ["04", "09"]
    assert "measured" in est["assumptions"]["source"]
    status = json.loads(book.bookgen("status", "--json").stdout)
    states = {s["id"]: (s["state"], s["detail"]) for s in status["sections"]}
    assert states["04"] == ("pending", "spec changed")
    assert states["09"] == ("pending", "not written yet")
    assert {s for s, (state, _) in states.items() if state == "done"} == set(ALL) - {"04", "09"}


def test_estimate_needs_no_key_and_rejects_bad_input_before_anything(demo):
    proc = demo.bookgen("estimate", "--config", "provider=deepseek")
    assert proc.returncode == 0, proc.stderr  # no DEEPSEEK_API_KEY in its environment
    assert "11 section(s) pending" in proc.stdout  # the model changed: every section is redone
    proc = demo.bookgen("estimate", "--config", "budget_usd=-3")
    assert proc.returncode == 2 and "budget_usd" in proc.stderr and "-3" in proc.stderr
    proc = demo.bookgen("status", "--config", "formats=[docx]")
    assert proc.returncode == 2 and "docx" in proc.stderr


def test_wall_time_is_the_longest_first_schedule_on_the_parallel_slots():
    assert makespan([5, 4, 3, 3, 3], 2) == 10  # longest first: 5+3 and 4+3+3
    assert makespan([5, 4, 3], 1) == 12
    assert makespan([2.0] * 8, 8) == 2.0


def test_estimate_for_a_topic_before_its_outline_exists(tmp_path):
    book = Book(
        tmp_path / "topic", {"topic": "Rust for data engineers", "section_count": 3, "sections": []}
    )
    proc = book.bookgen("estimate", "--json")
    assert proc.returncode == 0, proc.stderr
    est = json.loads(proc.stdout)
    assert "not written yet" in est["outline_note"] and "section_count=3" in est["outline_note"]
    assert [r["target_words"] for r in est["pending"]] == [1500, 1500, 1500]
    # The outline call is counted, apart: one call, or asked again up to qc.max_attempts times.
    (outline,) = [k for k in est["other_calls"]["kinds"] if k["kind"] == "outline"]
    assert (outline["calls_low"], outline["calls_high"]) == (1, 3)
    assert 0 < outline["cost_usd_low"] < outline["cost_usd_high"]


MONDAY_PEAK = "2026-11-23T08:30:00Z"  # DeepSeek's peak window runs until 10:00 UTC


def test_estimate_shows_what_waiting_for_off_peak_saves(tmp_path):
    book = Book(tmp_path / "book")
    peak = {"BOOKGEN_CLOCK": MONDAY_PEAK}
    est = json.loads(book.bookgen("estimate", "--json", env=peak).stdout)
    now = est["totals"]["cost_usd"]
    assert now["schedule"] == "now" and now["period_now"] == "peak"
    assert now["expected"] == pytest.approx(now["by_period"]["peak"])
    saving = now["by_period"]["peak"] - now["by_period"]["off-peak"]
    assert saving > 0 and now["off_peak_saving"] == pytest.approx(saving)
    assert now["off_peak_at"] == "2026-11-23T10:00:00+00:00"
    text = render_estimate(est)
    assert "it is peak now; --config schedule=off_peak waits until 10:00 UTC" in text
    assert f"saves about {format_usd(saving)}" in text

    proc = book.bookgen("estimate", "--json", "--config", "schedule=off_peak", env=peak)
    est = json.loads(proc.stdout)
    off = est["totals"]["cost_usd"]
    assert off["schedule"] == "off_peak"  # the run will wait: it is billed off-peak
    assert off["expected"] == pytest.approx(off["by_period"]["off-peak"])
    assert off["off_peak_saving"] == pytest.approx(saving)
    text = render_estimate(est)
    assert f"the run waits until 10:00 UTC, saving about {format_usd(saving)}" in text

    # Off-peak now (the tests' Saturday clock): nothing to wait for, the saving still shown.
    text = book.bookgen("estimate").stdout
    assert f"a peak window, this costs about {format_usd(saving)} more" in text
    flat = book.bookgen("estimate", "--config", "model=flat").stdout
    assert "Off-peak" not in flat  # a model without peak prices (here: no price at all)


SATURDAY = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # off-peak


def state(sid: str, usage: dict | None = None) -> SectionState:
    """A section as bookgen.run.status would describe it: pending, or done with ``usage``."""
    return SectionState(
        id=sid,
        title="",
        target_words=0,
        state="done" if usage else "pending",
        detail="",
        words=None,
        calls=0,
        failed_calls=0,
        simulated_calls=0,
        cost_usd=0.0,
        simulated_cost_usd=0.0,
        simulated=False,
        api_time_s=0.0,
        wall_time_s=None,
        usage=usage,
    )


def call(purpose: str, prompt: int, out: int) -> dict:
    return {
        "purpose": purpose,
        "status": "ok",
        "usage_reported": True,
        "simulated": False,
        "prompt_tokens": prompt,
        "prompt_cache_hit_tokens": 0,
        "completion_tokens": out,
        "estimated_prompt_tokens": 0,
        "estimated_completion_tokens": 0,
        "cost_usd": 0.001,
        "estimated_cost_usd": 0.0,
        "duration_s": 10.0,
        "rates": None,
    }


def usage_doc(sid: str, calls: list[dict], rounds: int) -> dict:
    return {
        "section": sid,
        "calls": calls,
        "wall_time_s": 12.0,
        "totals": {"duration_s": 10.0 * len(calls)},
        "qc": {"attempts": rounds},
    }


def other(est: dict, kind: str) -> dict:
    return next(k for k in est["other_calls"]["kinds"] if k["kind"] == kind)


def test_other_calls_from_the_config_alone(tmp_path, monkeypatch):
    """Before any section exists: repairs from none to qc.max_attempts for every section, a
    plan (and parts) for each section of at least planning.min_words, priced as a range apart
    from the sections' own, and added to it in `with_sections_usd`."""
    monkeypatch.chdir(tmp_path)
    config = load_config({"planning": {"min_words": 1600, "words_per_call": 1000}})
    sections = sections_from_config(config)
    est = estimate_book(config, sections, [state(s.id) for s in sections], 2, now=SATURDAY)
    repair = other(est, "repair")
    assert (repair["calls_low"], repair["calls_high"]) == (0, 2 * 11)
    assert repair["cost_usd_low"] == 0 and repair["cost_usd_high"] > 0
    planned = [s for s in sections if s.words >= 1600]  # 1,600-1,700 words: 2 parts of 1,000
    plan, parts = other(est, "plan"), other(est, "parts")
    assert (plan["calls_low"], plan["calls_high"]) == (len(planned), 3 * len(planned))
    assert parts["calls_low"] == parts["calls_high"] == len(planned)
    assert parts["prompt_tokens_low"] > 0 and parts["completion_tokens_low"] == 0
    o = est["other_calls"]
    assert o["calls_low"] == 2 * len(planned) and o["calls_high"] == 22 + 4 * len(planned)
    cost = est["totals"]["cost_usd"]
    assert o["with_sections_usd"]["low"] == pytest.approx(cost["low"] + o["cost_usd_low"])
    assert o["with_sections_usd"]["high"] == pytest.approx(cost["high"] + o["cost_usd_high"])
    text = render_estimate(est)
    assert f"Other calls, not in the table: {o['calls_low']}–{o['calls_high']} call(s)" in text
    assert "  repair   0–22 call(s)" in text and "qc.max_attempts=2" in text
    # An unknown price stays unknown, never $0.
    est = estimate_book(
        {**config, "model": "mystery"}, sections, [state(s.id) for s in sections], 2, now=SATURDAY
    )
    assert est["other_calls"]["cost_usd_high"] is None
    assert est["other_calls"]["with_sections_usd"] == {"low": None, "high": None}
    assert "unknown – unknown" in render_estimate(est)


def test_repairs_from_the_measured_share_of_sections_repaired(tmp_path, monkeypatch):
    """Once sections are finished: low is the measured share of sections repaired at their
    measured calls, high every section repaired qc.max_attempts rounds, at the measured size;
    the sections' own model no longer counts repair calls as writing."""
    monkeypatch.chdir(tmp_path)
    config = load_config()
    sections = sections_from_config(config)
    docs = {
        "01": usage_doc("01", [call("write", 1000, 2000), call("repair", 3000, 500)], 1),
        "02": usage_doc("02", [call("write", 1000, 2000)], 0),
    }
    states = [state(s.id, docs.get(s.id)) for s in sections]
    est = estimate_book(config, sections, states, 2, now=SATURDAY)
    repair = other(est, "repair")
    # 1 of 2 finished sections repaired, with 1 call: half of the 9 pending; 1 call per round.
    assert (repair["calls_low"], repair["calls_high"]) == (round(9 / 2), 9 * 2)
    assert (
        repair["prompt_tokens_high"] == 18 * 3000 and repair["completion_tokens_high"] == 18 * 500
    )
    assert "1 of 2 finished section(s) needed repairs" in repair["basis"]
    assert est["assumptions"]["completion_per_word"] == pytest.approx(4000 / (1400 + 1500))


def test_pending_job_times_are_the_estimates_without_rendering_prompts(tmp_path, monkeypatch):
    """The live board's ETA model: the estimate's job time of every pending section, from the
    config alone and from finished sections (a long call split at max_tokens included)."""
    monkeypatch.chdir(tmp_path)
    config = load_config({"generation": {"max_tokens": 1000}})
    sections = sections_from_config(config)
    docs = {"01": usage_doc("01", [call("write", 1000, 2000), call("repair", 3000, 500)], 1)}
    for states in (
        [state(s.id) for s in sections],
        [state(s.id, docs.get(s.id)) for s in sections],
    ):
        est = estimate_book(config, sections, states, 2, now=SATURDAY)
        want = {row["id"]: row["job_time_s"] for row in est["pending"]}
        assert pending_job_times(config, sections, states) == want
        assert len(want) == sum(st.usage is None for st in states)
        assert max(row["calls"] for row in est["pending"]) > 1
