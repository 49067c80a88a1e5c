"""What the pending sections will cost and how long they will take, before any money is spent.

From the outline alone, a section of ``words`` target words is expected to produce
``words x completion_per_word`` output tokens (reasoning included), split into calls of at
most ``generation.max_tokens``; its input is the real prompt bookgen would send, counted with
``bookgen.money.tokens``, plus the text so far for each continuation; the shared system prompt is
expected to be a prefix-cache hit after the first call. Once sections are finished, their
measured tokens per target word, input size, cache-hit share, tokens per second and job
overhead replace those defaults. Reads only files and the config; never calls the API.

The calls beyond writing (``other_calls``) are counted apart, as a low–high range: the plan of
each section of at least ``planning.min_words`` words and the extra calls of writing it in parts
of ``planning.words_per_call``, quality control's repairs (none up to ``qc.max_attempts`` rounds
for every section; once sections are finished, the measured share of sections repaired and the
measured size of a repair call), and the outline call of a topic whose outline is not written.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from bookgen import clock
from bookgen.config import Section, is_planned, template_text
from bookgen.money.budget import (
    MESSAGE_OVERHEAD_TOKENS,
    highest_rates,
    prompt_tokens,
    run_spending,
    spending,
    worst_case_usd,
)
from bookgen.money.pricing import Rates, cost_usd, format_usd, off_peak_at, rates_for, sum_costs
from bookgen.money.tokens import count_tokens
from bookgen.provider.request_identity import is_simulated
from bookgen.run.status import SectionState
from bookgen.writing.prompts import (
    CONTINUE_PROMPT,
    outline_messages,
    plan_messages,
    section_messages,
)

PLAN_TOKENS_PER_WORD = 0.08  # a plan: a JSON line (heading, words, covers) per ~300 words
OUTLINE_TOKENS_PER_SECTION = 120  # an outline entry as JSON: title, words, four key points
CACHE_UNIT_TOKENS = 64  # DeepSeek caches whole 64-token units of an identical prefix
RUN_OVERHEAD_S = 4.0  # snakemake start-up, DAG, the cost report and book rules, per run
PROCESS_START_S = 1.2  # a section job's interpreter start and imports, outside its own clock


@dataclass(frozen=True)
class Assumptions:
    """The per-section model behind an estimate; ``source`` says where the numbers come from."""

    completion_per_word: float = 1.4  # output tokens per target word (English prose, BPE)
    prompt_scale: float = 1.0  # measured input tokens / bookgen's count of the same prompts
    hit_share: float | None = None  # measured share of input billed as cache hits
    tokens_per_s: float = 40.0  # output speed of one request (math.inf: instant)
    ttft_s: float = 2.0  # seconds to the first token, per call
    job_overhead_s: float = 1.5  # per section job, outside the API calls
    source: str = "outline targets and default rates"


@dataclass
class SectionEstimate:
    id: str
    title: str
    target_words: int
    calls: int
    prompt_tokens: int
    prompt_cache_hit_tokens: int
    completion_tokens: int
    cost_usd: float | None  # at the rates in force now
    api_time_s: float
    job_time_s: float
    base_prompt_tokens: int  # the first call's input (book context and task)


def default_assumptions(config: dict[str, Any]) -> Assumptions:
    """Defaults; for the offline simulator its own configured speed and length."""
    if config["provider"] != "simulator":
        return Assumptions()
    sim = config.get("simulator") or {}
    tps = sim.get("tokens_per_s") or math.inf
    factor = float(sim.get("words_factor", 1.0))
    return Assumptions(
        completion_per_word=1.45 * factor,
        tokens_per_s=tps,
        ttft_s=float(sim.get("ttft_s", 0.0)),
        job_overhead_s=PROCESS_START_S + 0.2,
        source="outline targets and the simulator's settings",
    )


def base_messages(config: dict[str, Any], sections: list[Section], section: Section) -> list:
    return section_messages(
        template_text(config, "system"),
        template_text(config, "section"),
        config["book"],
        sections,
        section,
    )


def predict_calls(
    config: dict[str, Any], base_prompt: int, completion: int, a: Assumptions
) -> list[tuple[int, int]]:
    """``(input, output)`` tokens of each call for a reply of ``completion`` tokens."""
    max_tokens = int(config["generation"]["max_tokens"])
    continuation = count_tokens(CONTINUE_PROMPT) + 2 * MESSAGE_OVERHEAD_TOKENS
    calls = []
    for k, out in enumerate(call_outputs(config, completion)):
        prompt = base_prompt + (k * max_tokens + continuation if k else 0)
        calls.append((round(prompt * a.prompt_scale), out))
    return calls


def call_outputs(config: dict[str, Any], completion: int) -> list[int]:
    """Output tokens of each call for a reply of ``completion`` tokens: calls of at most
    ``generation.max_tokens``."""
    max_tokens = int(config["generation"]["max_tokens"])
    n = max(1, math.ceil(completion / max_tokens))
    return [min(max_tokens, completion - k * max_tokens) for k in range(n)]


def section_completion(section: Section, a: Assumptions) -> int:
    """The output tokens expected of ``section``."""
    return max(1, round(section.words * a.completion_per_word))


def api_time_s(outputs: list[int], a: Assumptions) -> float:
    """Seconds of API time for calls of ``outputs`` tokens each."""
    return sum(a.ttft_s + out / a.tokens_per_s for out in outputs)


def job_time_s(config: dict[str, Any], section: Section, a: Assumptions) -> float:
    """Seconds ``section``'s job should take. Its prompt does not matter (the model times
    output only), so this skips rendering and counting it: a prompt carries the whole outline,
    which makes that O(sections) per section."""
    outputs = call_outputs(config, section_completion(section, a))
    return round(api_time_s(outputs, a) + a.job_overhead_s, 3)


def _cost(rates: Rates | None, prompt: int, hits: int, completion: int) -> float | None:
    return cost_usd(rates, hits, prompt - hits, completion)


def estimate_section(
    config: dict[str, Any],
    sections: list[Section],
    section: Section,
    a: Assumptions,
    first_in_book: bool,
    rates: Rates | None,
) -> SectionEstimate:
    messages = base_messages(config, sections, section)
    system_tokens = count_tokens(messages[0]["content"]) + MESSAGE_OVERHEAD_TOKENS
    completion = section_completion(section, a)
    calls = predict_calls(config, prompt_tokens(messages), completion, a)
    prompt = sum(p for p, _ in calls)
    if a.hit_share is not None:
        hits = round(prompt * a.hit_share)
    else:
        cached = (system_tokens // CACHE_UNIT_TOKENS) * CACHE_UNIT_TOKENS
        hits = cached * (len(calls) - (1 if first_in_book else 0))
    api = api_time_s([out for _, out in calls], a)
    return SectionEstimate(
        id=section.id,
        title=section.title,
        target_words=section.words,
        calls=len(calls),
        prompt_tokens=prompt,
        prompt_cache_hit_tokens=hits,
        completion_tokens=completion,
        cost_usd=_cost(rates, prompt, hits, completion),
        api_time_s=round(api, 3),
        job_time_s=job_time_s(config, section, a),
        base_prompt_tokens=calls[0][0],
    )


def writing_calls(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls of a usage document that wrote its text (``write``, ``continue``): what the
    per-section model fits; plans and repairs are counted apart (``other_calls``)."""
    return [c for c in doc["calls"] if c["purpose"] in ("write", "continue")]


