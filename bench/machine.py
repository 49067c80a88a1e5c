"""What the benchmark ran on: cores, Python, package versions, the commit, the load."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("snakemake", "openai", "httpx2", "pydantic", "jsonschema", "PyYAML", "psutil")


def load1() -> float:
    """The 1-minute load average (what ``uptime`` shows first)."""
    return round(os.getloadavg()[0], 2)


def describe(repo: Path) -> dict[str, Any]:
    """The machine and software the numbers come from."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=repo, capture_output=True, text=True
    )
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "commit": git.stdout.strip() or None,
        "load_at_start": os.getloadavg(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
