"""`bookgen estimate` before spending: from the outline it lands within ±30% of what the demo
book then costs; it reads only files and the config, and agrees with Snakemake on what is
pending."""

from __future__ import annotations

import json

import pytest

from bookgen.estimate import makespan, render_estimate
from bookgen.pricing import format_usd
from tests.book import Book, pending_sections

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
