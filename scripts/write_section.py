"""Snakemake script for rule `section`: write one section (logic in bookgen.section)."""

import sys
from pathlib import Path

from bookgen.outline import book_sections
from bookgen.section import SectionFailed, SectionJob, run_section_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
sections = book_sections(sm.config)
sid = sm.wildcards.sid
job = SectionJob(
    config=sm.config,
    sections=sections,
    section=next(s for s in sections if s.id == sid),
    fingerprint=dict(sm.params.items()),
    out_md=Path(sm.output.md),
    out_usage=Path(sm.output.usage),
    log=Path(sm.log[0]),
)
try:
    run_section_job(job)
except SectionFailed as e:
    sys.exit(f"section_{sid} failed: {e}")
