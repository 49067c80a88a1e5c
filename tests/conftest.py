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