def measured_assumptions(
    config: dict[str, Any],
    sections: list[Section],
    finished: list[SectionState],
    prompts: bool = True,
) -> Assumptions:
    """Assumptions fitted to finished sections (their usage files), or the defaults.
    ``prompts=False`` leaves ``prompt_scale`` at its default: fitting it renders and counts
    every finished section's prompt, which times (``job_time_s``) do not need."""
    a = default_assumptions(config)
    docs = [s.usage for s in finished if s.usage is not None]
    if not docs:
        return a
    by_id = {s.id: s for s in sections}
    calls = [c for d in docs for c in writing_calls(d)]
    completion = sum(c["completion_tokens"] + c["estimated_completion_tokens"] for c in calls)
    prompt = sum(c["prompt_tokens"] + c["estimated_prompt_tokens"] for c in calls)
    hits = sum(c["prompt_cache_hit_tokens"] for c in calls)
    duration = sum(c["duration_s"] for c in calls)
    words = sum(by_id[d["section"]].words for d in docs)
    predicted_prompt = 0
    for d in docs if prompts else []:
        s = by_id[d["section"]]
        base = prompt_tokens(base_messages(config, sections, s))
        out = sum(
            c["completion_tokens"] + c["estimated_completion_tokens"] for c in writing_calls(d)
        )
        predicted_prompt += sum(p for p, _ in predict_calls(config, base, max(out, 1), a))
    overhead = sum(max(0.0, d["wall_time_s"] - d["totals"]["duration_s"]) for d in docs)
    return replace(
        a,
        completion_per_word=completion / words if words else a.completion_per_word,
        prompt_scale=prompt / predicted_prompt if predicted_prompt else a.prompt_scale,
        hit_share=hits / prompt if prompt else None,
        tokens_per_s=completion / duration if duration > 0 else math.inf,
        ttft_s=0.0,  # folded into the measured tokens per second
        job_overhead_s=PROCESS_START_S + overhead / len(docs),
        source=f"the measured tokens and times of {len(docs)} finished section(s)",
    )


