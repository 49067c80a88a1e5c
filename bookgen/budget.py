"""Money spent on a book, read from the call journals, and the ``budget_usd`` limit.

Spent money is every call ever journaled under ``.bookgen/calls/`` (failed attempts included;
a stream cut before its usage arrived counts at its estimate). Before each API call a section
checks that spent + that call's worst case (every input token a cache miss, ``max_tokens`` of
output, at the model's highest rates) stays within the budget.

The bound: a call's cost reaches the journal only when it ends, so sections running at the
same time do not see each other's calls in flight. When the last call starts, spent + its worst
case <= budget; the total can exceed the budget only by what the calls already in flight then
cost, that is at most ``(concurrent calls - 1) x worst case of one call``, where concurrent
calls <= min(--cores, the ``api`` resource).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import ConfigError, Section, template_text
from bookgen.journal import CallJournal
from bookgen.locks import section_busy
from bookgen.pricing import Rates, cost_usd
from bookgen.prompts import section_messages
from bookgen.tokens import count_tokens
from bookgen.usage import sum_calls

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators per chat message
PROMPT_MARGIN = 1.25  # bookgen.tokens only approximates the provider's tokenizer


class BudgetReached(Exception):
    """No new API call may start: the message says how much is spent and how to go on."""


@dataclass(frozen=True)
class Spending:
    """Money and tokens spent so far (reported usage plus estimates for cut streams)."""

    cost_usd: float | None  # None when a model's price is unknown
    tokens: int
    calls: int
    failed_calls: int


def spent_usd(totals: dict[str, Any]) -> float | None:
    """Reported plus estimated cost of ``bookgen.usage.sum_calls`` totals; None if unknown."""
    if totals["cost_usd"] is None or totals["estimated_cost_usd"] is None:
        return None
    return totals["cost_usd"] + totals["estimated_cost_usd"]


def spending(calls: list[dict[str, Any]]) -> Spending:
    t = sum_calls(calls)
    tokens = (
        t["prompt_tokens"]
        + t["completion_tokens"]
        + t["estimated_prompt_tokens"]
        + t["estimated_completion_tokens"]
    )
    return Spending(spent_usd(t), tokens, t["calls"], t["failed_calls"])


def journal_calls(state_root: Path = paths.STATE) -> dict[str, list[dict[str, Any]]]:
    """Every journaled call of the book, by section id (read from ``.bookgen/calls``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(paths.calls_journal("x", state_root).parent.glob("section_*.jsonl")):
        sid = path.stem.removeprefix("section_")
        out[sid] = CallJournal(path).records(
            in_flight=lambda sid=sid: section_busy(sid, state_root)
        )
    return out


def book_spending(state_root: Path = paths.STATE) -> Spending:
    """What the whole book has cost so far, every section and attempt included."""
    return spending([c for calls in journal_calls(state_root).values() for c in calls])


def highest_rates(prices: dict[str, Any], model: str) -> Rates | None:
    """The model's highest rate of each kind over all periods (a call may cross into peak)."""
    entry = prices.get(model)
    if entry is None:
        return None
    periods = [entry, entry.get("peak") or entry]
    return Rates(
        cache_hit=max(p["cache_hit"] for p in periods),
        cache_miss=max(p["cache_miss"] for p in periods),
        output=max(p["output"] for p in periods),
        period="worst case",
    )


def prompt_tokens(messages: list[dict[str, str]]) -> int:
    """Approximate input tokens of a chat request."""
    return sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def worst_case_usd(config: dict[str, Any], request: dict[str, Any]) -> float | None:
    """The most one chat ``request`` can cost: all input missing the cache, its ``max_tokens``
    of output, the model's highest rates; None when the model has no price."""
    rates = highest_rates(config["prices"], request["model"])
    prompt = int(prompt_tokens(request["messages"]) * PROMPT_MARGIN)
    return cost_usd(rates, 0, prompt, int(request["max_tokens"]))


def check_budget(
    config: dict[str, Any], request: dict[str, Any], state_root: Path = paths.STATE
) -> None:
    """Raise BudgetReached when the book's spending plus this request's worst case would exceed
    ``budget_usd``; a no-op without a budget."""
    budget = config.get("budget_usd")
    if budget is None:
        return
    worst = worst_case_usd(config, request)
    spent = book_spending(state_root).cost_usd
    if worst is None or spent is None:  # prevented by check_budget_config; never guess $0
        raise BudgetReached(f"budget reached: cost unknown of ${budget:.4f} (no price)")
    if spent + worst > budget:
        raise BudgetReached(
            f"budget reached: ${spent:.4f} of ${budget:.4f} spent (the next call could cost up "
            f"to ${worst:.4f}). Raise budget_usd (e.g. --config budget_usd={_suggest(budget)}) "
            "and run again: finished sections are kept and only the rest is written."
        )


def _suggest(budget: float) -> str:
    return f"{budget * 2:.4g}"


def check_budget_config(config: dict[str, Any]) -> None:
    """A budget needs a price: raise ConfigError before any money is spent otherwise."""
    if config.get("budget_usd") is None or config["model"] in config["prices"]:
        return
    raise ConfigError(
        f"config error in budget_usd: model {config['model']!r} has no entry under `prices:`, "
        "so bookgen cannot tell what a call costs and cannot keep to a budget. Add the model's "
        "prices (USD per million tokens: cache_hit, cache_miss, output) or remove budget_usd."
    )


def exhausted_message(
    config: dict[str, Any], sections: list[Section], state_root: Path = paths.STATE
) -> str | None:
    """Before a run: the budget message when not even the cheapest first call could start."""
    budget = config.get("budget_usd")
    if budget is None:
        return None
    system, task = template_text(config, "system"), template_text(config, "section")
    worst = min(
        worst_case_usd(
            config,
            {
                "model": config["model"],
                "messages": section_messages(system, task, config["book"], sections, s),
                "max_tokens": config["generation"]["max_tokens"],
            },
        )
        or 0.0
        for s in sections
    )
    spent = book_spending(state_root).cost_usd
    if spent is None or spent + worst <= budget:
        return None
    return (
        f"bookgen: budget reached: ${spent:.4f} of ${budget:.4f} spent, and a section's first "
        f"call could cost up to ${worst:.4f}. Raise budget_usd (e.g. --config "
        f"budget_usd={_suggest(budget)}) and run again. No section was started."
    )


def progress_line(sid: str, done: int, total: int, spent: Spending) -> str:
    """The line a section job prints when it finishes, e.g.
    ``[3/11] section_04 done · $0.0456 so far (24,500 tokens)``."""
    cost = "cost unknown" if spent.cost_usd is None else f"${spent.cost_usd:.4f}"
    failed = f", {spent.failed_calls} failed call(s)" if spent.failed_calls else ""
    return f"[{done}/{total}] section_{sid} done · {cost} so far ({spent.tokens:,} tokens{failed})"
