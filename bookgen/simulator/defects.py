"""Bad text on purpose: the defects a model's reply can have, injected per section by rule.

One kind is no defect: ``list_ending`` ends a complete reply on a list item without a full
stop, which quality control must not take for a cut text.

A defect rule (``defects:`` in the simulator config) names a ``kind`` and selects requests like
a fault rule (``section``/``sections``, ``rate``, ``times``). Prose kinds apply to the first
reply of a writing request (not to continuations); JSON kinds to outline and plan replies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from bookgen.simulator import content
from bookgen.simulator.rules import SelectorRule

PROSE_KINDS = frozenset(
    {
        "truncated",
        "too_short",
        "missing_subsection",
        "meta_text",
        "prompt_echo",
        "unbalanced_fence",
        "unbalanced_math",
        "duplicate",
        "list_ending",
        "raised_headings",
        "repeats_neighbour",
    }
)
JSON_KINDS = frozenset({"invalid_json", "wrong_json"})
DEFECT_KINDS = PROSE_KINDS | JSON_KINDS

CHATTER_BEFORE = "Certainly! Here is the section you asked for."
CHATTER_AFTER = "I hope this helps! Let me know if you would like any changes."


@dataclass(frozen=True, kw_only=True)
class DefectRule(SelectorRule):
    """One defect rule; see ``simulator.schema.yaml`` for the meaning of each field."""

    KINDS: ClassVar[frozenset[str]] = DEFECT_KINDS
    LABEL: ClassVar[str] = "defect"

    fraction: float | None = None
    subsection: int | None = None
    of: int | None = None


def applies(
    rule: DefectRule, json_mode: bool, first_reply: bool, messages: list[dict[str, Any]] = ()
) -> bool:
    """Whether ``rule`` can affect a request of this kind (``repeats_neighbour``: only a part
    of a section written on its own that has a part before it)."""
    if not first_reply:
        return False
    if rule.kind == "repeats_neighbour":
        return not json_mode and content.neighbour_before(list(messages)) is not None
    return rule.kind in (JSON_KINDS if json_mode else PROSE_KINDS)


def _pick(n: int, rule: DefectRule) -> int:
    """0-based index of the subsection a rule targets (default: the middle one)."""
    if rule.subsection is not None:
        return min(max(rule.subsection, 1), n) - 1
    return (n - 1) // 2


def _cut(text: str, fraction: float) -> str:
    """``text`` cut mid-sentence near ``fraction`` of its length (a prefix of it)."""
    at = max(1, int(len(text) * fraction))
    for m in re.finditer(r"[A-Za-z]\s", text[at:]):
        end = at + m.start() + 1
        return text[:end]
    return text[: len(text) // 2].rstrip()


def _subsection_spans(text: str) -> list[tuple[int, int]]:
    """Line spans of the ``###`` subsections of ``text``."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("### ")]
    return list(zip(starts, [*starts[1:], len(lines)], strict=True))


def _inject(text: str, rule: DefectRule, block: str) -> str:
    """Put ``block`` after the heading and first paragraph of the targeted subsection."""
    lines = text.split("\n")
    spans = _subsection_spans(text)
    if not spans:
        return f"{block}\n\n{text}"
    start, _ = spans[_pick(len(spans), rule)]
    lines[start + 3 : start + 3] = [block, ""]
    return "\n".join(lines)


def prose(
    rule: DefectRule,
    task: content.Task,
    brief: content.Brief | None,
    messages: list[dict[str, Any]],
    *,
    seed: int,
    model: str,
    words_factor: float,
    default_words: int,
) -> str:
    """The reply to a writing request for ``task`` (or its ``brief``), with the defect."""

    def write(t: content.Task, b: content.Brief | None, factor: float = words_factor) -> str:
        if b is not None:
            return content.brief_text(t, b, seed=seed, model=model, words_factor=factor)
        return content.section_text(
            t, seed=seed, model=model, words_factor=factor, default_words=default_words
        )

    kind = rule.kind
    if kind == "too_short":
        return write(task, brief, words_factor * (rule.fraction or 0.3))
    if kind == "missing_subsection":
        if brief is not None and len(brief.items) > 1:
            items = list(brief.items)
            del items[_pick(len(items), rule)]
            return write(task, replace(brief, items=items))
        points = list(task.key_points)
        if len(points) > 1:
            del points[_pick(len(points), rule)]
        return write(replace(task, key_points=points), brief)
    if kind == "duplicate":
        system = " ".join(
            content.message_text(m.get("content")) for m in messages if m.get("role") == "system"
        )
        other = content.parse_outline(system).get(rule.of or 1)
        if other is None:
            return write(task, brief)
        copied = write(replace(other, total=task.total), None)
        return copied.replace(f"## {other.title}", f"## {task.title}", 1)
    text = write(task, brief)
    if kind == "repeats_neighbour":  # the neighbour's last subsection, again, in other words
        borrowed = content.neighbour_before(messages)
        if borrowed is None or brief is None:
            return text
        copied = write(task, content.Brief([borrowed], with_title=False)).split("\n", 1)[-1]
        lines = text.splitlines()
        first = next((i for i, line in enumerate(lines) if line.startswith("#")), 0)
        lines[first + 1 : first + 1] = ["", copied.strip()]
        return "\n".join(lines) + "\n"
    if kind == "truncated":
        return _cut(text, rule.fraction or 0.6)
    if kind == "meta_text":
        return f"{CHATTER_BEFORE}\n\n{text.rstrip()}\n\n{CHATTER_AFTER}\n"
    if kind == "prompt_echo":
        echo = f"# Your task: section {task.section} of {task.total}\nKey points to cover:"
        return f"{echo}\n\n{text}"
    if kind == "unbalanced_fence":
        return _inject(text, rule, "```python\nresult = measure(sample)\nprint(result)")
    if kind == "unbalanced_math":
        return _inject(text, rule, "$$\nE = m c^2")
    if kind == "list_ending":  # no defect: complete text whose last line has no full stop
        terms = "\n".join(f"- {point}" for point in task.key_points)
        return f"{text.rstrip()}\n\nKey terms of this section:\n\n{terms}\n"
    if kind == "raised_headings":  # every heading one level too high (### becomes ##)
        return re.sub(r"(?m)^#(#+) ", r"\1 ", text)
    raise ValueError(f"{kind} is not a prose defect")


def json_text(rule: DefectRule, text: str) -> str:
    """A JSON reply spoiled: cut off (``invalid_json``) or with its list under a wrong key."""
    if rule.kind == "invalid_json":
        return text[: max(1, len(text) // 2)]
    data = json.loads(text)
    for key in ("subsections", "sections"):
        if key in data:
            data["contents"] = data.pop(key)
    return json.dumps(data, indent=2, ensure_ascii=False)
