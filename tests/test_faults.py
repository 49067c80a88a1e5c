"""Every fault a provider throws, driven through the real openai client and the simulator:
retried and succeeded, failed with the named cause, or the run stopped early — and every
token the provider billed is on record."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bookgen import paths
from bookgen.config import (
    book_fingerprint,
    section_fingerprint,
    sections_from_config,
    template_text,
)
from bookgen.money.usage import TOKEN_FIELDS, sum_calls
from bookgen.provider.client import make_client, stream_call
from bookgen.provider.request_identity import request_key
from bookgen.simulator import Simulator, serve
from bookgen.writing.errors import SectionFailed
from bookgen.writing.prompts import continuation_messages, section_messages
from bookgen.writing.section import SectionJob, SectionWriter, run_section_job
from tests.conftest import load_config

SMALL = [
    {"title": f"Topic {n}", "key_points": [f"idea {n}a", f"idea {n}b"], "words": 400}
    for n in range(1, 5)
]


class Sleeps(list):
    """Records requested waits instead of sleeping (the tests stay fast)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_job(tmp: Path, faults=(), number=2, sim=None, **overrides) -> SectionJob:
    retry = {"max_attempts": 4, "initial_delay_s": 0.01, "max_delay_s": 0.05}
    retry.update(overrides.pop("retry", {}))
    config = load_config(
        {
            "provider": "simulator",
            "sections": SMALL,
            "retry": retry,
            "simulator": {"faults": list(faults), **(sim or {})},
            **overrides,
        }
    )
    sections = sections_from_config(config)
    section = sections[number - 1]
    return SectionJob(
        config=config,
        sections=sections,
        section=section,
        fingerprint=section_fingerprint(book_fingerprint(config), section),
        out_md=tmp / "output" / f"section_{section.id}.md",
        out_usage=tmp / "output" / "usage" / f"section_{section.id}.json",
        log=tmp / "output" / "logs" / f"section_{section.id}.log",
        state_root=tmp / ".bookgen",
    )


def ledger(job: SectionJob) -> Simulator:
    return Simulator({}, state_dir=job.state_root / "simulator")


def clean_text(tmp: Path, number=2) -> str:
    job = make_job(tmp / "clean", number=number)
    return SectionWriter(job, sleep=Sleeps()).write()


def journal(writer: SectionWriter) -> list[dict]:
    return writer.journal.records()


def assert_reconciles(job: SectionJob, calls: list[dict]) -> None:
    """What we recorded as reported equals the simulated provider's own bill, exactly."""
    ours = sum_calls(calls)
    bill = ledger(job).ledger_totals()
    for field in TOKEN_FIELDS:
        assert ours[field] == bill[field], field
    assert sum(c["usage_reported"] for c in calls) == bill["calls"]


@pytest.mark.parametrize("kind", ["http_500", "http_503", "error_chunk"])
def test_transient_status_is_retried_then_succeeds(tmp_path, kind):
    job = make_job(tmp_path, [{"kind": kind, "section": 2, "times": 2}])
    sleeps = Sleeps()
    writer = SectionWriter(job, sleep=sleeps)
    text = writer.write()
    assert text == clean_text(tmp_path)
    calls = journal(writer)
    assert [c["status"] for c in calls] == ["failed", "failed", "ok"]
    assert len(sleeps) == 2 and sleeps[1] >= sleeps[0] * 0.5  # backoff, with jitter
    assert_reconciles(job, calls)


def test_persistent_500_gives_up_with_the_cause(tmp_path):
    job = make_job(tmp_path, [{"kind": "http_500", "section": 2}])
    writer = SectionWriter(job, sleep=Sleeps())
    with pytest.raises(SectionFailed, match=r"gave up after 4 failed attempts.*HTTP 500"):
        writer.write()
    assert len(journal(writer)) == 4


@pytest.mark.parametrize("retry_after", [1, 30])
def test_429_honours_retry_after_within_sdk_range(tmp_path, retry_after):
    job = make_job(
        tmp_path, [{"kind": "http_429", "section": 2, "times": 1, "retry_after": retry_after}]
    )
    sleeps = Sleeps()
    SectionWriter(job, sleep=sleeps).write()
    assert sleeps == [pytest.approx(retry_after)]