@dataclass(frozen=True)
class OtherCalls:
    """Calls of one kind beyond writing the pending sections, as a low–high range."""

    kind: str  # plan | parts | repair | outline
    calls_low: int
    calls_high: int
    prompt_tokens_low: int
    prompt_tokens_high: int
    completion_tokens_low: int
    completion_tokens_high: int
    basis: str  # where the numbers come from, for people
    cost_usd_low: float | None = None
    cost_usd_high: float | None = None


def _calls(
    kind: str, low: int, high: int, prompt: float, completion: float, basis: str
) -> OtherCalls:
    """``low`` to ``high`` calls of ``prompt`` input and ``completion`` output tokens each."""
    return OtherCalls(
        kind,
        low,
        high,
        round(low * prompt),
        round(high * prompt),
        round(low * completion),
        round(high * completion),
        basis,
    )


def _add(a: OtherCalls, b: OtherCalls) -> OtherCalls:
    return replace(
        a,
        calls_low=a.calls_low + b.calls_low,
        calls_high=a.calls_high + b.calls_high,
        prompt_tokens_low=a.prompt_tokens_low + b.prompt_tokens_low,
        prompt_tokens_high=a.prompt_tokens_high + b.prompt_tokens_high,
        completion_tokens_low=a.completion_tokens_low + b.completion_tokens_low,
        completion_tokens_high=a.completion_tokens_high + b.completion_tokens_high,
    )


