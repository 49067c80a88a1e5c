"""The README's table "What regenerates a section" is true: every config key in the schema has a
row, and changing it changes a section's fingerprint (Snakemake's params) or the outline's
exactly when the row says so. Then, through the real snakemake CLI, the case that re-billed
whole books: raising generation.max_tokens regenerates nothing, not even an edited outline."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bookgen.config import (
    CONFIG_SCHEMA,
    book_fingerprint,
    section_fingerprint,
    sections_from_config,
)
from bookgen.writing.outline import outline_fingerprint
from tests.book import Book, pending_sections
from tests.conftest import REPO, load_config
from tests.test_topic import SMALL_TOPIC

ROW = re.compile(r"^\| (.+?) \| (.+?) \| (.+?) \|$")


def readme_rows() -> dict[str, tuple[str, str]]:
    """``{config key: (sections verdict, outline verdict)}`` from the README's table."""
    text = (REPO / "README.md").read_text()
    section = text.split("### What regenerates a section", 1)[1]
    table = section[section.index("| Config key") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        m = ROW.match(line)
        assert m, line
        for key in re.findall(r"`([^`]+)`", m.group(1)):
            rows[key] = (m.group(2), m.group(3))
    return rows


def schema_keys() -> list[str]:
    """Every config key: top-level, and one level down for objects with listed properties
    (``simulator`` and ``prices`` are free-form: one key each)."""
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    keys = []
    for name, node in schema["properties"].items():
        nested = node.get("properties") if name not in ("simulator", "prices") else None
        keys += [f"{name}.{sub}" for sub in nested] if nested else [name]
    return keys


def covering_row(key: str, rows: dict[str, tuple[str, str]]) -> tuple[str, str]:
    if key in rows:
        return rows[key]
    group = key.split(".")[0] + ".*"
    assert group in rows, f"README's regeneration table has no row for {key!r}"
    return rows[group]


def changed(config: dict[str, Any], key: str, tmp_path: Path) -> dict[str, Any]:
    """``config`` with ``key`` set to another valid value."""
    new = copy.deepcopy(config)
    if key == "sections":
        new["sections"][0]["key_points"].append("one more point")
        return new
    if key.startswith("prompts."):
        name = key.split(".")[1]
        path = tmp_path / f"{name}.md"
        path.write_text(Path(config["prompts"][name]).read_text() + "\nOne more instruction.\n")
        new["prompts"][name] = str(path)
        return new
    parent, _, leaf = key.rpartition(".")
    node = new[parent] if parent else new
    value = node.get(leaf)
    if key == "provider":
        node[leaf] = "openai"
    elif key == "formats":
        node[leaf] = ["html", "epub"]
    elif key == "qc.on_fail":
        node[leaf] = "warn" if value != "warn" else "fail"
    elif key == "budget_usd":
        node[leaf] = 12.5
    elif key == "generation.omit":
        node[leaf] = ["temperature", "max_tokens"]
    elif key == "generation.rename":
        node[leaf] = {"max_tokens": "max_completion_tokens"}
    elif key in ("prices", "simulator", "generation.extra_body"):
        node[leaf] = {**(value or {}), "other": {"x": 1}} if key == "prices" else {"seed": 7}
    elif isinstance(value, bool):
        node[leaf] = not value
    elif isinstance(value, int):
        node[leaf] = value + 1
    elif isinstance(value, float):
        node[leaf] = round(value * 0.9, 4)
    else:
        node[leaf] = f"{value or ''} changed"
    return new


def fingerprints(config: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    first = sections_from_config(config)[0]
    topic = {**config, "topic": config.get("topic") or "tides"}
    return section_fingerprint(book_fingerprint(config), first), outline_fingerprint(topic)


def test_every_config_key_has_a_row():
    rows = readme_rows()
    for key in schema_keys():
        covering_row(key, rows)


@pytest.mark.parametrize("key", schema_keys())
def test_the_readme_row_says_what_regenerates(key, tmp_path):
    config = load_config({"topic": "tides"})
    sections_verdict, outline_verdict = covering_row(key, readme_rows())
    before_section, before_outline = fingerprints(config)
    after_section, after_outline = fingerprints(changed(config, key, tmp_path))
    assert (before_section != after_section) == (not sections_verdict.startswith("no")), key
    assert (before_outline != after_outline) == (outline_verdict == "yes"), key


def test_raising_max_tokens_regenerates_nothing_not_even_an_edited_outline(tmp_path):
    book = Book(tmp_path / "topic", SMALL_TOPIC)
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    outline = book.json("output/outline.json")
    outline["sections"][1]["title"] = "The Moon's Pull, Edited by Hand"
    book.file("output/outline.json").write_text(json.dumps(outline))
    proc = book.run("--cores", "2")  # the edit regenerates that one section only
    assert proc.returncode == 0, proc.stderr[-3000:]
    journals = {p.name: p.read_text() for p in (book.path / ".bookgen" / "calls").iterdir()}

    book.set_overrides(
        {
            **yaml.safe_load(book.file("overrides.yaml").read_text()),
            "generation": {"max_tokens": 16000},
        }
    )
    assert book.pending() == {}
    assert pending_sections(book.pending()) == set()
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert book.json("output/outline.json") == outline  # the hand edit survives
    after = {p.name: p.read_text() for p in (book.path / ".bookgen" / "calls").iterdir()}
    assert after == journals  # not one call, not even a replay
