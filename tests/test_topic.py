"""A book from a topic, and quality control, through the real snakemake CLI and the simulator:
the outline checkpoint, per-entry regeneration, repairs and the quality report."""

from __future__ import annotations

import json
import os
import time

from bookgen.simulator import Simulator
from tests.book import FAST, Book, pending_sections
from tests.test_quality import TIDES

# A small book from a topic (other test files build on it).
SMALL_TOPIC = {
    "topic": "tides and the moon",
    "section_count": 3,
    "section_words": 300,
    "sections": [],
    "book": {"title": "Tides"},
    "formats": [],
    "qc": {"on_fail": "warn"},
}
TOPIC = {
    **SMALL_TOPIC,
    "simulator": {
        "defects": [
            {"kind": "meta_text", "section": 2, "times": 1},
            {"kind": "duplicate", "section": 3, "of": 1},  # every reply: not repairable
        ]
    },
}


def test_topic_to_book_then_one_outline_entry_edited(tmp_path):
    book = Book(tmp_path / "topic", TOPIC)
    proc = book.run("--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Writing the book's outline from its topic" in proc.stdout
    assert "Missing output files: output/outline.json" in proc.stdout
    assert "Writing section" not in proc.stdout  # unknown until the outline exists

    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    outline = book.json("output/outline.json")
    assert outline["topic"] == "tides and the moon" and len(outline["sections"]) == 3
    assert book.sections() == ["section_01.md", "section_02.md", "section_03.md"]
    assert book.pending() == {}

    # Quality control repaired the chatter; the copy could not be repaired (qc.on_fail: warn
    # keeps it, flagged), and the report names the pair that overlaps.
    report = book.json("output/quality_report.json")
    entries = {e["id"]: e for e in report["sections"]}
    assert [r["repair"] for r in entries["02"]["repairs"]] == ["strip_chatter"]
    assert (
        entries["02"]["passed"] and "Certainly" not in book.file("output/section_02.md").read_text()
    )
    assert [r["repair"] for r in entries["03"]["repairs"]] == ["rewrite", "rewrite"]
    assert entries["03"]["failed_checks"] == ["key_points"] and entries["03"]["attempts"] == 2
    assert [p["sections"] for p in report["overlapping_pairs"]] == [["01", "03"]]
    assert book.json("output/usage/section_03.json")["qc"]["flagged"] is True
    assert "warning: sections 01 and 03 overlap" in proc.stdout

    # The outline call is billed like a section and the cost report reconciles with the bill.
    cost = book.json("output/cost_report.json")
    assert [s["id"] for s in cost["sections"]] == ["outline", "01", "02", "03"]
    bill = Simulator({}, state_dir=book.path / ".bookgen" / "simulator").ledger_totals()
    # Outline, three sections, one rewrite: the second asked the same again (the copy came back
    # unchanged), so it was replayed from the response cache, not paid twice.
    assert cost["totals"]["calls"] == bill["calls"] == 1 + 3 + 1
    assert [r["calls"] for r in entries["03"]["repairs"]] == [1, 0]

    # Editing one entry of the outline regenerates that section only, and says why.
    outline["sections"][1]["key_points"].append("the pull of the sun")
    book.file("output/outline.json").write_text(json.dumps(outline, indent=2))
    jobs = book.pending()
    assert pending_sections(jobs) == {"section_02"} and "outline" not in jobs
    assert "Params have changed" in jobs["section_02"]
    assert "the pull of the sun" in jobs["section_02"]
    later = time.time() + 5
    os.utime(book.file("output/outline.json"), (later, later))
    assert pending_sections(book.pending()) == {"section_02"}


def test_section_failing_quality_control_is_not_written_and_the_next_run_retries(tmp_path):
    settings = {"sections": TIDES, "formats": [], "qc": {"max_attempts": 1}}
    short = {"defects": [{"kind": "too_short", "section": 2, "fraction": 0.2}]}
    book = Book(tmp_path / "qc", {**settings, "simulator": short})
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "section_02: quality control failed after 1 repair round(s): length" in proc.stderr
    assert book.sections() == ["section_01.md", "section_03.md"]
    # The provider writes well again: the next plain run writes only that section, afresh.
    book.set_overrides({"provider": "simulator", **FAST, **settings})
    assert pending_sections(book.pending()) == {"section_02"}
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert book.json("output/usage/section_02.json")["qc"]["passed"] is True
    assert book.json("output/quality_report.json")["totals"]["passed"] == 3
