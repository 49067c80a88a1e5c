"""Snakemake script for rule `book_format`: book.md to HTML, EPUB or PDF (bookgen.book)."""

import sys
from pathlib import Path

from bookgen.book import BookFormatError, write_format

sm = snakemake  # noqa: F821  (injected by Snakemake)
fmt = sm.wildcards.fmt
try:
    write_format(Path(sm.input[0]), fmt, Path(sm.output[0]))
except BookFormatError as e:
    sys.exit(f"book.{fmt} failed: {e}")
size = Path(sm.output[0]).stat().st_size
Path(sm.log[0]).write_text(f"book.{fmt}: {size:,} bytes\n")
