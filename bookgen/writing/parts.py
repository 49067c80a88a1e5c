"""A planned section in the build graph: its plan (checkpoint ``plan``), then each part as a job
of its own (rule ``part``), then the section job assembles, checks and repairs them.

Every part job writes with the section's own bookkeeping (``bookgen.config.Section.key``): its
calls go into the section's journal (marked with their ``part``), so the section's usage file
and the cost report have them all, and a killed run keeps every finished part and what it cost.
Each part holds a lock of its own, so the parts of one section are written at the same time.
A part that fails writes the section's failure note (naming the part): the run's summary and
``bookgen status`` show the section as failed, and the next run retries that part only.
"""

from __future__ import annotations

import time
from typing import Any

from bookgen import paths
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.locks import section_lock
from bookgen.money.usage import sum_calls
from bookgen.writing.errors import SectionFailed
from bookgen.writing.planning import (
    get_plan,
    group_parts,
    joined,
    parallel,
    part_stamp,
    read_plan,
    write_part,
)
from bookgen.writing.prompts import planned_task
from bookgen.writing.section import SectionJob, SectionWriter, failures_noted


def run_plan_job(job: SectionJob) -> None:
    """Checkpoint ``plan``: the section's plan (reused when one is stored for its fingerprint)."""
    writer = SectionWriter(job)
    key = job.section.key
    try:
        note = paths.failure_note(key, job.state_root)
        with failures_noted(writer, note), section_lock(key, job.state_root):
            get_plan(writer, writer.base_messages())
    finally:
        writer.log.close()


def earlier_parts(job: SectionJob, number: int) -> str:
    """The text of parts 1 .. ``number`` - 1 (what a sequential part continues)."""
    key, out = job.section.key, job.output_root
    return joined(
        [paths.part_md(key, k, out).read_text(encoding="utf-8").strip() for k in range(1, number)]
    )


def part_document(
    job: SectionJob, writer: SectionWriter, stamp: dict[str, Any], count: int, t0: float
) -> dict[str, Any]:
    """The part's record beside its text: what it was written for and its own calls."""
    calls = [c for c in writer.journal.records() if c.get("part") == job.part]
    return {
        "section": job.section.id,
        "key": job.section.key,
        "part": job.part,
        "of": count,
        "stamp": stamp,
        "wall_time_s": round(time.monotonic() - t0, 3),
        "calls": calls,
        "totals": sum_calls(calls),
    }


def run_part_job(job: SectionJob) -> None:
    """Rule ``part``: write part ``job.part`` of a planned section from its stored plan."""
    t0 = time.monotonic()
    assert job.part is not None, "a part job names its part"
    writer = SectionWriter(job)
    key = job.section.key
    try:
        with (
            failures_noted(writer, paths.failure_note(key, job.state_root)),
            section_lock(key, job.state_root, part=job.part),
        ):
            plan = read_plan(paths.section_plan(key, job.output_root))
            groups = group_parts(plan, int(job.config["planning"]["words_per_call"]))
            if job.part > len(groups):
                raise SectionFailed(
                    f"the plan has {len(groups)} part(s), not {job.part}; run the section "
                    f"(snakemake output/section_{job.section.id}.md) instead of this part"
                )
            prefix = planned_task(writer.base_messages(), plan)
            written = "" if parallel(job.config) else earlier_parts(job, job.part)
            text = write_part(writer, prefix, groups, job.part, written)
            stamp = part_stamp(job.config, job.fingerprint, plan)
            doc = part_document(job, writer, stamp, len(groups), t0)
            atomic_write_json(job.out_usage, doc)  # the usage first: a text without it is unused
            atomic_write_text(job.out_md, text + "\n")
        writer.log.line(f"done: part {job.part} of {len(groups)}, {len(text.split()):,} words")
    finally:
        writer.log.close()
