"""``bookgen reprice``: past calls' costs recomputed from the current price table.

After adding a price for a model that had none, or a provider's price change, every call ever
journaled gets its ``rates``, ``cost_usd`` and ``estimated_cost_usd`` again from the config's
``prices``, each in the period its own ``started_at`` falls in (``pricing.call_costs``); tokens,
times, statuses and every other field stay as they are. Rewritten, each file atomically and only
when something in it changed: the call journals under ``.bookgen/calls/`` (what the budget,
``bookgen status`` and the "so far" line read), the usage files under ``output/usage/`` (their
totals summed again), then the cost report. A second run changes nothing; an interrupted one is
completed by running it again. The caller holds the run lock (no run may append meanwhile).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import Section
from bookgen.fsutil import atomic_write_json, atomic_write_text, read_json_lines
from bookgen.money.pricing import call_costs
from bookgen.money.report import book_cost_report, save_cost_report
from bookgen.money.usage import TOKEN_FIELDS, is_replay, sum_calls, validate

PRICED_BY = (
    "model",
    "started_at",
    "status",
    "usage_reported",
    *TOKEN_FIELDS,
    "estimated_prompt_tokens",
    "estimated_completion_tokens",
)


@dataclass
class Repriced:
    """What a reprice changed."""

    calls: int = 0  # calls whose cost changed (in the journals; replays not counted)
    journals: list[str] = field(default_factory=list)  # files rewritten
    usage_files: list[str] = field(default_factory=list)
    cost_report: bool = False  # rebuilt
    missing_usage: list[str] = field(default_factory=list)  # why the cost report was not
    unpriced_models: set[str] = field(default_factory=set)  # calls still at an unknown cost


def reprice_call(prices: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    """The call record with its costs at ``prices``. A replay (no request sent) gets the rates
    but still costs $0; a simulated call stays simulated (its cost is what it would have cost,
    never money); a record without usage fields stays as it is."""
    if not all(k in call for k in PRICED_BY):
        return call
    costs = call_costs(prices, call)
    if is_replay(call):
        return {**call, "rates": costs["rates"]}
    return {**call, **costs}


def reprice_journal(path: Path, prices: dict[str, Any], out: Repriced) -> None:
    """Rewrite one call journal (JSON lines, ``unfinished`` markers included) if a cost changed."""
    lines = read_json_lines(path)
    new = [reprice_call(prices, r) for r in lines]
    out.unpriced_models |= {r["model"] for r in new if "model" in r and r.get("rates") is None}
    changed = [(i, r) for i, (r, n) in enumerate(zip(lines, new, strict=True)) if r != n]
    if not changed:
        return
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in new)
    atomic_write_text(path, text)
    # A call is journaled twice (before it is sent, and when it ends): count it once. A replay
    # (only its rates noted) is no call.
    out.calls += len({r.get("call_id", i) for i, r in changed if not is_replay(r)})
    out.journals.append(str(path))


def reprice_usage_file(path: Path, prices: dict[str, Any], out: Repriced) -> None:
    """Rewrite one usage file with its calls repriced and its totals summed again."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    calls = [reprice_call(prices, c) for c in doc["calls"]]
    new = {**doc, "calls": calls, "totals": sum_calls(calls)}
    if new == doc:
        return
    validate(new, "usage.schema.yaml")
    atomic_write_json(path, new)
    out.usage_files.append(str(path))


def reprice_book(
    config: dict[str, Any],
    report_inputs: list[Path],
    sections: list[Section],
    state_root: Path = paths.STATE,
    output: Path = paths.OUTPUT,
) -> Repriced:
    """Reprice every journal and usage file of the book, then rebuild the cost report from
    ``report_inputs`` (the usage files the ``cost_report`` rule merges, in book order, for
    ``sections``) when it differs and each of them exists; otherwise the next run builds it."""
    prices = config["prices"]
    out = Repriced()
    for journal in sorted(paths.calls_journal("x", state_root).parent.glob("*.jsonl")):
        reprice_journal(journal, prices, out)
    for usage in sorted((output / "usage").glob("*.json")):
        reprice_usage_file(usage, prices, out)
    out.missing_usage = [str(p) for p in report_inputs if not p.exists()]
    if not report_inputs or out.missing_usage:
        return out
    report = book_cost_report(report_inputs, config["book"]["title"], sections, state_root)
    json_out = paths.cost_report("json", output)
    if _without_date(_read(json_out)) != _without_date(report):
        save_cost_report(report, json_out, paths.cost_report("md", output))
        out.cost_report = True
    return out


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _without_date(report: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if report is None else {k: v for k, v in report.items() if k != "generated_at"}
