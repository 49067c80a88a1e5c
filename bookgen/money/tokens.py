"""A deterministic, dependency-free token approximation.

Real providers use BPE tokenizers we cannot ship; this splits text into word pieces (up to
six characters) and punctuation, each carrying its leading whitespace, which lands near BPE
counts on English prose. The simulator bills with it and streams one token per delta; the
client uses it to *estimate* the tokens of a stream cut before its usage chunk.
"""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(r"\s*\w{1,6}|\s*[^\w\s]|\s+$", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens such that ``"".join(tokenize(text)) == text``."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Approximate number of tokens in ``text``."""
    return len(_TOKEN_RE.findall(text))
