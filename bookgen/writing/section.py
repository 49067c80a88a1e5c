"""Write one section: prompt, stream, continue when cut off, retry, account, write atomically."""

from __future__ import annotations

import json
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookgen import clock, interrupt, paths
from bookgen.config import Section, template_text
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.locks import section_lock
from bookgen.money.budget import BudgetReached, begin_call, end_call, progress_line, run_spending
from bookgen.money.pricing import call_costs, format_usd
from bookgen.money.schedule import wait_for_off_peak
from bookgen.money.tokens import count_tokens
from bookgen.money.usage import TOKEN_FIELDS, sum_calls, validate, zero_usage
from bookgen.provider.client import CallOutcome, endpoint_request, shared_client, stream_call
from bookgen.provider.journal import CallJournal, ResponseCache
from bookgen.provider.redact import api_key, redact
from bookgen.provider.request_identity import is_simulated, origin, request_key
from bookgen.provider.retry import Backoff, GiveUp
from bookgen.run.progress import ProgressLog, announce, next_count
from bookgen.writing import history
from bookgen.writing.errors import ReplyRejected, SectionFailed
from bookgen.writing.planning import draft
from bookgen.writing.prompts import continuation_messages, fixed_prompt_texts, section_messages
from bookgen.writing.quality import Context, echo_patterns
from bookgen.writing.repair import review

if TYPE_CHECKING:
    import openai

# The journal's stand-in for a call whose process died before the reply was recorded.
UNFINISHED_CALL = (
    "no reply recorded: the run was killed during this call; the provider may have billed it "
    "(input tokens estimated, output unknown)"
)


