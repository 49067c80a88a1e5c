"""Long sections: a plan first (subsections as schema-validated JSON), then the writing in parts.

A section of at least ``planning.min_words`` words is planned; its plan is stored under the
section's key (``output/plans/section_<key>.json``, the ``plan`` checkpoint's output) and reused
while the section's fingerprint is unchanged. The plan's subsections are grouped into parts of at
most about ``planning.words_per_call`` words. In the build graph every part is its own job
(``bookgen.writing.parts``): with ``planning.parallel_parts`` (the default) all at once, each told
the whole plan and what its neighbours cover; else one after another, each seeing the text so far.
The section job then assembles the parts, checks and repairs them. A part whose file is missing
or was written for another plan is written by the section job itself, in order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookgen import paths
from bookgen.config import Section, _digest, is_planned
from bookgen.fsutil import atomic_write_json
from bookgen.writing import history
from bookgen.writing.prompts import (
    parallel_part_messages,
    part_messages,
    plan_messages,
    planned_task,
)
from bookgen.writing.quality import normalise_heading
from bookgen.writing.structured import InvalidReply, request_json

if TYPE_CHECKING:
    from bookgen.writing.section import SectionWriter

INTRO_SHARE = 0.1  # of a planned section's words, left for its untitled introduction


@dataclass
class Draft:
    """A section's first full text, with what repairs need: the messages that start every
    request about it (book context, task, plan) and its plan, if any."""

    text: str
    prefix: list[dict[str, str]]
    plan: list[dict[str, Any]] | None = None
    plan_file: Path | None = None
    repairs: list[dict[str, Any]] = field(default_factory=list)
    parts: list[list[str]] | None = None  # each part's planned headings, in order


def parallel(config: dict[str, Any]) -> bool:
    """Whether a planned section's parts are written at the same time (each on its own)."""
    return bool(config["planning"].get("parallel_parts", True))


