"""A run's errors, driven through the real snakemake CLI: one failing section, transient
errors, a rejected or missing key, a bad config, and a provider on loopback (the key written
nowhere). Apart from tests/test_pipeline.py so the two run on different test workers."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from bookgen.provider.journal import CallJournal
from tests.book import Book, pending_sections


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
