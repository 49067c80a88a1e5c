"""Snakemake script for rule `quality_report` (logic in bookgen.quality_report)."""

from pathlib import Path

from bookgen.outline import book_sections
from bookgen.quality_report import write_quality_report

sm = snakemake  # noqa: F821  (injected by Snakemake)
report = write_quality_report(
    sm.config,
    book_sections(sm.config),
    list(sm.input.md),
    list(sm.input.usage),
    Path(sm.output.json),
    Path(sm.output.md),
)
t = report["totals"]
summary = [
    f"quality report: {t['passed']} of {t['sections']} sections pass every check, "
    f"{t['flagged']} flagged; {t['repairs']} repair(s)",
    *(
        f"warning: sections {p['sections'][0]} and {p['sections'][1]} overlap "
        f"{p['overlap']:.0%} (see output/quality_report.md)"
        for p in report["overlapping_pairs"]
    ),
    *(
        f"warning: section {u['section']} does not cover its key point {u['key_point']!r}"
        for u in report["uncovered_key_points"]
    ),
]
Path(sm.log[0]).write_text("\n".join(summary) + "\n")
print("\n".join(summary))
