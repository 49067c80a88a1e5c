"""Fault schedule: which rule (if any) fires for a request, and the HTTP errors it produces."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bookgen.simulator.config import FaultRule, SimulatorConfig
from bookgen.simulator.state import State


@dataclass(frozen=True)
class HttpError:
    """An error response in the providers' shape."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def rule_key(index: int, rule: FaultRule) -> str:
    """Stable identity of a rule for shared counters (index plus a digest of its content)."""
    blob = json.dumps(rule.__dict__, sort_keys=True, default=list).encode("utf-8")
    return f"{index}:{hashlib.sha256(blob).hexdigest()[:10]}"


def _unit(*parts: Any) -> float:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def choose_fault(
    config: SimulatorConfig,
    state: State,
    *,
    section: int | None,
    model: str,
    body_hash: str,
    request_index: int,
    attempt: int,
    rules: Sequence[Any] | None = None,
    accept: Callable[[Any], bool] | None = None,
) -> Any:
    """The first rule that fires for this request (counting ``times`` uses), or None.

    ``rules`` defaults to the config's faults (defect rules select requests the same way);
    rules that ``accept`` rejects are skipped without counting.

    A rule matches when its ``model`` (if any) equals the request's model, its
    ``section``/``sections`` (if any) contain the request's section, and its ``rate`` (if any)
    draw succeeds: ``sequence`` mode draws from ``random.Random`` seeded by (seed, request
    counter, rule); ``hash`` mode from a hash of (seed, request body, attempt for that body,
    rule). ``times`` then limits firings per section (section rules) or per rule.
    """
    for index, rule in enumerate(config.faults if rules is None else rules):
        if accept is not None and not accept(rule):
            continue
        if rule.model is not None and rule.model != model:
            continue
        sections = rule.section_set()
        if sections is not None and section not in sections:
            continue
        if rule.rate is not None:
            mode = rule.rate_mode or config.rate_mode
            if mode == "hash":
                draw = _unit(config.seed, "hash", body_hash, attempt, index)
            else:
                draw = random.Random(f"{config.seed}:seq:{request_index}:{index}").random()
            if draw >= rule.rate:
                continue
        if rule.times is not None:
            key = f"times|{rule_key(index, rule)}"
            if sections is not None:
                key += f"|s{section}"
            taken, _ = state.take(key, rule.times)
            if not taken:
                continue
        return rule
    return None


def _retry_headers(rule: FaultRule) -> tuple[tuple[str, str], ...]:
    headers = []
    if rule.retry_after is not None:
        value = rule.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        headers.append(("retry-after", str(value)))
    if rule.retry_after_ms is not None:
        ms = rule.retry_after_ms
        headers.append(("retry-after-ms", str(int(ms) if float(ms).is_integer() else ms)))
    return tuple(headers)


# kind -> (status, default message, error type, error code); 429/5xx also carry retry headers.
HTTP_ERRORS: dict[str, tuple[int, str, str, str]] = {
    "http_429": (
        429,
        "Rate Limit Reached: you are sending requests too quickly, please slow down.",
        "rate_limit_error",
        "rate_limit_exceeded",
    ),
    "http_500": (
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        "server_error",
    ),
    "http_503": (
        503,
        "Server Overloaded: the server is overloaded due to high traffic, retry later.",
        "server_error",
        "server_overloaded",
    ),
    "http_402": (402, "Insufficient Balance", "unknown_error", "invalid_request_error"),
    "http_401": (
        401,
        "Authentication Fails, Your api key is invalid",
        "authentication_error",
        "invalid_request_error",
    ),
    "http_400_model": (400, "Model Not Exist", "invalid_request_error", "invalid_request_error"),
    "http_422": (
        422,
        "Failed to deserialize the JSON body into the target type: invalid parameters",
        "invalid_request_error",
        "invalid_request_error",
    ),
}


def _message(rule: FaultRule, default: str, api_key: str) -> str:
    """The rule's message (default: the provider's); ``{api_key}`` in it quotes the key the
    request was sent with, as some gateways do."""
    return (rule.message or default).replace("{api_key}", api_key)


def http_error_for(rule: FaultRule, api_key: str = "") -> HttpError:
    """The HTTP error response an ``http_*`` rule produces."""
    if rule.kind not in HTTP_ERRORS:
        raise ValueError(f"{rule.kind} is not an HTTP fault")
    status, message, err_type, code = HTTP_ERRORS[rule.kind]
    headers = _retry_headers(rule) if status == 429 or status >= 500 else ()
    return HttpError(status, _message(rule, message, api_key), err_type, code, headers=headers)


def stream_error_body(rule: FaultRule, api_key: str = "") -> dict[str, Any]:
    """The ``{"error": ...}`` object of an ``error_chunk`` fault."""
    default = "The server had an error while processing your request. Sorry about that!"
    return HttpError(500, _message(rule, default, api_key), "server_error", "server_error").body()


def unsupported_parameter(param: str) -> HttpError:
    """OpenAI's 400 for a request field the model does not accept (as its reasoning models
    answer ``max_tokens`` and a non-default ``temperature``)."""
    if param == "max_tokens":
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
    else:
        message = f"Unsupported parameter: '{param}' is not supported with this model."
    return HttpError(400, message, "invalid_request_error", "unsupported_parameter", param)


def context_length_exceeded(limit: int, requested: int) -> HttpError:
    """OpenAI's 400 for a prompt plus output limit beyond the model's context window."""
    return HttpError(
        400,
        f"This model's maximum context length is {limit} tokens. However, you requested "
        f"{requested} tokens. Please reduce the length of the messages or completion.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )
