"""One home for keeping API keys out of everything bookgen writes or prints.

A provider or gateway may quote the key it was sent ("Incorrect API key provided: sk-…").
``bookgen.provider.client`` passes every error text through ``redact`` where it is built, so no log
line, failure note, halt file, usage file or console message can carry the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 6  # shorter values (e.g. "none" for a local server) are no secret
# Key-shaped tokens, whatever key was sent: `sk-…` style keys (masked ones too) and bearer tokens.
_KEY_LIKE = re.compile(
    r"\b(?:sk|gsk|pk|rk)[-_][A-Za-z0-9_\-*.]{6,}|(?<=Bearer )[^\s\"',;]+", re.IGNORECASE
)


def api_key(config: dict[str, Any]) -> str:
    """The configured key's value (empty when unset); only for redacting and authenticating."""
    return os.environ.get(str(config.get("api_key_env") or ""), "")


def redact(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """``text`` with every secret value and every key-shaped token replaced by [REDACTED]."""
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret.strip()) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED).replace(secret.strip(), REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)


def looks_like_key(value: str) -> bool:
    """A value that is probably an API key, not a variable name (``api_key_env`` holds a name)."""
    if _KEY_LIKE.search(value):
        return True
    letters_and_digits = any(c.isdigit() for c in value) and any(c.islower() for c in value)
    return len(value) >= 24 and letters_and_digits
