"""Model text made inert: the pandoc AST of the book's sections cleaned of everything that could
run in the reader's browser or load something from elsewhere.

The sections are parsed as Markdown without raw HTML, raw blocks or metadata blocks
(``bookgen.formats.book.SECTION_FORMAT``), so ``<script>`` or ``the <body> element`` are text. What
Markdown itself can still express is cleaned here, in pandoc's JSON AST: attributes other than
an id and classes (``{onclick=…}``, ``{style=…}``) are dropped, a link keeps its target only
for http(s), mailto and in-book anchors, an image that is not inline ``data:`` becomes its
description, and raw content other than TeX that got through is shown as code.
"""

from __future__ import annotations

from typing import Any

LINK_PREFIXES = ("http://", "https://", "mailto:", "#")
IMAGE_PREFIXES = ("data:",)
# Raw TeX is safe in HTML and EPUB: pandoc renders math environments as MathML, drops the rest.
TEX_FORMATS = ("tex", "latex")


def _is_attr(node: Any) -> bool:
    """Whether ``node`` is a pandoc Attr: ``[id, [classes], [[key, value], …]]``."""
    return (
        isinstance(node, list)
        and len(node) == 3
        and isinstance(node[0], str)
        and isinstance(node[1], list)
        and all(isinstance(c, str) for c in node[1])
        and isinstance(node[2], list)
        and all(
            isinstance(kv, list) and len(kv) == 2 and all(isinstance(x, str) for x in kv)
            for kv in node[2]
        )
    )


def _allowed(url: str, prefixes: tuple[str, ...]) -> bool:
    return url.strip().lower().startswith(prefixes)


def _element(node: dict[str, Any]) -> dict[str, Any]:
    kind, content = node.get("t"), node.get("c")
    if kind in ("Link", "Image"):
        attr, inlines, (url, _title) = content
        if not _allowed(url, LINK_PREFIXES if kind == "Link" else IMAGE_PREFIXES):
            return {"t": "Span", "c": sanitise([attr, inlines])}
    elif kind in ("RawInline", "RawBlock") and content[0] not in TEX_FORMATS:
        code = "Code" if kind == "RawInline" else "CodeBlock"
        return {"t": code, "c": [["", [], []], content[1]]}
    return {k: sanitise(v) for k, v in node.items()}


def sanitise(node: Any) -> Any:
    """``node`` (a pandoc JSON AST, or any part of it) with nothing live left in it."""
    if isinstance(node, dict):
        return _element(node)
    if _is_attr(node):
        return [node[0], list(node[1]), []]
    if isinstance(node, list):
        return [sanitise(child) for child in node]
    return node
