"""Config errors and the README's ``--config`` examples, through the real snakemake CLI."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.book import Book
from tests.conftest import REPO


def readme_config_examples() -> list[list[str]]:
    """Every ``--config KEY=VALUE ...`` the README shows, as argument lists."""
    found = []
    for line in (REPO / "README.md").read_text().splitlines():
        for match in re.finditer(r"--config ([^`#\n]+)", line):
            entries = [w for w in shlex.split(match.group(1)) if "=" in w]
            if entries and entries not in found:
                found.append(entries)
    return found


EXAMPLES = readme_config_examples()


def test_the_readme_has_the_examples_this_tests():
    flat = [e for entries in EXAMPLES for e in entries]
    assert "response_cache=false" in flat
    assert "generation={max_tokens: 16000}" in flat
    assert "budget_usd=2.5" in flat


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Book:
    return Book(tmp_path_factory.mktemp("cli") / "book")


@pytest.mark.parametrize("entries", EXAMPLES, ids=" ".join)
def test_readme_config_examples_are_accepted(book, entries):
    proc = book.run("--dry-run", "--config", *entries)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_misspelt_key_is_one_line_with_a_hint(book):
    proc = book.run("--dry-run", "--config", "respons_cache=false")
    assert proc.returncode != 0
    assert "config error: unknown key 'respons_cache' (did you mean 'response_cache'?)" in (
        proc.stderr
    )
    assert len((proc.stdout + proc.stderr).splitlines()) <= 5, proc.stderr


def test_a_wrong_value_names_the_field(book):
    proc = book.run("--dry-run", "--config", "generation={max_tokens: lots}")
    assert proc.returncode != 0
    assert "config error in generation.max_tokens: 'lots' is not of type 'integer'" in proc.stderr
    assert len((proc.stdout + proc.stderr).splitlines()) <= 5, proc.stderr
