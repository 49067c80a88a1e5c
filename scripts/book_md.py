"""Snakemake script for rule `book_md`: assemble the sections (logic in bookgen.book)."""

from pathlib import Path

from bookgen.book import write_book_md
from bookgen.outline import book_sections

sm = snakemake  # noqa: F821  (injected by Snakemake)
sections = book_sections(sm.config)
write_book_md(sm.config, sections, [Path(p) for p in sm.input], Path(sm.output[0]))
Path(sm.log[0]).write_text(f"book.md: {len(sections)} sections assembled\n")