def _sent_tokens(calls: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean input and output tokens of ``calls`` (estimates of cut calls included)."""
    n = max(1, len(calls))
    prompt = sum(c["prompt_tokens"] + c["estimated_prompt_tokens"] for c in calls)
    out = sum(c["completion_tokens"] + c["estimated_completion_tokens"] for c in calls)
    return prompt / n, out / n


def repair_calls(
    config: dict[str, Any], rows: list[SectionEstimate], docs: list[dict[str, Any]]
) -> OtherCalls:
    """Quality control's repair calls for the pending sections (``rows``). From the config
    alone: none (low) to every section repaired ``qc.max_attempts`` times (high), a repair call
    sending the section's context and text and getting at most its text back. Once sections
    are finished (``docs``, their usage files): low is the measured share of sections repaired,
    at the measured repair calls per repaired section; high every section repaired
    ``qc.max_attempts`` rounds at the measured calls per round; the call size is measured."""
    rounds = int(config["qc"]["max_attempts"])
    n = len(rows)
    prompt = sum(r.base_prompt_tokens + r.completion_tokens for r in rows) / max(1, n)
    out = sum(r.completion_tokens for r in rows) / max(1, n)
    if not docs:
        basis = f"none to every section repaired qc.max_attempts={rounds} time(s)"
        return _calls("repair", 0, n * rounds, prompt, out, basis)
    paid = [
        [c for c in d["calls"] if c["purpose"] == "repair" and c["status"] != "replayed"]
        for d in docs
    ]
    repaired = [calls for calls in paid if calls]
    made = sum(len(calls) for calls in repaired)
    rounds_made = sum(
        int((d.get("qc") or {}).get("attempts", 0))
        for d, calls in zip(docs, paid, strict=True)
        if calls
    )
    per_round = made / rounds_made if rounds_made else 1.0
    if made:
        prompt, out = _sent_tokens([c for calls in repaired for c in calls])
    low = round(n * len(repaired) / len(docs) * (made / len(repaired) if repaired else 0))
    high = max(low, math.ceil(n * rounds * per_round))
    basis = (
        f"{len(repaired)} of {len(docs)} finished section(s) needed repairs, {made} call(s); "
        f"high: every section repaired qc.max_attempts={rounds} time(s)"
    )
    return _calls("repair", low, high, prompt, out, basis)


def plan_and_part_calls(
    config: dict[str, Any],
    sections: list[Section],
    rows: list[SectionEstimate],
    docs: list[dict[str, Any]],
) -> list[OtherCalls]:
    """The plan of every pending section of at least ``planning.min_words`` words (asked again
    up to ``qc.max_attempts`` times when invalid: high), and the calls writing it in parts of
    ``planning.words_per_call`` words add beyond the table's (each part sends the book context
    and the plan). A plan's size is measured once finished sections had one."""
    by_id = {s.id: s for s in sections}
    planned = [r for r in rows if is_planned(config, by_id[r.id])]
    if not planned:
        return []
    retries = int(config["qc"]["max_attempts"])
    measured = [c for d in docs for c in d["calls"] if c["purpose"] == "plan"]
    measured_words = sum(
        by_id[d["section"]].words
        for d in docs
        if d["section"] in by_id and any(c["purpose"] == "plan" for c in d["calls"])
    )
    plan_per_word = (
        sum(c["completion_tokens"] for c in measured) / measured_words
        if measured and measured_words
        else PLAN_TOKENS_PER_WORD
    )
    plans = OtherCalls("plan", 0, 0, 0, 0, 0, 0, "")
    parts = OtherCalls("parts", 0, 0, 0, 0, 0, 0, "")
    per_call = int(config["planning"]["words_per_call"])
    for r in planned:
        s = by_id[r.id]
        ask = prompt_tokens(plan_messages(base_messages(config, sections, s), s))
        plan_out = s.words * plan_per_word
        plans = _add(plans, _calls("plan", 1, 1 + retries, ask, plan_out, ""))
        count = math.ceil(s.words / per_call)  # each part resends the context and the plan
        more = max(0, count - r.calls)
        sent = max(0, round(count * (r.base_prompt_tokens + plan_out)) - r.prompt_tokens)
        parts = _add(parts, OtherCalls("parts", more, more, sent, sent, 0, 0, ""))
    min_words = config["planning"]["min_words"]
    return [
        replace(
            plans,
            basis=f"{len(planned)} section(s) of at least planning.min_words={min_words} words"
            + (", plan size measured" if measured else "")
            + f"; high: each asked again qc.max_attempts={retries} time(s)",
        ),
        replace(parts, basis=f"written in parts of planning.words_per_call={per_call} words"),
    ]


