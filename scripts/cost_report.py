"""Snakemake script for rule `cost_report`: merge usage files (logic in bookgen.report)."""

from pathlib import Path

from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.report import build_cost_report, load_usage_docs, render_markdown

sm = snakemake  # noqa: F821  (injected by Snakemake)
report = build_cost_report(load_usage_docs(list(sm.input)), sm.params.title)
atomic_write_json(sm.output.json, report)
atomic_write_text(sm.output.md, render_markdown(report))
total = report["totals"]["cost_usd"]
summary = [
    f"cost report: {report['totals']['calls']} calls, "
    + ("cost unknown" if total is None else f"${total:.4f}"),
    *(f"warning: {w}" for w in report["warnings"]),
]
Path(sm.log[0]).write_text("\n".join(summary) + "\n")
print("\n".join(summary))