def parts_needed(
    config: dict[str, Any],
    section: Section,
    fingerprint: dict[str, str],
    state_root: Path = paths.STATE,
) -> bool:
    """Whether a planned section's job takes its plan and parts as inputs (build graph).

    Not when its text is finished for this fingerprint and it has no part files (written before
    its parts were jobs: upgrading never rewrites a section), nor when its job restores a kept
    text (``bookgen.writing.history``: a section that moved) instead of writing."""
    try:
        usage = json.loads(paths.section_usage(section.id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        usage = None
    if usage and usage.get("fingerprint") == fingerprint and paths.section_md(section.id).exists():
        return any(paths.part_dir(section.key).glob("part_*.md"))
    return history.restorable(config, section, fingerprint, state_root) is None


def check_plan(data: dict[str, Any]) -> None:
    seen: dict[str, int] = {}
    for i, sub in enumerate(data["subsections"]):
        key = normalise_heading(sub["heading"])
        if not key:
            raise InvalidReply(f"subsections[{i}].heading has no words")
        if key in seen:
            raise InvalidReply(
                f"subsections[{i}].heading repeats subsection {seen[key]}'s heading; "
                "every subsection needs its own heading"
            )
        seen[key] = i


def normalise_plan(data: dict[str, Any], section: Section) -> list[dict[str, Any]]:
    """Clean headings; scale the words so the subsections add up to the section's body."""
    subs = data["subsections"]
    body = section.words * (1 - INTRO_SHARE)
    total = sum(s["words"] for s in subs) or 1
    return [
        {
            "heading": re.sub(r"^\s*#+\s*", "", s["heading"]).strip(),
            "covers": " ".join(s["covers"].split()),
            "words": max(20, round(s["words"] * body / total)),
        }
        for s in subs
    ]


def stored_plan(path: Path, fingerprint: dict[str, str]) -> list[dict[str, Any]] | None:
    """The plan kept for this section, if it was made for the same fingerprint."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if doc.get("fingerprint") != fingerprint:
        return None
    return doc.get("subsections") or None


def get_plan(writer: SectionWriter, base: list[dict[str, str]]) -> tuple[list[dict], Path]:
    """The section's plan: the stored one when still valid, else a new one from the model."""
    job = writer.job
    path = paths.section_plan(job.section.key, job.output_root)
    plan = stored_plan(path, job.fingerprint) if writer.config["response_cache"] else None
    if plan is not None:
        writer.log.line(f"plan: reusing {path} ({len(plan)} subsections)")
        return plan, path
    data = request_json(
        writer, plan_messages(base, job.section), "plan.schema.yaml", "plan", check_plan
    )
    plan = normalise_plan(data, job.section)
    atomic_write_json(
        path,
        {
            "section": job.section.id,
            "key": job.section.key,
            "title": job.section.title,
            "fingerprint": job.fingerprint,
            "subsections": plan,
        },
    )
    writer.log.line(f"plan: {len(plan)} subsections, kept in {path}")
    return plan, path


def read_plan(path: Path) -> list[dict[str, Any]]:
    """The subsections of a stored plan (the ``plan`` checkpoint's output)."""
    return json.loads(path.read_text(encoding="utf-8"))["subsections"]


def group_parts(plan: list[dict[str, Any]], words_per_call: int) -> list[list[dict[str, Any]]]:
    """Consecutive subsections grouped so each call writes at most about ``words_per_call``."""
    groups: list[list[dict[str, Any]]] = []
    size = 0
    for sub in plan:
        if groups and size + sub["words"] <= words_per_call:
            groups[-1].append(sub)
            size += sub["words"]
        else:
            groups.append([sub])
            size = sub["words"]
    return groups


def part_count(config: dict[str, Any], plan: list[dict[str, Any]]) -> int:
    return len(group_parts(plan, int(config["planning"]["words_per_call"])))


def part_stamp(config: dict[str, Any], job_fingerprint: dict[str, str], plan: list) -> dict:
    """What a part's text was written for: a part file with another stamp is not used."""
    return {
        "fingerprint": job_fingerprint,
        "plan": _digest(plan),
        "words_per_call": int(config["planning"]["words_per_call"]),
        "parallel": parallel(config),
    }


def part_request(
    writer: SectionWriter,
    prefix: list[dict[str, str]],
    groups: list[list[dict[str, Any]]],
    number: int,
    written: str,
) -> list[dict[str, str]]:
    """The messages that ask for part ``number``: on its own with its neighbours named
    (parallel), or after the text so far (sequential)."""
    title = writer.job.section.title
    if parallel(writer.config):
        return parallel_part_messages(prefix, title, number, groups)
    return part_messages(prefix, title, written, number, len(groups), groups[number - 1])


def write_part(
    writer: SectionWriter,
    prefix: list[dict[str, str]],
    groups: list[list[dict[str, Any]]],
    number: int,
    written: str = "",
) -> str:
    """Part ``number`` of the section, from the model (or its response cache)."""
    group = groups[number - 1]
    writer.log.line(f"writing part {number} of {len(groups)} ({len(group)} subsections)")
    return writer.generate(part_request(writer, prefix, groups, number, written), "write").strip()


def kept_part(key: str, number: int, stamp: dict[str, Any], output: Path) -> str | None:
    """Part ``number``'s text as its own job wrote it, if written for ``stamp``."""
    try:
        usage = json.loads(paths.part_usage(key, number, output).read_text(encoding="utf-8"))
        text = paths.part_md(key, number, output).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    return text.strip() if usage.get("stamp") == stamp else None


def joined(texts: list[str]) -> str:
    return "\n\n".join(t for t in texts if t)


def write_planned(writer: SectionWriter, base: list[dict[str, str]]) -> Draft:
    """Plan the section (or reuse its plan), then its parts: those their own jobs wrote for
    this plan are used as they are, the others are written here, in order."""
    job = writer.job
    plan, path = get_plan(writer, base)
    prefix = planned_task(base, plan)
    groups = group_parts(plan, int(writer.config["planning"]["words_per_call"]))
    stamp = part_stamp(writer.config, job.fingerprint, plan)
    texts: list[str] = []
    for number in range(1, len(groups) + 1):
        text = kept_part(job.section.key, number, stamp, job.output_root)
        if text is None:
            text = write_part(writer, prefix, groups, number, joined(texts))
        else:
            writer.log.line(f"part {number} of {len(groups)}: written by its own job")
        texts.append(text)
    headings = [[s["heading"] for s in g] for g in groups]
    return Draft(joined(texts).strip() + "\n", prefix, plan, path, parts=headings)


def draft(writer: SectionWriter, base: list[dict[str, str]]) -> Draft:
    """The section's first full text: planned and in parts when long, else in one call."""
    if is_planned(writer.config, writer.job.section):
        return write_planned(writer, base)
    return Draft(writer.generate(base).strip() + "\n", base)