def outline_calls(config: dict[str, Any]) -> OtherCalls:
    """The outline call of a topic whose outline is not written yet (asked again up to
    ``qc.max_attempts`` times when its JSON does not validate: high)."""
    ask = prompt_tokens(outline_messages(template_text(config, "outline"), config))
    out = int(config["section_count"]) * OUTLINE_TOKENS_PER_SECTION
    retries = int(config["qc"]["max_attempts"])
    basis = f"the book's outline from its topic; high: asked again {retries} time(s)"
    return _calls("outline", 1, 1 + retries, ask, out, basis)


def priced(
    extra: OtherCalls, prices: dict[str, Any], model: str, hit_share: float | None
) -> OtherCalls:
    """``extra`` with its cost range: low at the cheapest period with the expected cache hits,
    high at the highest rates without any (as the sections' own range); None without a price."""
    hits = round(extra.prompt_tokens_low * (hit_share or 0.0))
    lows = [
        _cost(r, extra.prompt_tokens_low, hits, extra.completion_tokens_low)
        for r in _period_rates(prices, model).values()
    ]
    high = _cost(
        highest_rates(prices, model), extra.prompt_tokens_high, 0, extra.completion_tokens_high
    )
    return replace(extra, cost_usd_low=min(lows) if lows else None, cost_usd_high=high)


def other_calls(
    config: dict[str, Any],
    sections: list[Section],
    rows: list[SectionEstimate],
    finished: list[SectionState],
    a: Assumptions,
    outline_pending: bool,
) -> dict[str, Any]:
    """Every call beyond writing the pending sections' text, per kind and together."""
    docs = [s.usage for s in finished if s.usage is not None]
    kinds = [*plan_and_part_calls(config, sections, rows, docs)]
    if rows:
        kinds.append(repair_calls(config, rows, docs))
    if outline_pending:
        kinds.append(outline_calls(config))
    kinds = [
        priced(k, config["prices"], config["model"], a.hit_share)
        for k in kinds
        if k.calls_high or k.prompt_tokens_high
    ]
    return {
        "kinds": [asdict(k) for k in kinds],
        "calls_low": sum(k.calls_low for k in kinds),
        "calls_high": sum(k.calls_high for k in kinds),
        "cost_usd_low": sum_costs([k.cost_usd_low for k in kinds]),
        "cost_usd_high": sum_costs([k.cost_usd_high for k in kinds]),
    }


def makespan(durations: list[float], slots: int) -> float:
    """Wall time of jobs run longest first on ``slots`` parallel workers."""
    workers = [0.0] * max(1, slots)
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(workers, workers[0] + d)
    return max(workers)


def split_states(states: list[SectionState]) -> tuple[list[SectionState], set[str]]:
    """The finished sections (done or flagged: their usage files fit the model) and the ids
    of the pending ones (everything else: the run writes them)."""
    finished = [s for s in states if s.state in ("done", "flagged")]
    return finished, {s.id for s in states if s.state not in ("done", "flagged")}


def pending_job_times(
    config: dict[str, Any], sections: list[Section], states: list[SectionState]
) -> dict[str, float]:
    """Seconds each pending section's job should take: ``estimate_book``'s ``job_time_s``,
    in time linear in the number of sections (no prompt is rendered)."""
    finished, pending = split_states(states)
    a = measured_assumptions(config, sections, finished, prompts=False)
    return {s.id: job_time_s(config, s, a) for s in sections if s.id in pending}


