"""The simulator speaks the chat-completions protocol to the real openai client, in-process."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from bookgen.money.tokens import count_tokens, tokenize
from bookgen.simulator import Simulator, SimulatorConfig, make_http_client, validate_config
from bookgen.simulator.protocol import serialize_prompt

MODEL = "deepseek-flash"
SYSTEM = "You are writing the textbook 'Life Science'.\n" + "".join(
    f"{i}. Chapter {i} on living systems and their chemistry (about 300 words)\n"
    for i in range(1, 31)
)


def task_message(n: int = 2, title: str = "Cell Membranes", words: int = 300, points=None) -> str:
    points = points or ["Lipid bilayer structure", "Membrane proteins and transport"]
    bullets = "\n".join(f"- {p}" for p in points)
    return (
        f"Write the next section.\n\n# Your task: section {n} of 11\nTitle: {title}\n"
        f"Key points to cover:\n{bullets}\nTarget length: about {words} words.\n"
    )


def messages(n: int = 2, **kw: Any) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": task_message(n, **kw)},
    ]


def client(sim: Simulator, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://sim.local/v1",
        http_client=make_http_client(sim),
        max_retries=0,
        **kw,
    )


def raw_sse(sim: Simulator, body: dict[str, Any]) -> list[str]:
    """The raw lines of a streamed response (read with httpx2, no openai parsing)."""
    with (
        make_http_client(sim) as http,
        http.stream(
            "POST",
            "http://sim.local/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer sk-test"},
        ) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        return list(resp.iter_lines())


def stream_text(stream: Any) -> tuple[str, Any, str | None]:
    """(content, usage, finish_reason) of an openai stream."""
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, usage, finish


# content -------------------------------------------------------------------------------------
def test_text_follows_the_section_and_is_deterministic() -> None:
    points = ["Chlorophyll absorbs light", "The electron transport chain", "Splitting water"]
    sim = Simulator({"seed": 7})
    c = client(sim)
    msgs = messages(5, title="Photosynthesis and the Light Reactions", words=600, points=points)
    reply = c.chat.completions.create(model=MODEL, messages=msgs)
    text = reply.choices[0].message.content
    assert reply.model == MODEL
    assert reply.choices[0].finish_reason == "stop"
    assert text.startswith("## Photosynthesis and the Light Reactions\n")
    subsections = re.findall(r"^### (.+)$", text, re.MULTILINE)
    assert subsections == [*points, "Summary"]
    for point in points:  # each subsection mentions its key point's words
        body = text.split(f"### {point}")[1].split("\n### ")[0].lower()
        assert all(w.lower() in body for w in point.split() if len(w) > 4)
    assert 0.85 * 600 <= len(text.split()) <= 1.15 * 600
    assert text.rstrip().endswith(".")
    assert text.count("```") % 2 == 0 and text.count("$") % 2 == 0
    assert c.chat.completions.create(model=MODEL, messages=msgs).choices[0].message.content == text
    other = c.chat.completions.create(model=MODEL, messages=messages(6, title="Respiration"))
    assert other.choices[0].message.content.startswith("## Respiration\n")
    assert reply.usage.completion_tokens == count_tokens(text)


def test_words_factor_and_seed() -> None:
    msgs = messages(words=400)
    base = client(Simulator()).chat.completions.create(model=MODEL, messages=msgs)
    half = client(Simulator({"words_factor": 0.5})).chat.completions.create(
        model=MODEL, messages=msgs
    )
    reseeded = client(Simulator({"seed": 99})).chat.completions.create(model=MODEL, messages=msgs)
    n_base = len(base.choices[0].message.content.split())
    assert 0.4 * n_base <= len(half.choices[0].message.content.split()) <= 0.65 * n_base
    assert reseeded.choices[0].message.content != base.choices[0].message.content


def test_generic_and_json_replies() -> None:
    c = client(Simulator())
    plain = c.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Tell me about tides\nplease"}]
    )
    assert plain.choices[0].message.content.startswith("## Tell me about tides")
    outline = c.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Outline a book on tides as JSON."}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(outline.choices[0].message.content)["sections"], list)
    section = c.chat.completions.create(
        model=MODEL,
        messages=[*messages(3), {"role": "user", "content": "Answer in json."}],
        response_format={"type": "json_object"},
    )
    assert json.loads(section.choices[0].message.content)["section"] == 3
    with pytest.raises(openai.BadRequestError, match="json"):
        c.chat.completions.create(
            model=MODEL, messages=messages(), response_format={"type": "json_object"}
        )


# streaming -----------------------------------------------------------------------------------
def test_stream_chunk_sequence_matches_the_api() -> None:
    sim = Simulator()
    body = {
        "model": MODEL,
        "messages": messages(),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines = raw_sse(sim, body)
    events = [line for line in lines if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert all("system_fingerprint" in c and "created" in c for c in chunks)
    first, *content, finish, final = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["usage"] is None for c in [first, *content, finish])
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert all(c["choices"][0]["logprobs"] is None for c in content)
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert final["choices"] == []
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert final["usage"]["completion_tokens"] == len(content) == count_tokens(text)
    full = client(sim).chat.completions.create(model=MODEL, messages=messages())
    assert full.choices[0].message.content == text

    no_usage = raw_sse(sim, {**body, "stream_options": None})
    parsed = [json.loads(e[6:]) for e in no_usage if e and e != "data: [DONE]"]
    assert all("usage" not in c and c["choices"] for c in parsed)


def test_stream_through_openai_client() -> None:
    c = client(Simulator())
    stream = c.chat.completions.create(
        model=MODEL, messages=messages(), stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = stream_text(stream)
    assert finish == "stop" and text.startswith("## Cell Membranes")
    assert usage.completion_tokens == count_tokens(text)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_latency_model() -> None:
    sim = Simulator({"ttft_s": 0.05, "tokens_per_s": 4000})
    c = client(sim)
    start = time.monotonic()
    stream = c.chat.completions.create(
        model=MODEL, messages=messages(), stream=True, stream_options={"include_usage": True}
    )
    _, usage, _ = stream_text(stream)
    elapsed = time.monotonic() - start
    expected = 0.05 + usage.completion_tokens / 4000
    assert expected * 0.9 <= elapsed <= expected + 0.3
    start = time.monotonic()
    c.chat.completions.create(model=MODEL, messages=messages())
    assert expected * 0.9 <= time.monotonic() - start <= expected + 0.3


# usage -----------------------------------------------------------------------------------------
def test_deepseek_prefix_cache_hits_in_64_token_units() -> None:
    sim = Simulator()
    c = client(sim)
    first = c.chat.completions.create(model=MODEL, messages=messages(2)).usage
    second = c.chat.completions.create(model=MODEL, messages=messages(3, title="Osmosis")).usage
    assert first.prompt_cache_hit_tokens == 0
    assert first.prompt_cache_miss_tokens == first.prompt_tokens
    a = tokenize(serialize_prompt(messages(2)))
    b = tokenize(serialize_prompt(messages(3, title="Osmosis")))
    common = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert second.prompt_cache_hit_tokens == common // 64 * 64 > 0
    assert second.prompt_cache_hit_tokens + second.prompt_cache_miss_tokens == second.prompt_tokens
    assert second.prompt_tokens_details.cached_tokens == second.prompt_cache_hit_tokens
    assert second.prompt_tokens == len(b)
    # another model does not share the cache; a tiny prompt never hits
    other = c.chat.completions.create(model="deepseek-v4-pro", messages=messages(3)).usage
    assert other.prompt_cache_hit_tokens == 0
    tiny = [{"role": "user", "content": "hi"}]
    c.chat.completions.create(model=MODEL, messages=tiny)
    assert c.chat.completions.create(model=MODEL, messages=tiny).usage.prompt_cache_hit_tokens == 0


def test_openai_usage_shape() -> None:
    sim = Simulator({"usage_shape": "openai"})
    c = client(sim)
    long_system = SYSTEM * 4
    msgs = [{"role": "system", "content": long_system}, {"role": "user", "content": task_message()}]
    first = c.chat.completions.create(model="gpt-5-mini", messages=msgs)
    assert first.model == "gpt-5-mini"
    dumped = first.usage.model_dump()
    assert "prompt_cache_hit_tokens" not in dumped and "prompt_cache_miss_tokens" not in dumped
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    msgs[1]["content"] = task_message(4, title="Diffusion")
    second = c.chat.completions.create(model="gpt-5-mini", messages=msgs).usage
    cached = second.prompt_tokens_details.cached_tokens
    assert second.prompt_tokens > 1024 and cached >= 1024 and (cached - 1024) % 128 == 0
    assert second.completion_tokens_details.reasoning_tokens == 0
    short = client(Simulator({"usage_shape": "openai"}))
    for _ in range(2):
        usage = short.chat.completions.create(model="gpt-5-mini", messages=messages()).usage
    assert usage.prompt_tokens < 1024 and usage.prompt_tokens_details.cached_tokens == 0


def test_reasoning_tokens_count_in_completion_tokens() -> None:
    sim = Simulator()
    c = client(sim)
    plain = c.chat.completions.create(model=MODEL, messages=messages()).usage
    reply = c.chat.completions.create(
        model=MODEL, messages=messages(), extra_body={"thinking": {"type": "enabled"}}
    )
    usage = reply.usage
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert 0.05 * plain.completion_tokens <= reasoning <= 0.15 * plain.completion_tokens
    assert usage.completion_tokens == plain.completion_tokens + reasoning
    assert count_tokens(reply.choices[0].message.model_extra["reasoning_content"]) == reasoning
    stream = c.chat.completions.create(
        model=MODEL,
        messages=messages(),
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"thinking": {"type": "enabled"}},
    )
    thought, text = "", ""
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            piece = (delta.model_extra or {}).get("reasoning_content") or ""
            assert not (piece and text)  # all reasoning comes before the content
            thought += piece
            text += delta.content or ""
        else:
            assert chunk.usage.completion_tokens_details.reasoning_tokens == count_tokens(thought)
    assert thought and text == reply.choices[0].message.content
    # thinking on by config, off by request
    off = client(Simulator({"thinking": True})).chat.completions.create(
        model=MODEL, messages=messages(), extra_body={"thinking": {"type": "disabled"}}
    )
    assert off.usage.completion_tokens_details.reasoning_tokens == 0


def test_max_tokens_then_continuation_returns_the_rest() -> None:
    sim = Simulator()
    c = client(sim)
    full = c.chat.completions.create(model=MODEL, messages=messages()).choices[0].message.content
    base = messages()
    received = ""
    for _ in range(50):
        convo = list(base)
        if received:
            convo += [
                {"role": "assistant", "content": received},
                {"role": "user", "content": "Continue exactly where it stopped."},
            ]
        reply = c.chat.completions.create(model=MODEL, messages=convo, max_tokens=120)
        part = reply.choices[0].message.content
        received += part
        if reply.choices[0].finish_reason == "stop":
            break
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage.completion_tokens == 120 == count_tokens(part)
    assert received == full
    # streaming + max_completion_tokens
    stream = c.chat.completions.create(
        model=MODEL,
        messages=base,
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=30,
    )
    text, usage, finish = stream_text(stream)
    assert finish == "length" and usage.completion_tokens == 30 and full.startswith(text)


# protocol errors ---------------------------------------------------------------------------------
def test_auth_header_required_and_bad_bodies() -> None:
    sim = Simulator()
    with make_http_client(sim) as http:
        url = "http://sim.local/chat/completions"  # DeepSeek also accepts paths without /v1
        body = {"model": MODEL, "messages": messages()}
        resp = http.post(url, json=body)
        assert resp.status_code == 401 and resp.json()["error"]["type"] == "authentication_error"
        auth = {"Authorization": "Bearer anything"}
        assert http.post(url, json=body, headers=auth).status_code == 200
        bad = http.post(url, content=b"{not json", headers=auth)
        assert bad.status_code == 400 and set(bad.json()["error"]) == {
            "message",
            "type",
            "param",
            "code",
        }
        assert http.post(url, json={"model": MODEL}, headers=auth).status_code == 422
        assert http.get("http://sim.local/v1/nothing", headers=auth).status_code == 404
        models = http.get("http://sim.local/v1/models", headers=auth).json()
        assert models["object"] == "list" and models["data"][0]["id"] == MODEL
    with pytest.raises(openai.UnprocessableEntityError):
        client(sim).chat.completions.create(model=MODEL, messages=messages(), max_tokens=0)
    strict = Simulator({"reject_unknown_models": True})
    with pytest.raises(openai.BadRequestError, match="Model Not Exist"):
        client(strict).chat.completions.create(model="deepseek-chat", messages=messages())


def test_config_validation_names_the_field() -> None:
    assert validate_config({}) == SimulatorConfig()
    with pytest.raises(ValueError, match="usage_shape"):
        validate_config({"usage_shape": "anthropic"})
    with pytest.raises(ValueError, match=r"faults\[0\]\.kind.*Fix"):
        validate_config({"faults": [{"kind": "explode", "section": 1}]})
    with pytest.raises(ValueError, match=r"unknown key 'seeed' \(did you mean 'seed'\?\)"):
        validate_config({"seeed": 1})
    with pytest.raises(ValueError, match="rate"):
        Simulator({"faults": [{"kind": "drop", "rate": 2}]})
    with pytest.raises(ValueError, match="section"):
        validate_config({"faults": [{"kind": "drop", "section": 1, "sections": [2]}]})
    cfg = validate_config({"faults": [{"kind": "http_429", "sections": [1, 2], "times": 1}]})
    assert cfg.faults[0].sections == (1, 2) and cfg.faults[0].after_fraction == 0.5


# ledger and shared state -------------------------------------------------------------------------
def test_ledger_totals_equal_the_usage_the_client_received() -> None:
    sim = Simulator({"thinking": True})
    c = client(sim)
    received = []
    received.append(c.chat.completions.create(model=MODEL, messages=messages(1)).usage)
    stream = c.chat.completions.create(
        model=MODEL, messages=messages(2), stream=True, stream_options={"include_usage": True}
    )
    received.append(stream_text(stream)[1])
    unreported = c.chat.completions.create(model=MODEL, messages=messages(3), stream=True)
    assert stream_text(unreported)[1] is None  # usage never reaches the client
    totals = sim.ledger_totals()
    assert totals["calls"] == 2
    assert totals["prompt_tokens"] == sum(u.prompt_tokens for u in received)
    assert totals["completion_tokens"] == sum(u.completion_tokens for u in received)
    assert totals["prompt_cache_hit_tokens"] == sum(u.prompt_cache_hit_tokens for u in received)
    assert totals["prompt_cache_miss_tokens"] == sum(u.prompt_cache_miss_tokens for u in received)
    reasoning = sum(u.completion_tokens_details.reasoning_tokens for u in received)
    assert totals["reasoning_tokens"] == reasoning > 0
    entries = sim.ledger()
    assert [e["section"] for e in entries] == [1, 2, 3]
    assert [e["reported_to_client"] for e in entries] == [True, True, False]
    assert entries[2]["usage"]["completion_tokens"] > 0 and entries[1]["stream"] is True
    assert set(entries[0]) >= {"id", "time", "model", "section", "stream", "finish_reason"}
    with make_http_client(sim) as http:
        ledger = http.get("http://sim.local/ledger").json()
        assert ledger["totals"] == totals and len(ledger["entries"]) == 3
        assert http.post("http://sim.local/ledger/reset").json() == {"ok": True}
    assert sim.ledger() == [] and sim.ledger_totals()["calls"] == 0


def test_state_dir_is_shared_between_instances(tmp_path: Path) -> None:
    key = "sk-very-secret-key-123"
    one, two = Simulator(state_dir=tmp_path), Simulator(state_dir=tmp_path)
    c1 = openai.OpenAI(
        api_key=key, base_url="http://a/v1", http_client=make_http_client(one), max_retries=0
    )
    c2 = openai.OpenAI(
        api_key=key, base_url="http://b/v1", http_client=make_http_client(two), max_retries=0
    )
    first = c1.chat.completions.create(model=MODEL, messages=messages(1)).usage
    second = c2.chat.completions.create(model=MODEL, messages=messages(2)).usage
    assert first.prompt_cache_hit_tokens == 0 and second.prompt_cache_hit_tokens >= 64
    assert len(one.ledger()) == len(two.ledger()) == 2
    assert one.ledger_totals() == two.ledger_totals()
    assert one.ledger_totals()["prompt_tokens"] == first.prompt_tokens + second.prompt_tokens
    third = Simulator(state_dir=tmp_path)  # a later process sees everything
    assert [e["section"] for e in third.ledger()] == [1, 2]
    files = list(tmp_path.iterdir())
    assert files
    for f in files:
        assert key not in f.read_text() and "sk-" not in f.read_text()


def test_state_dir_faults_times_are_shared(tmp_path: Path) -> None:
    cfg = {"faults": [{"kind": "http_500", "section": 4, "times": 1}]}
    one, two = Simulator(cfg, state_dir=tmp_path), Simulator(cfg, state_dir=tmp_path)
    with pytest.raises(openai.InternalServerError):
        client(one).chat.completions.create(model=MODEL, messages=messages(4))
    assert client(two).chat.completions.create(model=MODEL, messages=messages(4)).choices
    assert len(one.ledger()) == 1  # the rejected request is not billed


def test_concurrent_in_process_requests_share_memory_state() -> None:
    import threading

    sim = Simulator()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            client(sim).chat.completions.create(model=MODEL, messages=messages(n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(sim.ledger()) == 12 and sim.open_requests == 0


def test_wsgi_body_is_lazy() -> None:
    sim = Simulator({"tokens_per_s": 200})
    start = time.monotonic()
    with (
        make_http_client(sim) as http,
        http.stream(
            "POST",
            "http://sim.local/v1/chat/completions",
            json={"model": MODEL, "messages": messages(), "stream": True},
            headers={"Authorization": "Bearer k"},
        ) as resp,
    ):
        first = next(resp.iter_lines())
        assert first.startswith("data: ") and time.monotonic() - start < 0.3
    # the client hung up early: billed for what was generated, usage never reported
    (entry,) = sim.ledger()
    assert entry["reported_to_client"] is False and entry["finish_reason"] is None
    assert sim.open_requests == 0
