"""The quality report: every section's checks and repairs, plus what only the whole book shows.

Per section: each check's verdict and value (words against the target, missing headings, key
points not covered), the repairs made and the repair rounds, and the overlap with the closest
other section. Book-wide: the pairs of sections that overlap most (shared word shingles) and
the outline's key points that no section covers. Verdicts come from each section's usage file
(``qc``); a section written before quality control existed is checked here instead.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import Section, template_text
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.money.usage import validate
from bookgen.writing.prompts import fixed_prompt_texts
from bookgen.writing.quality import (
    Context,
    check_section,
    coverage,
    echo_patterns,
    overlap,
    shingles,
    stems,
)

TOP_PAIRS = 5
Pair = tuple[str, str]


def overlaps(texts: dict[str, str], size: int) -> Iterator[tuple[Pair, float]]:
    """Overlap of every pair of sections (ids in book order), one pair at a time."""
    sets = {sid: shingles(text, size) for sid, text in texts.items()}
    for a, b in combinations(sets, 2):
        yield (a, b), round(overlap(sets[a], sets[b]), 4)


@dataclass
class OverlapSummary:
    """What the report needs from the N(N-1)/2 pairs, kept in O(N) memory."""

    closest: dict[str, tuple[float, str]]  # each section's highest overlap, and with whom
    top: list[tuple[Pair, float]]  # the TOP_PAIRS highest, highest first
    over: list[tuple[Pair, float]]  # every pair above the threshold, highest first


def summarise_overlaps(pairs: Iterable[tuple[Pair, float]], threshold: float) -> OverlapSummary:
    """One pass over the pairs (a 1,000-section book has about 500,000 of them; keeping them
    all, or looking a section's up one section at a time, does not scale)."""

    def rank(item: tuple[Pair, float]) -> tuple[float, Pair]:
        return -item[1], item[0]

    closest: dict[str, tuple[float, str]] = {}
    top: list[tuple[Pair, float]] = []
    over: list[tuple[Pair, float]] = []
    for (a, b), v in pairs:
        for sid, other in ((a, b), (b, a)):
            if sid not in closest or (v, other) > closest[sid]:
                closest[sid] = (v, other)
        item = ((a, b), v)
        if len(top) < TOP_PAIRS or rank(item) < rank(top[-1]):
            bisect.insort(top, item, key=rank)
            del top[TOP_PAIRS:]
        if v > threshold:
            over.append(item)
    return OverlapSummary(closest, top, sorted(over, key=rank))


def _plan_headings(key: str, output: Path) -> list[str] | None:
    try:
        doc = json.loads(paths.section_plan(key, output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [s["heading"] for s in doc.get("subsections", [])] or None


def section_verdicts(
    config: dict[str, Any], section: Section, text: str, usage: dict[str, Any], output: Path
) -> dict[str, Any]:
    """The section's quality-control record: from its usage file, or checked now."""
    if usage.get("qc"):
        return {**usage["qc"], "checked": "when written"}
    templates = [template_text(config, "system"), template_text(config, "section")]
    ctx = Context(
        target_words=section.words,
        key_points=section.key_points,
        planned_headings=_plan_headings(section.key, output),
        echo_patterns=echo_patterns([*templates, *fixed_prompt_texts()]),
    )
    verdicts = check_section(text, ctx, config["qc"])
    failed = any(not v.passed for v in verdicts)
    return {
        "passed": not failed,
        "flagged": failed,
        "attempts": 0,
        "checks": [v.as_dict() for v in verdicts],
        "repairs": [],
        "checked": "by this report",
    }


def _value(record: dict[str, Any], name: str) -> Any:
    return next((c["value"] for c in record["checks"] if c["name"] == name), None)


def build_quality_report(
    config: dict[str, Any],
    sections: list[Section],
    texts: dict[str, str],
    usage: dict[str, dict[str, Any]],
    output: Path = paths.OUTPUT,
) -> dict[str, Any]:
    """The report as data (``output/quality_report.json``; schema in ``bookgen/schemas``)."""
    qc = config["qc"]
    threshold = float(qc["overlap_threshold"])
    pairs = summarise_overlaps(overlaps(texts, int(qc["shingle_words"])), threshold)
    entries = []
    for s in sections:
        record = section_verdicts(config, s, texts[s.id], usage[s.id], output)
        best, closest = pairs.closest.get(s.id, (0.0, None))
        headings = _value(record, "headings") or {}
        entries.append(
            {
                "id": s.id,
                "title": s.title,
                "simulated": bool(usage[s.id].get("simulated")),
                "words": usage[s.id]["words"],
                "target_words": s.words,
                "passed": record["passed"] and best <= threshold,
                "failed_checks": [c["name"] for c in record["checks"] if not c["passed"]],
                "checks": record["checks"],
                "missing_headings": headings.get("missing", []),
                "key_points_missed": _value(record, "key_points") or [],
                "closest_section": closest,
                "overlap": best,
                "repairs": record["repairs"],
                "attempts": record["attempts"],
                "checked": record["checked"],
            }
        )
    book_stems = {sid: stems(text) for sid, text in texts.items()}
    uncovered = []
    for s in sections:
        # Covered anywhere in the book? Its own section first: usually the scan stops there.
        order = [book_stems[s.id], *(st for sid, st in book_stems.items() if sid != s.id)]
        for point in s.key_points:
            best_cov = 0.0
            for st in order:
                best_cov = max(best_cov, coverage(point, st))
                if best_cov >= qc["min_key_point_coverage"]:
                    break
            else:
                uncovered.append({"section": s.id, "key_point": point, "coverage": best_cov})
    repairs = [r for e in entries for r in e["repairs"]]
    report = {
        "book_title": config["book"]["title"],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "simulated": any(u.get("simulated") for u in usage.values()),
        "thresholds": {
            k: qc[k]
            for k in (
                "min_words_ratio",
                "max_words_ratio",
                "length_slack_words",
                "min_key_point_coverage",
                "overlap_threshold",
                "shingle_words",
            )
        },
        "sections": entries,
        "overlapping_pairs": [{"sections": list(pair), "overlap": v} for pair, v in pairs.over],
        "top_pairs": [{"sections": list(pair), "overlap": v} for pair, v in pairs.top],
        "uncovered_key_points": uncovered,
        "totals": {
            "sections": len(entries),
            "passed": sum(e["passed"] for e in entries),
            "flagged": sum(not e["passed"] for e in entries),
            "repairs": len(repairs),
            "repair_calls": sum(r["calls"] for r in repairs),
            "overlapping_pairs": len(pairs.over),
            "uncovered_key_points": len(uncovered),
        },
    }
    validate(report, "quality_report.schema.yaml")
    return report


def render_markdown(report: dict[str, Any]) -> str:
    """The report for people."""
    t, th = report["totals"], report["thresholds"]
    lines = [f"# Quality report: {report['book_title']}", ""]
    simulated = [e["id"] for e in report["sections"] if e["simulated"]]
    if simulated:
        which = (
            "every section"
            if len(simulated) == len(report["sections"])
            else "sections " + ", ".join(simulated) + " (marked *simulated*)"
        )
        lines += [
            f"> **Simulated text.** The text of {which} was written by bookgen's offline "
            "simulator.",
            "",
        ]
    lines += [
        f"Generated {report['generated_at']}. **{t['passed']} of {t['sections']} sections pass "
        f"every check**; {t['flagged']} flagged. {t['repairs']} repair(s) made "
        f"({t['repair_calls']} API call(s)).",
        "",
        f"Thresholds: length {th['min_words_ratio']:g}–{th['max_words_ratio']:g} × target "
        f"(+{th['length_slack_words']} words); a key "
        f"point is covered when the text uses {th['min_key_point_coverage']:.0%} of its words; "
        f"two sections overlap above {th['overlap_threshold']:.0%} shared {th['shingle_words']}"
        "-word shingles.",
        "",
        "| Section | Words / target | Failed checks | Missing headings | Closest section "
        "(overlap) | Repairs | Rounds |",
        "|---|---:|---|---|---|---|---:|",
    ]
    for e in report["sections"]:
        failed = list(e["failed_checks"])
        if e["overlap"] > th["overlap_threshold"]:
            failed.append("overlap")
        repairs = ", ".join(f"{r['repair']} ({r['target']})" for r in e["repairs"]) or "–"
        closest = f"{e['closest_section']} ({e['overlap']:.0%})" if e["closest_section"] else "–"
        mark = " *(simulated)*" if e["simulated"] else ""
        lines.append(
            f"| {e['id']} {e['title']}{mark} | {e['words']:,} / {e['target_words']:,} | "
            f"{', '.join(failed) or 'none'} | {'; '.join(e['missing_headings']) or '–'} | "
            f"{closest} | {repairs} | {e['attempts']} |"
        )
    flagged = [e for e in report["sections"] if not e["passed"]]
    if flagged:
        lines += ["", "## Flagged sections", ""]
        for e in flagged:
            details = [c["detail"] for c in e["checks"] if not c["passed"]]
            if e["overlap"] > th["overlap_threshold"]:
                details.append(f"{e['overlap']:.0%} overlap with section {e['closest_section']}")
            lines.append(f"- **{e['id']} {e['title']}**: " + "; ".join(details))
    lines += ["", "## Sections that overlap most", ""]
    if report["top_pairs"]:
        lines += ["| Sections | Overlap |", "|---|---:|"]
        for p in report["top_pairs"]:
            mark = " (over the threshold)" if p["overlap"] > th["overlap_threshold"] else ""
            lines.append(
                f"| {p['sections'][0]} and {p['sections'][1]} | {p['overlap']:.0%}{mark} |"
            )
    else:
        lines.append("The book has a single section.")
    lines += ["", "## Outline items never covered", ""]
    if report["uncovered_key_points"]:
        lines += [
            f"- section {u['section']}: {u['key_point']} (best coverage {u['coverage']:.0%})"
            for u in report["uncovered_key_points"]
        ]
    else:
        lines.append("Every key point of the outline is covered by the text.")
    return "\n".join(lines) + "\n"


def write_quality_report(
    config: dict[str, Any],
    sections: list[Section],
    md_files: list[str],
    usage_files: list[str],
    out_json: Path,
    out_md: Path,
) -> dict[str, Any]:
    """Read the sections and their usage files, then write both forms of the report."""
    by_name = {Path(p).name: p for p in md_files}
    texts = {
        s.id: Path(by_name[f"section_{s.id}.md"]).read_text(encoding="utf-8") for s in sections
    }
    docs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in usage_files]
    usage = {d["section"]: d for d in docs if d["section"] in texts}
    report = build_quality_report(config, sections, texts, usage, Path(md_files[0]).parent)
    atomic_write_json(out_json, report)
    atomic_write_text(out_md, render_markdown(report))
    return report
