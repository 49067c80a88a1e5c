"""The rules' jobs: each rule's ``run:`` block calls one function here, with Snakemake's objects.

The profile runs these in threads of the Snakemake process (``force-use-threads``): a job then
costs no new interpreter and no fresh ``import openai`` (about 1.2 CPU-s per section job as a
``script:``), so the next section's request follows the last one's reply within milliseconds.
The logic lives in the modules these call; a failure is raised as ``JobFailed`` with a message
that says what to do, which Snakemake prints under the rule's name.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.formats.book import BookFormatError, write_book_md, write_format
from bookgen.money.pricing import format_usd
from bookgen.money.report import book_cost_report, save_cost_report
from bookgen.run.cluster import slurm_job_line
from bookgen.run.progress import ProgressLog, announce
from bookgen.writing.errors import SectionFailed
from bookgen.writing.outline import book_sections, write_outline
from bookgen.writing.parts import run_part_job, run_plan_job
from bookgen.writing.quality_report import write_quality_report
from bookgen.writing.section import SectionJob, run_section_job


class JobFailed(Exception):
    """A job could not make its outputs; the message says why and what to do."""


def section(config: dict[str, Any], sid: str, params: Any, output: Any, log: Any) -> None:
    """Rule ``section``: write one section and its usage file (bookgen.writing.section)."""
    sections = book_sections(config)
    job = SectionJob(
        config=config,
        sections=sections,
        section=next(s for s in sections if s.id == sid),
        fingerprint=dict(params.items()),
        out_md=Path(output.md),
        out_usage=Path(output.usage),
        log=Path(log[0]),
    )
    on_cluster_node(job.log, f"section_{sid}")
    try:
        run_section_job(job)
    except SectionFailed as e:
        raise JobFailed(f"section_{sid} failed: {e}") from None


def on_cluster_node(log: Path, label: str) -> None:
    """In a SLURM job: name the job in the log (for `scontrol show job` and its kept log). (The
    watch that stops a cancelled job starts with the job step's Snakemake: rules/common.smk.)"""
    where = slurm_job_line()
    if not where:
        return
    progress = ProgressLog(log, label)
    progress.line(where)
    progress.close()


def _planned_job(config: dict[str, Any], key: str, params: Any, **paths_: Any) -> Any:
    """The SectionJob of the section with ``key`` (a plan or part job)."""
    sections = book_sections(config)
    section = next((s for s in sections if s.key == key), None)
    if section is None:
        raise JobFailed(f"no section of the book has the key {key!r} (was it edited away?)")
    return SectionJob(
        config=config,
        sections=sections,
        section=section,
        fingerprint=dict(params.items()),
        output_root=paths.OUTPUT,
        **paths_,
    )


def plan(config: dict[str, Any], key: str, params: Any, output: Any, log: Any) -> None:
    """Checkpoint ``plan``: a planned section's plan (bookgen.writing.parts)."""

    plan_file = Path(output.plan)
    job = _planned_job(config, key, params, out_md=plan_file, out_usage=plan_file, log=Path(log[0]))
    on_cluster_node(job.log, f"section_{job.section.id}")
    try:
        run_plan_job(job)
    except SectionFailed as e:
        raise JobFailed(f"section_{job.section.id}'s plan failed: {e}") from None


def part(config: dict[str, Any], key: str, number: int, params: Any, output: Any, log: Any) -> None:
    """Rule ``part``: one part of a planned section (bookgen.writing.parts)."""
    job = _planned_job(
        config,
        key,
        params,
        out_md=Path(output.md),
        out_usage=Path(output.usage),
        log=Path(log[0]),
        part=number,
    )
    on_cluster_node(job.log, f"section_{job.section.id}")
    try:
        run_part_job(job)
    except SectionFailed as e:
        raise JobFailed(f"section_{job.section.id} part {number} failed: {e}") from None


def outline(config: dict[str, Any], output: Any, log: Any) -> None:
    """Checkpoint ``outline``: the outline from the topic (bookgen.writing.outline)."""

    on_cluster_node(Path(log[0]), "outline")
    try:
        write_outline(config, Path(output.outline), Path(output.usage), Path(log[0]))
    except SectionFailed as e:
        raise JobFailed(f"the outline could not be written: {e}") from None


def cost_report(config: dict[str, Any], input: Any, output: Any, params: Any, log: Any) -> None:
    """Rule ``cost_report``: merge the usage files, and every journaled call no usage file
    lists (earlier versions, removed sections), so the total is what the book cost
    (bookgen.money.report)."""
    report = book_cost_report(list(input), params.title, book_sections(config))
    save_cost_report(report, output.json, output.md)
    t = report["totals"]
    simulated = (
        f" (simulated calls would have cost {format_usd(t['simulated_cost_usd'])}, not billed)"
        if t["simulated_calls"]
        else ""
    )
    _summarise(
        log,
        [
            f"cost report: {t['calls']} calls, {format_usd(t['cost_usd'])} spent{simulated}",
            *(f"warning: {w}" for w in report["warnings"]),
        ],
    )


def quality_report(config: dict[str, Any], input: Any, output: Any, log: Any) -> None:
    """Rule ``quality_report``: checks, overlaps and uncovered items
    (bookgen.writing.quality_report)."""

    report = write_quality_report(
        config,
        book_sections(config),
        list(input.md),
        list(input.usage),
        Path(output.json),
        Path(output.md),
    )
    t = report["totals"]
    _summarise(
        log,
        [
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
        ],
    )


def book_md(config: dict[str, Any], input: Any, output: Any, log: Any) -> None:
    """Rule ``book_md``: assemble the sections into ``book.md`` (bookgen.formats.book)."""
    sections = book_sections(config)
    simulated = {
        s.id
        for s in sections
        if json.loads(paths.section_usage(s.id).read_text(encoding="utf-8"))["simulated"]
    }
    write_book_md(config, sections, [Path(p) for p in input], Path(output[0]), simulated)
    Path(log[0]).write_text(f"book.md: {len(sections)} sections assembled\n")


def book_format(fmt: str, input: Any, output: Any, log: Any) -> None:
    """Rule ``book_format``: ``book.md`` to HTML, EPUB or PDF (bookgen.formats.book)."""
    try:
        write_format(Path(input[0]), fmt, Path(output[0]))
    except BookFormatError as e:
        raise JobFailed(f"book.{fmt} failed: {e}") from None
    Path(log[0]).write_text(f"book.{fmt}: {Path(output[0]).stat().st_size:,} bytes\n")


def release_exit() -> None:
    """Cancel Snakemake's leftover re-scheduling timers once every job is done.

    Its job-rate limiter (``--max-jobs-per-timespan``, default 100/1s) starts a one-second
    ``threading.Timer`` on every scheduling pass; the interpreter waits for the last one before
    it exits, which added up to a second to every run. Cancelling them only skips a wake-up
    of a scheduler that has already finished.
    """
    for thread in threading.enumerate():
        function = getattr(thread, "function", None)
        if isinstance(thread, threading.Timer) and "_schedule_reevalutation" in getattr(
            function, "__qualname__", ""
        ):
            thread.cancel()


def _summarise(log: Any, lines: list[str]) -> None:
    """Print a report's summary and keep it in the job's log."""
    Path(log[0]).write_text("\n".join(lines) + "\n")
    announce("\n".join(lines))
