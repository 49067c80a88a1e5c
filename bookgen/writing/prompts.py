"""Prompt construction: the shared book context first, the section-specific task last.

Every section's system message is byte-identical (book, audience, style, whole outline), so a
provider with prefix caching bills it at the cache-hit price for all sections but the first.
"""

from __future__ import annotations

from string import Template
from typing import Any

from bookgen.config import ConfigError, Section, template_text

CONTINUE_PROMPT = (
    "Your reply was cut off by the length limit. Continue exactly where it stopped, "
    "without repeating anything and without any remark; finish the section."
)
# Sent after a JSON reply that did not parse or validate (no "continue" in it: a retry asks for
# the whole object again).
JSON_RETRY_PROMPT = (
    "Your reply could not be used: $error. Reply again with the whole JSON object only, "
    "corrected, and no other text."
)
PLAN_REQUEST = """# Plan this section first
Before writing, plan section $section_number as subsections that together cover every key point
in a sensible order, each with its share of the $words words. Reply with a JSON object only, no
other text, in this shape:
{"subsections": [{"heading": "...", "covers": "...", "words": 400}]}
- `heading`: the subsection's heading text, without '#' and without a number
- `covers`: one sentence on what the subsection explains
- `words`: its target length; the subsections add up to about $words words"""
BRIEF_MARKER = "Subsections to write now, in this order:"
PART_FIRST = """# Write $part
Start with the section title as a level-2 heading (`## $title`) and a short introduction, then
write the subsections below, each under its level-3 heading exactly as given, and stop after the
last one."""
PART_NEXT = """# Write $part
The text above is what this section has so far. Write the next subsections below, each under its
level-3 heading exactly as given, without repeating anything above, and stop after the last one."""
PART_ALONE = """# Write $part
The other parts of this section are written at the same time as this one, each from the plan
above. Write only the subsections below, each under its level-3 heading exactly as given, and
stop after the last one: no section title, no introduction to the section, no closing summary
unless one of the subsections below is one."""
NEIGHBOURS_MARKER = "Written separately from the same plan (do not explain what they cover):"
REPAIRS = {
    "missing": """# Repair: write a missing subsection
The section above lacks the subsection below. Write only that subsection, starting with its
level-3 heading exactly as given; it will be inserted $where.""",
    "expand": """# Repair: expand a subsection that is too short
The subsection "$heading" above has only $have words. Rewrite it in full at about $words words,
starting with its level-3 heading exactly as given, and reply with that subsection only.""",
    "section": """# Repair: write the section again
The text above does not cover this section's own key points ($missed). Write the whole section
again: start with the section title as a level-2 heading (`## $title`) and a short introduction,
then write the subsections below, each under its level-3 heading exactly as given.""",
    "repeat": """# Repair: a part that repeats its neighbour
The subsections below repeat what the text before them already says ($repeated). Rewrite them
in full, each under its level-3 heading exactly as given, saying only what is new in them and
referring back to the earlier text instead of explaining it again; reply with these subsections
only.""",
    "markdown": """# Repair: fix broken Markdown
The subsection "$heading" above has $problem. Rewrite it in full with every code block and math
expression closed, starting with its level-3 heading exactly as given, and reply with that
subsection only.""",
}


def render_outline(sections: list[Section]) -> str:
    """The whole book's outline as a numbered Markdown list with each section's key points."""
    lines = []
    for s in sections:
        lines.append(f"{s.number}. {s.title} (about {s.words} words)")
        lines.extend(f"   - {point}" for point in s.key_points)
    return "\n".join(lines)


def system_message(template: str, book: dict[str, Any], sections: list[Section]) -> str:
    return Template(template).substitute(
        book_title=book["title"],
        audience=book["audience"].strip(),
        style=book["style"].strip(),
        language=book["language"],
        section_count=len(sections),
        outline=render_outline(sections),
    )


def section_message(template: str, section: Section, sections: list[Section]) -> str:
    before = sections[section.number - 2] if section.number > 1 else None
    after = sections[section.number] if section.number < len(sections) else None
    neighbours = []
    if before:
        neighbours.append(f'It follows section {before.number}, "{before.title}".')
    else:
        neighbours.append("It opens the book.")
    if after:
        neighbours.append(f'It is followed by section {after.number}, "{after.title}".')
    else:
        neighbours.append("It closes the book.")
    return Template(template).substitute(
        section_number=section.number,
        section_count=len(sections),
        title=section.title,
        key_points="\n".join(f"- {p}" for p in section.key_points),
        words=section.words,
        neighbours=" ".join(neighbours),
    )


def section_messages(
    system_template: str,
    section_template: str,
    book: dict[str, Any],
    sections: list[Section],
    section: Section,
) -> list[dict[str, str]]:
    """The chat messages that ask for ``section``: shared system prefix, then the task."""
    return [
        {"role": "system", "content": system_message(system_template, book, sections)},
        {"role": "user", "content": section_message(section_template, section, sections)},
    ]


def assistant_turn(text: str) -> dict[str, str]:
    """The model's earlier reply as a message; never empty (providers reject an empty assistant
    turn, and a request built on nothing would only repeat the one before it)."""
    if not text.strip():
        raise ValueError("bookgen built a request with an empty assistant turn")
    return {"role": "assistant", "content": text}


