"""A paid continuation only for a text that was really cut (finish_reason length, a broken
stream); the look of a text's end may flag it, never pay. Complete endings from a hand-written
corpus (tests/corpus/complete_endings/) pass the truncation and markdown checks; texts cut
mid-sentence, mid-word or inside a code block (tests/corpus/cut_endings/) are still flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bookgen.provider.journal import CallJournal
from bookgen.writing.quality import check_markdown, check_truncation
from bookgen.writing.repair import QualityFailed
from bookgen.writing.section import SectionWriter
from tests.book import Book
from tests.test_quality import TIDES
from tests.test_repair import job_for

CORPUS = Path(__file__).parent / "corpus"
COMPLETE = sorted((CORPUS / "complete_endings").glob("*.md"))
CUT = sorted((CORPUS / "cut_endings").glob("*.md"))


def test_the_corpus_is_there():
    assert len(COMPLETE) >= 30 and len(CUT) >= 10


@pytest.mark.parametrize("path", COMPLETE, ids=lambda p: p.stem)
def test_complete_ending_is_neither_truncated_nor_broken(path):
    text = path.read_text(encoding="utf-8")
    truncation, markdown = check_truncation(text), check_markdown(text)
    assert truncation.passed, truncation.detail
    assert markdown.passed, markdown.detail


@pytest.mark.parametrize("path", CUT, ids=lambda p: p.stem)
def test_cut_text_is_flagged(path):
    text = path.read_text(encoding="utf-8")
    assert not check_truncation(text).passed


def test_escaped_bracket_in_prose_is_not_display_math():
    assert check_markdown("The interval \\[0, 1) is half-open.\n").passed
    assert check_markdown("Use \\[ and \\] to type brackets.\n").passed
    assert not check_markdown("So\n\n\\[\nx^2 + y^2\n\nand the rest.\n").passed


def test_text_that_only_looks_cut_is_flagged_not_continued(tmp_path):
    """finish_reason stop with a text ending mid-sentence: no paid call guesses the rest;
    qc.on_fail decides (fail: nothing written; warn: kept, flagged)."""
    truncated = [{"kind": "truncated", "section": 2, "times": 1, "fraction": 0.9}]
    writer = SectionWriter(job_for(tmp_path / "fail", truncated))
    with pytest.raises(QualityFailed, match=r"truncation: ends mid-way"):
        writer.write()
    assert [c["purpose"] for c in writer.journal.records()] == ["write"]
    writer = SectionWriter(job_for(tmp_path / "warn", truncated, qc={"on_fail": "warn"}))
    writer.write()
    assert [c["purpose"] for c in writer.journal.records()] == ["write"]
    assert writer.qc["flagged"] and writer.qc["repairs"] == []
    assert [c["name"] for c in writer.qc["checks"] if not c["passed"]] == ["truncation"]


def purposes(book: Book, sid: str) -> list[tuple[str, str | None]]:
    calls = CallJournal(book.journal(sid)).records()
    return [(c["purpose"], c["finish_reason"]) for c in calls]


def test_only_a_reply_cut_by_the_provider_costs_a_continuation(tmp_path):
    """Through snakemake: a complete text ending on a list item costs one call; a reply the
    provider cut (finish_reason length) is continued; a text that only looks cut fails quality
    control without a continuation and is written afresh by the next run."""
    sim = {
        "defects": [
            {"kind": "truncated", "section": 1, "times": 1, "fraction": 0.9},
            {"kind": "list_ending", "section": 2},
        ],
        "faults": [{"kind": "finish_length", "section": 3, "times": 1}],
    }
    book = Book(tmp_path / "book", {"sections": TIDES, "simulator": sim})
    first = book.run("--cores", "2")
    assert first.returncode != 0
    assert "truncation: ends mid-way" in first.stdout + first.stderr
    assert not book.file("output/section_01.md").exists()
    assert purposes(book, "01") == [("write", "stop")]
    assert purposes(book, "02") == [("write", "stop")]
    assert book.file("output/section_02.md").read_text().rstrip().endswith("- sea walls")
    assert purposes(book, "03") == [("write", "length"), ("continue", "stop")]
    for sid in ("02", "03"):
        usage = book.json(f"output/usage/section_{sid}.json")
        assert usage["qc"]["passed"] and usage["qc"]["repairs"] == []
        assert [c["purpose"] for c in usage["calls"]] == [p for p, _ in purposes(book, sid)]

    again = book.run("--cores", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    usage = book.json("output/usage/section_01.json")
    assert [c["purpose"] for c in usage["calls"]] == ["write", "write"]
    assert usage["qc"]["passed"] and usage["totals"]["calls"] == 2
    assert purposes(book, "02") == [("write", "stop")] and len(purposes(book, "03")) == 2
    assert json.loads(book.file("output/cost_report.json").read_text())["totals"]["calls"] == 5
