"""The simulator as a real loopback server in a subprocess, started the way a user does."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml


class LoopbackSimulator:
    """Start with ``with LoopbackSimulator(tmp, config) as sim:``; ``sim.base_url``."""

    def __init__(self, workdir: Path, config: dict | None = None) -> None:
        self.config_path = workdir / "simulator.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config or {}))
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> LoopbackSimulator:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bookgen.simulator",
                "--port",
                "0",
                "--config",
                str(self.config_path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.base_url = line.split("listening on", 1)[1].strip()
        return self

    def ledger(self) -> dict:
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(f"{root}/ledger", timeout=10) as resp:
            return json.load(resp)

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
