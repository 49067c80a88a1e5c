"""What state the book is in, read from files only (never the API).

``bookgen status`` shows one row per section: its state (done, pending, failed, flagged by
quality control, or running), words, what it has cost so far (every journaled call, failed
attempts included) and its time; then the totals.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import Section, book_fingerprint, section_fingerprint
from bookgen.locks import section_busy
from bookgen.money.budget import book_calls, journal_calls, run_spending, spending
from bookgen.money.pricing import format_usd
from bookgen.provider.request_identity import is_simulated
from bookgen.writing import history

BUDGET_PREFIX = "budget reached"
SIMULATED_TEXT = (
    "its text was written by the offline simulator; a real run writes it afresh "
    "(`bookgen estimate` says what that costs; add --config provider=simulator to see the "
    "rehearsal as done)"
)


@dataclass
class SectionState:
    """One section as the files on disk describe it."""

    id: str
    title: str
    target_words: int
    state: str  # done | flagged | pending | failed | running
    detail: str  # why pending or failed, what QC flagged
    words: int | None
    calls: int  # real calls (sent to the provider)
    failed_calls: int
    simulated_calls: int  # calls the offline simulator answered (not money)
    cost_usd: float | None  # real money only
    simulated_cost_usd: float | None  # what its simulated calls would have cost (not money)
    simulated: bool  # its current text was written by the offline simulator
    api_time_s: float
    wall_time_s: float | None
    usage: dict[str, Any] | None  # the section's usage file while it is current

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("usage")
        return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def qc_flags(usage: dict[str, Any]) -> list[str]:
    """What quality control flagged in a usage file (``qc``: a verdict and per-check results)."""
    qc = usage.get("qc") or usage.get("quality") or {}
    if not isinstance(qc, dict):
        return []
    checks = qc.get("checks") or {}
    items = checks.items() if isinstance(checks, dict) else enumerate(checks)
    failed = [
        str(c.get("name", name))
        for name, c in items
        if isinstance(c, dict) and (c.get("passed") is False or c.get("ok") is False)
    ]
    flagged = qc.get("flagged") is True or qc.get("passed") is False
    if str(qc.get("verdict", qc.get("status", ""))).lower() in {"flagged", "warn", "failed"}:
        flagged = True
    if failed or flagged:
        return failed or ["quality control"]
    return []


def short_error(error: str, limit: int = 100) -> str:
    """A failure reason short enough for a table row (the budget's advice is said once)."""
    if error.startswith(BUDGET_PREFIX):
        error = error.split(" (", 1)[0]
    return error if len(error) <= limit else error[: limit - 1] + "…"


def _changed_parts(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return [k for k in new if old.get(k) != new[k]]


def section_states(
    config: dict[str, Any], sections: list[Section], state_root: Path = paths.STATE
) -> list[SectionState]:
    """Every section's state, from its files: output, usage file, journal, failure note, lock.

    A written section whose fingerprint (what determines its text) no longer matches the config
    is pending: Snakemake will regenerate it.
    """
    shared = book_fingerprint(config)
    journals = journal_calls(state_root)
    out = []
    for s in sections:
        calls = journals.get(s.key, [])
        spent, sim = spending(calls), spending(calls, simulated=True)
        usage = _read_json(paths.section_usage(s.id)) if paths.section_md(s.id).exists() else None
        note = _read_json(paths.failure_note(s.key, state_root))
        state, detail = "pending", "not written yet"
        if usage is not None:
            changed = _changed_parts(usage.get("fingerprint", {}), section_fingerprint(shared, s))
            if changed and usage.get("simulated") and not is_simulated(config):
                state, detail = "pending", SIMULATED_TEXT
                usage = None
            elif changed:
                state, detail = "pending", f"{', '.join(changed)} changed"
                usage = None
            else:
                flags = qc_flags(usage)
                state, detail = ("flagged", "QC: " + ", ".join(flags)) if flags else ("done", "")
        elif note is not None:
            state, detail = "failed", short_error(str(note.get("error", "see its log")))
        if section_busy(s.key, state_root):
            state, detail = "running", "being written now"
        out.append(
            SectionState(
                id=s.id,
                title=s.title,
                target_words=s.words,
                state=state,
                detail=detail,
                words=usage["words"] if usage else None,
                calls=spent.calls,
                failed_calls=spent.failed_calls,
                simulated_calls=sim.calls,
                cost_usd=spent.cost_usd,
                simulated_cost_usd=sim.total_usd,
                simulated=bool(usage and usage.get("simulated")),
                api_time_s=round(sum(c["duration_s"] for c in calls), 3),
                wall_time_s=usage["wall_time_s"] if usage else None,
                usage=usage,
            )
        )
    return out


def status_report(
    config: dict[str, Any], states: list[SectionState], state_root: Path = paths.STATE
) -> dict[str, Any]:
    """The status as data (``bookgen status --json``): a row per section of this book.
    ``totals.calls`` and ``totals.cost_usd`` are the real calls and money spent in this folder,
    every journaled call included (the outline's, earlier attempts and versions, another book
    written here), counted as the cost report counts it; ``estimated_cost_usd`` the calls cut
    before their usage arrived. Both together are what ``budget_usd`` is enforced against in a
    real run (``budget_spent_usd``)."""
    calls = book_calls(state_root)  # every call journaled in this folder (the budget's)
    folder, simulated = spending(calls), spending(calls, simulated=True)
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    return {
        "book_title": config["book"]["title"],
        "model": config["model"],
        "simulated_run": is_simulated(config),
        "budget_usd": config.get("budget_usd"),
        "budget_spent_usd": run_spending(config, state_root, calls).total_usd,
        "counts": counts,
        "sections": [s.as_dict() for s in states],
        "totals": {
            "sections": len(states),
            "words": sum(s.words or 0 for s in states),
            "calls": folder.calls,
            "failed_calls": folder.failed_calls,
            "cost_usd": folder.cost_usd,
            "estimated_cost_usd": folder.estimated_cost_usd,
            "simulated_calls": simulated.calls,
            "simulated_cost_usd": simulated.total_usd,
            "simulated_sections": [s.id for s in states if s.simulated],
            "api_time_s": round(sum(s.api_time_s for s in states), 3),
            "wall_time_s": round(sum(s.wall_time_s or 0 for s in states), 3),
        },
    }


def calls_text(row: dict[str, Any]) -> str:
    """A row's Calls cell: real calls (failed ones counted apart), then the simulator's, e.g.
    ``3 (1 failed)``, ``2 sim`` or ``1 + 2 sim``."""
    text = f"{row['calls']}" + (f" ({row['failed_calls']} failed)" if row["failed_calls"] else "")
    sim = row.get("simulated_calls", 0)
    if not sim:
        return text
    return f"{sim} sim" if row["calls"] == 0 else f"{text} + {sim} sim"


def render_status(report: dict[str, Any]) -> str:
    """A plain-text table for the terminal."""
    rows = [("Section", "State", "Words", "Cost", "Calls", "Time", "Title / detail")]
    for s in report["sections"]:
        words = f"{s['words']:,}" if s["words"] is not None else "–"
        wall = f"{s['wall_time_s']:.1f} s" if s["wall_time_s"] is not None else "–"
        calls = calls_text(s)
        note = s["title"] + (f" — {s['detail']}" if s["state"] != "done" else "")
        if s["simulated"]:
            note += " (simulated)"
        rows.append((s["id"], s["state"], words, format_usd(s["cost_usd"]), calls, wall, note))
    t = report["totals"]
    rows.append(
        (
            "Total",
            f"{report['counts'].get('done', 0) + report['counts'].get('flagged', 0)}"
            f"/{t['sections']} written",
            f"{t['words']:,}",
            format_usd(t["cost_usd"]),
            calls_text(t),
            f"{t['wall_time_s']:.1f} s",
            f"API time {t['api_time_s']:.1f} s",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = [f"bookgen status: {report['book_title']} ({report['model']})"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report["counts"].items()))
    lines.append(f"{t['sections']} sections: {counts}")
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(r[2:6], widths[2:6], strict=True)]
        lines.append("  ".join([*cells, r[6]]).rstrip())
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 14)
    if t["simulated_cost_usd"]:
        lines.append(
            f"Simulated calls (offline simulator, nothing billed) would have cost "
            f"{format_usd(t['simulated_cost_usd'])}; they are not in the costs above."
        )
    if t.get("estimated_cost_usd"):
        lines.append(
            "Calls cut off before the provider reported usage, estimated: "
            f"{format_usd(t['estimated_cost_usd'])}; not in the costs above (nor in the cost "
            "report's total)."
        )
    budget, spent = report["budget_usd"], report["budget_spent_usd"]
    if budget is not None and spent is not None:
        what = "simulated, would have cost" if report["simulated_run"] else "spent"
        lines.append(f"Budget: ${spent:.4f} of ${budget:.4f} {what}.")
    lines.append(
        "Costs are real money only; the total is all spent in this folder (failed attempts, the "
        "outline, earlier versions and other books written here included), as the budget counts "
        "it; time is each section's job time, summed."
    )
    return "\n".join(lines) + "\n"


def failure_summary(
    sections: list[Section],
    state_root: Path = paths.STATE,
    job_logs: dict[str, Path] | None = None,
) -> str:
    """One line per section that failed and has no finished file, with the reason (and the
    cluster job's log, from ``job_logs``, when the job ran on a cluster)."""
    lines = []
    budget_message = None
    for section in sections:
        sid = section.id
        note = paths.failure_note(section.key, state_root)
        if not note.exists() or paths.section_md(sid).exists():
            continue
        try:
            error = json.loads(note.read_text(encoding="utf-8"))["error"]
        except (OSError, ValueError, KeyError):
            error = "see its log"
        if error.startswith(BUDGET_PREFIX):
            budget_message = error
            error = short_error(error, limit=len(error))
        logs = [paths.section_log(sid), *([job_logs[sid]] if sid in (job_logs or {}) else [])]
        lines.append(f"  section_{sid}: {error} (log: {', '.join(map(str, logs))})")
        kept = history.texts(section.key, state_root) or [history.last_text_at(sid, state_root)]
        if kept[-1] is not None:
            lines.append(f"    its last finished text is kept in {kept[-1]}")
    if not lines:
        return ""
    return (
        f"bookgen: {len(lines)} section(s) failed:\n"
        + "\n".join(lines)
        + (f"\n{budget_message}" if budget_message else "")
        + "\nThe other sections are kept. Fix the cause if needed and run the same command "
        "again: only the missing sections are generated."
    )