def test_429_retry_after_above_120s_is_still_honoured(tmp_path):
    """The openai SDK does not retry at all above 120 s; bookgen waits as asked."""
    job = make_job(tmp_path, [{"kind": "http_429", "section": 2, "times": 1, "retry_after": 200}])
    sleeps = Sleeps()
    writer = SectionWriter(job, sleep=sleeps)
    assert writer.write() == clean_text(tmp_path)
    assert sleeps == [pytest.approx(200)]


def test_retry_after_ms_header(tmp_path):
    job = make_job(
        tmp_path, [{"kind": "http_429", "section": 2, "times": 1, "retry_after_ms": 2500}]
    )
    sleeps = Sleeps()
    SectionWriter(job, sleep=sleeps).write()
    assert sleeps == [pytest.approx(2.5)]


def test_retry_after_beyond_total_wait_cap_fails_with_explanation(tmp_path):
    job = make_job(
        tmp_path,
        [{"kind": "http_429", "section": 2, "retry_after": 600}],
        retry={"max_total_wait_s": 300},
    )
    with pytest.raises(SectionFailed, match=r"asked to wait 600 s.*max_total_wait_s=300"):
        SectionWriter(job, sleep=Sleeps()).write()


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("http_401", "API key was rejected"),
        ("http_402", "insufficient balance"),
        ("http_400_model", "Model Not Exist.*model is unknown"),
    ],
)
def test_fatal_errors_stop_the_whole_run(tmp_path, kind, cause):
    job = make_job(tmp_path, [{"kind": kind}])
    writer = SectionWriter(job, sleep=Sleeps())
    with pytest.raises(SectionFailed, match=cause):
        writer.write()
    assert len(journal(writer)) == 1  # not retried
    assert (job.state_root / "halt.json").exists()
    # Another section of the same run makes no API call at all.
    other = make_job(tmp_path, [{"kind": kind}], number=3)
    other_writer = SectionWriter(other, sleep=Sleeps())
    with pytest.raises(SectionFailed, match="run was stopped because"):
        other_writer.write()
    assert journal(other_writer) == []


@pytest.mark.parametrize(
    ("sim", "cause"),
    [
        ({"faults": [{"kind": "http_422"}]}, "HTTP 422: Failed to deserialize"),
        (
            {"reject_params": ["temperature"]},
            r"HTTP 400: Unsupported parameter: 'temperature'.*field `temperature`.*generation.omit",
        ),
        (
            {"context_window": 2000},
            "maximum context length is 2000 tokens.*too long for the model",
        ),
    ],
)
def test_a_rejected_request_fails_only_its_section(tmp_path, sim, cause):
    """Context too long, a parameter the model does not take: this section fails with the
    provider's message; the run goes on (no halt), unlike a bad key or an unknown model."""
    job = make_job(tmp_path, sim=sim)
    writer = SectionWriter(job, sleep=Sleeps())
    with pytest.raises(SectionFailed, match=cause):
        writer.write()
    assert len(journal(writer)) == 1  # not retried
    assert not (job.state_root / "halt.json").exists()


def test_request_fields_are_omitted_or_renamed_as_configured(tmp_path):
    """OpenAI's reasoning models: no temperature, max_completion_tokens for max_tokens."""
    sim = {"reject_params": ["temperature", "max_tokens"]}
    gen = {"max_tokens": 200, "omit": ["temperature"]}
    gen["rename"] = {"max_tokens": "max_completion_tokens"}
    job = make_job(tmp_path, sim=sim, generation=gen)
    writer = SectionWriter(job, sleep=Sleeps())
    assert writer.write() == clean_text(tmp_path)
    calls = journal(writer)
    # The renamed limit was applied (the reply was cut and continued) ...
    assert calls[0]["finish_reason"] == "length" and len(calls) >= 3
    # ... and the request's identity is that of the request sent.
    sent = writer._request(section_messages_for(job))
    assert "temperature" not in sent and sent["max_completion_tokens"] == 200
    assert calls[0]["request_hash"] == request_key(job.config, sent)


