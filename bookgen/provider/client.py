"""One streamed chat-completion call through the official ``openai`` client.

``stream_call`` never raises for API trouble: it returns a ``CallOutcome`` that says what
arrived (text, finish reason, the provider's usage if it came) and, on failure, how to treat
it (``transient``: retry; ``fatal``: stop the whole run; ``section``: fail this section only;
``stopped``: the run was interrupted and the stream abandoned).

``openai`` is imported on first use: it takes about 0.5 s, and the workflow imports this module
for every ``snakemake --dry-run``, which never calls the API.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2

from bookgen import clock, interrupt, paths
from bookgen.money.tokens import count_tokens
from bookgen.money.usage import parse_usage
from bookgen.provider.redact import redact
from bookgen.provider.request_identity import SIMULATOR_BASE_URL
from bookgen.simulator import Simulator, make_http_client

if TYPE_CHECKING:  # imported where a client is made or used: 1.2 s, which a dry run never needs
    import openai


# HTTP statuses that every section of the run would hit the same way: stop the run at once.
FATAL_FOR_RUN = {
    401: "the API key was rejected: check the key in the environment variable named by "
    "`api_key_env`",
    402: "the account has insufficient balance: top it up with the provider, then rerun",
    403: "access denied for this key or model: check the key's permissions and `model`",
    404: "the endpoint or model was not found: check `base_url` and `model`",
}
# A 400 stops the run only when the model is unknown ("Model Not Exist", model_not_found);
# any other rejected request (context too long, unsupported parameter) fails its section only.
UNKNOWN_MODEL = "the model is unknown to this endpoint: check `model` (and `base_url`)"
_UNKNOWN_MODEL_RE = re.compile(
    r"model\b.{0,60}\b(?:not exist|does not exist|not found)|not a valid model|"
    r"invalid model|unknown model|model_not_found",
    re.IGNORECASE,
)
TRANSIENT_STATUSES = {408, 409, 425, 429}
TRANSIENT_FINISH_REASONS = {"insufficient_system_resource"}
CHARS_PER_TOKEN = 4  # for progress only: about how many characters an English token has


@dataclass
class CallOutcome:
    """What one API call produced."""

    text: str = ""
    reasoning_chars: int = 0
    finish_reason: str | None = None
    usage: dict[str, int] | None = None  # as reported by the provider, normalised
    error: str | None = None
    error_kind: str | None = None  # None | "transient" | "fatal" | "section" | "stopped"
    status_code: int | None = None
    retry_after_s: float | None = None
    started_at: float = 0.0
    duration_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """The provider finished the reply (it may still be cut by length or a filter)."""
        return self.error is None and self.finish_reason is not None

    def estimated_completion_tokens(self) -> int:
        """Tokens received when the provider never reported usage (cut streams)."""
        return count_tokens(self.text) + self.reasoning_chars // CHARS_PER_TOKEN


def make_client(config: dict[str, Any], state_root: Path = paths.STATE) -> openai.OpenAI:
    """The configured endpoint's client; the in-process simulator when provider is simulator.

    Retries are ours (see ``bookgen.provider.retry``), so the SDK's own are switched off.
    """
    import openai

    timeout = httpx2.Timeout(float(config["generation"]["timeout_s"]), connect=15.0)
    if config["provider"] == "simulator":
        sim = Simulator(
            config.get("simulator") or {}, state_dir=paths.simulator_state_dir(state_root)
        )
        return openai.OpenAI(
            api_key="simulator",
            base_url=SIMULATOR_BASE_URL,
            http_client=make_http_client(sim),
            max_retries=0,
            timeout=timeout,
        )
    return openai.OpenAI(
        api_key=os.environ[config["api_key_env"]],
        base_url=config["base_url"],
        max_retries=0,
        timeout=timeout,
    )


_shared: dict[str, openai.OpenAI] = {}
_shared_lock = threading.Lock()


def shared_client(config: dict[str, Any], state_root: Path = paths.STATE) -> openai.OpenAI:
    """``make_client``'s client, made once per endpoint and process: jobs running in threads
    of one Snakemake process share its connections (no new connection, or TLS handshake, per
    section) and, with the simulator, one simulated provider."""
    key = json.dumps(
        [
            config["provider"],
            config["base_url"],
            config["api_key_env"],
            config["generation"]["timeout_s"],
            config.get("simulator"),
            str(Path(state_root).resolve()),
        ],
        sort_keys=True,
        default=str,
    )
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make_client(config, state_root)
        return _shared[key]


def endpoint_request(request: dict[str, Any], generation: dict[str, Any]) -> dict[str, Any]:
    """``request`` as the endpoint accepts it: the fields in ``generation.omit`` left out, those
    in ``generation.rename`` sent under their new name (e.g. OpenAI's reasoning models reject
    ``temperature`` and want ``max_completion_tokens`` for ``max_tokens``)."""
    omit = set(generation.get("omit") or ())
    rename = generation.get("rename") or {}
    return {rename.get(k, k): v for k, v in request.items() if k not in omit}


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def stream_call(
    client: openai.OpenAI,
    request: dict[str, Any],
    on_progress: Callable[[int, float], None] | None = None,  # (about N tokens, seconds)
    should_stop: Callable[[], bool] | None = None,
) -> CallOutcome:
    """Stream one chat completion, collecting text, reasoning and the final usage chunk.

    ``should_stop`` is asked after every chunk; when it says yes the stream is closed and the
    outcome says so (``error_kind`` ``stopped``), with what arrived until then.

    Chunks arrive as plain dicts (``cast_to=object``): the SDK still sends the request, decodes
    the event stream and raises its errors, but builds no typed model per chunk (0.16 ms of CPU
    per chunk against 0.03 ms measured; most providers send a chunk per token).
    """
    import openai

    out = CallOutcome(started_at=clock.now())
    t0 = time.monotonic()
    parts: list[str] = []
    received = 0  # characters of text and reasoning
    body = {k: v for k, v in request.items() if k != "extra_body"}
    body.update(request.get("extra_body") or {})
    body.update(stream=True, stream_options={"include_usage": True})
    try:
        stream = client.post(
            "/chat/completions",
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=openai.Stream[object],
        )
        # Ctrl-C shuts the connection down: a read waiting for a first token that may be
        # minutes away (keep-alives only) returns at once instead of at the timeout.
        with interrupt.abandoned_on_stop(lambda: _shut_down(stream)):
            for chunk in stream:
                if chunk.get("usage") is not None:
                    out.usage = parse_usage(chunk["usage"])
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta")
                    if delta is not None:
                        if delta.get("content"):
                            parts.append(delta["content"])
                            received += len(delta["content"])
                        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                        if reasoning:
                            out.reasoning_chars += len(reasoning)
                            received += len(reasoning)
                    if choice.get("finish_reason"):
                        out.finish_reason = choice["finish_reason"]
                if on_progress is not None and received:
                    on_progress(received // CHARS_PER_TOKEN, time.monotonic() - t0)
                if should_stop is not None and out.finish_reason is None and should_stop():
                    stream.close()
                    out.error = "interrupted (Ctrl-C) while the reply was streaming"
                    out.error_kind = "stopped"
                    break
            else:  # the stream ended by itself: did the reply?
                if out.finish_reason is None:
                    out.error = "the stream ended before the reply was finished (no finish reason)"
                    out.error_kind = "transient"
                elif out.finish_reason in TRANSIENT_FINISH_REASONS:
                    out.error = f"the provider stopped the reply: finish_reason {out.finish_reason}"
                    out.error_kind = "transient"
    except openai.APIStatusError as e:
        out.status_code = e.status_code
        out.retry_after_s = parse_retry_after(e.response.headers)
        detail = _error_message(e)
        if e.status_code in FATAL_FOR_RUN or unknown_model(e):
            out.error_kind = "fatal"
            advice = FATAL_FOR_RUN.get(e.status_code, UNKNOWN_MODEL)
            out.error = f"HTTP {e.status_code}: {detail} — {advice}"
        elif e.status_code in TRANSIENT_STATUSES or e.status_code >= 500:
            out.error_kind = "transient"
            out.error = f"HTTP {e.status_code}: {detail}"
        else:
            out.error_kind = "section"
            out.error = f"HTTP {e.status_code}: {detail} — {_rejected_advice(e, detail)}"
    except (openai.APIConnectionError, httpx2.TransportError) as e:
        out.error_kind = "transient"
        what = (
            "timed out"
            if isinstance(e, openai.APITimeoutError | httpx2.TimeoutException)
            else "failed"
        )
        out.error = f"connection {what}: {type(e).__name__}: {e}"
    except openai.APIError as e:  # an {"error": ...} event in the middle of a stream
        out.error_kind = "transient"
        out.error = f"error reported mid-stream: {e.message}"
    except json.JSONDecodeError as e:  # the SDK json.loads every `data:` line
        out.error_kind = "transient"
        out.error = f"the provider sent a malformed stream chunk ({e.msg} at character {e.pos})"
    if out.error_kind == "transient" and should_stop is not None and should_stop():
        out.error_kind = "stopped"  # the read was cut by Ctrl-C (see _shut_down), not the provider
        out.error = "interrupted (Ctrl-C) while waiting for the reply"
    # Providers and gateways may quote the key they were sent: no error text leaves here with it.
    out.error = redact(out.error, [client.api_key])
    out.text = "".join(parts)
    out.duration_s = time.monotonic() - t0
    return out


def _shut_down(stream: openai.Stream[object]) -> None:
    """Shut the reply's connection down, from any thread: a read blocked on it returns at once
    (closing the socket alone would not wake it). The in-process simulator has no socket."""
    network = stream.response.extensions.get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if sock is not None:
        sock.shutdown(socket.SHUT_RDWR)


def unknown_model(e: openai.APIStatusError) -> bool:
    """The provider says the requested model does not exist (every section would fail)."""
    body = e.body if isinstance(e.body, dict) else {}
    inner = body.get("error", body)
    code = str(inner.get("code") or "") if isinstance(inner, dict) else ""
    return bool(_UNKNOWN_MODEL_RE.search(f"{_error_message(e)} {code}"))


def _rejected_advice(e: openai.APIStatusError, detail: str) -> str:
    """What to do about a request the provider rejected for this section only."""
    body = e.body if isinstance(e.body, dict) else {}
    inner = body.get("error", body)
    param = inner.get("param") if isinstance(inner, dict) else None
    if "context" in detail.lower():
        return (
            "this section's request is too long for the model: lower the section's words or "
            "planning.words_per_call, or use a model with a larger context"
        )
    field = f" `{param}`" if isinstance(param, str) and param else ""
    return (
        f"the provider rejected the request field{field}: leave it out with generation.omit or "
        "rename it with generation.rename (see the README), or check generation in the config"
    )


def _error_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return e.message
