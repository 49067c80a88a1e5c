"""The book as a build graph, driven through the real snakemake CLI against the simulator."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.book import BIN, WORKFLOW_PARTS, Book, parse_dry_run, pending_sections
from tests.conftest import REPO

ALL_SECTIONS = {f"section_{i:02d}" for i in range(1, 12)}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Book:
    """One book written from scratch with --cores 2; tests get copies of it."""
    book = Book(tmp_path_factory.mktemp("built") / "book")
    before = book.pending()
    assert pending_sections(before) == ALL_SECTIONS
    assert all("Missing output files" in before[s] for s in ALL_SECTIONS)
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "SIMULATED" in proc.stderr
    return book


@pytest.fixture
def book(built, tmp_path) -> Book:
    """A private copy of the built book (files, mtimes and Snakemake metadata)."""
    return built.copy(tmp_path / "book")


def test_full_book_then_nothing_pending(built):
    assert built.sections() == [f"section_{i:02d}.md" for i in range(1, 12)]
    assert built.pending() == {}
    for i in range(1, 12):
        text = built.file(f"output/section_{i:02d}.md").read_text()
        assert text.startswith("## ")
        usage = built.json(f"output/usage/section_{i:02d}.json")
        assert usage["simulated"] is True and usage["calls"][0]["usage_reported"] is True
        log = built.file(f"output/logs/section_{i:02d}.log").read_text()
        assert "tokens/s" in log and "done:" in log


def test_sections_share_a_cached_prompt_prefix(built):
    report = built.json("output/cost_report.json")
    # The first section pays the shared book context; the others read it from the cache.
    hits = [s["prompt_cache_hit_tokens"] for s in report["sections"]]
    assert hits.count(0) <= 2 and sum(hits) > 0.5 * report["totals"]["prompt_tokens"]


def test_cost_report_totals_equal_sum_of_usage_files(built):
    report = built.json("output/cost_report.json")
    usages = [built.json(f"output/usage/section_{i:02d}.json") for i in range(1, 12)]
    for field in (
        "calls",
        "prompt_tokens",
        "prompt_cache_hit_tokens",
        "prompt_cache_miss_tokens",
        "completion_tokens",
        "reasoning_tokens",
    ):
        assert report["totals"][field] == sum(u["totals"][field] for u in usages), field
        assert report["totals"][field] == sum(s[field] for s in report["sections"])
    assert report["totals"]["cost_usd"] == pytest.approx(
        sum(u["totals"]["cost_usd"] for u in usages)
    )
    ledger = _simulator_ledger_totals(built.path)
    for field in ("prompt_tokens", "prompt_cache_hit_tokens", "completion_tokens", "calls"):
        assert report["totals"][field] == ledger[field], field
    md = built.file("output/cost_report.md").read_text()
    assert "Simulated text" in md and "deepseek-flash" in md


def _simulator_ledger_totals(book_dir: Path) -> dict:
    from bookgen.simulator import Simulator

    return Simulator({}, state_dir=book_dir / ".bookgen" / "simulator").ledger_totals()


def test_deleted_section_is_the_only_one_rebuilt(book):
    book.file("output/section_07.md").unlink()
    jobs = book.pending()
    assert pending_sections(jobs) == {"section_07"}
    calls_before = book.json("output/usage/section_07.json")["totals"]["calls"]
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert book.pending() == {}
    # The identical request was answered from the response cache: nothing billed again.
    assert book.json("output/usage/section_07.json")["totals"]["calls"] == calls_before


def test_single_target_builds_only_that_section(tmp_path):
    book = Book(tmp_path / "one")
    proc = book.run("--cores", "1", "output/section_05.md")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert book.sections() == ["section_05.md"]
    assert not book.file("output/cost_report.json").exists()


def test_touching_code_rules_and_config_regenerates_nothing(book):
    now = time.time() + 5
    for pattern in ("Snakefile", "rules/*", "bookgen/**/*.py", "config/**/*"):
        for path in book.path.glob(pattern):
            os.utime(path, (now, now))
    assert pending_sections(book.pending()) == set()
    # A new bookgen version (the rule's and the job's code changed) must not re-bill either.
    for part in ("rules/sections.smk", "bookgen/jobs.py"):
        with book.file(part).open("a") as fh:
            fh.write("\n# upgraded\n")
    book.edit_config(lambda c: c["prices"]["deepseek-flash"].update(output=9.99))
    assert pending_sections(book.pending()) == set()


def test_changed_key_points_regenerate_only_that_section(book):
    book.edit_config(lambda c: c["sections"][3]["key_points"].append("ECC memory"))
    jobs = book.pending()
    assert pending_sections(jobs) == {"section_04"}
    assert "Params have changed" in jobs["section_04"] and "ECC memory" in jobs["section_04"]
    assert "cost_report" in jobs
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ECC memory" in book.file("output/section_04.md").read_text()
    assert book.pending() == {}


def test_failed_regeneration_keeps_the_last_good_text(book):
    old = book.file("output/section_04.md").read_text()
    book.edit_config(lambda c: c["sections"][3]["key_points"].append("ECC memory"))
    book.set_overrides(
        {
            "provider": "simulator",
            "simulator": {"faults": [{"kind": "http_500", "section": 4}]},
            "retry": {"max_attempts": 2, "initial_delay_s": 0.01},
        }
    )
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert not book.file("output/section_04.md").exists()  # Snakemake removed the old output
    kept = proc.stderr.split("its last finished text is kept in ", 1)[1].split()[0]
    assert book.file(kept).read_text() == old


def test_model_change_regenerates_everything_and_says_why(book):
    book.set_overrides({"provider": "simulator", "model": "deepseek-v4-pro"})
    jobs = book.pending()
    assert pending_sections(jobs) == {f"section_{i:02d}" for i in range(1, 12)}
    assert "deepseek-v4-pro" in jobs["section_01"]


def test_lint_is_clean():
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--lint"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    text = proc.stdout + proc.stderr
    # Rules with `run:` need no conda/container directive, so not even that finding is left.
    assert proc.returncode == 0 and "your workflow is in a good condition" in text, text
    assert not [line for line in text.splitlines() if line.strip().startswith("*")], text


PIPES = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
DEMO_COMMAND = re.compile(
    r"(?:snakemake|bookgen|tail) [^#`\n]*(?:--directory|-d) demo[-\w]*[^#`\n]*"
)


def readme_demo_commands() -> list[list[str]]:
    """The README's commands on the demo's directories (``--directory demo``, ``-d demo``,
    ``--directory demo-topic``), its first command included, as argument lists."""
    text = (REPO / "README.md").read_text()
    commands = [shlex.split(m.group(0)) for m in DEMO_COMMAND.finditer(text)]
    commands += [["tail", "-F", m] for m in re.findall(r"tail -F (demo/\S+)", text)]
    return commands


def test_readme_demo_commands_work_after_the_demo(built, tmp_path):
    """The README's first command and every command it shows on the demo, after the demo, run
    (snakemake as dry runs) in a copy of the repository whose demo/ holds the built demo book:
    nothing is pending, no key is asked for, only the target named is built (its sections are
    the demo's: the first command's config in demo/ is the one the book was written with)."""
    commands = readme_demo_commands()
    assert ["snakemake", "--cores", "2", "--directory", "demo"] in commands
    assert len(commands) >= 6, commands
    root = tmp_path / "repo"
    root.mkdir()
    for part in (*WORKFLOW_PARTS, "demo/config"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy2
        copy(REPO / part, root / part)
    for part in ("output", ".bookgen", ".snakemake"):  # the demo as its first command left it
        shutil.copytree(built.path / part, root / "demo" / part, symlinks=True)
    env = {k: v for k, v in os.environ.items() if k != "DEEPSEEK_API_KEY"}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    runs = []  # started together: each mostly waits for snakemake's start-up
    for command in commands:
        if command == ["snakemake", "--cores", "2", "--directory", "demo"]:
            continue  # the demo itself: the dry runs of its targets below show nothing pending
        if command[0] == "tail":
            assert (root / command[-1]).is_file(), command
            continue
        dry = ["--dry-run"] if command[0] == "snakemake" else []
        argv = [*command[:1], *dry, *command[1:]]
        runs.append((command, subprocess.Popen(argv, cwd=root, env=env, **PIPES)))
    for command, proc in runs:
        out = "".join(proc.communicate(timeout=300))
        assert proc.returncode == 0 and "API key" not in out, (command, out[-3000:])
        jobs = set(parse_dry_run(out))
        if "demo-topic" in command:
            assert "Writing the book's outline" in out, out[-3000:]
        elif "output/book.pdf" in command:
            assert jobs == {"book_format"}, jobs
        elif "output/section_05.md" in command:
            assert jobs == {"section_05"}, jobs
        elif command[0] == "snakemake":  # the demo again, e.g. watched: nothing is pending
            assert jobs == set() and "Nothing to be done" in out, out[-3000:]
        else:
            assert "11 sections: 11 done" in out, out
