"""Every fault kind surfaces in the real openai client as it would from DeepSeek/OpenAI."""

from __future__ import annotations

import openai
import pytest

from bookgen.money.tokens import count_tokens
from bookgen.simulator import Simulator, make_http_client
from tests.test_simulator import MODEL, client, messages, raw_sse, stream_text

STREAM = {"stream": True, "stream_options": {"include_usage": True}}


def fault_sim(**rule: object) -> Simulator:
    return Simulator({"faults": [{"section": 2, **rule}]})


@pytest.mark.parametrize(
    ("kind", "exc", "status"),
    [
        ("http_429", openai.RateLimitError, 429),
        ("http_500", openai.InternalServerError, 500),
        ("http_503", openai.InternalServerError, 503),
        ("http_402", openai.APIStatusError, 402),
        ("http_401", openai.AuthenticationError, 401),
        ("http_400_model", openai.BadRequestError, 400),
        ("http_422", openai.UnprocessableEntityError, 422),
    ],
)
def test_http_faults(kind: str, exc: type[openai.APIStatusError], status: int) -> None:
    sim = fault_sim(kind=kind)
    c = client(sim)
    for extra in ({}, STREAM):
        with pytest.raises(exc) as info:
            c.chat.completions.create(model=MODEL, messages=messages(2), **extra)
        assert info.value.status_code == status
        assert info.value.body["type"] and "sk-test" not in str(info.value.body)
    if kind == "http_402":
        assert info.value.message.endswith("Insufficient Balance")
    if kind == "http_400_model":
        assert "Model Not Exist" in info.value.message
    # other sections are unaffected, and rejected requests are not billed
    assert c.chat.completions.create(model=MODEL, messages=messages(3)).choices
    assert [e["section"] for e in sim.ledger()] == [3]


@pytest.mark.parametrize(
    ("rule", "header", "value"),
    [
        ({"retry_after": 1}, "retry-after", "1"),
        ({"retry_after": 0.01}, "retry-after", "0.01"),
        ({"retry_after": "200"}, "retry-after", "200"),
        ({"retry_after_ms": 10}, "retry-after-ms", "10"),
    ],
)
def test_429_retry_after_headers(rule: dict, header: str, value: str) -> None:
    c = client(fault_sim(kind="http_429", **rule))
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model=MODEL, messages=messages(2))
    assert info.value.response.headers[header] == value


def test_429_retry_is_honoured_by_the_client() -> None:
    sim = fault_sim(kind="http_429", times=2, retry_after=0.01)
    c = openai.OpenAI(
        api_key="k", base_url="http://x/v1", http_client=make_http_client(sim), max_retries=2
    )
    assert c.chat.completions.create(model=MODEL, messages=messages(2)).choices
    assert len(sim.ledger()) == 1


def test_drop_raises_connection_error_and_bills_partial_tokens() -> None:
    sim = fault_sim(kind="drop", after_fraction=0.5)
    c = client(sim)
    full = c.chat.completions.create(model=MODEL, messages=messages(3)).choices[0].message.content
    got = ""
    stream = c.chat.completions.create(model=MODEL, messages=messages(2), **STREAM)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            got += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert got.startswith("## Cell Membranes") and len(got) < 0.7 * len(full)
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model=MODEL, messages=messages(2))
    entries = sim.ledger()
    assert [e["reported_to_client"] for e in entries] == [True, False, False]
    assert entries[1]["usage"]["completion_tokens"] == count_tokens(got)
    assert entries[1]["fault"] == "drop" and sim.ledger_totals()["calls"] == 1


def test_eof_ends_the_stream_silently_without_usage() -> None:
    sim = fault_sim(kind="eof", after_fraction=0.25)
    c = client(sim)
    text, usage, finish = stream_text(
        c.chat.completions.create(model=MODEL, messages=messages(2), **STREAM)
    )
    assert text and usage is None and finish is None
    lines = [x for x in raw_sse(sim, {"model": MODEL, "messages": messages(2), **STREAM}) if x]
    assert "data: [DONE]" not in lines
    assert sim.ledger()[0]["reported_to_client"] is False


def test_error_chunk_raises_api_error() -> None:
    sim = fault_sim(kind="error_chunk", after_fraction=0.1)
    stream = client(sim).chat.completions.create(model=MODEL, messages=messages(2), **STREAM)
    with pytest.raises(openai.APIError) as info:
        stream_text(stream)
    assert not isinstance(info.value, openai.APIConnectionError)
    lines = raw_sse(sim, {"model": MODEL, "messages": messages(2), **STREAM})
    assert lines[-2].startswith('data: {"error"') and "data: [DONE]" not in lines
    with pytest.raises(openai.InternalServerError):
        client(sim).chat.completions.create(model=MODEL, messages=messages(2))


