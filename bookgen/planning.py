"""Long sections: a plan first (subsections as schema-validated JSON), then the writing in parts.

A section of at least ``planning.min_words`` words is planned; its plan is stored beside it
(``output/plans/section_NN.json``) and reused by a rerun or resume while the section's
fingerprint is unchanged. The plan's subsections are written in calls of at most about
``planning.words_per_call`` words, each call given the book context, the plan and what the
section has so far. Shorter sections are written in one call, as before.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookgen import paths
from bookgen.config import Section
from bookgen.fsutil import atomic_write_json
from bookgen.prompts import part_messages, plan_messages, planned_task
from bookgen.quality import normalise_heading
from bookgen.structured import InvalidReply, request_json

if TYPE_CHECKING:
    from bookgen.section import SectionWriter

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


def is_planned(config: dict[str, Any], section: Section) -> bool:
    return section.words >= int(config["planning"]["min_words"])


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
    path = paths.section_plan(job.section.id, job.out_md.parent)
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
            "title": job.section.title,
            "fingerprint": job.fingerprint,
            "subsections": plan,
        },
    )
    writer.log.line(f"plan: {len(plan)} subsections, kept in {path}")
    return plan, path


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


def write_planned(writer: SectionWriter, base: list[dict[str, str]]) -> Draft:
    """Plan the section, then write its subsections part by part."""
    plan, path = get_plan(writer, base)
    prefix = planned_task(base, plan)
    groups = group_parts(plan, int(writer.config["planning"]["words_per_call"]))
    text = ""
    for number, group in enumerate(groups, start=1):
        writer.log.line(f"writing part {number} of {len(groups)} ({len(group)} subsections)")
        messages = part_messages(prefix, writer.job.section.title, text, number, len(groups), group)
        chunk = writer.generate(messages, "write").strip()
        text = f"{text}\n\n{chunk}" if text else chunk
    return Draft(text.strip() + "\n", prefix, plan, path)


def draft(writer: SectionWriter, base: list[dict[str, str]]) -> Draft:
    """The section's first full text: planned and in parts when long, else in one call."""
    if is_planned(writer.config, writer.job.section):
        return write_planned(writer, base)
    return Draft(writer.generate(base).strip() + "\n", base)