def estimate_book(
    config: dict[str, Any],
    sections: list[Section],
    states: list[SectionState],
    cores: int,
    api_slots: int | None = None,
    now: datetime | None = None,
    outline_pending: bool = False,
) -> dict[str, Any]:
    """The estimate for every pending section, with totals, a cost range and wall time, and
    apart the other calls (plans, parts, repairs, the outline when ``outline_pending``)."""
    now = now or clock.now_utc()
    finished, pending_ids = split_states(states)
    a = measured_assumptions(config, sections, finished)
    prices, model = config["prices"], config["model"]
    schedule = config.get("schedule", "now")
    # With schedule: off_peak a run started in a peak window waits for its end
    # (bookgen.money.schedule).
    off_peak = off_peak_at(prices, model, now)
    waits = schedule == "off_peak" and off_peak is not None and off_peak != now
    rates_now = rates_for(prices, model, now)
    rates = rates_for(prices, model, off_peak) if waits else rates_now  # what the run pays
    period_rates = _period_rates(prices, model)
    rows: list[SectionEstimate] = []
    for s in sections:
        if s.id in pending_ids:
            first = not finished and not rows
            rows.append(estimate_section(config, sections, s, a, first, rates))
    prompt = sum(r.prompt_tokens for r in rows)
    hits = sum(r.prompt_cache_hit_tokens for r in rows)
    completion = sum(r.completion_tokens for r in rows)
    by_period = {p: _cost(r, prompt, hits, completion) for p, r in period_rates.items()}
    low = min((c for c in by_period.values() if c is not None), default=None)
    high = _cost(highest_rates(prices, model), prompt, 0, completion)
    slots = min(cores, api_slots or cores)
    wall = makespan([r.job_time_s for r in rows], slots) + RUN_OVERHEAD_S if rows else 0.0
    other = other_calls(config, sections, rows, finished, a, outline_pending)
    spent = run_spending(config)
    worst_call = None
    if rows:
        request = {
            "model": model,
            "messages": base_messages(
                config, sections, next(s for s in sections if s.id in pending_ids)
            ),
            "max_tokens": config["generation"]["max_tokens"],
        }
        worst_call = worst_case_usd(config, request)
    return {
        "book_title": config["book"]["title"],
        "model": model,
        "provider": config["provider"],
        "assumptions": {k: _finite(v) for k, v in asdict(a).items()},
        "pending": [asdict(r) for r in rows],
        "totals": {
            "sections": len(rows),
            "calls": sum(r.calls for r in rows),
            "prompt_tokens": prompt,
            "prompt_cache_hit_tokens": hits,
            "completion_tokens": completion,
            "cost_usd": {
                "expected": _cost(rates, prompt, hits, completion),
                "period_now": rates_now.period if rates_now else None,
                "period_expected": rates.period if rates else None,
                "low": low,
                "high": high,
                "by_period": by_period,
                "schedule": schedule,
                "off_peak_at": None if off_peak in (now, None) else off_peak.isoformat(),
                "off_peak_saving": _saving(by_period),
            },
            "api_time_s": round(sum(r.api_time_s for r in rows), 3),
            "wall_time_s": round(wall, 1),
            "cores": cores,
            "parallel": slots,
        },
        "other_calls": {
            **other,
            "with_sections_usd": {  # the sections' range and this one's together
                "low": sum_costs([low, other["cost_usd_low"]]),
                "high": sum_costs([high, other["cost_usd_high"]]),
            },
        },
        "spent": {
            "cost_usd": spent.cost_usd,
            "estimated_cost_usd": spent.estimated_cost_usd,
            "calls": spent.calls,
            "tokens": spent.tokens,
            "simulated": spent.simulated,
        },
        "finished": _check_against_outline(config, sections, finished),
        "budget_usd": config.get("budget_usd"),
        "worst_case_call_usd": worst_call,
    }


def _saving(by_period: dict[str, float | None]) -> float | None:
    """Peak minus off-peak cost of the pending work; None without peak prices."""
    peak, off = by_period.get("peak"), by_period.get("off-peak")
    return None if peak is None or off is None else peak - off


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and math.isinf(v) else v


def _period_rates(prices: dict[str, Any], model: str) -> dict[str, Rates]:
    entry = prices.get(model)
    if entry is None:
        return {}
    if not entry.get("peak"):
        return {"standard": Rates(entry["cache_hit"], entry["cache_miss"], entry["output"], "")}
    p = entry["peak"]
    return {
        "off-peak": Rates(entry["cache_hit"], entry["cache_miss"], entry["output"], "off-peak"),
        "peak": Rates(p["cache_hit"], p["cache_miss"], p["output"], "peak"),
    }


