"""The cost report: every section's usage file merged, per section and in total.

``cost_report.json`` is a public interface (documented in README.md): ``totals`` and each entry
of ``sections`` carry ``calls``, ``prompt_tokens``, ``prompt_cache_hit_tokens``,
``prompt_cache_miss_tokens``, ``completion_tokens``, ``reasoning_tokens`` and ``cost_usd``
(null when a price is unknown) — the provider's own numbers — with estimates for calls cut off
before their usage arrived kept apart in ``estimated_*``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import Section
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.money.budget import journal_calls
from bookgen.money.pricing import format_usd, sum_costs
from bookgen.money.usage import TOKEN_FIELDS, is_replay, split_costs, sum_calls, validate
from bookgen.writing.outline import OUTLINE_ID

SUMMED = (
    "calls",
    *TOKEN_FIELDS,
    "estimated_prompt_tokens",
    "estimated_completion_tokens",
    "failed_calls",
    "simulated_calls",
    "replays",
)
COSTS = ("cost_usd", "estimated_cost_usd", "failed_cost_usd", "simulated_cost_usd")


EARLIER_TITLE = "earlier versions, removed sections and other books in this folder"


def earlier_calls(
    journals: dict[str, list[dict[str, Any]]],
    usage_docs: list[dict[str, Any]],
    keys: dict[str, str],
) -> list[dict[str, Any]]:
    """The journaled calls no usage document lists: those of section keys no current section
    has (an edited section's earlier versions, removed sections, another book written in the
    same folder, which shares ``.bookgen/``, bookkeeping of older bookgen versions).
    ``journals`` is ``bookgen.money.budget.journal_calls()``; ``keys`` maps file numbers
    to the current sections' keys (a usage file is its file number's current section's, even
    when written before it named its key or before the section got an ``id:``)."""
    listed = {doc.get("key") for doc in usage_docs}
    listed |= {keys.get(doc["section"], doc["section"]) for doc in usage_docs}
    return [c for key, calls in sorted(journals.items()) if key not in listed for c in calls]


def book_cost_report(
    usage_files: Sequence[str | Path],
    book_title: str,
    sections: list[Section],
    state_root: Path = paths.STATE,
) -> dict[str, Any]:
    """The book's cost report: its usage files (in book order) merged, and every journaled call
    none of them lists in a row of its own, so the total is everything the book cost."""
    docs = load_usage_docs(list(usage_files))
    keys = {s.id: s.key for s in sections}
    return build_cost_report(docs, book_title, earlier_calls(journal_calls(state_root), docs, keys))


def build_cost_report(
    usage_docs: list[dict[str, Any]],
    book_title: str,
    earlier: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Merge usage documents (in book order) into the cost report; ``earlier`` calls (see
    ``earlier_calls``) get a row of their own so the total is everything the book cost."""
    earlier_doc = _earlier_doc(list(earlier)) if earlier else None
    sections = []
    price_table: dict[str, dict[str, Any]] = {}
    unknown: set[str] = set()
    for doc in [*usage_docs, *filter(None, [earlier_doc])]:
        t = doc["totals"]
        sections.append(
            {
                "id": doc["section"],
                "title": doc["title"],
                "model": doc["model"],
                "provider": doc["provider"],
                "simulated": doc["simulated"],
                "words": doc["words"],
                **{k: t[k] for k in SUMMED},
                **{k: t[k] for k in COSTS},
                "api_time_s": t["duration_s"],
                "wall_time_s": doc["wall_time_s"],
            }
        )
        for call in doc["calls"]:
            if call["rates"] is None:
                unknown.add(call["model"])
            else:
                rates = dict(call["rates"])
                price_table.setdefault(call["model"], {})[rates.pop("period")] = rates
    earlier_row = sections.pop() if earlier_doc else None
    rows = [*sections, *filter(None, [earlier_row])]
    totals: dict[str, Any] = {k: sum(s[k] for s in rows) for k in SUMMED}
    totals.update({k: sum_costs([s[k] for s in rows]) for k in COSTS})
    totals["simulated_estimated_cost_usd"] = split_costs(
        [
            c
            for doc in [*usage_docs, *filter(None, [earlier_doc])]
            for c in doc["calls"]
            if c.get("simulated", False) and not is_replay(c)
        ]
    )[1]
    totals["sections"] = sum(s["id"] != OUTLINE_ID for s in sections)
    totals["words"] = sum(s["words"] for s in sections)
    totals["api_time_s"] = round(sum(s["api_time_s"] for s in rows), 3)
    totals["wall_time_s"] = round(sum(s["wall_time_s"] for s in sections), 3)
    warnings = [
        f"no price configured for model {m!r}: its cost is reported as unknown (null). Add it "
        "under `prices:` in the config (USD per million tokens) and rerun to price new calls."
        for m in sorted(unknown)
    ]
    report = {
        "book_title": book_title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "simulated": any(d["simulated"] for d in usage_docs),
        "simulated_sections": [
            d["section"] for d in usage_docs if d["simulated"] and d["section"] != OUTLINE_ID
        ],
        "providers": sorted({d["provider"] for d in usage_docs}),
        "models": sorted({d["model"] for d in usage_docs}),
        "price_table": price_table,
        "unknown_price_models": sorted(unknown),
        "warnings": warnings,
        "sections": sections,
        "earlier": earlier_row,
        "totals": totals,
    }
    validate(report, "cost_report.schema.yaml")
    return report


