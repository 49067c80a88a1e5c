"""Snakemake script for checkpoint `outline`: the outline from the topic (bookgen.outline)."""

import sys
from pathlib import Path

from bookgen.outline import write_outline
from bookgen.section import SectionFailed

sm = snakemake  # noqa: F821  (injected by Snakemake)
try:
    write_outline(sm.config, Path(sm.output.outline), Path(sm.output.usage), Path(sm.log[0]))
except SectionFailed as e:
    sys.exit(f"the outline could not be written: {e}")
