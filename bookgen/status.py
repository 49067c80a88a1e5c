"""What state the book is in, read from files only (never the API)."""

from __future__ import annotations

import json
from pathlib import Path

from bookgen import paths


def failure_summary(section_ids: list[str], state_root: Path = paths.STATE) -> str:
    """One line per section that failed and has no finished file, with the reason."""
    lines = []
    for sid in section_ids:
        note = paths.failure_note(sid, state_root)
        if not note.exists() or paths.section_md(sid).exists():
            continue
        try:
            error = json.loads(note.read_text(encoding="utf-8"))["error"]
        except (OSError, ValueError, KeyError):
            error = "see its log"
        lines.append(f"  section_{sid}: {error} (log: {paths.section_log(sid)})")
    if not lines:
        return ""
    return (
        f"bookgen: {len(lines)} section(s) failed:\n"
        + "\n".join(lines)
        + "\nThe other sections are kept. Fix the cause if needed and run the same command "
        "again: only the missing sections are generated."
    )