def _check_against_outline(
    config: dict[str, Any], sections: list[Section], finished: list[SectionState]
) -> dict[str, Any] | None:
    """For finished sections: the outline-only estimate (at the rates they were billed at)
    next to what they cost, so users see how far the defaults are from their model."""
    docs = [s.usage for s in finished if s.usage is not None]
    if not docs:
        return None
    by_id = {s.id: s for s in sections}
    a = default_assumptions(config)
    estimated: float | None = 0.0
    for i, d in enumerate(docs):
        billed = next((c["rates"] for c in d["calls"] if c.get("rates")), None)
        rates = Rates(**billed) if billed else None
        e = estimate_section(config, sections, by_id[d["section"]], a, i == 0, rates)
        estimated = None if estimated is None or e.cost_usd is None else estimated + e.cost_usd
    calls = [c for d in docs for c in d["calls"]]
    actual = spending(calls, simulated=is_simulated(config)).total_usd
    ratio = actual / estimated - 1 if actual is not None and estimated else None
    return {
        "sections": len(docs),
        "outline_estimate_usd": estimated,
        "actual_usd": actual,
        "difference": ratio,
    }


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min`` or ``3.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _expected_when(c: dict[str, Any]) -> str:
    """``now (peak)``, or ``(off-peak, after waiting until 10:00 UTC)`` with schedule off_peak."""
    if c["period_expected"] is None:
        return "now (no price)"
    if c["schedule"] == "off_peak" and c["off_peak_at"]:
        until = datetime.fromisoformat(c["off_peak_at"]).strftime("%H:%M UTC")
        return f"({c['period_expected']}, after waiting until {until})"
    return f"now ({c['period_expected']})"


def _off_peak_line(c: dict[str, Any]) -> str:
    """What ``schedule: off_peak`` saves on the pending sections, and whether the run waits."""
    saving = format_usd(c["off_peak_saving"])
    until = c["off_peak_at"] and datetime.fromisoformat(c["off_peak_at"]).strftime("%H:%M UTC")
    if c["schedule"] == "off_peak":
        if until:
            return (
                f"Off-peak: schedule off_peak: the run waits until {until}, saving about {saving}."
            )
        return (
            "Off-peak: schedule off_peak: rates are off-peak now; a call that would start in a "
            f"peak window waits for its end (about {saving} saved against peak rates)."
        )
    if until:
        return (
            f"Off-peak: it is peak now; --config schedule=off_peak waits until {until} and "
            f"saves about {saving}."
        )
    return (
        f"Off-peak: rates are off-peak now; run in a peak window, this costs about {saving} "
        "more (--config schedule=off_peak waits such windows out)."
    )


def _range(low: float | int | None, high: float | int | None, money: bool = False) -> str:
    text = format_usd if money else (lambda v: f"{v:,}")
    return text(low) if low == high else f"{text(low)}–{text(high)}"


def _other_lines(other: dict[str, Any]) -> list[str]:
    """The calls beyond the table: one line per kind, then the whole range."""
    if not other["kinds"]:
        return []
    lines = [
        f"Other calls, not in the table: {_range(other['calls_low'], other['calls_high'])} "
        f"call(s), {format_usd(other['cost_usd_low'])} – {format_usd(other['cost_usd_high'])}"
    ]
    for k in other["kinds"]:
        lines.append(
            f"  {k['kind']:<8} {_range(k['calls_low'], k['calls_high'])} call(s), "
            f"{_range(k['prompt_tokens_low'], k['prompt_tokens_high'])} input / "
            f"{_range(k['completion_tokens_low'], k['completion_tokens_high'])} output tokens, "
            f"{format_usd(k['cost_usd_low'])} – {format_usd(k['cost_usd_high'])} ({k['basis']})"
        )
    w = other["with_sections_usd"]
    lines.append(f"With them:  {format_usd(w['low'])} – {format_usd(w['high'])} in all")
    return lines


