# The section table and the helpers the rules share. Logic lives in the bookgen package.

import inspect
import sys

from bookgen import paths
from bookgen.budget import check_budget_config, exhausted_message
from bookgen.config import (
    ConfigError,
    book_fingerprint,
    check_config,
    missing_api_key_message,
    resolve_prompt_paths,
    section_fingerprint,
    sections_from_config,
)
from bookgen.locks import LockBusy, hold_run_lock
from bookgen.prompts import check_templates
from bookgen.simulator import validate_config as validate_simulator_config
from bookgen.status import failure_summary

try:
    resolve_prompt_paths(config, workflow.basedir)
    check_config(config)
    check_templates(config)
    check_budget_config(config)
    validate_simulator_config(config["simulator"])
except (ConfigError, ValueError) as err:
    sys.exit(str(err))

SECTIONS = sections_from_config(config)
SECTION_BY_ID = {s.id: s for s in SECTIONS}
BOOK_FINGERPRINT = book_fingerprint(config)


wildcard_constraints:
    sid=r"\d\d+",


def section_files():
    return [str(paths.section_md(s.id)) for s in SECTIONS]


def usage_files():
    return [str(paths.section_usage(s.id)) for s in SECTIONS]


def book_files():
    """book.md and the formats the config asks for by default (`formats`)."""
    return [str(paths.book_file(f)) for f in ("md", *config["formats"])]


def fingerprint(part):
    """A params function: one part of what determines a section's text (see bookgen.config)."""

    def get(wildcards):
        section = SECTION_BY_ID.get(wildcards.sid)
        if section is None:
            raise ValueError(
                f"there is no section {wildcards.sid}: the book has sections "
                f"{SECTIONS[0].id}..{SECTIONS[-1].id}"
            )
        return section_fingerprint(BOOK_FINGERPRINT, section)[part]

    # Snakemake inspects a params function's signature each time it calls it (about 20 times
    # per section in a dry run); a precomputed one makes that 5x cheaper for big books.
    get.__signature__ = inspect.signature(get)
    return get


def on_start(workflow):
    """Before any job: stop if a section needs the API and no key is set; clear old halts."""
    writes_sections = any(j.rule.name == "section" for j in workflow.dag.needrun_jobs())
    message = missing_api_key_message(config) if writes_sections else None
    if writes_sections and not message:
        message = exhausted_message(config, SECTIONS)
    if message:
        sys.exit(message)
    try:
        hold_run_lock()
    except LockBusy as err:
        sys.exit(str(err))
    paths.halt_file().unlink(missing_ok=True)
    if writes_sections and config["provider"] == "simulator":
        print(
            "bookgen: provider=simulator: sections are SIMULATED offline by bookgen's built-in "
            f"simulator (no API calls, nothing billed); costs show what {config['model']} "
            "would charge for these tokens.",
            file=sys.stderr,
        )


def on_error():
    summary = failure_summary([s.id for s in SECTIONS])
    if summary:
        print(summary, file=sys.stderr)
