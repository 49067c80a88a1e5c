"""Prompt construction: the shared book context first, the section-specific task last.

Every section's system message is byte-identical (book, audience, style, whole outline), so a
provider with prefix caching bills it at the cache-hit price for all sections but the first.
"""

from __future__ import annotations

from string import Template
from typing import Any

from bookgen.config import Section

CONTINUE_PROMPT = (
    "Your reply was cut off by the length limit. Continue exactly where it stopped, "
    "without repeating anything and without any remark; finish the section."
)


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


def continuation_messages(base: list[dict[str, str]], text_so_far: str) -> list[dict[str, str]]:
    """Ask the model to continue a reply cut off by the length limit."""
    return [
        *base,
        {"role": "assistant", "content": text_so_far},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


_PLACEHOLDERS = {
    "system": ("book_title", "audience", "style", "language", "section_count", "outline"),
    "section": ("section_number", "section_count", "title", "key_points", "words", "neighbours"),
}


def check_templates(config: dict[str, Any]) -> None:
    """Raise ConfigError when a prompt template uses a placeholder bookgen does not fill."""
    from bookgen.config import ConfigError, template_text

    for name, fields in _PLACEHOLDERS.items():
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
