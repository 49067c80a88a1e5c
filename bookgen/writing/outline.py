"""A book from a topic: the outline step, and the section table read from its output.

With ``topic`` set and ``sections`` empty, the model is asked for the table of contents as JSON
(``response_format: json_object``), validated against ``schemas/outline.schema.yaml`` (the same
section fields as the config), asked again with the error when it does not validate, and written
to ``output/outline.json``. The sections then come from that file, which the user may edit:
each section's fingerprint holds only its own entry, so editing one entry regenerates only that
section. Copied into the config's ``sections``, the outline is frozen.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from bookgen import paths
from bookgen.config import (
    ConfigError,
    Section,
    _digest,
    book_fingerprint,
    duplicate_id,
    duplicate_title,
    sections_from_config,
    template_text,
)
from bookgen.fsutil import atomic_write_json
from bookgen.locks import section_lock
from bookgen.money.usage import validate
from bookgen.writing.prompts import outline_messages
from bookgen.writing.section import (
    SectionFailed,
    SectionJob,
    SectionWriter,
    failures_noted,
)
from bookgen.writing.structured import InvalidReply, json_path, request_json

OUTLINE_ID = "outline"


def topic_mode(config: dict[str, Any]) -> bool:
    """The sections come from an outline written from ``topic``."""
    return not config["sections"] and bool(config.get("topic"))


def apply_topic_layering(config: dict[str, Any], command_line: dict[str, Any]) -> None:
    """A ``topic`` given with ``--configfile``/``--config`` without ``sections`` replaces the
    sections of the workflow's config/config.yaml (the demo book's), and without a
    ``book.title`` the topic is the title; everything else still comes from config.yaml."""
    if not command_line.get("topic"):
        return
    if "sections" not in command_line:
        config["sections"] = []
    if "title" not in (command_line.get("book") or {}):
        config["book"]["title"] = command_line["topic"]


def duplicate_message(entries: list[dict[str, Any]]) -> str | None:
    """What is wrong when two entries share a title or an ``id``, else None."""
    dup = duplicate_title(entries)
    if dup is not None:
        i, j = dup
        return (
            f"sections[{i}].title repeats the title of sections[{j}] ({entries[i]['title']!r}); "
            "every section needs its own title"
        )
    dup = duplicate_id(entries)
    if dup is not None:
        i, j = dup
        return (
            f"sections[{i}].id repeats the id of sections[{j}] ({entries[i]['id']!r}); every "
            "section needs its own id (or none)"
        )
    return None


def outline_check(config: dict[str, Any]):
    """The rules the schema cannot state for the model's outline: the count, distinct titles."""

    def check(data: dict[str, Any]) -> None:
        want, got = int(config["section_count"]), len(data["sections"])
        if got != want:
            raise InvalidReply(f"it has {got} sections, but exactly {want} were asked for")
        problem = duplicate_message(data["sections"])
        if problem:
            raise InvalidReply(problem)

    return check


def outline_fingerprint(config: dict[str, Any]) -> dict[str, str]:
    """What determines the outline (its rule's params; a change rewrites the outline)."""
    shared = book_fingerprint(config)
    return {
        "topic": f"topic: {config.get('topic')} | {config['section_count']} sections of about "
        f"{config['section_words']} words",
        "book": shared["book"],
        "model": shared["model"],
        "generation": shared["generation"],
        "prompts": f"outline template #{_digest(template_text(config, 'outline'))}",
    }