def section_messages_for(job: SectionJob) -> list[dict]:
    cfg = job.config
    system, task = template_text(cfg, "system"), template_text(cfg, "section")
    return section_messages(system, task, cfg["book"], job.sections, job.section)


def test_content_filter_is_not_retried_and_is_reported(tmp_path):
    job = make_job(tmp_path, [{"kind": "content_filter", "section": 2}])
    with pytest.raises(SectionFailed, match="content filter"):
        run_section_job(job)
    note = paths.failure_note(job.section.key, job.state_root).read_text()
    assert "content_filter" in note
    calls = SectionWriter(job).journal.records()
    assert len(calls) == 1 and calls[0]["finish_reason"] == "content_filter"
    assert not job.out_md.exists()


@pytest.mark.parametrize("kind", ["drop", "eof"])
def test_cut_stream_keeps_what_arrived_and_continues(tmp_path, kind):
    job = make_job(tmp_path, [{"kind": kind, "section": 2, "times": 1, "after_fraction": 0.6}])
    writer = SectionWriter(job, sleep=Sleeps())
    text = writer.write()
    assert text == clean_text(tmp_path)
    first, second = journal(writer)
    assert first["status"] == "failed" and not first["usage_reported"]
    assert first["estimated_completion_tokens"] > 0 and first["estimated_cost_usd"] > 0
    assert second["purpose"] == "continue"
    # The continuation only paid for the rest of the reply, not the whole again.
    SectionWriter(make_job(tmp_path / "c2"), sleep=Sleeps()).write()
    full = sum_calls(SectionWriter(make_job(tmp_path / "c2")).journal.records())
    assert second["completion_tokens"] < 0.6 * full["completion_tokens"]
    assert_reconciles(job, journal(writer))


def test_a_malformed_stream_chunk_is_retried(tmp_path):
    """A `data:` line cut inside its JSON (the SDK raises json.JSONDecodeError): transient."""
    job = make_job(tmp_path, [{"kind": "malformed_chunk", "section": 2, "times": 1}])
    writer = SectionWriter(job, sleep=Sleeps())
    assert writer.write() == clean_text(tmp_path)
    first, second = journal(writer)
    assert first["status"] == "failed" and "malformed stream chunk" in first["error"]
    assert second["status"] == "ok" and second["purpose"] == "continue"


def test_an_empty_cut_off_reply_is_not_sent_again(tmp_path):
    """All reasoning, no text, finish_reason length: the same request would be cut the same
    way, so it fails at once with what to change (not max_continuations more calls)."""
    sim = {"thinking": True, "reasoning_fraction": 1.0}
    job = make_job(tmp_path, sim=sim, generation={"max_tokens": 16}, response_cache=False)
    writer = SectionWriter(job, sleep=Sleeps())
    with pytest.raises(SectionFailed, match=r"cut off by max_tokens before any text.*reasoning"):
        writer.write()
    assert [c["finish_reason"] for c in journal(writer)] == ["length"]


def test_an_unexpected_exception_ends_in_a_note_and_a_fresh_write(tmp_path):
    job = make_job(tmp_path)
    template = job.config["prompts"]["section"]
    job.config["prompts"]["section"] = str(tmp_path / "deleted-while-running.md")
    with pytest.raises(SectionFailed, match="unexpected error: FileNotFoundError"):
        run_section_job(job)
    note = json.loads(paths.failure_note(job.section.key, job.state_root).read_text())
    assert note["fresh"] is True and "deleted-while-running.md" in note["error"]
    assert "Traceback" in job.log.read_text()
    job.config["prompts"]["section"] = template
    assert SectionWriter(job).fresh  # the next run replays nothing
    run_section_job(job)
    assert job.out_md.exists() and not paths.failure_note(job.section.key, job.state_root).exists()


