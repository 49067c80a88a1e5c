"""Where bookgen keeps its files, relative to the book's working directory.

``output/`` holds what the user reads (sections, usage files, reports, logs). ``.bookgen/``
holds bookkeeping that must survive Snakemake deleting a failed job's outputs: the journal of
every API call, the response cache, failure notes and the offline simulator's state. Each book
directory has its own; deleting ``.bookgen/`` starts clean.
"""

from __future__ import annotations

from pathlib import Path

OUTPUT = Path("output")
STATE = Path(".bookgen")


def section_id(position: int, count: int) -> str:
    """Zero-padded id of the section at 1-based ``position`` in a book of ``count`` sections.

    At least two digits, more when the book needs them, so files always sort in book order.
    """
    return f"{position:0{max(2, len(str(count)))}d}"


def section_md(sid: str) -> Path:
    return OUTPUT / f"section_{sid}.md"


def section_usage(sid: str) -> Path:
    return OUTPUT / "usage" / f"section_{sid}.json"


def section_log(sid: str) -> Path:
    return OUTPUT / "logs" / f"section_{sid}.log"


def section_plan(key: str, output: Path = OUTPUT) -> Path:
    """A planned section's subsections (the ``plan`` checkpoint's output), named by the
    section's key (``bookgen.config.Section.key``) so it follows the section when it moves."""
    return output / "plans" / f"section_{key}.json"


def part_dir(key: str, output: Path = OUTPUT) -> Path:
    """A planned section's parts, each written by its own job (rule ``part``)."""
    return output / "parts" / f"section_{key}"


def part_md(key: str, number: int, output: Path = OUTPUT) -> Path:
    return part_dir(key, output) / f"part_{number}.md"


def part_usage(key: str, number: int, output: Path = OUTPUT) -> Path:
    """The part's calls and what it was written for (fingerprint, plan, mode)."""
    return part_dir(key, output) / f"part_{number}.json"


def part_log(key: str, number: int, output: Path = OUTPUT) -> Path:
    return output / "logs" / "parts" / f"section_{key}.part_{number}.log"


def outline_file() -> Path:
    """The outline written from ``topic`` (editable; copied into ``sections`` it freezes)."""
    return OUTPUT / "outline.json"


def outline_usage() -> Path:
    return OUTPUT / "usage" / "outline.json"


def cost_report(ext: str, output: Path = OUTPUT) -> Path:
    return output / f"cost_report.{ext}"


def quality_report(ext: str) -> Path:
    return OUTPUT / f"quality_report.{ext}"


def book_file(fmt: str) -> Path:
    """The assembled book: ``md``, or a format converted from it (``html``, ``epub``, ``pdf``)."""
    return OUTPUT / f"book.{fmt}"


def calls_journal(key: str, root: Path = STATE) -> Path:
    """Append-only record of every API call made for a section, kept across failed attempts.

    Bookkeeping is named by the section's key (``bookgen.config.Section.key``), not its
    position, so it follows the section when sections are inserted, removed or reordered.
    """
    return root / "calls" / f"section_{key}.jsonl"


def failure_note(key: str, root: Path = STATE) -> Path:
    return root / "failures" / f"section_{key}.json"


def section_history(key: str, root: Path = STATE) -> Path:
    """Every finished text of a section with its usage document, kept because Snakemake deletes
    a job's outputs when it starts: a regeneration that then fails must not lose the last good
    text, and a section that moves to another file number is restored from here."""
    return root / "history" / f"section_{key}"


def section_lock_file(key: str, root: Path = STATE) -> Path:
    """Held while a process writes the section (``bookgen.locks``)."""
    return root / "locks" / f"section_{key}.lock"


def part_lock_file(key: str, number: int, root: Path = STATE) -> Path:
    """Held while a process writes one part of the section (parts are written in parallel)."""
    return root / "locks" / f"section_{key}.part_{number}.lock"


def state_key(path: Path) -> str:
    """The key a bookkeeping file or folder above belongs to (``section_<key>[.ext]``)."""
    return path.name.split(".", 1)[0].removeprefix("section_")


def response_cache_dir(root: Path = STATE) -> Path:
    return root / "cache"


def simulator_state_dir(root: Path = STATE) -> Path:
    return root / "simulator"


def halt_file(root: Path = STATE) -> Path:
    """Written when an error makes the whole run pointless (bad key, no balance, unknown model);
    every section checks it before each API call. Cleared when the next run starts."""
    return root / "halt.json"


def progress_counter(root: Path = STATE) -> Path:
    """How many of the book's sections are done, counted by the running ``snakemake``: set when
    it starts, raised by one (under a lock) by each section job that finishes."""
    return root / "progress.json"