def normalise_outline(config: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The outline file: the topic and each section's config fields, nothing else."""
    return {
        "topic": config["topic"],
        "sections": [
            {
                "title": " ".join(s["title"].split()),
                "key_points": [" ".join(k.split()) for k in s["key_points"]],
                "words": s["words"],
            }
            for s in data["sections"]
        ],
    }


def write_outline(
    config: dict[str, Any],
    out_json: Path,
    out_usage: Path,
    log: Path,
    state_root: Path = paths.STATE,
) -> dict[str, Any]:
    """Ask the model for the outline, then write it and its usage file (atomically)."""
    if not config.get("topic"):
        raise SectionFailed("there is no `topic` in the config to write an outline from")
    t0 = time.monotonic()
    unit = Section(
        id=OUTLINE_ID,
        number=0,
        title=f"Outline: {config['topic']}",
        key_points=(),
        words=int(config["section_words"]) * int(config["section_count"]),
        key=OUTLINE_ID,
    )
    job = SectionJob(
        config=config,
        sections=[],
        section=unit,
        fingerprint=outline_fingerprint(config),
        out_md=out_json,
        out_usage=out_usage,
        log=log,
        state_root=state_root,
    )
    writer = SectionWriter(job)
    note = paths.failure_note(OUTLINE_ID, state_root)
    try:
        with failures_noted(writer, note), section_lock(OUTLINE_ID, state_root):
            writer.log.line(f"writing the outline: {config['section_count']} sections")
            messages = outline_messages(template_text(config, "outline"), config)
            data = request_json(
                writer, messages, "outline.schema.yaml", "outline", outline_check(config)
            )
            outline = normalise_outline(config, data)
            doc = writer.usage_document("", time.monotonic() - t0)
            atomic_write_json(out_usage, doc)
            atomic_write_json(out_json, outline)
            note.unlink(missing_ok=True)
        writer.log.line(f"done: {len(outline['sections'])} sections in {out_json}")
        return outline
    finally:
        writer.log.close()


@cache
def _table(path: str, mtime_ns: int, size: int) -> tuple[list[Section], dict[str, Section]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"outline error in {path}: {e}. Fix the file, or delete it to have the outline "
            "written again."
        ) from None
    try:
        validate(data, "outline.schema.yaml")
    except jsonschema.ValidationError as e:
        raise ConfigError(
            f"outline error in {path} at {json_path(e.absolute_path)}: {e.message}. Fix the "
            "file, or delete it to have the outline written again."
        ) from None
    problem = duplicate_message(data["sections"])
    if problem:
        raise ConfigError(f"outline error in {path}: {problem}.")
    sections = sections_from_config({"sections": data["sections"]})
    return sections, {s.id: s for s in sections}


def _outline_table(path: Path | None) -> tuple[list[Section], dict[str, Section]]:
    """The outline's sections and an index by id; read once per version of the file."""
    path = path or paths.outline_file()
    st = path.stat()
    return _table(str(path), st.st_mtime_ns, st.st_size)


def book_sections(config: dict[str, Any], outline: Path | None = None) -> list[Section]:
    """The section table: the config's ``sections``, or in topic mode the outline's (validated;
    ConfigError names the field when a hand-edited outline is wrong)."""
    if not topic_mode(config):
        return sections_from_config(config)
    return list(_outline_table(outline)[0])


def section_index(config: dict[str, Any], outline: Path | None = None) -> dict[str, Section]:
    """The section table by id (in topic mode cached while the outline file is unchanged)."""
    if not topic_mode(config):
        return {s.id: s for s in sections_from_config(config)}
    return _outline_table(outline)[1]


def cost_report_inputs(config: dict[str, Any], sections: list[Section]) -> list[Path]:
    """The usage files the cost report merges, in book order: the outline's in topic mode, then
    every section's. Another book's outline in the same folder, or this book's after it was
    copied into `sections`, is no row of this book: its calls count in the report's row of
    calls no current section lists (bookgen.money.report.earlier_calls), so no money leaves the
    total."""
    head = [paths.outline_usage()] if topic_mode(config) else []
    return head + [paths.section_usage(s.id) for s in sections]


def outline_failure(state_root: Path = paths.STATE) -> str:
    """Why the outline step failed, when it did and no outline exists; else ""."""
    note = paths.failure_note(OUTLINE_ID, state_root)
    if not note.exists() or paths.outline_file().exists():
        return ""
    try:
        error = json.loads(note.read_text(encoding="utf-8"))["error"]
    except (OSError, ValueError, KeyError):
        error = "see output/logs/outline.log"
    return f"bookgen: the outline could not be written: {error} (log: output/logs/outline.log)"
