"""Money spent on a book, read from the call journals, and the ``budget_usd`` limit.

Spent money is every real call ever journaled under ``.bookgen/calls/`` (failed attempts
included), counted as the cost report counts it (``bookgen.money.usage.split_costs``): the usage the
provider reported, priced, with the estimates of streams cut before their usage arrived kept
apart; the budget counts both. That is the book's directory, not its current sections:
earlier versions of sections, removed ones and another book written in the same directory
count too (a journal named by a section's entry cannot tell another book's section from an
earlier version of this one, and a budget must never undercount). Calls answered by the
offline simulator are never money: a simulated run rehearses the budget against what its own
simulated calls would have cost, and a real run counts only real calls.

Before each API call a section begins it here (``begin_call``): under one lock, spent + the
worst case of every call in flight in this process + this call's worst case (every input token
a cache miss, ``max_tokens`` of output, at the model's highest rates) must stay within the
budget, and the call is then counted as in flight until its record is journaled
(``end_call``). Section jobs are threads of one Snakemake process by default, so the budget
is never exceeded.

Where jobs are separate processes (``--workflow-profile none``, a cluster executor), a process
cannot see the calls in flight in the others: the total can then exceed the budget by at most
``(concurrent calls - 1) x worst case of one call``, where concurrent calls <= the ``api``
resource.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import ConfigError, Section, template_text
from bookgen.locks import section_busy
from bookgen.money.pricing import Rates, cost_usd, format_usd, sum_costs
from bookgen.money.tokens import count_tokens
from bookgen.money.usage import is_replay, split_costs
from bookgen.provider.journal import CallJournal
from bookgen.provider.request_identity import is_simulated
from bookgen.writing.prompts import outline_messages, section_messages

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators per chat message
PROMPT_MARGIN = 1.25  # bookgen.money.tokens only approximates the provider's tokenizer


class BudgetReached(Exception):
    """No new API call may start: the message says how much is spent and how to go on."""


@dataclass(frozen=True)
class Spending:
    """Money and tokens spent so far: the reported usage priced (the cost report's
    ``cost_usd``), and apart the estimates for calls cut before their usage arrived."""

    cost_usd: float | None  # None when a model's price is unknown
    tokens: int  # the estimated tokens of cut calls included
    calls: int
    failed_calls: int
    simulated: bool = False  # True: what simulated calls would have cost, not money
    estimated_cost_usd: float | None = 0.0  # cut calls (the cost report's estimated_cost_usd)

    @property
    def total_usd(self) -> float | None:
        """Reported and estimated together: what the budget is held to."""
        return sum_costs([self.cost_usd, self.estimated_cost_usd])


def spending(calls: list[dict[str, Any]], simulated: bool = False) -> Spending:
    """What ``calls`` cost: the real ones, or (``simulated``) what the simulated ones would
    have cost. Replays sent nothing and cost nothing."""
    mine = [c for c in calls if not is_replay(c) and c.get("simulated", False) == simulated]
    tokens = sum(
        c["prompt_tokens"]
        + c["completion_tokens"]
        + c["estimated_prompt_tokens"]
        + c["estimated_completion_tokens"]
        for c in mine
    )
    failed = sum(c["status"] != "ok" for c in mine)
    reported, estimated = split_costs(mine)
    return Spending(reported, tokens, len(mine), failed, simulated, estimated)


def total_spending(parts: list[Spending], simulated: bool = False) -> Spending:
    """``spending`` of the calls of ``parts`` together, from their ``spending`` each (what
    changes is then counted again, not every call of the book)."""
    return Spending(
        sum_costs([p.cost_usd for p in parts]),
        sum(p.tokens for p in parts),
        sum(p.calls for p in parts),
        sum(p.failed_calls for p in parts),
        simulated,
        sum_costs([p.estimated_cost_usd for p in parts]),
    )


def journal_files(state_root: Path = paths.STATE) -> list[os.DirEntry[str]]:
    """Every call journal of the book's directory (``.bookgen/calls/section_*.jsonl``: earlier
    versions and removed sections included), in name order."""
    folder = paths.calls_journal("x", state_root).parent
    try:  # names sorted as strings: sorting and globbing Paths cost more than reading them
        with os.scandir(folder) as found:
            journals = [
                e for e in found if e.name.startswith("section_") and e.name.endswith(".jsonl")
            ]
    except FileNotFoundError:
        return []
    return sorted(journals, key=lambda e: e.name)


def journal_calls(state_root: Path = paths.STATE) -> dict[str, list[dict[str, Any]]]:
    """Every journaled call of the book, by section key (``journal_files``)."""
    keys = [paths.state_key(Path(e.name)) for e in journal_files(state_root)]
    return {key: section_calls(key, state_root) for key in keys}


def section_calls(key: str, state_root: Path = paths.STATE) -> list[dict[str, Any]]:
    """The journaled calls of the section with ``key`` (its parts' included)."""
    return CallJournal(paths.calls_journal(key, state_root)).records(
        in_flight=lambda: section_busy(key, state_root)
    )


def book_calls(state_root: Path = paths.STATE) -> list[dict[str, Any]]:
    """Every call journaled in the book's directory: every section (and the outline), attempt
    and earlier version included."""
    return [c for calls in journal_calls(state_root).values() for c in calls]


def book_spending(state_root: Path = paths.STATE, simulated: bool = False) -> Spending:
    """What was spent in the book's directory so far (every journal, ``journal_spendings``):
    real money, or (``simulated``) what the simulated calls would have cost."""
    return total_spending(journal_spendings(state_root, simulated), simulated)


def run_spending(
    config: dict[str, Any],
    state_root: Path = paths.STATE,
    calls: list[dict[str, Any]] | None = None,
) -> Spending:
    """The spending a run of ``config`` reports and budgets: real money for a real provider,
    the simulated calls' would-be cost for the offline simulator. ``calls``: the book's calls
    (``book_calls``) when the caller has read them already."""
    if calls is not None:
        return spending(calls, is_simulated(config))
    return book_spending(state_root, is_simulated(config))


# Each journal's ``spending``, by (path, simulated), with the file's (mtime, size) it was
# computed at. Every finished section's "[N/M] ... so far" line and every call under a budget
# ask for the book's spending: at 1,000 sections, reading every journal's records again took
# 28 ms each time (inside the finished-section counter's lock); now one stat per journal.
_journal_spent: dict[tuple[str, bool], tuple[int, int, Spending]] = {}


def journal_spendings(state_root: Path = paths.STATE, simulated: bool = False) -> list[Spending]:
    """``spending`` of each journal of the book's directory (``journal_files``), in name order.
    A journal is read again only when its file changed, or while it has a call open (whether
    that call counts depends on its section being written right now)."""
    out = []
    for entry in journal_files(state_root):
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue
        hit = _journal_spent.get((entry.path, simulated))
        if hit is not None and hit[:2] == (st.st_mtime_ns, st.st_size):
            out.append(hit[2])
            continue
        key = paths.state_key(Path(entry.name))
        spent = spending(section_calls(key, state_root), simulated)
        if CallJournal(paths.calls_journal(key, state_root)).settled():
            _journal_spent[(entry.path, simulated)] = (st.st_mtime_ns, st.st_size, spent)
        out.append(spent)
    return out


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
    """The most one chat ``request`` can cost: all input missing the cache,
    ``generation.max_tokens`` of output (whatever name the request sends it under), the model's
    highest rates; None when the model has no price."""
    rates = highest_rates(config["prices"], request["model"])
    prompt = int(prompt_tokens(request["messages"]) * PROMPT_MARGIN)
    return cost_usd(rates, 0, prompt, int(config["generation"]["max_tokens"]))


# Worst cases of the calls begun and not yet journaled in this process, by call id.
_in_flight: dict[str, float] = {}
_in_flight_lock = threading.Lock()


def begin_call(
    config: dict[str, Any], request: dict[str, Any], call_id: str, state_root: Path = paths.STATE
) -> None:
    """Admit one API call under ``budget_usd``, or raise BudgetReached.

    Under one lock: spent + the worst case of every call in flight in this process + this
    call's worst case must stay within the budget; the call then counts as in flight until
    ``end_call``. A no-op without a budget.
    """
    budget = config.get("budget_usd")
    if budget is None:
        return
    worst = worst_case_usd(config, request)
    with _in_flight_lock:
        spent = run_spending(config, state_root).total_usd
        if worst is None or spent is None:  # prevented by check_budget_config; never guess $0
            raise BudgetReached(f"budget reached: cost unknown of ${budget:.4f} (no price)")
        pending = sum(_in_flight.values())
        if spent + pending + worst > budget:
            in_flight = f", {format_usd(pending)} more in flight" if pending else ""
            raise BudgetReached(
                f"budget reached: ${spent:.4f} of ${budget:.4f} spent{in_flight} (the next "
                f"call could cost up to ${worst:.4f}). Raise budget_usd (e.g. --config "
                f"budget_usd={_suggest(budget)}) and run again: finished sections are kept and "
                "only the rest is written."
            )
        _in_flight[call_id] = worst


def end_call(call_id: str) -> None:
    """The call's record is journaled: it now counts as spent, no longer as in flight."""
    with _in_flight_lock:
        _in_flight.pop(call_id, None)


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
    """Before a run: the budget message when not even the cheapest first call could start
    (the outline's, in topic mode before the outline exists)."""
    budget = config.get("budget_usd")
    if budget is None:
        return None
    if sections:
        system, task = template_text(config, "system"), template_text(config, "section")
        firsts = [section_messages(system, task, config["book"], sections, s) for s in sections]
    else:
        firsts = [outline_messages(template_text(config, "outline"), config)]
    worst = min(
        worst_case_usd(
            config,
            {
                "model": config["model"],
                "messages": messages,
                "max_tokens": config["generation"]["max_tokens"],
            },
        )
        or 0.0
        for messages in firsts
    )
    spent = run_spending(config, state_root).total_usd
    if spent is None or spent + worst <= budget:
        return None
    return (
        f"bookgen: budget reached: ${spent:.4f} of ${budget:.4f} spent, and a section's first "
        f"call could cost up to ${worst:.4f}. Raise budget_usd (e.g. --config "
        f"budget_usd={_suggest(budget)}) and run again. No section was started."
    )


def spent_text(spent: Spending, so_far: str = "so far") -> str:
    """Money so far as the "so far" line and the live board say it, e.g. ``$0.0456 so far``,
    ``simulated, would have cost $0.0456 so far`` or, with cut calls, ``$0.0456 so far (+
    $0.0012 estimated for cut calls)``: the same two figures as the cost report's total and
    its line on calls cut off before the provider reported usage."""
    cost = "cost unknown" if spent.cost_usd is None else format_usd(spent.cost_usd)
    if spent.simulated:
        cost = f"simulated, would have cost {cost}"
    text = f"{cost} {so_far}"
    if spent.estimated_cost_usd != 0:
        text += f" (+ {format_usd(spent.estimated_cost_usd)} estimated for cut calls)"
    return text


def progress_line(sid: str, done: int, total: int, spent: Spending) -> str:
    """The line a section job prints when it finishes, e.g.
    ``[3/11] section_04 done · $0.0456 so far (24,500 tokens)``; in a simulated run
    ``… · simulated, would have cost $0.0456 so far (…)``: nothing was billed."""
    failed = f", {spent.failed_calls} failed call(s)" if spent.failed_calls else ""
    return (
        f"[{done}/{total}] section_{sid} done · {spent_text(spent)} "
        f"({spent.tokens:,} tokens{failed})"
    )
