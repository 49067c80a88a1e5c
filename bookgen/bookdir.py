"""Which config files a book reads: the workflow's, then its own directory's.

A book lives in a directory of its own (``snakemake --directory DIR``; the offline demo in
``demo/``): its ``output/`` and ``.bookgen/`` are there. Snakemake reads ``configfile:``
relative to that directory, so the Snakefile asks here: the workflow's ``config/config.yaml``
(found from ``workflow.basedir``) first, then the book directory's own when it has one.
``bookgen``'s commands read the same files (bookgen.cli).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from snakemake.utils import update_config

BOOK_CONFIG = Path("config") / "config.yaml"


def config_files(workflow_dir: str | Path) -> list[Path]:
    """The config files a book reads before any ``--configfile``: the workflow's own
    ``config/config.yaml`` (the demo book, and the defaults every book inherits: endpoint, prices,
    style, generation, qc), then the book directory's own ``config/config.yaml`` when it has one
    (a book anywhere, run with ``snakemake --directory DIR``; the offline demo in ``demo/``)."""
    workflow = Path(workflow_dir) / BOOK_CONFIG
    if BOOK_CONFIG.is_file() and BOOK_CONFIG.resolve() != workflow.resolve():
        return [workflow, BOOK_CONFIG]
    return [workflow]


def book_layer(workflow_dir: str | Path, command_line: dict[str, Any]) -> dict[str, Any]:
    """What the book sets itself over the workflow's config: its directory's own config file
    (``config_files``), then the command line (``--configfile``, ``--config``). A ``topic`` here
    replaces the workflow config's ``sections`` (bookgen.writing.outline.apply_topic_layering)."""
    layer: dict[str, Any] = {}
    for path in config_files(workflow_dir)[1:]:
        update_config(layer, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    update_config(layer, command_line)
    return layer