def test_no_request_carries_an_empty_assistant_turn(tmp_path):
    with pytest.raises(ValueError, match="empty assistant turn"):
        continuation_messages([{"role": "user", "content": "Write."}], " \n")
    # The simulator, like the providers, rejects one.
    job = make_job(tmp_path)
    client = make_client(job.config, job.state_root)
    messages = [
        {"role": "user", "content": "Write."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Continue."},
    ]
    out = stream_call(client, {"model": "deepseek-flash", "messages": messages})
    assert out.status_code == 400 and "string too short" in out.error


def test_finish_length_is_continued(tmp_path):
    job = make_job(tmp_path, [{"kind": "finish_length", "section": 2, "times": 2}])
    writer = SectionWriter(job, sleep=Sleeps())
    assert writer.write() == clean_text(tmp_path)
    calls = journal(writer)
    assert [c["finish_reason"] for c in calls] == ["length", "length", "stop"]
    assert [c["purpose"] for c in calls] == ["write", "continue", "continue"]
    assert_reconciles(job, calls)


def test_real_max_tokens_limit_is_continued(tmp_path):
    job = make_job(tmp_path, generation={"max_tokens": 200})
    writer = SectionWriter(job, sleep=Sleeps())
    assert writer.write() == clean_text(tmp_path)
    assert len(journal(writer)) >= 3


def test_insufficient_system_resource_is_retried(tmp_path):
    job = make_job(tmp_path, [{"kind": "insufficient_system_resource", "section": 2, "times": 1}])
    writer = SectionWriter(job, sleep=Sleeps())
    assert writer.write() == clean_text(tmp_path)
    calls = journal(writer)
    assert calls[0]["finish_reason"] == "insufficient_system_resource"
    assert calls[0]["usage_reported"] and calls[1]["purpose"] == "continue"


def test_queued_request_with_keepalives_completes(tmp_path):
    job = make_job(
        tmp_path,
        [{"kind": "queued", "section": 2, "times": 1, "duration_s": 0.3}],
        sim={"keepalive_interval_s": 0.05},
    )
    writer = SectionWriter(job, sleep=Sleeps())
    assert writer.write() == clean_text(tmp_path)
    (call,) = journal(writer)
    assert call["status"] == "ok" and call["duration_s"] >= 0.3


def test_completed_calls_are_not_paid_again_after_a_failure(tmp_path):
    """A section that failed after some completed calls replays them from the cache."""
    job = make_job(
        tmp_path,
        [
            {"kind": "finish_length", "section": 2, "times": 1},
            {"kind": "http_500", "section": 2},
        ],
        retry={"max_attempts": 2},
    )
    with pytest.raises(SectionFailed):
        SectionWriter(job, sleep=Sleeps()).write()
    billed_before = ledger(job).ledger_totals()["calls"]
    assert billed_before == 1
    # The provider recovers; the rerun replays the completed first call and pays only the rest.
    job = make_job(tmp_path)
    writer = SectionWriter(job, sleep=Sleeps())
    writer.write()
    assert ledger(job).ledger_totals()["calls"] == billed_before + 1
    assert [c["purpose"] for c in journal(writer)][-1] == "continue"


def test_concurrency_limit_429_is_retried_over_loopback(tmp_path, monkeypatch):
    """Two sections at once against a provider that accepts one open request."""
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-loopback-test")
    sim = Simulator({"concurrency_limit": 1, "ttft_s": 0.2, "tokens_per_s": 4000})
    server, port = serve(sim)
    try:
        jobs = [
            make_job(
                tmp_path,
                number=n,
                provider="deepseek",
                base_url=f"http://127.0.0.1:{port}/v1",
                retry={"max_attempts": 10, "initial_delay_s": 0.1, "max_delay_s": 0.4},
            )
            for n in (1, 2)
        ]
        writers = [
            SectionWriter(
                j,
                client=make_client(j.config, j.state_root),
                sleep=lambda s: threading.Event().wait(s),
            )
            for j in jobs
        ]
        results: list = [None, None]

        def run(i):
            results[i] = writers[i].write()

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert all(results)
        statuses = [c["http_status"] for w in writers for c in journal(w)]
        assert 429 in statuses
        assert sim.ledger_totals()["calls"] == 2
    finally:
        server.shutdown()
