"""The cost report from real section runs: totals, unknown prices, Markdown."""

from __future__ import annotations

from bookgen.report import build_cost_report, render_markdown
from bookgen.section import SectionWriter
from tests.test_faults import Sleeps, make_job


def usage_doc(tmp_path, number, **overrides):
    job = make_job(tmp_path, number=number, **overrides)
    writer = SectionWriter(job, sleep=Sleeps())
    return writer.usage_document(writer.write(), 1.0)


def test_unknown_price_is_reported_as_unknown_never_zero(tmp_path):
    docs = [usage_doc(tmp_path, n, model="mystery-model-7b") for n in (1, 2)]
    report = build_cost_report(docs, "A book")
    assert report["totals"]["cost_usd"] is None
    assert all(s["cost_usd"] is None for s in report["sections"])
    assert report["unknown_price_models"] == ["mystery-model-7b"]
    assert "mystery-model-7b" in report["warnings"][0]
    md = render_markdown(report)
    assert "**Total: unknown**" in md and "$0.0000" not in md


def test_priced_report_sums_sections_and_lists_rates(tmp_path):
    docs = [usage_doc(tmp_path, n) for n in (1, 2, 3)]
    report = build_cost_report(docs, "A book")
    t = report["totals"]
    assert t["sections"] == 3 and t["calls"] == 3
    assert t["prompt_tokens"] == t["prompt_cache_hit_tokens"] + t["prompt_cache_miss_tokens"]
    assert t["cost_usd"] == sum(d["totals"]["cost_usd"] for d in docs)
    assert t["cost_usd"] > 0
    assert set(report["price_table"]) == {"deepseek-flash"}
    assert report["simulated"] is True
    assert "Simulated run" in render_markdown(report)