def render_markdown(report: dict[str, Any]) -> str:
    """A human-readable cost report."""
    t = report["totals"]
    lines = [f"# Cost report: {report['book_title']}", ""]
    simulated = report["simulated_sections"]
    if simulated:
        which = (
            "every section"
            if len(simulated) == t["sections"]
            else ("sections " + ", ".join(simulated))
        )
        lines += [
            f"> **Simulated text.** The text of {which} was written by bookgen's offline "
            "simulator (marked *simulated* below): nothing was billed for it, and it is not in "
            "the money spent. What its calls would have cost at the model's real prices is "
            f"shown apart: {_simulated_cost(t)}.",
            "",
        ]
    lines += [
        f"Generated {report['generated_at']} · provider(s): {', '.join(report['providers'])} · "
        f"model(s): {', '.join(report['models'])}",
        "",
        f"**Total spent: {format_usd(t['cost_usd'])}** for {t['sections']} sections, "
        f"{t['words']:,} words, "
        f"{t['calls']} API calls"
        + (
            f" ({t['failed_calls']} failed, costing {format_usd(t['failed_cost_usd'])})."
            if t["failed_calls"]
            else "."
        ),
        "",
    ]
    for w in report["warnings"]:
        lines += [f"> Warning: {w}", ""]
    header = (
        "| Section | Calls | Input hit | Input miss | Output | Reasoning | Cost "
        "| API time | Wall time |"
    )
    lines += [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["sections"]:
        mark = " *(simulated)*" if s["simulated"] else ""
        lines.append(
            f"| {s['id']} {s['title']}{mark} | {s['calls']} | {s['prompt_cache_hit_tokens']:,} | "
            f"{s['prompt_cache_miss_tokens']:,} | {s['completion_tokens']:,} | "
            f"{s['reasoning_tokens']:,} | {format_usd(s['cost_usd'])} | {s['api_time_s']:.1f} s | "
            f"{s['wall_time_s']:.1f} s |"
        )
    e = report.get("earlier")
    if e:
        lines.append(
            f"| {e['title']} | {e['calls']} | {e['prompt_cache_hit_tokens']:,} | "
            f"{e['prompt_cache_miss_tokens']:,} | {e['completion_tokens']:,} | "
            f"{e['reasoning_tokens']:,} | {format_usd(e['cost_usd'])} | {e['api_time_s']:.1f} s | "
            "– |"
        )
    lines.append(
        f"| **Total** | {t['calls']} | {t['prompt_cache_hit_tokens']:,} | "
        f"{t['prompt_cache_miss_tokens']:,} | {t['completion_tokens']:,} | "
        f"{t['reasoning_tokens']:,} | **{format_usd(t['cost_usd'])}** | {t['api_time_s']:.1f} s | "
        f"{t['wall_time_s']:.1f} s |"
    )
    hit_share = t["prompt_cache_hit_tokens"] / t["prompt_tokens"] if t["prompt_tokens"] else 0.0
    lines += [
        "",
        f"Input tokens: {t['prompt_tokens']:,}, of which {hit_share:.0%} were prefix-cache hits. "
        "Output tokens include reasoning tokens. Wall time is summed over sections, not elapsed.",
    ]
    if t["estimated_prompt_tokens"] or t["estimated_completion_tokens"]:
        lines += [
            "",
            f"Not in the totals above: calls cut off before the provider reported usage, "
            f"estimated at {t['estimated_prompt_tokens']:,} input and "
            f"{t['estimated_completion_tokens']:,} output tokens "
            f"({format_usd(t['estimated_cost_usd'])}).",
        ]
    lines += ["", "## Price table used (USD per million tokens)", ""]
    lines += ["| Model | Period | Input hit | Input miss | Output |", "|---|---|---:|---:|---:|"]
    for model, periods in sorted(report["price_table"].items()):
        for period, r in sorted(periods.items()):
            lines.append(
                f"| {model} | {period} | {r['cache_hit']} | {r['cache_miss']} | {r['output']} |"
            )
    for model in report["unknown_price_models"]:
        lines.append(f"| {model} | – | unknown | unknown | unknown |")
    return "\n".join(lines) + "\n"


def _simulated_cost(t: dict[str, Any]) -> str:
    """What the simulated calls would have cost, cut calls' estimates apart (as the "so far"
    line of a simulated run says it)."""
    total, estimated = t["simulated_cost_usd"], t.get("simulated_estimated_cost_usd", 0.0)
    if not estimated:
        return format_usd(total)
    reported = None if total is None or estimated is None else total - estimated
    return f"{format_usd(reported)} (+ {format_usd(estimated)} estimated for cut calls)"


def _earlier_doc(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The earlier calls in the shape of a usage document, for the report's extra row."""
    return {
        "section": "earlier",
        "title": EARLIER_TITLE,
        "model": ", ".join(sorted({c["model"] for c in calls})),
        # Older records do not name their provider; a simulated call says so.
        "provider": ", ".join(sorted({c.get("provider", "unrecorded") for c in calls})),
        "simulated": all(c.get("simulated", False) for c in calls),
        "words": 0,
        "wall_time_s": 0.0,
        "calls": calls,
        "totals": sum_calls(calls),
    }


def load_usage_docs(paths: list[str | Path]) -> list[dict[str, Any]]:
    docs = []
    for p in paths:
        doc = json.loads(Path(p).read_text(encoding="utf-8"))
        validate(doc, "usage.schema.yaml")
        docs.append(doc)
    return docs


def save_cost_report(report: dict[str, Any], json_out: str | Path, md_out: str | Path) -> None:
    """Write the report's JSON and Markdown, each atomically."""
    atomic_write_json(json_out, report)
    atomic_write_text(md_out, render_markdown(report))
