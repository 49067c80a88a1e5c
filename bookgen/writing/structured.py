"""JSON replies (outline, plan): ask with ``response_format: json_object``, validate against a
shipped schema, and ask again with the validation error in the prompt when the reply is bad."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jsonschema

from bookgen.money.usage import validate
from bookgen.writing.errors import ReplyRejected
from bookgen.writing.prompts import json_retry_messages

if TYPE_CHECKING:
    from bookgen.writing.section import SectionWriter

JSON_MODE = {"response_format": {"type": "json_object"}}
_FENCED_RE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


class InvalidReply(ValueError):
    """A reply that parses and matches the schema but breaks a rule the schema cannot state."""


def json_path(path: Any) -> str:
    """``sections[2].words`` from a jsonschema error path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def parse_reply(reply: str, schema: str) -> dict[str, Any]:
    """The JSON object in ``reply`` (a ```json fence around it is tolerated), validated."""
    m = _FENCED_RE.match(reply)
    try:
        data = json.loads(m.group(1) if m else reply)
    except json.JSONDecodeError as e:
        raise InvalidReply(f"it is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise InvalidReply("it is not a JSON object")
    try:
        validate(data, schema)
    except jsonschema.ValidationError as e:
        raise InvalidReply(f"{json_path(e.absolute_path)}: {e.message}") from None
    return data


def request_json(
    writer: SectionWriter,
    base: list[dict[str, str]],
    schema: str,
    purpose: str,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """A JSON object for ``base`` that matches ``schema`` (and passes ``check``, which raises
    InvalidReply). A bad reply is answered with the error, up to ``qc.max_attempts`` times."""
    attempts = 1 + int(writer.config["qc"]["max_attempts"])
    messages = base
    error = ""
    for attempt in range(1, attempts + 1):
        reply = writer.generate(messages, purpose, JSON_MODE)
        try:
            data = parse_reply(reply, schema)
            if check is not None:
                check(data)
            return data
        except InvalidReply as e:
            error = str(e)
        writer.log.line(f"{purpose}: the reply could not be used ({error}); attempt {attempt}")
        messages = json_retry_messages(messages, reply, error)  # each retry a new request
    raise ReplyRejected(
        f"the {purpose} reply was still unusable after {attempts} attempt(s): {error} "
        "(the next run asks again; raise qc.max_attempts, or try another model)"
    )