@dataclass
class SectionJob:
    """Everything one section job needs; built from Snakemake's job by ``bookgen.jobs``."""

    config: dict[str, Any]
    sections: list[Section]
    section: Section
    fingerprint: dict[str, str]
    out_md: Path
    out_usage: Path
    log: Path
    state_root: Path = paths.STATE
    part: int | None = None  # one part of a planned section (rule ``part``), else the section
    output_root: Path | None = None  # where plans and parts live; default: out_md's folder

    def __post_init__(self) -> None:
        if self.output_root is None:
            self.output_root = self.out_md.parent


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class SectionWriter:
    """Writes one section with the configured endpoint; see ``write``."""

    def __init__(
        self,
        job: SectionJob,
        client: openai.OpenAI | None = None,
        sleep: Callable[[float], None] = interrupt.sleep,
    ) -> None:
        self.job = job
        self.config = job.config
        self.client = client or shared_client(job.config, job.state_root)
        self.sleep = sleep
        self.sid = job.section.id
        self.journal = CallJournal(paths.calls_journal(job.section.key, job.state_root))
        # A section whose reply was rejected (or that failed unexpectedly) is written afresh:
        # replaying the same replies would only fail the same way.
        self.fresh = history.writes_afresh(job.section.key, job.state_root)
        self.cache = ResponseCache(
            paths.response_cache_dir(job.state_root),
            bool(job.config["response_cache"]),
            replay=not self.fresh,
        )
        self.backoff = Backoff.from_config(job.config["retry"])
        self.log = ProgressLog(job.log, f"section_{self.sid}")
        self.secrets = [api_key(job.config)]
        self.origin = origin(job.config)  # provider, endpoint, simulated: in every call record
        self.calls_made = 0
        self.qc: dict[str, Any] | None = None  # quality control's record, once written

    # -- one request -------------------------------------------------------------------------

    def _request(
        self, messages: list[dict[str, str]], options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        gen = self.config["generation"]
        req: dict[str, Any] = {
            "model": self.config["model"],
            "messages": messages,
            "temperature": gen["temperature"],
            "max_tokens": gen["max_tokens"],
        }
        if gen["extra_body"]:
            req["extra_body"] = gen["extra_body"]
        req.update(options or {})
        return endpoint_request(req, gen)  # what is sent is what is hashed and cached

    def _record(
        self, out: CallOutcome, purpose: str, key: str, messages: list, call_id: str
    ) -> dict[str, Any]:
        """One API call's journal record with its usage and cost (reported, or estimated if
        cut)."""
        reported = out.usage is not None
        usage = out.usage or zero_usage()
        est_prompt = 0 if reported else count_tokens(json.dumps(messages, ensure_ascii=False))
        est_completion = 0 if reported else out.estimated_completion_tokens()
        record: dict[str, Any] = {
            "section": self.sid,
            "purpose": purpose,
            "attempt": self.calls_made,
            "started_at": _iso(out.started_at),
            "duration_s": round(out.duration_s, 3),
            "status": "ok" if out.error is None else "failed",
            "error": redact(out.error, self.secrets),
            "http_status": out.status_code,
            "finish_reason": out.finish_reason,
            "usage_reported": reported,
            **{f: usage[f] for f in TOKEN_FIELDS},
            "estimated_prompt_tokens": est_prompt,
            "estimated_completion_tokens": est_completion,
            "model": self.config["model"],
            "request_hash": key,
            "call_id": call_id,
            **self.origin,
        }
        record.update(call_costs(self.config["prices"], record))  # in the period of started_at
        if self.job.part is not None:
            record["part"] = self.job.part
        return record

    def _record_replay(self, cached: dict[str, Any], purpose: str, key: str) -> dict[str, Any]:
        """The journal's note that a reply was replayed from the cache: no request was sent,
        it cost $0, and ``replay_of`` names the call that paid for it."""
        out = CallOutcome(
            started_at=clock.now(), finish_reason=cached["finish_reason"], usage=zero_usage()
        )
        record = self._record(out, purpose, key, [], uuid.uuid4().hex)
        record.update(
            status="replayed",
            attempt=max(1, self.calls_made),
            cost_usd=0.0,
            replay_of=(cached.get("record") or {}).get("call_id"),
        )
        return record

    def _check_halt(self) -> None:
        halt = paths.halt_file(self.job.state_root)
        if halt.exists():
            try:
                reason = json.loads(halt.read_text(encoding="utf-8"))["reason"]
            except (OSError, ValueError, KeyError):
                reason = "another section hit an error that stops the whole run"
            raise SectionFailed(f"not started: the run was stopped because {reason}")

    def _halt_run(self, reason: str) -> None:
        atomic_write_json(
            paths.halt_file(self.job.state_root), {"reason": reason, "section": self.sid}
        )

    def call(
        self,
        messages: list[dict[str, str]],
        purpose: str,
        request_options: dict[str, Any] | None = None,
    ) -> CallOutcome:
        """One reply for ``messages``: from the response cache if already paid for, else the API."""
        req = self._request(messages, request_options)
        key = request_key(self.config, req)
        cached = self.cache.get(key)
        if cached is not None:
            paid = cached.get("record")  # the record of the call that bought the reply
            if paid and paid["section"] == self.sid and not self.journal.recorded(paid["call_id"]):
                # the process died after the reply was cached, before its record was journaled
                self.journal.append(paid)
            self.journal.append(self._record_replay(cached, purpose, key))
            self.log.line(f"{purpose}: reply replayed from the response cache (already paid for)")
            return CallOutcome(text=cached["text"], finish_reason=cached["finish_reason"])
        wait_for_off_peak(self.config, self.job.sections, self.log.line)  # schedule: off_peak
        if interrupt.stopping():
            raise SectionFailed("not started: the run was interrupted (Ctrl-C)")
        self._check_halt()
        call_id = uuid.uuid4().hex
        try:
            begin_call(self.config, req, call_id, self.job.state_root)
        except BudgetReached as e:
            raise SectionFailed(str(e)) from None
        try:
            self.calls_made += 1
            label = f"call {self.calls_made} ({purpose})"
            self.log.line(f"{label}: requesting {self.config['model']}")
            lost = CallOutcome(started_at=clock.now(), error=UNFINISHED_CALL)
            self.journal.begin(self._record(lost, purpose, key, messages, call_id))
            out = stream_call(
                self.client,
                req,
                lambda n, dt: self.log.progress(label, n, dt),
                should_stop=interrupt.stopping,
            )
            rec = self._record(out, purpose, key, messages, call_id)
            if out.complete:  # durable before the record that says it arrived, and with it
                self.cache.put(
                    key, {"text": out.text, "finish_reason": out.finish_reason, "record": rec}
                )
            self.journal.append(rec)
        finally:
            end_call(call_id)
        tokens = rec["completion_tokens"] or rec["estimated_completion_tokens"]
        rate = tokens / out.duration_s if out.duration_s > 0 else 0.0
        status = out.finish_reason if out.error is None else f"failed: {rec['error']}"
        self.log.line(
            f"{label}: {tokens:,} tokens in {out.duration_s:.1f} s ({rate:.1f} tokens/s), {status}"
        )
        return out

    # -- the whole section -------------------------------------------------------------------

    def generate(
        self,
        base: list[dict[str, str]],
        purpose: str = "write",
        request_options: dict[str, Any] | None = None,
    ) -> str:
        """The whole reply to ``base``: cut-off replies are continued, transient errors retried.

        ``purpose`` labels the calls in the journal (``write``; continuations are
        ``continue``); ``request_options`` adds request fields, e.g. ``response_format``.
        """
        text = ""
        continuations = 0
        max_cont = int(self.config["generation"]["max_continuations"])
        while True:
            # Never an empty assistant turn: with nothing received yet, ask again from the start.
            messages = continuation_messages(base, text) if text.strip() else base
            out = self.call(messages, purpose if not text.strip() else "continue", request_options)
            if out.error_kind == "fatal":
                self._halt_run(f"section {self.sid} got {out.error}")
                raise SectionFailed(redact(out.error, self.secrets) or "fatal error")
            if out.error_kind == "section":
                raise SectionFailed(redact(out.error, self.secrets) or "request rejected")
            if out.error_kind == "stopped":
                raise SectionFailed(
                    "interrupted (Ctrl-C) while the reply was streaming; what the call cost so "
                    "far is recorded. Run the same command again to write this section"
                )
            # Keep whatever arrived, even from a dropped stream: the next call continues it.
            text += out.text
            if out.error_kind == "transient":
                try:
                    delay = self.backoff.next_delay(out.error or "", out.retry_after_s)
                except GiveUp as e:
                    raise SectionFailed(redact(str(e), self.secrets) or "gave up") from None
                self.log.line(f"transient error ({out.error}); retrying in {delay:.1f} s")
                self.sleep(delay)
                continue
            if out.finish_reason == "stop":
                if not text.strip():
                    raise ReplyRejected(f"the model's reply had no text{_only_reasoning(out)}")
                return text
            if out.finish_reason == "length":
                if not out.text.strip():  # the same request would be cut the same way
                    raise SectionFailed(
                        f"the reply was cut off by max_tokens before any text"
                        f"{_only_reasoning(out)}: raise generation.max_tokens or lower the "
                        "reasoning effort (e.g. generation.extra_body)"
                    )
                continuations += 1
                if continuations > max_cont:
                    raise SectionFailed(
                        f"the reply was still cut off by the length limit after {max_cont} "
                        "continuations; raise generation.max_tokens or "
                        "generation.max_continuations, or lower the section's words"
                    )
                self.log.line(
                    f"reply cut off by max_tokens; continuing ({continuations}/{max_cont})"
                )
                continue
            if out.finish_reason == "content_filter":
                raise SectionFailed(
                    "the provider's content filter stopped the reply (finish_reason "
                    "content_filter); rephrase the section's title or key points, then rerun"
                )
            raise SectionFailed(f"unexpected finish_reason {out.finish_reason!r}")

    def base_messages(self) -> list[dict[str, str]]:
        """The messages every request about this section starts with: the shared book context,
        then the section's task."""
        cfg = self.config
        system, task = template_text(cfg, "system"), template_text(cfg, "section")
        return section_messages(system, task, cfg["book"], self.job.sections, self.job.section)

    def write(self) -> str:
        """The section's Markdown from the shared book context and its task: planned and
        written in parts when long (bookgen.writing.planning), then checked and repaired
        (bookgen.writing.repair); the verdicts are kept in ``self.qc``."""
        cfg = self.config
        base = self.base_messages()
        if self.fresh:
            self.log.line("a reply was rejected last time: writing afresh, not from the cache")
        first = draft(self, base)
        templates = [template_text(cfg, "system"), template_text(cfg, "section")]
        ctx = Context(
            target_words=self.job.section.words,
            key_points=self.job.section.key_points,
            planned_headings=[s["heading"] for s in first.plan] if first.plan else None,
            echo_patterns=echo_patterns([*templates, *fixed_prompt_texts()]),
            parts=first.parts,
        )
        text, self.qc = review(self, first, ctx)
        return text

    def usage_document(self, text: str, wall_time_s: float) -> dict[str, Any]:
        """The section's usage file: every call ever made for it, with totals."""
        cfg = self.config
        calls = self.journal.records()
        doc = {
            "section": self.sid,
            "key": self.job.section.key,
            "title": self.job.section.title,
            "provider": cfg["provider"],
            "model": cfg["model"],
            "simulated": is_simulated(cfg),
            "fingerprint": self.job.fingerprint,
            "generated_at": _iso(time.time()),
            "wall_time_s": round(wall_time_s, 3),
            "words": len(text.split()),
            "calls": calls,
            "totals": sum_calls(calls),
        }
        if self.qc is not None:
            doc["qc"] = self.qc
        validate(doc, "usage.schema.yaml")
        return doc


def _only_reasoning(out: CallOutcome) -> str:
    """What an empty reply had instead of text, for its error message."""
    what = f"finish_reason {out.finish_reason}"
    if out.reasoning_chars:
        what += f", only {out.reasoning_chars:,} characters of reasoning"
    return f" ({what})"


def unexpected_failure(e: Exception, writer: SectionWriter) -> SectionFailed:
    """A SectionFailed for an exception nothing foresaw (a bug, a reply no check expected): its
    cause in one line, the traceback in the section's log, and the next run writes afresh."""
    trace = "".join(traceback.format_exception(e))
    writer.log.line(f"unexpected error:\n{redact(trace, writer.secrets)}")
    failed = SectionFailed(
        f"unexpected error: {type(e).__name__}: {redact(str(e), writer.secrets)} (traceback in "
        "the log; the next run writes this afresh, and if it fails the same way, report it)"
    )
    failed.fresh = True
    return failed


@contextmanager
def failures_noted(
    writer: SectionWriter, note: Path, on_fresh: Callable[[], None] | None = None
) -> Iterator[None]:
    """Every failure in the block ends in the failure note, an unexpected one too (named, its
    traceback in the log, written afresh next time), and is raised as SectionFailed.
    ``on_fresh`` runs when the next run is to write afresh (e.g. to discard the parts)."""
    try:
        yield
    except Exception as e:
        # nothing foresaw a non-SectionFailed: named in the note, never a silent repeat
        failed = e if isinstance(e, SectionFailed) else unexpected_failure(e, writer)
        record_failure(writer, note, failed)
        if failed.fresh and on_fresh is not None:
            on_fresh()
        if failed is e:
            raise
        raise failed from e


def restored(writer: SectionWriter, kept: history.Kept) -> tuple[str, dict[str, Any]]:
    """A kept text of this section made for the job's fingerprint, and its usage document as
    of now (this file number, every call in the section's journal): no API call."""
    text = kept.text_path.read_text(encoding="utf-8")
    writer.qc = kept.usage.get("qc")
    doc = writer.usage_document(text, kept.usage["wall_time_s"])
    doc["generated_at"] = kept.usage["generated_at"]
    writer.log.line(f"text restored from {kept.text_path} (was section_{kept.was}): no API call")
    return text, doc


def record_failure(writer: SectionWriter, note: Path, e: SectionFailed) -> None:
    """Log why the job failed and write the section's failure note (read by the run's summary,
    by ``bookgen status`` and by the next run)."""
    writer.log.line(f"FAILED: {e}")
    job = writer.job
    failure: dict[str, Any] = {
        "section": job.section.id,
        "key": job.section.key,
        "error": str(e),
        "at": _iso(time.time()),
    }
    if job.part is not None:
        failure["part"] = job.part
    if e.fresh:  # a rejected reply or an unexpected error: the next run replays nothing
        failure["fresh"] = True
    if getattr(e, "qc", None):
        failure["qc"] = e.qc  # the verdicts of a section that failed quality control
    atomic_write_json(note, failure)


def discard_parts(key: str, output: Path) -> None:
    """Remove a planned section's part files (``bookgen.writing.parts``), so the next run writes
    them again: after a failed quality control the section is written afresh, parts included."""
    for path in paths.part_dir(key, output).glob("part_*"):
        path.unlink(missing_ok=True)


def run_section_job(job: SectionJob) -> None:
    """Write the section and its usage file, or record why it failed and raise SectionFailed."""
    t0 = time.monotonic()
    writer = SectionWriter(job)
    key = job.section.key
    note = paths.failure_note(key, job.state_root)

    def waiting() -> None:
        writer.log.line("waiting for another process that is still writing this section")

    def afresh() -> None:  # written afresh next time: its parts too
        discard_parts(key, job.output_root)

    try:
        with failures_noted(writer, note, on_fresh=afresh):
            with section_lock(key, job.state_root, on_wait=waiting):
                kept = history.restorable(job.config, job.section, job.fingerprint, job.state_root)
                if kept is not None:
                    text, doc = restored(writer, kept)
                else:
                    writer.log.line(
                        f"writing {job.section.title!r} ({job.section.words} words target)"
                    )
                    text = writer.write()
                    doc = writer.usage_document(text, time.monotonic() - t0)
                atomic_write_json(job.out_usage, doc)
                atomic_write_text(job.out_md, text)
                if kept is None:
                    history.keep(key, text, doc, job.state_root)
                else:
                    history.remember(kept, doc)
                note.unlink(missing_ok=True)
            t = doc["totals"]
            cost = format_usd(t["cost_usd"])
            writer.log.line(
                f"done: {doc['words']:,} words, {t['calls']} call(s), "
                f"{t['completion_tokens']:,} output tokens, cost {cost}"
            )
            with next_count(len(job.sections), job.state_root) as done:
                spent = run_spending(job.config, job.state_root)
                announce(progress_line(job.section.id, done, len(job.sections), spent))
    finally:
        writer.log.close()
