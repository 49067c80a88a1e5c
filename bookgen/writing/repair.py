"""Quality control of one section: check, repair what failed, check again, then decide.

A round of repairs acts on the failed checks only: strip chatter and echoed prompt lines, fix
skipped heading levels, rewrite a subsection with broken Markdown, write a missing subsection,
expand subsections that are too short; a text that only looks cut (``truncation``) gets no paid
continuation. Up to ``qc.max_attempts`` rounds; then ``qc.on_fail`` decides: ``fail``
(QualityFailed, nothing is written) or ``warn`` (kept, flagged). Every verdict and repair goes
into the section's usage file under ``qc``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bookgen.formats.book import find_headings
from bookgen.writing.errors import ReplyRejected
from bookgen.writing.prompts import repair_messages
from bookgen.writing.quality import (
    Context,
    Part,
    check_section,
    fix_heading_levels,
    headings_match,
    is_summary,
    join_parts,
    markdown_problems,
    part_at,
    part_spans,
    split_parts,
    strip_chatter,
    word_count,
)

if TYPE_CHECKING:
    from bookgen.writing.planning import Draft
    from bookgen.writing.section import SectionWriter


class QualityFailed(ReplyRejected):
    """The section still fails a check after the repairs (``qc.on_fail: fail``); the next run
    writes it afresh."""

    def __init__(self, message: str, qc: dict[str, Any]) -> None:
        super().__init__(message)
        self.qc = qc


def _repair(attempt: int, kind: str, target: str, calls: int) -> dict[str, Any]:
    return {"attempt": attempt, "repair": kind, "target": target, "calls": calls}


def _subsection_reply(reply: str, heading: str, level: int) -> str:
    text = reply.strip()
    first = text.splitlines()[0] if text else ""
    if not first.lstrip().startswith("#"):
        text = f"{'#' * level} {heading}\n\n{text}"
    return _at_level(text, level)


_ATX_HASHES_RE = re.compile(r"^(\s{0,3})(#{1,6})(?=\s|$)")


def _at_level(text: str, level: int) -> str:
    """``text`` with its headings shifted so the first is at ``level``: a reply that uses `##`
    where `###` was asked would otherwise swallow the subsections after it."""
    lines = text.splitlines()
    headings = [h for h in find_headings(lines) if _ATX_HASHES_RE.match(lines[h.start])]
    if not headings or headings[0].level == level:
        return text
    shift = level - headings[0].level
    for h in headings:
        hashes = "#" * min(6, max(1, h.level + shift))
        lines[h.start] = _ATX_HASHES_RE.sub(rf"\g<1>{hashes}", lines[h.start], count=1)
    return "\n".join(lines)


def _replace(text: str, part: Part, new: str) -> str:
    lines = text.splitlines()
    lines[part.start : part.end] = [*new.splitlines(), ""]
    return "\n".join(lines).strip() + "\n"


def _insert(text: str, at: int, new: str) -> str:
    lines = text.splitlines()
    lines[at:at] = [*new.splitlines(), ""]
    return "\n".join(lines).strip() + "\n"


def _level(text: str) -> int:
    parts = {p.heading for p in split_parts(text) if p.heading}
    levels = [h.level for h in find_headings(text.splitlines()) if h.text in parts]
    return levels[0] if levels else 3


class Reviser:
    """Runs the repairs of one section; ``writer`` makes the calls."""

    def __init__(self, writer: SectionWriter, draft: Draft, ctx: Context) -> None:
        self.writer = writer
        self.draft = draft
        self.ctx = ctx
        self.plan = {s["heading"]: s for s in draft.plan or []}

    def ask(self, text: str, kind: str, sub: dict[str, Any], **fields: Any) -> tuple[str, int]:
        """One subsection from the model (``kind``: missing, expand, markdown) and its calls."""
        before = self.writer.calls_made
        messages = repair_messages(self.draft.prefix, text.strip(), kind, [sub], **fields)
        reply = _subsection_reply(
            self.writer.generate(messages, "repair"), sub["heading"], _level(text)
        )
        return reply, self.writer.calls_made - before

    def subsection(self, heading: str, words: int) -> dict[str, Any]:
        planned = next((s for h, s in self.plan.items() if headings_match(h, heading)), None)
        point = next((p for p in self.ctx.key_points if headings_match(p, heading)), heading)
        covers = planned["covers"] if planned else point
        return {"heading": heading, "covers": covers, "words": words}

    # -- one kind of repair each -----------------------------------------------------------

    def rewrite_broken(self, text: str, attempt: int) -> tuple[str, list[dict]]:
        made = []
        for line, problem in markdown_problems(text):
            part = part_at(text, line)
            if part is None or part.heading is None:
                continue
            sub = self.subsection(part.heading, max(part.words, 50))
            new, calls = self.ask(text, "markdown", sub, heading=part.heading, problem=problem)
            text = _replace(text, part, new)
            made.append(_repair(attempt, "rewrite", part.heading, calls))
            break  # line numbers moved: the next round finds any other problem
        return text, made

    def missing(self, text: str, failed: dict[str, Any]) -> list[tuple[str, int]]:
        """``(heading, index)`` of subsections to add: planned ones missing, or uncovered key
        points, each with its place in the plan or the key points."""
        if "headings" in failed and failed["headings"].value["missing"]:
            order = list(self.plan)
            return [(h, order.index(h)) for h in failed["headings"].value["missing"]]
        if "key_points" in failed:
            points = list(self.ctx.key_points)
            return [(p[:1].upper() + p[1:], points.index(p)) for p in failed["key_points"].value]
        return []

    def rewrite_section(self, text: str, missed: list[str], attempt: int) -> tuple[str, list]:
        """The whole section again, when it misses most of its key points (off topic, or a
        copy of another section)."""
        section = self.writer.job.section
        share = max(50, round(section.words * 0.9 / max(len(section.key_points), 1)))
        subs = self.draft.plan or [
            {"heading": p[:1].upper() + p[1:], "covers": p, "words": share}
            for p in section.key_points
        ]
        before = self.writer.calls_made
        missed_points = "; ".join(missed)
        messages = repair_messages(
            self.draft.prefix,
            text.strip(),
            "section",
            subs,
            missed=missed_points,
            title=section.title,
        )
        new = self.writer.generate(messages, "repair").strip() + "\n"
        calls = self.writer.calls_made - before
        return new, [_repair(attempt, "rewrite", "the whole section", calls)]

    def insertion_point(self, text: str, index: int) -> tuple[int, str]:
        """Where a subsection belongs: before the next planned (or key-point) subsection that
        is present, else before a closing summary, else at the end."""
        parts = [p for p in split_parts(text) if p.heading is not None]
        later = (
            list(self.plan)[index + 1 :] if self.plan else list(self.ctx.key_points)[index + 1 :]
        )
        for part in parts:
            if any(headings_match(h, part.heading) for h in later):
                return part.start, f'before the subsection "{part.heading}"'
        if parts and is_summary(parts[-1].heading):
            return parts[-1].start, f'before the subsection "{parts[-1].heading}"'
        return len(text.splitlines()), "at the end of the section"

    def write_missing(self, text: str, failed: dict, attempt: int) -> tuple[str, list[dict]]:
        made = []
        todo = self.missing(text, failed)
        share = max(50, self.ctx.target_words // (len(self.plan or self.ctx.key_points) + 1))
        for heading, index in todo:
            planned = self.plan.get(heading)
            sub = self.subsection(heading, planned["words"] if planned else share)
            at, where = self.insertion_point(text, index)
            new, calls = self.ask(text, "missing", sub, where=where)
            text = _insert(text, at, new)
            made.append(_repair(attempt, "write_missing", heading, calls))
        return text, made

    def expand(self, text: str, attempt: int, qc: dict[str, Any]) -> tuple[str, list[dict]]:
        """Rewrite the subsections furthest below their share until the section should reach
        the middle of its allowed range."""
        total = word_count(text)
        target = self.ctx.target_words
        needed = target * (1 + qc["min_words_ratio"]) / 2 - total
        wants = []
        for part in split_parts(text):
            if part.heading is None:
                continue
            planned = next(
                (s for h, s in self.plan.items() if headings_match(h, part.heading)), None
            )
            share = planned["words"] if planned else round(part.words * target / max(total, 1))
            if share > part.words:
                wants.append((share - part.words, part.heading, share))
        made = []
        for deficit, heading, share in sorted(wants, reverse=True):
            if needed <= 0:
                break
            part = next((p for p in split_parts(text) if p.heading == heading), None)
            if part is None:  # an earlier reply renamed or merged it: nothing to expand
                continue
            sub = self.subsection(heading, share)
            new, calls = self.ask(
                text, "expand", sub, heading=heading, have=part.words, words=share
            )
            text = _replace(text, part, new)
            needed -= deficit
            made.append(_repair(attempt, "expand", heading, calls))
        return text, made

    def rewrite_repeating(
        self, text: str, value: dict[str, Any], attempt: int
    ) -> tuple[str, list[dict]]:
        """The later part of the pair that overlaps most, written again without repeating the
        text before it (one pair per round: the other parts' lines move)."""
        worst = max(value["over"], key=lambda p: p["overlap"])
        first, later = worst["parts"]
        span = part_spans(text, self.ctx.parts or [])[later - 1]
        headings = (self.ctx.parts or [])[later - 1]
        subs = [
            self.subsection(h, self.plan[h]["words"] if h in self.plan else 100) for h in headings
        ]
        if span is None or not subs:
            return text, []
        before = self.writer.calls_made
        repeated = f"{worst['overlap']:.0%} of its wording is also in part {first}"
        messages = repair_messages(
            self.draft.prefix, text.strip(), "repeat", subs, repeated=repeated
        )
        reply = _subsection_reply(
            self.writer.generate(messages, "repair"), subs[0]["heading"], _level(text)
        )
        lines = text.splitlines()
        lines[span[0] : span[1]] = [*reply.splitlines(), ""]
        new = "\n".join(lines).strip() + "\n"
        calls = self.writer.calls_made - before
        return new, [_repair(attempt, "rewrite_part", f"part {later}", calls)]

    def failures(self, text: str) -> dict[str, Any]:
        qc = self.writer.config["qc"]
        return {v.name: v for v in check_section(text, self.ctx, qc) if not v.passed}

    def round(self, text: str, failed: dict[str, Any], attempt: int) -> tuple[str, list[dict]]:
        """One round of repairs for the failed checks; each step acts on what is still wrong
        after the steps before it."""
        made: list[dict[str, Any]] = []
        # No repair for "truncation": the text looks cut though the provider said it was
        # complete, and a paid continuation could only guess (section.generate continues what
        # was really cut). It stays failed, and qc.on_fail decides.
        if "meta_text" in failed or "prompt_echo" in failed:
            text, removed = strip_chatter(text, self.ctx.echo_patterns)
            made.append(_repair(attempt, "strip_chatter", f"{len(removed)} sentence(s)", 0))
        if "heading_levels" in failed:
            text = fix_heading_levels(text)
            made.append(_repair(attempt, "fix_heading_levels", "headings", 0))
        if "seams" in failed:
            text, dropped = join_parts(text, self.ctx.parts or [])
            made.append(_repair(attempt, "join_parts", f"{dropped} repeat(s) dropped", 0))
        failed = self.failures(text)
        if "part_overlap" in failed:
            text, done = self.rewrite_repeating(text, failed["part_overlap"].value, attempt)
            made += done
            failed = self.failures(text)
        if "markdown" in failed:
            text, done = self.rewrite_broken(text, attempt)
            made += done
            failed = self.failures(text)
        missed = failed["key_points"].value if "key_points" in failed else []
        if len(missed) * 2 > len(self.ctx.key_points):
            text, done = self.rewrite_section(text, missed, attempt)
            made += done
            failed = self.failures(text)
        elif "headings" in failed or "key_points" in failed:  # a rewrite gets a round to itself
            text, done = self.write_missing(text, failed, attempt)
            made += done
            failed = self.failures(text)
        length = failed.get("length")
        if length is not None and length.value < self.ctx.target_words:
            text, done = self.expand(text, attempt, self.writer.config["qc"])
            made += done
        return text, made


def review(writer: SectionWriter, draft: Draft, ctx: Context) -> tuple[str, dict[str, Any]]:
    """Check the draft, repair what failed, up to ``qc.max_attempts`` rounds; the final text
    and its ``qc`` record. Raises QualityFailed when a check still fails and on_fail is fail."""
    qc = writer.config["qc"]
    reviser = Reviser(writer, draft, ctx)
    text = draft.text
    repairs = list(draft.repairs)
    attempt = 0
    while True:
        verdicts = check_section(text, ctx, qc)
        failed = {v.name: v for v in verdicts if not v.passed}
        if not failed or attempt >= int(qc["max_attempts"]):
            break
        attempt += 1
        writer.log.line(f"quality control: {', '.join(failed)} failed; repair round {attempt}")
        text, made = reviser.round(text, failed, attempt)
        repairs += made
        if not made:
            break
    record = {
        "passed": not failed,
        "flagged": bool(failed),
        "on_fail": qc["on_fail"],
        "planned": draft.plan is not None,
        "plan_file": str(draft.plan_file) if draft.plan_file else None,
        "attempts": attempt,
        "checks": [v.as_dict() for v in verdicts],
        "repairs": repairs,
    }
    if failed:
        why = "; ".join(f"{v.name}: {v.detail}" for v in failed.values())
        writer.log.line(f"quality control failed after {attempt} repair round(s): {why}")
        if qc["on_fail"] == "fail":
            raise QualityFailed(
                f"quality control failed after {attempt} repair round(s): {why}. The next run "
                "writes the section afresh; qc.on_fail: warn keeps such sections, flagged",
                record,
            )
    else:
        writer.log.line(f"quality control passed ({len(repairs)} repair(s))")
    return text, record
