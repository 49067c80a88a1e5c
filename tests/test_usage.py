"""Usage parsing for both providers' shapes, and totals that keep estimates apart."""

from __future__ import annotations

from bookgen.money.usage import parse_usage, sum_calls


def test_deepseek_shape():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 300,
        "total_tokens": 1300,
        "prompt_cache_hit_tokens": 768,
        "prompt_cache_miss_tokens": 232,
        "prompt_tokens_details": {"cached_tokens": 768},
        "completion_tokens_details": {"reasoning_tokens": 120},
    }
    assert parse_usage(usage) == {
        "prompt_tokens": 1000,
        "prompt_cache_hit_tokens": 768,
        "prompt_cache_miss_tokens": 232,
        "completion_tokens": 300,
        "reasoning_tokens": 120,
    }


def test_openai_shape_derives_miss_from_cached_tokens():
    usage = {
        "prompt_tokens": 2048,
        "completion_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    parsed = parse_usage(usage)
    assert parsed["prompt_cache_hit_tokens"] == 1024
    assert parsed["prompt_cache_miss_tokens"] == 1024
    assert parsed["reasoning_tokens"] == 0


def test_minimal_shape_of_local_servers():
    parsed = parse_usage({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
    assert parsed == {
        "prompt_tokens": 10,
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 10,
        "completion_tokens": 5,
        "reasoning_tokens": 0,
    }


def test_pydantic_usage_object_with_provider_extras():
    from openai.types import CompletionUsage

    usage = CompletionUsage.model_validate(
        {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "total_tokens": 107,
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 36,
        }
    )
    assert parse_usage(usage)["prompt_cache_hit_tokens"] == 64


def _call(status="ok", reported=True, cost=0.01, **tokens):
    base = {
        "status": status,
        "usage_reported": reported,
        "prompt_tokens": 0,
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 0,
        "completion_tokens": 0,
        "reasoning_tokens": 0,
        "estimated_prompt_tokens": 0,
        "estimated_completion_tokens": 0,
        "cost_usd": cost if reported else None,
        "estimated_cost_usd": None if reported else cost,
        "duration_s": 1.0,
    }
    base.update(tokens)
    return base


def test_totals_keep_estimates_apart_and_count_failed_attempts():
    calls = [
        _call(prompt_tokens=100, prompt_cache_miss_tokens=100, completion_tokens=40),
        _call(
            status="failed",
            prompt_tokens=100,
            prompt_cache_hit_tokens=64,
            prompt_cache_miss_tokens=36,
            completion_tokens=10,
            cost=0.002,
        ),
        _call(status="failed", reported=False, estimated_completion_tokens=25, cost=0.005),
    ]
    t = sum_calls(calls)
    assert t["calls"] == 3
    assert t["prompt_tokens"] == 200
    assert t["completion_tokens"] == 50  # the cut stream's 25 are not the provider's numbers
    assert t["estimated_completion_tokens"] == 25
    assert t["failed_calls"] == 2
    assert abs(t["cost_usd"] - 0.012) < 1e-12
    assert abs(t["failed_cost_usd"] - 0.002) < 1e-12
    assert abs(t["estimated_cost_usd"] - 0.005) < 1e-12


def test_unknown_price_makes_total_unknown_not_zero():
    calls = [_call(cost=0.01), _call(cost=None)]
    assert sum_calls(calls)["cost_usd"] is None
