"""The cost report from real section runs: totals, unknown prices, Markdown."""

from __future__ import annotations

from bookgen.money.report import build_cost_report, render_markdown
from bookgen.writing.section import SectionWriter
from tests.test_faults import Sleeps, make_job


def usage_doc(tmp_path, number, **overrides):
    job = make_job(tmp_path, number=number, **overrides)
    writer = SectionWriter(job, sleep=Sleeps())
    return writer.usage_document(writer.write(), 1.0)


def test_unknown_price_is_reported_as_unknown_never_zero(tmp_path):
    docs = [usage_doc(tmp_path, n, model="mystery-model-7b") for n in (1, 2)]
    report = build_cost_report(docs, "A book")
    # simulated calls: no money spent, and what they would have cost is unknown, not $0
    assert report["totals"]["cost_usd"] == 0
    assert report["totals"]["simulated_cost_usd"] is None
    assert all(s["simulated_cost_usd"] is None for s in report["sections"])
    assert report["unknown_price_models"] == ["mystery-model-7b"]
    assert "mystery-model-7b" in report["warnings"][0]
    md = render_markdown(report)
    assert "shown apart: unknown" in md


def test_priced_report_sums_sections_and_lists_rates(tmp_path):
    docs = [usage_doc(tmp_path, n) for n in (1, 2, 3)]
    report = build_cost_report(docs, "A book")
    t = report["totals"]
    assert t["sections"] == 3 and t["calls"] == 3
    assert t["prompt_tokens"] == t["prompt_cache_hit_tokens"] + t["prompt_cache_miss_tokens"]
    assert t["cost_usd"] == 0  # simulated: nothing billed
    assert t["simulated_cost_usd"] == sum(d["totals"]["simulated_cost_usd"] for d in docs)
    assert t["simulated_cost_usd"] > 0 and t["simulated_calls"] == 3
    assert set(report["price_table"]) == {"deepseek-flash"}
    assert report["simulated"] is True
    assert report["simulated_sections"] == [d["section"] for d in docs]
    assert all(s["simulated"] for s in report["sections"])
    assert "Simulated text" in render_markdown(report)
