"""Test harness: a book working directory with a copy of the workflow, driven by the real
``snakemake`` CLI as a subprocess (the same command a user types)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bookgen.config import sections_from_config
from tests.conftest import REPO

WORKFLOW_PARTS = ("Snakefile", "rules", "config", "profiles", "bookgen", "report")
BIN = Path(sys.executable).parent
FAST = {"retry": {"initial_delay_s": 0.01, "max_delay_s": 0.05, "max_attempts": 3}}


class Book:
    """A copy of the workflow in ``path``; ``run`` invokes snakemake there."""

    def __init__(
        self,
        path: Path,
        overrides: dict[str, Any] | None = None,
        workflow: Path = REPO,
        snakemake: tuple[str, ...] = (str(BIN / "snakemake"),),
    ) -> None:
        """``workflow``: the checkout whose workflow is copied (bench: an older commit's);
        ``snakemake``: the command that runs Snakemake (bench: that commit's interpreter)."""
        self.path = path
        self.snakemake = snakemake
        path.mkdir(parents=True, exist_ok=True)
        for part in WORKFLOW_PARTS:
            src = workflow / part
            if src.is_dir():
                shutil.copytree(src, path / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, path / part)
        self.set_overrides({"provider": "simulator", **FAST, **(overrides or {})})

    def copy(self, dest: Path) -> Book:
        """A private copy of this book in ``dest`` (files, mtimes and Snakemake metadata)."""
        shutil.copytree(self.path, dest, symlinks=True)
        copy = Book.__new__(Book)
        copy.path, copy.snakemake = dest, self.snakemake
        return copy

    def set_overrides(self, overrides: dict[str, Any]) -> None:
        """Settings layered over config/config.yaml through ``--configfile``."""
        (self.path / "overrides.yaml").write_text(yaml.safe_dump(overrides))

    def edit_config(self, edit) -> None:
        """Apply ``edit(config_dict)`` to config/config.yaml (as a user editing the file)."""
        cfg_path = self.path / "config" / "config.yaml"
        config = yaml.safe_load(cfg_path.read_text())
        edit(config)
        cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args),
            cwd=self.path,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def command(self, *args: str) -> list[str]:
        """The snakemake command line ``run`` uses (the book's config and overrides)."""
        return [*self.snakemake, *args, "--configfile", "config/config.yaml", "overrides.yaml"]

    @staticmethod
    def env(extra: dict[str, str] | None = None) -> dict[str, str]:
        """This environment without the real key, bookgen's bin first, then ``extra``."""
        full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        full_env.pop("DEEPSEEK_API_KEY", None)
        full_env.update(extra or {})
        return full_env

    def start(
        self, *args: str, env: dict[str, str] | None = None, output: Any = None
    ) -> subprocess.Popen:
        """``run`` in the background, in a session of its own (``os.killpg`` sends it a
        Ctrl-C); its output goes to the open file ``output`` (default: nowhere)."""
        sink = output if output is not None else subprocess.DEVNULL
        return subprocess.Popen(
            self.command(*args),
            cwd=self.path,
            env=self.env(env),
            stdout=sink,
            stderr=subprocess.STDOUT if output is not None else subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_mid_run(
        self, proc: subprocess.Popen, finished: int = 2, timeout: float = 120, poll: float = 0.05
    ) -> list[str]:
        """Until ``finished`` sections are written and another one is streaming; the streaming
        ones' log names (``section_NN``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be interrupted"
            done = {p.stem for p in (self.path / "output").glob("section_*.md")}
            streaming = [
                log.stem
                for log in (self.path / "output" / "logs").glob("section_*.log")
                if log.stem not in done and "tokens so far" in log.read_text()
            ]
            if len(done) >= finished and streaming:
                return streaming
            time.sleep(poll)
        raise AssertionError("no section was streaming")

    def bookgen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """The ``bookgen`` console command in this book, with the same config as ``run``."""
        cmd = [str(BIN / "bookgen"), *args, "--configfile", "config/config.yaml", "overrides.yaml"]
        full_env = {k: v for k, v in os.environ.items() if k != "DEEPSEEK_API_KEY"}
        full_env.update(env or {})
        return subprocess.run(cmd, cwd=self.path, env=full_env, capture_output=True, text=True)

    def pending(self, *targets: str) -> dict[str, str]:
        """Jobs a dry run would execute: ``{rule_or_section: reason}``."""
        proc = self.run("--dry-run", *targets)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return parse_dry_run(proc.stdout + proc.stderr)

    def key(self, sid: str) -> str:
        """The key (``bookgen.config.Section.key``) of the section at file number ``sid``: it
        names the section's journal, history and failure note under ``.bookgen/``."""
        config = yaml.safe_load((self.path / "config" / "config.yaml").read_text())
        overrides = yaml.safe_load((self.path / "overrides.yaml").read_text()) or {}
        entries = overrides.get("sections") or config["sections"]
        return next(s.key for s in sections_from_config({"sections": entries}) if s.id == sid)

    def journal(self, sid: str) -> Path:
        """The call journal of the section at file number ``sid``."""
        return self.path / ".bookgen" / "calls" / f"section_{self.key(sid)}.jsonl"

    def forget_kept_texts(self) -> None:
        """Delete ``.bookgen/history``: a deleted section is then rebuilt by sending its requests
        again (replayed from the response cache) instead of being restored with no request."""
        shutil.rmtree(self.path / ".bookgen" / "history")

    def file(self, rel: str) -> Path:
        return self.path / rel

    def json(self, rel: str) -> Any:
        return json.loads(self.file(rel).read_text())

    def sections(self) -> list[str]:
        return sorted(p.name for p in (self.path / "output").glob("section_*.md"))


def short_sections(words: int) -> list[dict[str, Any]]:
    """The demo book's sections with a smaller target length (an override for fast tests that
    still passes length checks, unlike shrinking the simulator's output)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return [{**s, "words": words} for s in config["sections"]]


def parse_dry_run(text: str) -> dict[str, str]:
    """Map each job of a dry run to its reason; section jobs as ``section_NN``."""
    jobs: dict[str, str] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("rule ") and line.endswith(":"):
            current = line[5:-1]
        elif line.startswith("Job ") and "Writing section" in line:
            current = "section_" + line.split("Writing section ")[1].split()[0]
        elif current and line.lower().startswith("reason:"):
            jobs[current] = line.split(":", 1)[1].strip()
            current = None
    return jobs


def pending_sections(jobs: dict[str, str]) -> set[str]:
    return {k for k in jobs if k.startswith("section_")}
