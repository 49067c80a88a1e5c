"""Request validation and the response objects of the chat-completions protocol."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bookgen.simulator.content import message_text
from bookgen.simulator.faults import HttpError

ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
EFFORT_SCALE = {"none": 0.0, "minimal": 0.5, "low": 0.5, "medium": 1.0, "high": 1.0, "max": 1.5}
EFFORT_SCALE["xhigh"] = 1.5


@dataclass
class ChatRequest:
    """The parts of a chat-completions body the simulator uses."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    json_mode: bool
    thinking: bool | None
    reasoning_effort: str | None
    user_id: str | None
    body_hash: str


def _invalid(message: str, param: str | None, status: int) -> HttpError:
    return HttpError(status, message, "invalid_request_error", "invalid_request_error", param)


def parse_request(body: Any, *, deepseek: bool) -> ChatRequest | HttpError:
    """Validate a decoded request body; an HttpError (400/422) describes what is wrong."""
    status = 422 if deepseek else 400
    if not isinstance(body, dict):
        return _invalid("The request body must be a JSON object.", None, status)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _invalid("'model' is required and must be a non-empty string.", "model", status)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _invalid("'messages' must be a non-empty array.", "messages", status)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return _invalid(f"messages[{i}] needs a valid 'role'.", f"messages[{i}].role", status)
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return _invalid(
                f"messages[{i}].content must be a string or an array.",
                f"messages[{i}].content",
                status,
            )
        empty = not message_text(content).strip()
        if m["role"] == "assistant" and empty and not m.get("tool_calls"):
            return _invalid(
                f"Invalid 'messages[{i}].content': string too short. Expected a string with "
                "minimum length 1, but got an empty string instead.",
                f"messages[{i}].content",
                400,
            )
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        return _invalid("'stream' must be a boolean.", "stream", status)
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        return _invalid("'max_tokens' must be an integer >= 1.", "max_tokens", status)
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 <= temperature <= 2
    ):
        return _invalid("'temperature' must be a number between 0 and 2.", "temperature", status)
    fmt = body.get("response_format")
    json_mode = False
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in (
            "text",
            "json_object",
            "json_schema",
        ):
            return _invalid(
                "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
                "response_format",
                status,
            )
        json_mode = fmt["type"] != "text"
    opts = body.get("stream_options")
    include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
    thinking_opt = body.get("thinking")
    thinking: bool | None = None
    if thinking_opt is not None:
        kind = thinking_opt.get("type") if isinstance(thinking_opt, dict) else None
        if kind not in ("enabled", "disabled"):
            return _invalid("'thinking.type' must be 'enabled' or 'disabled'.", "thinking", status)
        thinking = kind == "enabled"
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORT_SCALE:
        return _invalid(
            f"'reasoning_effort' must be one of {', '.join(EFFORT_SCALE)}.", "reasoning_effort", 400
        )
    user_id = body.get("user_id")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage and stream,
        max_tokens=max_tokens,
        json_mode=json_mode,
        thinking=thinking,
        reasoning_effort=effort,
        user_id=user_id if isinstance(user_id, str) else None,
        body_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
    )


def serialize_prompt(messages: list[dict[str, Any]]) -> str:
    """Deterministic prompt text: ``<|role|>\\n content \\n`` per message (prefix-stable)."""
    return "".join(f"<|{m.get('role')}|>\n{message_text(m.get('content'))}\n" for m in messages)


def usage_object(
    shape: str, *, prompt: int, hit: int, completion: int, reasoning: int
) -> dict[str, Any]:
    """The ``usage`` object as DeepSeek or OpenAI report it."""
    if shape == "openai":
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": hit, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": hit},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": prompt - hit,
    }
