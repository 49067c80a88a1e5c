"""The book as a build graph, driven through the real snakemake CLI against the simulator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bookgen.journal import CallJournal
from tests.book import BIN, Book, pending_sections

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


def test_failing_section_does_not_stop_the_others(tmp_path):
    book = Book(
        tmp_path / "fail",
        {"simulator": {"faults": [{"kind": "http_500", "section": 6}]}},
    )
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "section_06" in proc.stderr and "HTTP 500" in proc.stderr
    assert book.sections() == [f"section_{i:02d}.md" for i in range(1, 12) if i != 6]
    assert not book.file("output/cost_report.json").exists()
    # Three attempts (retry.max_attempts) were made and are on record, though nothing was written.
    journal = CallJournal(book.journal("06")).records()
    assert [c["http_status"] for c in journal] == [500, 500, 500]
    # The fault is gone: the rerun generates only the missing section, then the report.
    book.set_overrides({"provider": "simulator", "retry": {"initial_delay_s": 0.01}})
    assert pending_sections(book.pending()) == {"section_06"}
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    usage = book.json("output/usage/section_06.json")
    assert usage["totals"]["calls"] == 4 and usage["totals"]["failed_calls"] == 3
    report = book.json("output/cost_report.json")
    assert report["totals"]["failed_calls"] == 3


def test_transient_errors_are_retried_within_the_job(tmp_path):
    book = Book(
        tmp_path / "flaky",
        {"simulator": {"faults": [{"kind": "http_503", "section": 2, "times": 2}]}},
    )
    proc = book.run("--cores", "2", "output/section_02.md")
    assert proc.returncode == 0, proc.stderr[-3000:]
    usage = book.json("output/usage/section_02.json")
    assert [c["status"] for c in usage["calls"]] == ["failed", "failed", "ok"]
    assert usage["calls"][0]["http_status"] == 503


def test_rejected_key_stops_the_run_without_burning_calls(tmp_path):
    book = Book(tmp_path / "badkey", {"simulator": {"faults": [{"kind": "http_401"}]}})
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "API key was rejected" in proc.stderr
    calls = [
        call
        for path in (book.path / ".bookgen" / "calls").glob("*.jsonl")
        for call in CallJournal(path).records()
    ]
    assert 1 <= len(calls) <= 2  # at most the sections already in flight at --cores 2
    assert "run was stopped because" in proc.stderr
    assert book.sections() == []


def test_missing_api_key_stops_before_any_job(tmp_path):
    book = Book(tmp_path / "nokey")
    book.set_overrides({"provider": "deepseek"})
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "DEEPSEEK_API_KEY" in proc.stderr
    assert "--config provider=simulator" in proc.stderr
    assert not (book.path / "output").exists()
    # A dry run needs no key: it calls nothing.
    assert len(pending_sections(book.pending())) == 11


def test_invalid_config_names_the_field(tmp_path):
    book = Book(tmp_path / "bad")
    book.edit_config(lambda c: c["sections"][2].update(words=-5))
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "words" in proc.stderr and "-5" in proc.stderr
    assert not (book.path / "output").exists()
    book = Book(tmp_path / "dup")
    book.edit_config(lambda c: c["sections"][5].update(title=c["sections"][0]["title"]))
    proc = book.run("--dry-run")
    assert proc.returncode != 0
    assert "sections[5].title" in proc.stderr and "same title" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_loopback_server_like_a_real_provider_and_key_never_written(tmp_path):
    """base_url pointing at `python -m bookgen.simulator` works like DeepSeek; the key stays out
    of every file the run writes."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bookgen.simulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening" in server.stdout.readline()
        book = Book(tmp_path / "remote")
        book.set_overrides(
            {
                "provider": "deepseek",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "retry": {"initial_delay_s": 0.01},
            }
        )
        secret = "sk-bookgen-test-SECRET-7f3a9c"
        proc = book.run("--cores", "2", env={"DEEPSEEK_API_KEY": secret})
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = book.json("output/cost_report.json")
        assert report["simulated"] is False and report["totals"]["calls"] == 11
        assert secret not in proc.stdout + proc.stderr
        for root in ("output", ".snakemake", ".bookgen"):
            for path in (book.path / root).rglob("*"):
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), path
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


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
