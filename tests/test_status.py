"""`bookgen status` from files alone: each state (done, pending, changed, failed, flagged by QC,
running), costs from the call journals (failed attempts included) and the totals."""

from __future__ import annotations

import json

import pytest

from bookgen import paths
from bookgen.config import book_fingerprint, section_fingerprint, sections_from_config
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.locks import section_lock
from bookgen.run.status import failure_summary, render_status, section_states, status_report
from tests.test_budget import call_record, journal

CHECKS = [  # the shape bookgen.writing.quality records in a usage file
    {"name": "length", "passed": False, "value": 900, "detail": "900 words of 1500"},
    {"name": "meta_text", "passed": True, "value": 0, "detail": ""},
]


def _usage(config, section, words, **extra) -> dict:
    fp = section_fingerprint(book_fingerprint(config), section)
    return {"section": section.id, "fingerprint": fp, "words": words, "wall_time_s": 2.5, **extra}


@pytest.fixture
def book_dir(demo_config, tmp_path, monkeypatch):
    """A book directory with sections in every state, written as bookgen would leave them."""
    monkeypatch.chdir(tmp_path)
    sections = sections_from_config(demo_config)
    s = {x.id: x for x in sections}
    for sid, words, extra in (
        ("01", 1400, {}),
        ("02", 1500, {}),
        ("04", 1450, {"qc": {"passed": False, "flagged": True, "checks": CHECKS}}),
    ):
        atomic_write_text(paths.section_md(sid), "## text\n")
        atomic_write_json(paths.section_usage(sid), _usage(demo_config, s[sid], words, **extra))
        journal(paths.STATE, s[sid].key, call_record(sid, 0.001))
    usage = json.loads(paths.section_usage("02").read_text())
    usage["fingerprint"]["spec"] = "section spec: an older title"
    atomic_write_json(paths.section_usage("02"), usage)
    journal(paths.STATE, s["03"].key, *[call_record("03", 0.0005, status="failed")] * 2)
    note = {"section": "03", "error": "HTTP 500: boom"}
    atomic_write_json(paths.failure_note(s["03"].key), note)
    return demo_config, sections


def test_every_state_is_read_from_the_files(book_dir):
    config, sections = book_dir
    with section_lock(sections[4].key):
        states = {s.id: s for s in section_states(config, sections)}
    assert (states["01"].state, states["01"].words, states["01"].cost_usd) == ("done", 1400, 0.001)
    assert (states["02"].state, states["02"].detail) == ("pending", "spec changed")
    assert states["02"].words is None  # its text will be replaced
    assert (states["03"].state, states["03"].detail) == ("failed", "HTTP 500: boom")
    assert (states["03"].calls, states["03"].failed_calls) == (2, 2)
    assert states["03"].cost_usd == pytest.approx(0.001)  # failed attempts cost money too
    assert (states["04"].state, states["04"].detail) == ("flagged", "QC: length")
    assert (states["05"].state, states["05"].detail) == ("running", "being written now")
    assert {states[f"{i:02d}"].state for i in range(6, 12)} == {"pending"}
    assert section_states(config, sections)[4].state == "pending"  # the lock was released


def test_status_table_and_totals(book_dir):
    config, sections = book_dir
    report = status_report(config, section_states(config, sections))
    t = report["totals"]
    assert report["counts"] == {"done": 1, "pending": 8, "failed": 1, "flagged": 1}
    assert t["words"] == 1400 + 1450 and t["calls"] == 5 and t["failed_calls"] == 2
    assert t["cost_usd"] == pytest.approx(0.004)
    text = render_status(report)
    for needle in ("done", "pending", "failed", "flagged", "HTTP 500: boom", "$0.0040", "2,850"):
        assert needle in text, needle


def test_unknown_price_is_unknown_not_zero(book_dir):
    config, sections = book_dir
    journal(paths.STATE, sections[5].key, call_record("06", None))
    report = status_report(config, section_states(config, sections))
    assert report["totals"]["cost_usd"] is None
    assert "unknown" in render_status(report)


def test_budget_failures_are_summarised_once(demo_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sections = sections_from_config(demo_config)[:3]
    message = (
        "budget reached: $0.0100 of $0.0100 spent (the next call could cost up to $0.0020). "
        "Raise budget_usd (e.g. --config budget_usd=0.02) and run again: ..."
    )
    for s in sections[:2]:
        atomic_write_json(paths.failure_note(s.key), {"section": s.id, "error": message})
    summary = failure_summary(sections)
    assert "section_01: budget reached: $0.0100 of $0.0100 spent (log:" in summary
    assert summary.count("Raise budget_usd") == 1


def test_calls_answered_by_the_simulator_are_counted_apart(book_dir):
    """A rehearsed section shows the calls it took, marked simulated, never as real calls."""
    config, sections = book_dir
    journal(paths.STATE, sections[6].key, *[call_record("07", 0.002, simulated=True)] * 2)
    journal(paths.STATE, sections[0].key, call_record("01", 0.002, simulated=True))
    report = status_report(config, section_states(config, sections))
    rows = {s["id"]: s for s in report["sections"]}
    assert (rows["07"]["calls"], rows["07"]["simulated_calls"]) == (0, 2)
    assert (rows["01"]["calls"], rows["01"]["simulated_calls"]) == (1, 1)
    assert (report["totals"]["calls"], report["totals"]["simulated_calls"]) == (5, 3)
    table = {line.split()[0]: line for line in render_status(report).splitlines()}
    assert " 2 sim " in table["07"] and " 1 + 1 sim " in table["01"], table
    assert " 5 (2 failed) + 3 sim " in table["Total"], table["Total"]
