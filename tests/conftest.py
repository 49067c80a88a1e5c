"""Shared fixtures: the repository root and a loaded, validated copy of the demo config."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

# Money depends on the hour (DeepSeek's peak rates are twice its off-peak ones): every test, and
# every snakemake or bookgen process a test starts, runs on bookgen's clock pinned to a Saturday
# noon (off-peak all day). Tests about periods pass their own instants or set BOOKGEN_CLOCK.
PINNED_CLOCK = "2026-12-05T12:00:00Z"
os.environ["BOOKGEN_CLOCK"] = PINNED_CLOCK


def load_config(overrides: dict | None = None) -> dict:
    """The demo book's config, validated (defaults filled) and with prompt paths made absolute."""
    from bookgen.config import resolve_prompt_paths, validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(copy.deepcopy(overrides or {}))
    validate_config(config)
    resolve_prompt_paths(config, REPO)
    return config


@pytest.fixture
def demo_config() -> dict:
    return load_config()


# The test files that take longest, longest first (pytest --durations, summed per file). The
# suite runs on pytest-xdist workers, a whole file per worker (pyproject: `--dist loadfile
# --no-loadscope-reorder`, which keeps this order instead of xdist's "most tests first"): the
# long files start first and the short ones fill in after, so the workers end together. xdist's
# own order started the one-test SLURM file last, and the whole suite waited for it.
SLOWEST_FIRST = (
    "test_slurm.py",
    "test_pipeline.py",
    "test_parts.py",
    "test_money.py",
    "test_budget.py",
    "test_estimate.py",
    "test_config_cli.py",
    "test_regeneration.py",
    "test_identity.py",
    "test_run_errors.py",
    "test_interrupts.py",
    "test_reprice.py",
    "test_topic.py",
    "test_book.py",
    "test_failures.py",
    "test_display.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the files by SLOWEST_FIRST, the rest after them as collected."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
