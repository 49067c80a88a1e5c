"""Every finished text of a section, kept by the section's key with its usage document.

Snakemake deletes a job's outputs when it starts, so a regeneration that fails would lose the
last good text; the history keeps it. Because it is kept by the section's key
(``bookgen.config.Section.key``), not by its file number, it also lets a section that moved to
another number (sections inserted, removed or reordered; 99 to 100 sections) get its text back
at $0: a section job whose key has a kept text made for the job's fingerprint restores it
instead of calling the API. ``snakemake --dry-run`` says so beforehand (``moved_lines``).

Books written before bookkeeping was keyed have it under file numbers (``section_05``);
``adopt_bookkeeping`` moves each to the key of the section its usage file names.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.config import Section, section_fingerprint, spec_line
from bookgen.fsutil import atomic_write_json, atomic_write_text

USAGE_SUFFIX = ".usage.json"
_POSITIONAL = re.compile(r"section_\d+")


@dataclass(frozen=True)
class Kept:
    """One finished text in the history and the usage document it was written with."""

    text_path: Path
    usage_path: Path
    usage: dict[str, Any]

    @property
    def was(self) -> str:
        """The file number (section id) the text last had."""
        return str(self.usage.get("section", "?"))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _usage_path(text_path: Path) -> Path:
    return text_path.with_suffix(USAGE_SUFFIX)


def keep(key: str, text: str, usage: dict[str, Any], state_root: Path = paths.STATE) -> Path:
    """Keep a finished text and its usage document (the usage first: a text without one is
    never restored). Returns the text's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    text_path = paths.section_history(key, state_root) / f"{stamp}.md"
    atomic_write_json(_usage_path(text_path), usage)
    atomic_write_text(text_path, text)
    return text_path


def remember(kept: Kept, usage: dict[str, Any]) -> None:
    """Record where a restored text now lives (its new usage document)."""
    atomic_write_json(kept.usage_path, usage)


def texts(key: str, state_root: Path = paths.STATE) -> list[Path]:
    """The section's kept texts, oldest first."""
    return sorted(paths.section_history(key, state_root).glob("*.md"))


def find(key: str, fingerprint: dict[str, str], state_root: Path = paths.STATE) -> Kept | None:
    """The newest kept text of ``key`` written for exactly this fingerprint, if any."""
    for text_path in reversed(texts(key, state_root)):
        usage = _read_json(_usage_path(text_path))
        if usage is not None and usage.get("fingerprint") == fingerprint:
            return Kept(text_path, _usage_path(text_path), usage)
    return None


def writes_afresh(key: str, state_root: Path = paths.STATE) -> bool:
    """The section's last attempt ended with a reply that was rejected (failed quality control,
    an invalid plan, an empty reply) or an unexpected error: its failure note says ``fresh``
    (notes from before that field: quality verdicts). It is written afresh, neither replayed
    from the response cache nor restored from here."""
    note = _read_json(paths.failure_note(key, state_root))
    return note is not None and (bool(note.get("fresh")) or "qc" in note)


def restorable(
    config: dict[str, Any],
    section: Section,
    fingerprint: dict[str, str],
    state_root: Path = paths.STATE,
) -> Kept | None:
    """The kept text a job for ``section`` restores instead of calling the API, or None.

    None with ``response_cache: false`` (the user asked for a fresh take) and after a failed
    quality control."""
    if not config["response_cache"] or writes_afresh(section.key, state_root):
        return None
    return find(section.key, fingerprint, state_root)


def in_place(section: Section, fingerprint: dict[str, str]) -> bool:
    """``output/section_NN.md`` holds this section's current text: the file is there and its
    usage file was written for ``fingerprint``. False for another book's section at that file
    number (two books written in one folder share ``output/``) and for an outdated text."""
    current = _read_json(paths.section_usage(section.id))
    return (
        current is not None
        and current.get("fingerprint") == fingerprint
        and paths.section_md(section.id).exists()
    )


def moved_lines(
    config: dict[str, Any],
    sections: list[Section],
    shared: dict[str, str],
    state_root: Path = paths.STATE,
) -> list[str]:
    """For a dry run: one line per section whose job will restore its text instead of calling
    the API (it moved to another file number, or its file was deleted)."""
    lines = []
    for s in sections:
        if not paths.section_history(s.key, state_root).is_dir():
            continue  # the common case in a new book: one stat, nothing read
        fingerprint = section_fingerprint(shared, s)
        if in_place(s, fingerprint):
            continue  # its file is there and current: nothing to do
        kept = restorable(config, s, fingerprint, state_root)
        if kept is None:
            continue
        where = (
            f"moved section_{kept.was} → section_{s.id}"
            if kept.was != s.id
            else f"(section_{s.id}) is missing"
        )
        lines.append(
            f"bookgen: {s.title!r} {where}: its text is reused from "
            f"{paths.section_history(s.key, state_root).parent}, no API call"
        )
    return lines