def render_estimate(est: dict[str, Any]) -> str:
    """The estimate as text for the terminal."""
    t, a = est["totals"], est["assumptions"]
    lines = [f"bookgen estimate: {est['book_title']} ({est['model']} via {est['provider']})"]
    if not est["pending"]:
        lines.append("Nothing pending: every section is written.")
    else:
        lines += [
            f"{t['sections']} section(s) pending; estimated from {a['source']}.",
            "",
            "Section  Words  Calls  Input tokens  Output tokens  Cost (now)  API time",
        ]
        for r in est["pending"]:
            lines.append(
                f"{r['id']:<7} {r['target_words']:>6,} {r['calls']:>6} {r['prompt_tokens']:>13,} "
                f"{r['completion_tokens']:>14,} {format_usd(r['cost_usd']):>11} "
                f"{r['api_time_s']:>7.0f} s"
            )
        c = t["cost_usd"]
        periods = ", ".join(f"{p} {format_usd(v)}" for p, v in c["by_period"].items())
        lines += [
            "",
            f"Input:  {t['prompt_tokens']:,} tokens ({t['prompt_cache_hit_tokens']:,} expected "
            f"prefix-cache hits) in {t['calls']} call(s)",
            f"Output: {t['completion_tokens']:,} tokens",
            f"Cost:   {format_usd(c['expected'])} expected {_expected_when(c)}; "
            f"range {format_usd(c['low'])} – {format_usd(c['high'])} "
            "(low: cheapest period with cache hits; high: highest rates, no cache hits)",
        ]
        if periods:
            lines.append(f"        by period: {periods}")
        lines += _other_lines(est["other_calls"])
        if c["off_peak_saving"] is not None:
            lines.append(_off_peak_line(c))
        lines.append(
            f"Time:   about {format_duration(t['wall_time_s'])} at --cores {t['cores']} "
            f"({t['parallel']} section(s) at a time); "
            f"{format_duration(t['api_time_s'])} of API time"
        )
        tps = a["tokens_per_s"]
        lines.append(
            f"Assumed: {a['completion_per_word']:.2f} output tokens per target word, "
            + ("instant replies" if tps is None else f"{tps:.0f} tokens/s")
            + (f", {a['ttft_s']:.1f} s to first token" if a["ttft_s"] else "")
            + f", {a['job_overhead_s']:.1f} s overhead per section job."
        )
    spent = est["spent"]
    if spent["calls"]:
        what = (
            "Simulated so far (nothing billed), would have cost"
            if spent["simulated"]
            else ("Spent so far:")
        )
        cut = spent["estimated_cost_usd"]
        lines.append(
            f"{what} {format_usd(spent['cost_usd'])}"
            + (f" (+ {format_usd(cut)} estimated for cut calls)" if cut != 0 else "")
            + f" on {spent['calls']} call(s) ({spent['tokens']:,} tokens), failed attempts "
            "included."
        )
    f = est["finished"]
    if f and f["difference"] is not None:
        lines.append(
            f"Check: for the {f['sections']} finished section(s) the outline-only estimate was "
            f"{format_usd(f['outline_estimate_usd'])}; they cost {format_usd(f['actual_usd'])} "
            f"({f['difference']:+.0%})."
        )
    budget = est["budget_usd"]
    spent_all = sum_costs([spent["cost_usd"], spent["estimated_cost_usd"]])
    if budget is not None and spent_all is not None:
        left = budget - spent_all
        high, worst = t["cost_usd"]["high"], est["worst_case_call_usd"] or 0.0
        verdict = (
            "the pending sections fit even at the high estimate"
            if high is not None and high + worst <= left
            else "the run may stop on the budget before every section is written (no call "
            f"starts unless its worst case, about {format_usd(worst)}, fits in what is left)"
        )
        lines.append(f"Budget: ${budget:.4f}, ${max(left, 0):.4f} left; {verdict}.")
    return "\n".join(lines) + "\n"
