"""The Simulator: a WSGI app speaking the OpenAI/DeepSeek chat-completions protocol."""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2

from bookgen.money.tokens import tokenize
from bookgen.simulator import content, defects
from bookgen.simulator.config import HTTP_KINDS, FaultRule, SimulatorConfig, coerce_config
from bookgen.simulator.faults import (
    HttpError,
    choose_fault,
    context_length_exceeded,
    http_error_for,
    stream_error_body,
    unsupported_parameter,
)
from bookgen.simulator.protocol import (
    EFFORT_SCALE,
    ChatRequest,
    parse_request,
    serialize_prompt,
    usage_object,
)
from bookgen.simulator.state import State

CACHE_UNIT = 64
FINISH_KINDS = {
    "finish_length": "length",
    "content_filter": "content_filter",
    "insufficient_system_resource": "insufficient_system_resource",
}
CUT_KINDS = frozenset({"drop", "eof", "error_chunk", "malformed_chunk"})
_CONTINUE_RE = re.compile(r"\bcontinue\b", re.IGNORECASE)

StartResponse = Callable[..., Any]


class SimulatedDrop(httpx2.ReadError):
    """Raised from a response body to drop the connection mid-body.

    In-process the client sees it as a read error; the loopback server closes the socket.
    """

    def __init__(self, message: str = "simulated connection drop: peer closed connection") -> None:
        super().__init__(message)


@dataclass
class Plan:
    """What one request will produce."""

    section: int | None
    content_tokens: list[str]
    reasoning_tokens: list[str]
    finish_reason: str | None
    cut: str | None  # drop / eof / error_chunk


@dataclass
class Record:
    """Tokens actually produced for one request, for the ledger."""

    rid: str
    model: str
    section: int | None
    stream: bool
    prompt_tokens: int = 0
    hit_tokens: int = 0
    content: int = 0
    reasoning: int = 0
    finish_reason: str | None = None
    reported: bool = False
    fault: str | None = None
    started: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    received_unix_s: float = 0.0  # when the request arrived (Unix time)
    received_mono: float = 0.0  # the same moment on the monotonic clock, for latency_s
    api_key: str = field(default="", repr=False)  # for faults that quote it; never recorded


class _Body:
    """WSGI response iterable that releases the request slot exactly once on close."""

    def __init__(self, gen: Iterator[bytes], release: Callable[[], None]) -> None:
        self._gen = gen
        self._release = release
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        return self._gen

    def close(self) -> None:
        try:
            close = getattr(self._gen, "close", None)
            if close is not None:
                close()
        finally:
            if not self._released:
                self._released = True
                self._release()


class _Pacer:
    """Sleeps so that token n is emitted at ``start + ttft + n / tokens_per_s``."""

    def __init__(self, ttft_s: float, tokens_per_s: float | None) -> None:
        self.ttft = ttft_s
        self.tps = tokens_per_s or 0.0
        self.start = time.monotonic()

    def wait(self, tokens_done: int) -> None:
        target = self.start + self.ttft + (tokens_done / self.tps if self.tps else 0.0)
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _batches(tokens: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(tokens), size):
        yield tokens[i : i + size]