def last_text_at(sid: str, state_root: Path = paths.STATE) -> Path | None:
    """The newest kept text that was last written as section ``sid`` (any key): what a failed
    rebuild of that file number had before."""
    best: tuple[str, Path] | None = None
    root = paths.section_history("x", state_root).parent
    for usage_path in root.glob(f"*/*{USAGE_SUFFIX}"):
        usage = _read_json(usage_path)
        text_path = usage_path.with_name(usage_path.name.removesuffix(USAGE_SUFFIX) + ".md")
        if usage is None or usage.get("section") != sid or not text_path.exists():
            continue
        if best is None or text_path.name > best[0]:
            best = (text_path.name, text_path)
    return best[1] if best else None


def adopt_bookkeeping(sections: list[Section], state_root: Path = paths.STATE) -> list[str]:
    """Give sections the bookkeeping that is theirs under another name; one line per section.

    Books written before bookkeeping was keyed have it under file numbers (``section_05``): it
    moves to the key of the section its usage file describes. A section given an ``id:`` (its
    entry otherwise unchanged) takes over what its entry's key (``spec-<digest>``) had.
    Whatever matches no current section keeps its name: its calls still count in the budget
    and the cost report (as earlier versions), and the response cache still replays them.
    """
    lines = []
    for sid in _positional_numbers(state_root):
        usage = _read_json(paths.section_usage(sid))
        md = paths.section_md(sid)
        spec = (usage or {}).get("fingerprint", {}).get("spec")
        section = next((s for s in sections if spec_line(s) == spec), None)
        if usage is None or section is None or not md.exists():
            continue
        _move_all(sid, section.key, state_root)
        _keep_usage(section.key, md.read_text(encoding="utf-8"), usage, state_root)
        lines.append(
            f"bookgen: the bookkeeping of section_{sid} ({section.title!r}) now follows the "
            f"section: {paths.section_history(section.key, state_root)}"
        )
    for section in sections:
        old = section.entry_key()
        if old == section.key or _has_bookkeeping(section.key, state_root):
            continue
        if _has_bookkeeping(old, state_root):
            _move_all(old, section.key, state_root)
            lines.append(
                f"bookgen: {section.title!r} now has an id: its bookkeeping moved to "
                f"{paths.section_history(section.key, state_root)}"
            )
    return lines


def _positional_numbers(state_root: Path) -> list[str]:
    """File numbers that still name bookkeeping (written by bookgen before keys)."""
    names = {
        p.name.split(".", 1)[0]
        for folder in ("calls", "failures", "history")
        for p in (state_root / folder).glob("section_*")
    }
    return sorted(n.removeprefix("section_") for n in names if _POSITIONAL.fullmatch(n))


def _has_bookkeeping(key: str, state_root: Path) -> bool:
    return paths.calls_journal(key, state_root).exists() or bool(texts(key, state_root))


def _move_all(old_key: str, new_key: str, state_root: Path) -> None:
    """Move journal, failure note and kept texts from ``old_key`` to ``new_key``."""
    _move(paths.calls_journal(old_key, state_root), paths.calls_journal(new_key, state_root))
    _move(paths.failure_note(old_key, state_root), paths.failure_note(new_key, state_root))
    old = paths.section_history(old_key, state_root)
    new = paths.section_history(new_key, state_root)
    if old.is_dir():
        new.mkdir(parents=True, exist_ok=True)
        for p in old.iterdir():
            _move(p, new / p.name)
        if not any(old.iterdir()):
            old.rmdir()


def _move(old: Path, new: Path) -> None:
    """Rename ``old`` to ``new`` unless ``new`` already exists (then both are kept)."""
    if old.exists() and not new.exists():
        new.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)


def _keep_usage(key: str, text: str, usage: dict[str, Any], state_root: Path) -> None:
    """Give the kept copy of ``text`` its usage document (older versions kept texts only)."""
    for text_path in reversed(texts(key, state_root)):
        if text_path.read_text(encoding="utf-8") == text:
            if not _usage_path(text_path).exists():
                atomic_write_json(_usage_path(text_path), usage)
            return
    keep(key, text, usage, state_root)