def continuation_messages(base: list[dict[str, str]], text_so_far: str) -> list[dict[str, str]]:
    """Ask the model to continue a reply cut off by the length limit."""
    return [
        *base,
        assistant_turn(text_so_far),
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


def json_retry_messages(base: list[dict[str, str]], reply: str, error: str) -> list[dict[str, str]]:
    """Ask again for a JSON reply that did not parse or validate, naming what was wrong."""
    return [
        *base,
        assistant_turn(reply),
        {"role": "user", "content": Template(JSON_RETRY_PROMPT).substitute(error=error)},
    ]


def plan_messages(base: list[dict[str, str]], section: Section) -> list[dict[str, str]]:
    """The plan request: the section's own messages (shared book context first), then the ask."""
    ask = Template(PLAN_REQUEST).substitute(section_number=section.number, words=section.words)
    return [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n{ask}"}]


def subsection_lines(subsections: list[dict[str, Any]]) -> str:
    """Planned subsections as ``### heading (about N words): covers`` lines."""
    return "\n".join(
        f"### {s['heading']} (about {s['words']} words): {s['covers']}" for s in subsections
    )


def brief(instructions: str, subsections: list[dict[str, Any]]) -> str:
    """An instruction followed by the subsections to write now (the form every part and
    repair request shares)."""
    return f"{instructions}\n\n{BRIEF_MARKER}\n{subsection_lines(subsections)}"


def planned_task(base: list[dict[str, str]], plan: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The section's messages with its plan appended to the task (the prefix of every call that
    writes or repairs a planned section)."""
    block = f"# Plan of this section\n{subsection_lines(plan)}"
    return [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n{block}"}]


def part_messages(
    base: list[dict[str, str]],
    title: str,
    written: str,
    number: int,
    count: int,
    subsections: list[dict[str, Any]],
) -> list[dict[str, str]]:
    """Part ``number`` of ``count`` of a planned section: ``base`` (book context, task, plan),
    what the section has so far, then the subsections to write now."""
    part = "the section" if count == 1 else f"part {number} of {count}"
    if number == 1:
        ask = brief(Template(PART_FIRST).substitute(part=part, title=title), subsections)
        return [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n{ask}"}]
    ask = brief(Template(PART_NEXT).substitute(part=part), subsections)
    return [*base, assistant_turn(written), {"role": "user", "content": ask}]


def neighbour_lines(groups: list[list[dict[str, Any]]], number: int) -> str:
    """What the parts next to part ``number`` (1-based) of ``groups`` cover."""
    lines = [NEIGHBOURS_MARKER]
    for other, where in ((number - 1, "before"), (number + 1, "after")):
        if 1 <= other <= len(groups):
            lines.append(f"Part {other} of {len(groups)} ({where} this one):")
            lines.append(subsection_lines(groups[other - 1]))
    return "\n".join(lines)


def parallel_part_messages(
    base: list[dict[str, str]], title: str, number: int, groups: list[list[dict[str, Any]]]
) -> list[dict[str, str]]:
    """Part ``number`` of a planned section written on its own, at the same time as the others:
    ``base`` (book context, task, the whole plan) first, as in every call, then its own brief
    and what its neighbours cover. Part 1 opens the section (title and introduction)."""
    count = len(groups)
    part = "the section" if count == 1 else f"part {number} of {count}"
    if number == 1:
        ask = Template(PART_FIRST).substitute(part=part, title=title)
    else:
        ask = Template(PART_ALONE).substitute(part=part)
    ask = brief(ask, groups[number - 1])
    if count > 1:
        ask = f"{ask}\n\n{neighbour_lines(groups, number)}"
    return [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n{ask}"}]


def repair_messages(
    base: list[dict[str, str]],
    text: str,
    kind: str,
    subsections: list[dict[str, Any]],
    **fields: Any,
) -> list[dict[str, str]]:
    """Ask for subsections again after the text (``kind``: missing, expand, markdown, or
    section for the whole section)."""
    ask = brief(Template(REPAIRS[kind]).substitute(fields), subsections)
    return [*base, assistant_turn(text), {"role": "user", "content": ask}]


def outline_messages(template: str, config: dict[str, Any]) -> list[dict[str, str]]:
    """The outline request for topic mode: book context, topic and shape, as one message."""
    book = config["book"]
    text = Template(template).substitute(
        book_title=book["title"],
        audience=book["audience"].strip(),
        style=book["style"].strip(),
        language=book["language"],
        topic=config["topic"].strip(),
        section_count=config["section_count"],
        section_words=config["section_words"],
    )
    return [{"role": "user", "content": text}]


def fixed_prompt_texts() -> list[str]:
    """bookgen's own instruction texts (a reply that repeats one echoes the prompt)."""
    return [
        CONTINUE_PROMPT,
        JSON_RETRY_PROMPT,
        PLAN_REQUEST,
        PART_FIRST,
        PART_NEXT,
        PART_ALONE,
        NEIGHBOURS_MARKER,
        *REPAIRS.values(),
    ]


_PLACEHOLDERS = {
    "system": ("book_title", "audience", "style", "language", "section_count", "outline"),
    "section": ("section_number", "section_count", "title", "key_points", "words", "neighbours"),
    "outline": (
        "book_title",
        "audience",
        "style",
        "language",
        "topic",
        "section_count",
        "section_words",
    ),
}


def check_templates(config: dict[str, Any]) -> None:
    """Raise ConfigError when a prompt template uses a placeholder bookgen does not fill."""
    for name, fields in _PLACEHOLDERS.items():
        if name == "outline" and not config.get("topic"):
            continue
        try:
            Template(template_text(config, name)).substitute(dict.fromkeys(fields, "x"))
        except KeyError as e:
            raise ConfigError(
                f"config error in prompts.{name}: the template {config['prompts'][name]} uses "
                f"${e.args[0]}, which bookgen does not fill. Available: "
                + ", ".join(f"${f}" for f in fields)
                + " (write $$ for a literal dollar sign)."
            ) from None
        except ValueError as e:
            raise ConfigError(
                f"config error in prompts.{name}: {e} in {config['prompts'][name]} "
                "(write $$ for a literal dollar sign)."
            ) from None