class Simulator:
    """An OpenAI-compatible chat-completions provider simulated in-process.

    ``config`` is a dict (validated against ``simulator.schema.yaml``), a SimulatorConfig or
    None; ``state_dir`` makes prefix cache, fault counters and ledger shared across processes.
    """

    def __init__(
        self,
        config: dict[str, Any] | SimulatorConfig | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        self.config = coerce_config(config)
        self.state = State(state_dir)
        self._open = 0
        self._open_lock = threading.Lock()
        self.wsgi_app = self._wsgi

    # public helpers ----------------------------------------------------------------------------
    def ledger(self) -> list[dict[str, Any]]:
        """Every request the simulated provider billed."""
        return self.state.ledger_entries()

    def ledger_totals(self) -> dict[str, int]:
        """Sums of usage over ledger entries whose usage reached the client."""
        return self.state.ledger_totals()

    def reset_ledger(self) -> None:
        """Forget the ledger (for every instance sharing the state directory)."""
        self.state.ledger_reset()

    def close(self) -> None:
        """Close the state files (the instance must not be used afterwards)."""
        self.state.close()

    @property
    def open_requests(self) -> int:
        """Requests currently being answered by this instance."""
        return self._open

    # WSGI ------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = (environ.get("PATH_INFO") or "/").rstrip("/") or "/"
        if path.startswith("/v1/") or path == "/v1":
            path = path[3:] or "/"
        routes = {
            "/chat/completions": ("POST", self._chat),
            "/models": ("GET", self._models),
            "/ledger": ("GET", self._ledger),
            "/ledger/reset": ("POST", self._ledger_reset),
        }
        if path not in routes:
            err = HttpError(404, f"Not found: {path}", "invalid_request_error", "not_found")
            return self._error(start_response, err)
        allowed, handler = routes[path]
        if method != allowed:
            err = HttpError(405, f"Method {method} not allowed", "invalid_request_error", None)
            return self._error(start_response, err, (("allow", allowed),))
        return handler(environ, start_response)

    @staticmethod
    def _json(
        start_response: StartResponse,
        status: int,
        obj: Any,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[bytes]:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        reason = _REASONS.get(status, "Unknown")
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                *headers,
            ],
        )
        return [data]

    def _error(
        self,
        start_response: StartResponse,
        err: HttpError,
        headers: Iterable[tuple[str, str]] = (),
        rid: str | None = None,
    ) -> list[bytes]:
        extra = [*err.headers, *headers]
        if rid:
            extra.append(("x-request-id", rid))
        return self._json(start_response, err.status, err.body(), extra)

    def _models(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "bookgen-simulator"}
            for m in self.config.models
        ]
        return self._json(start_response, 200, {"object": "list", "data": data})

    def _ledger(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return self._json(
            start_response, 200, {"entries": self.ledger(), "totals": self.ledger_totals()}
        )

    def _ledger_reset(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        self.reset_ledger()
        return self._json(start_response, 200, {"ok": True})

    # chat completions ------------------------------------------------------------------------
    def _try_open(self) -> bool:
        with self._open_lock:
            limit = self.config.concurrency_limit
            if limit is not None and self._open >= limit:
                return False
            self._open += 1
            return True

    def _release(self) -> None:
        with self._open_lock:
            self._open -= 1

    def _chat(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        cfg = self.config
        received = time.time(), time.monotonic()
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            err = HttpError(
                401,
                "Authentication Fails: no API key given (Authorization: Bearer header missing)",
                "authentication_error",
                "invalid_request_error",
            )
            return self._error(start_response, err, rid=rid)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else environ["wsgi.input"].read()
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            err = HttpError(
                400,
                f"Failed to parse the request body as JSON: {exc}",
                "invalid_request_error",
                "invalid_request_error",
            )
            return self._error(start_response, err, rid=rid)
        req = parse_request(body, deepseek=cfg.usage_shape == "deepseek")
        if isinstance(req, HttpError):
            return self._error(start_response, req, rid=rid)
        rejected = next((p for p in cfg.reject_params if p in body), None)
        if rejected is not None:
            return self._error(start_response, unsupported_parameter(rejected), rid=rid)
        if cfg.context_window is not None:
            requested = len(tokenize(serialize_prompt(req.messages))) + (req.max_tokens or 0)
            if requested > cfg.context_window:
                err = context_length_exceeded(cfg.context_window, requested)
                return self._error(start_response, err, rid=rid)
        if cfg.reject_unknown_models and req.model not in cfg.models:
            err = HttpError(
                400, "Model Not Exist", "invalid_request_error", "invalid_request_error"
            )
            return self._error(start_response, err, rid=rid)
        if (
            req.json_mode
            and cfg.json_requires_word
            and not any(
                "json" in content.message_text(m.get("content")).lower() for m in req.messages
            )
        ):
            err = HttpError(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                "invalid_request_error",
                "invalid_request_error",
                "messages",
            )
            return self._error(start_response, err, rid=rid)
        if not self._try_open():
            err = HttpError(
                429,
                f"Rate Limit Reached: too many concurrent requests for your account "
                f"(limit {cfg.concurrency_limit}); please retry later.",
                "rate_limit_error",
                "rate_limit_exceeded",
            )
            return self._error(start_response, err, rid=rid)
        try:
            task, task_index = content.find_task(req.messages)
            fault = None
            if cfg.faults:
                _, request_index = self.state.take("requests")
                _, attempt = self.state.take(f"attempt|{req.body_hash}")
                fault = choose_fault(
                    cfg,
                    self.state,
                    section=task.section if task else None,
                    model=req.model,
                    body_hash=req.body_hash,
                    request_index=request_index,
                    attempt=attempt,
                )
            if fault is not None and fault.kind in HTTP_KINDS:
                self._release()
                return self._error(start_response, http_error_for(fault, auth[7:]), rid=rid)
            defect = self._defect(req, task, task_index) if cfg.defects else None
            plan = self._plan(req, task, task_index, fault, defect)
            record = Record(
                rid,
                req.model,
                plan.section,
                req.stream,
                fault=fault and fault.kind,
                received_unix_s=received[0],
                received_mono=received[1],
                api_key=auth[7:],
            )
            headers = [("x-request-id", rid), ("Cache-Control", "no-cache")]
            if req.stream:
                gen = self._stream_body(req, plan, fault, record)
                start_response("200 OK", [("Content-Type", "text/event-stream"), *headers])
            else:
                gen = self._json_body(req, plan, fault, record)
                status = "500 Internal Server Error" if plan.cut == "error_chunk" else "200 OK"
                start_response(status, [("Content-Type", "application/json"), *headers])
            return _Body(gen, self._release)
        except BaseException:
            self._release()
            raise

    # planning ----------------------------------------------------------------------------------
    def _defect(
        self, req: ChatRequest, task: content.Task | None, task_index: int
    ) -> defects.DefectRule | None:
        """The defect rule that spoils this reply, if any (first replies only)."""
        if task is None and not req.json_mode:
            return None
        anchor, _ = content.locate(req.messages, max(task_index, 0), req.json_mode)
        first = not any(m.get("role") == "assistant" for m in req.messages[anchor + 1 :])
        return choose_fault(
            self.config,
            self.state,
            section=task.section if task else None,
            model=req.model,
            body_hash=req.body_hash,
            request_index=self.state.take("defect-requests")[1],
            attempt=0,
            rules=self.config.defects,
            accept=lambda rule: defects.applies(rule, req.json_mode, first, req.messages),
        )

    def _plan(
        self,
        req: ChatRequest,
        task: content.Task | None,
        task_index: int,
        fault: FaultRule | None,
        defect: defects.DefectRule | None = None,
    ) -> Plan:
        cfg = self.config
        msgs = req.messages
        brief = None
        if task is not None:
            anchor, brief = content.locate(msgs, task_index, req.json_mode)
            subject = ""
        else:
            users = [i for i, m in enumerate(msgs) if m.get("role") == "user"]
            anchor = users[-1] if users else len(msgs) - 1
            first_assistant = next(
                (i for i, m in enumerate(msgs) if m.get("role") == "assistant"), None
            )
            last_text = content.message_text(msgs[anchor].get("content")) if users else ""
            if first_assistant is not None and _CONTINUE_RE.search(last_text):
                before = [i for i in users if i < first_assistant]
                if before:
                    anchor = before[-1]
            subject_text = content.message_text(msgs[anchor].get("content")).strip()
            subject = subject_text.splitlines()[0] if subject_text else ""
        kwargs = {"seed": cfg.seed, "model": req.model, "words_factor": cfg.words_factor}
        if req.json_mode:
            prompt = "\n".join(
                content.message_text(m.get("content")) for m in msgs if m.get("role") == "user"
            )
            full = content.json_reply(
                task, subject, prompt=prompt, default_words=cfg.default_words, **kwargs
            )
            if defect is not None:
                full = defects.json_text(defect, full)
        elif task is not None and defect is not None:
            full = defects.prose(
                defect, task, brief, msgs, default_words=cfg.default_words, **kwargs
            )
        elif task is not None and brief is not None:
            full = content.brief_text(task, brief, **kwargs)
        elif task is not None:
            full = content.section_text(task, default_words=cfg.default_words, **kwargs)
        else:
            full = content.generic_text(subject, **kwargs)
        partial = "".join(
            content.message_text(m.get("content"))
            for m in msgs[anchor + 1 :]
            if m.get("role") == "assistant"
        )
        remaining = content_tokens = tokenize(full[len(partial) :])

        thinking = cfg.thinking if req.thinking is None else req.thinking
        reasoning: list[str] = []
        if thinking:
            scale = EFFORT_SCALE.get(req.reasoning_effort or "high", 1.0)
            n = math.ceil(len(remaining) * cfg.reasoning_fraction * scale)
            if n or scale:
                n = max(n, 8)
            text = content.reasoning_text(task, subject, n, seed=cfg.seed, model=req.model)
            reasoning = tokenize(text)

        finish: str | None = "stop"
        if req.max_tokens is not None:
            if len(reasoning) >= req.max_tokens:
                reasoning = reasoning[: req.max_tokens]
                content_tokens = []
                finish = "length"
            elif len(content_tokens) > req.max_tokens - len(reasoning):
                content_tokens = content_tokens[: req.max_tokens - len(reasoning)]
                finish = "length"
        cut: str | None = None
        if fault is not None and (fault.kind in CUT_KINDS or fault.kind in FINISH_KINDS):
            at = int(len(remaining) * fault.after_fraction)
            if fault.kind in CUT_KINDS:
                content_tokens = content_tokens[:at]
                cut, finish = fault.kind, None
            elif fault.kind == "finish_length":
                # a "length" stop always makes progress, and never ends a complete reply
                at = max(at, 1)
                if at < len(content_tokens):
                    content_tokens = content_tokens[:at]
                    finish = "length"
            elif at < len(content_tokens) or finish == "stop":
                content_tokens = content_tokens[:at]
                finish = FINISH_KINDS[fault.kind]
        if fault is not None and fault.kind == "empty_reply":
            content_tokens, finish = [], "stop"
        return Plan(task.section if task else None, content_tokens, reasoning, finish, cut)

    # prompt accounting ---------------------------------------------------------------------------
    def _prefill(self, req: ChatRequest) -> tuple[int, int]:
        """(prompt_tokens, cached tokens as this provider reports them); stores the prefix."""
        tokens = tokenize(serialize_prompt(req.messages))
        n = len(tokens)
        if not self.config.prefix_cache or n < CACHE_UNIT:
            return n, 0
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{req.model}\x00{req.user_id or ''}\x00".encode())
        hashes = []
        for start in range(0, n - n % CACHE_UNIT, CACHE_UNIT):
            h.update("".join(tokens[start : start + CACHE_UNIT]).encode("utf-8"))
            hashes.append(h.copy().hexdigest())
        hit = self.state.cache_hit_and_store(hashes) * CACHE_UNIT
        if self.config.usage_shape == "openai":
            hit = 0 if hit < 1024 else 1024 + (hit - 1024) // 128 * 128
        return n, hit

    # bodies --------------------------------------------------------------------------------------
    def _start(
        self, req: ChatRequest, fault: FaultRule | None, rec: Record, keepalive: bytes
    ) -> Generator[bytes, None, _Pacer]:
        """Hold a queued request with keep-alive lines, then read the prompt; returns the pacer."""
        if fault is not None and fault.kind == "queued":
            yield from self._keepalives(fault.duration_s, keepalive)
        rec.prompt_tokens, rec.hit_tokens = self._prefill(req)
        rec.started = True
        return _Pacer(self.config.ttft_s, self.config.tokens_per_s)

    def _keepalives(self, duration: float, line: bytes) -> Iterator[bytes]:
        if duration <= 0:
            return
        end = time.monotonic() + duration
        interval = self.config.keepalive_interval_s
        yield line
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(interval, left))
            yield line

    def _batch_size(self) -> int:
        size = self.config.chunk_tokens
        tps = self.config.tokens_per_s
        if tps:
            size = max(size, math.ceil(tps / 50))
        return size

    def _usage(self, rec: Record) -> dict[str, Any]:
        return usage_object(
            self.config.usage_shape,
            prompt=rec.prompt_tokens,
            hit=rec.hit_tokens,
            completion=rec.content + rec.reasoning,
            reasoning=rec.reasoning,
        )

    def _record(self, rec: Record) -> None:
        if not rec.started:
            return
        self.state.ledger_add(
            {
                "id": rec.rid,
                "time": _now_iso(),
                # per-request timing: accepted at (Unix s), then seconds to the last byte
                "received_unix_s": round(rec.received_unix_s, 4),
                "latency_s": round(time.monotonic() - rec.received_mono, 4),
                "model": rec.model,
                "section": rec.section,
                "stream": rec.stream,
                "finish_reason": rec.finish_reason,
                "reported_to_client": rec.reported,
                "fault": rec.fault,
                "usage": {
                    "prompt_tokens": rec.prompt_tokens,
                    "completion_tokens": rec.content + rec.reasoning,
                    "prompt_cache_hit_tokens": rec.hit_tokens,
                    "prompt_cache_miss_tokens": rec.prompt_tokens - rec.hit_tokens,
                    "reasoning_tokens": rec.reasoning,
                },
            }
        )

    def _chunk(
        self,
        rec: Record,
        created: int,
        delta: dict[str, Any] | None,
        finish: str | None = None,
        include_usage: bool = False,
    ) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": rec.rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": rec.model,
            "system_fingerprint": self.config.system_fingerprint,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return obj

    def _stream_body(
        self, req: ChatRequest, plan: Plan, fault: FaultRule | None, rec: Record
    ) -> Iterator[bytes]:
        created = int(time.time())
        incl = req.include_usage
        show_reasoning = self.config.usage_shape == "deepseek"
        try:
            pacer = yield from self._start(req, fault, rec, b": keep-alive\n\n")
            pacer.wait(0)
            yield _sse(self._chunk(rec, created, {"role": "assistant", "content": ""}, None, incl))
            size = self._batch_size()
            for batch in _batches(plan.reasoning_tokens, size):
                pacer.wait(rec.reasoning + len(batch))
                rec.reasoning += len(batch)
                if show_reasoning:
                    delta = {"content": None, "reasoning_content": "".join(batch)}
                    yield _sse(self._chunk(rec, created, delta, None, incl))
            for batch in _batches(plan.content_tokens, size):
                pacer.wait(rec.reasoning + rec.content + len(batch))
                rec.content += len(batch)
                yield _sse(self._chunk(rec, created, {"content": "".join(batch)}, None, incl))
            if plan.cut == "drop":
                raise SimulatedDrop()
            if plan.cut == "eof":
                return
            if plan.cut == "malformed_chunk":  # a data line cut inside its JSON
                yield b'data: {"id":"' + rec.rid.encode() + b'","choices":[{"delta":{"con\n\n'
                return
            if plan.cut == "error_chunk":
                assert fault is not None
                yield _sse(stream_error_body(fault, rec.api_key))
                return
            rec.finish_reason = plan.finish_reason
            yield _sse(self._chunk(rec, created, {}, plan.finish_reason, incl))
            if incl:
                final = self._chunk(rec, created, None)
                final["usage"] = self._usage(rec)
                yield _sse(final)
                rec.reported = True
            yield b"data: [DONE]\n\n"
        finally:
            self._record(rec)

    def _json_body(
        self, req: ChatRequest, plan: Plan, fault: FaultRule | None, rec: Record
    ) -> Iterator[bytes]:
        try:
            pacer = yield from self._start(req, fault, rec, b"\n")
            pacer.wait(len(plan.reasoning_tokens) + len(plan.content_tokens))
            rec.reasoning = len(plan.reasoning_tokens)
            rec.content = len(plan.content_tokens)
            if plan.cut == "error_chunk":
                assert fault is not None
                yield json.dumps(stream_error_body(fault, rec.api_key)).encode("utf-8")
                return
            message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.content_tokens)}
            if plan.reasoning_tokens and self.config.usage_shape == "deepseek":
                message["reasoning_content"] = "".join(plan.reasoning_tokens)
            obj = {
                "id": rec.rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": rec.model,
                "system_fingerprint": self.config.system_fingerprint,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": plan.finish_reason,
                    }
                ],
                "usage": self._usage(rec),
            }
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            if plan.cut in ("drop", "eof", "malformed_chunk"):
                yield data[: len(data) // 2]
                if plan.cut == "drop":
                    raise SimulatedDrop()
                return
            rec.finish_reason = plan.finish_reason
            rec.reported = True
            yield data
        finally:
            self._record(rec)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