@pytest.mark.parametrize(
    "kind", ["finish_length", "content_filter", "insufficient_system_resource"]
)
def test_early_finish_reasons_report_usage(kind: str) -> None:
    sim = fault_sim(kind=kind, after_fraction=0.5)
    c = client(sim)
    expected = "length" if kind == "finish_length" else kind
    text, usage, finish = stream_text(
        c.chat.completions.create(model=MODEL, messages=messages(2), **STREAM)
    )
    assert finish == expected and usage.completion_tokens == count_tokens(text)
    reply = c.chat.completions.create(model=MODEL, messages=messages(2))
    assert reply.choices[0].finish_reason == expected
    assert reply.choices[0].message.content == text
    assert sim.ledger_totals()["calls"] == 2


def test_queued_sends_keepalives_then_answers() -> None:
    rule = {"kind": "queued", "section": 2, "duration_s": 0.2}
    sim = Simulator({"keepalive_interval_s": 0.05, "faults": [rule]})
    lines = [x for x in raw_sse(sim, {"model": MODEL, "messages": messages(2), **STREAM}) if x]
    keepalives = [x for x in lines if x == ": keep-alive"]
    assert len(keepalives) >= 3 and lines[0] == ": keep-alive" and lines[-1] == "data: [DONE]"
    c = client(sim)
    text, usage, _ = stream_text(
        c.chat.completions.create(model=MODEL, messages=messages(2), **STREAM)
    )
    assert usage.completion_tokens == count_tokens(text)
    with make_http_client(sim) as http:
        resp = http.post(
            "http://x/v1/chat/completions",
            json={"model": MODEL, "messages": messages(2)},
            headers={"Authorization": "Bearer k"},
        )
    assert resp.content.startswith(b"\n\n") and resp.json()["object"] == "chat.completion"
    reply = c.chat.completions.create(model=MODEL, messages=messages(2))
    assert reply.choices[0].message.content == text


def test_times_limits_firings_per_section() -> None:
    sim = Simulator({"faults": [{"kind": "http_500", "sections": [1, 2], "times": 2}]})
    c = client(sim)
    outcomes = []
    for section in [1, 1, 2, 1, 2, 2, 3]:
        try:
            c.chat.completions.create(model=MODEL, messages=messages(section))
            outcomes.append("ok")
        except openai.InternalServerError:
            outcomes.append("500")
    assert outcomes == ["500", "500", "500", "ok", "500", "ok", "ok"]


def test_rules_apply_in_order_and_times_per_rule_for_rate_rules() -> None:
    cfg = {
        "faults": [
            {"kind": "http_503", "rate": 1.0, "times": 1},
            {"kind": "http_429", "section": 2},
        ]
    }
    c = client(Simulator(cfg))
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model=MODEL, messages=messages(2))
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model=MODEL, messages=messages(2))
    assert c.chat.completions.create(model=MODEL, messages=messages(1)).choices


def outcomes_for(sim: Simulator, sections: list[int]) -> list[bool]:
    c = client(sim)
    out = []
    for n in sections:
        try:
            c.chat.completions.create(model=MODEL, messages=messages(n, words=60))
            out.append(True)
        except openai.InternalServerError:
            out.append(False)
    return out


def test_rate_faults_are_reproducible_with_the_same_seed() -> None:
    order = list(range(1, 21))
    cfg = {"seed": 3, "faults": [{"kind": "http_500", "rate": 0.5}]}
    first = outcomes_for(Simulator(cfg), order)
    assert first == outcomes_for(Simulator(cfg), order)
    assert 3 <= first.count(False) <= 17
    other = outcomes_for(Simulator({**cfg, "seed": 4}), order)
    assert other != first


def test_hash_mode_does_not_depend_on_request_order() -> None:
    cfg = {"seed": 5, "rate_mode": "hash", "faults": [{"kind": "http_500", "rate": 0.5}]}
    order = list(range(1, 21))
    forward = dict(zip(order, outcomes_for(Simulator(cfg), order), strict=True))
    backward = dict(zip(order[::-1], outcomes_for(Simulator(cfg), order[::-1]), strict=True))
    assert forward == backward and 3 <= list(forward.values()).count(False) <= 17
    # a retry of the same body is a new attempt, so it gets a fresh draw
    sim = Simulator(cfg)
    results = outcomes_for(sim, [order[0]] * 12)
    assert True in results and False in results


def test_permanent_finish_length_still_lets_continuation_finish() -> None:
    sim = Simulator({"faults": [{"kind": "finish_length", "section": 2, "after_fraction": 0.3}]})
    c = client(sim)
    full = c.chat.completions.create(model=MODEL, messages=messages(3)).choices[0].message.content
    base, received, finishes = messages(2), "", []
    for _ in range(100):
        convo = list(base)
        if received:
            convo += [
                {"role": "assistant", "content": received},
                {"role": "user", "content": "Continue."},
            ]
        choice = c.chat.completions.create(model=MODEL, messages=convo).choices[0]
        received += choice.message.content
        finishes.append(choice.finish_reason)
        if choice.finish_reason == "stop":
            break
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {"length"}
    assert received.startswith("## Cell Membranes") and len(received) > 0.5 * len(full)
