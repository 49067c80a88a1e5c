"""The simulator over real loopback HTTP: serve(), the CLI, drops, and concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from bookgen.simulator import Simulator, serve
from tests.test_simulator import MODEL, messages, stream_text

REPO = Path(__file__).resolve().parent.parent
STREAM = {"stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture
def served() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(
        {
            "tokens_per_s": 2000,
            "faults": [
                {"kind": "drop", "section": 7, "after_fraction": 0.3},
                {"kind": "eof", "section": 8},
                {"kind": "queued", "section": 9, "duration_s": 0.15},
            ],
        }
    )
    server, port = serve(sim)
    try:
        yield sim, f"http://127.0.0.1:{port}/v1"
    finally:
        server.shutdown()


def loopback_client(base_url: str, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=base_url, max_retries=0, **kw)


def test_serve_streams_and_answers(served: tuple[Simulator, str]) -> None:
    sim, url = served
    c = loopback_client(url)
    text, usage, finish = stream_text(
        c.chat.completions.create(model=MODEL, messages=messages(2), **STREAM)
    )
    reply = c.chat.completions.create(model=MODEL, messages=messages(2))
    assert finish == "stop" and text == reply.choices[0].message.content
    assert usage.prompt_cache_hit_tokens == 0 and reply.usage.prompt_cache_hit_tokens > 0
    assert next(m.id for m in c.models.list()) == MODEL
    ledger = httpx2.get(url.removesuffix("/v1") + "/ledger").json()
    assert ledger["totals"]["calls"] == 2 == len(sim.ledger())


def test_drop_eof_and_queued_over_the_wire(served: tuple[Simulator, str]) -> None:
    _, url = served
    c = loopback_client(url)
    stream = c.chat.completions.create(model=MODEL, messages=messages(7), **STREAM)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            got.append(chunk)
    received = "".join(ch.choices[0].delta.content or "" for ch in got if ch.choices)
    assert received.startswith("## ") and len(got) >= 3
    text, usage, finish = stream_text(
        c.chat.completions.create(model=MODEL, messages=messages(8), **STREAM)
    )
    assert text and usage is None and finish is None
    with httpx2.stream(
        "POST",
        url + "/chat/completions",
        json={"model": MODEL, "messages": messages(9), **STREAM},
        headers={"Authorization": "Bearer sk-test"},
    ) as resp:
        lines = [x for x in resp.iter_lines() if x]
    assert lines[0] == ": keep-alive" and lines[-1] == "data: [DONE]"
    # the connection pool survives all of this
    assert c.chat.completions.create(model=MODEL, messages=messages(2)).choices


def test_32_concurrent_streams_and_the_concurrency_limit() -> None:
    """36 streams started together: 32 served, the rest refused with 429. A served stream is
    held open (its first chunk read, then nothing) until every request has its answer, so
    they overlap however slowly a loaded machine sends them; each would stream for about 13 s
    (10 tokens/s) if nobody closed it."""
    sim = Simulator({"tokens_per_s": 10, "concurrency_limit": 32})
    server, port = serve(sim)
    c = loopback_client(f"http://127.0.0.1:{port}/v1")
    results: list[object] = []
    lock = threading.Lock()
    barrier = threading.Barrier(36)
    answered = threading.Barrier(36, timeout=60)

    def work(n: int) -> None:
        barrier.wait()
        stream = None
        try:
            stream = c.chat.completions.create(
                model=MODEL, messages=messages(n, words=100), **STREAM
            )
            outcome: object = next(iter(stream)).id  # it streams
        except openai.RateLimitError as exc:
            outcome = exc
        with lock:
            results.append(outcome)
        answered.wait()
        if stream is not None:
            stream.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 37)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        deadline = time.monotonic() + 10  # closed streams are released at their next write
        while sim.open_requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    limited = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(results) == 36
    assert len(limited) >= 1 and len(results) - len(limited) >= 28
    assert all("concurrent" in e.message for e in limited)
    assert sim.open_requests == 0


def test_cli_serves_until_killed(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text("seed: 3\nusage_shape: openai\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bookgen.simulator",
            "--port",
            "0",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("bookgen simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert url.endswith("/v1")
        reply = loopback_client(url).chat.completions.create(model="gpt-5", messages=messages())
        assert reply.model == "gpt-5" and "prompt_cache_hit_tokens" not in reply.usage.model_dump()
        assert (tmp_path / "state" / "ledger.jsonl").read_text().count("\n") == 1
    finally:
        proc.kill()
        proc.wait(5)
