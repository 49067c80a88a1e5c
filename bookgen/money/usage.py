"""Token usage: parsing both providers' shapes, call records, per-section usage files.

Field names here are a public interface (usage files and the cost report); see README.md.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml

from bookgen.money.pricing import sum_costs

TOKEN_FIELDS = (
    "prompt_tokens",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
    "completion_tokens",
    "reasoning_tokens",
)
SCHEMA_DIR = Path(__file__).parent.parent / "schemas"


def parse_usage(usage: Any) -> dict[str, int]:
    """Normalise a provider's ``usage`` object (DeepSeek or OpenAI shape) to TOKEN_FIELDS.

    DeepSeek reports ``prompt_cache_hit_tokens``/``prompt_cache_miss_tokens``; OpenAI (and
    vLLM, llama.cpp, newer DeepSeek) ``prompt_tokens_details.cached_tokens``. Reasoning comes
    from ``completion_tokens_details.reasoning_tokens`` and is part of ``completion_tokens``.
    """
    if hasattr(usage, "model_dump"):
        usage = usage.model_dump()
    usage = dict(usage or {})
    prompt = int(usage.get("prompt_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    if usage.get("prompt_cache_hit_tokens") is not None:
        hit = int(usage["prompt_cache_hit_tokens"])
    else:
        hit = int(prompt_details.get("cached_tokens") or 0)
    if usage.get("prompt_cache_miss_tokens") is not None:
        miss = int(usage["prompt_cache_miss_tokens"])
    else:
        miss = prompt - hit
    return {
        "prompt_tokens": prompt,
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": miss,
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0),
    }


def zero_usage() -> dict[str, int]:
    return dict.fromkeys(TOKEN_FIELDS, 0)


def is_replay(call: dict[str, Any]) -> bool:
    """A reply replayed from the response cache: no request was sent, nothing billed."""
    return call["status"] == "replayed"


def call_cost(call: dict[str, Any]) -> float | None:
    """What one call cost: the provider's usage priced, or the estimate when it never reported
    usage (a cut stream); None when the price is unknown."""
    return call["cost_usd"] if call["usage_reported"] else call["estimated_cost_usd"]


def split_costs(calls: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """What sent ``calls`` cost, as the cost report and the "so far" line both count it:
    ``(reported, estimated)``: the usage the provider reported, priced (what reconciles with
    its bill), and apart the estimates of calls cut off before their usage arrived. Each is
    None when a price is unknown. Replays are not sent calls: leave them out first."""
    reported = sum_costs([c["cost_usd"] for c in calls if c["usage_reported"]])
    estimated = sum_costs([c["estimated_cost_usd"] for c in calls if not c["usage_reported"]])
    return reported, estimated


def sum_calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over call records: what the provider reported, with estimates kept apart.

    Tokens count every call sent (replays sent nothing). Money counts only real calls:
    ``cost_usd`` is the usage the provider reported, so it reconciles with its bill; calls cut
    off before their usage arrived add to ``estimated_*`` instead. Calls answered by the offline
    simulator are never money: ``simulated_cost_usd`` says what they would have cost.
    """
    sent = [c for c in calls if not is_replay(c)]
    real = [c for c in sent if not c.get("simulated", False)]
    simulated = [c for c in sent if c.get("simulated", False)]
    totals: dict[str, Any] = {"calls": len(sent), **zero_usage()}
    for c in sent:
        if c["usage_reported"]:
            for f in TOKEN_FIELDS:
                totals[f] += c[f]
    totals["cost_usd"], totals["estimated_cost_usd"] = split_costs(real)
    estimated = [c for c in sent if not c["usage_reported"]]
    totals["estimated_prompt_tokens"] = sum(c["estimated_prompt_tokens"] for c in estimated)
    totals["estimated_completion_tokens"] = sum(c["estimated_completion_tokens"] for c in estimated)
    failed = [c for c in sent if c["status"] != "ok"]
    totals["failed_calls"] = len(failed)
    totals["failed_cost_usd"] = sum_costs(
        [c["cost_usd"] for c in failed if c["usage_reported"] and not c.get("simulated", False)]
    )
    totals["simulated_calls"] = len(simulated)
    totals["simulated_cost_usd"] = sum_costs([call_cost(c) for c in simulated])
    totals["replays"] = len(calls) - len(sent)
    totals["duration_s"] = round(sum(c["duration_s"] for c in sent), 3)
    return totals


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON schema shipped in ``bookgen/schemas`` (YAML or JSON)."""
    text = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 9x faster
    return yaml.load(text, Loader=loader) if name.endswith((".yaml", ".yml")) else json.loads(text)


@cache
def _registry() -> referencing.Registry:
    """Every shipped schema under its file name, so one may ``$ref`` another."""
    return referencing.Registry().with_resources(
        (path.name, referencing.Resource.from_contents(load_schema(path.name)))
        for path in SCHEMA_DIR.glob("*.schema.*")
    )


def validate(data: dict[str, Any], schema_name: str) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` does not match the named schema."""
    jsonschema.Draft202012Validator(load_schema(schema_name), registry=_registry()).validate(data)
