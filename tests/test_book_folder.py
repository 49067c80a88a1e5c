"""One folder, one book: a book in any directory (the workflow's config, then the book's own),
and a book's reports and counters taking only its own sections when another book was written in
the same folder, while every call journaled there stays on the bill. No snakemake here."""

from __future__ import annotations

import pytest
import yaml

from bookgen import paths
from bookgen.bookdir import book_layer, config_files
from bookgen.cli import load_book_config, workflow_dir
from bookgen.config import book_fingerprint, section_fingerprint, sections_from_config
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.money.budget import book_spending, journal_calls
from bookgen.money.report import EARLIER_TITLE, build_cost_report, earlier_calls, render_markdown
from bookgen.money.usage import sum_calls
from bookgen.run.status import section_states, status_report
from bookgen.writing import history
from bookgen.writing.outline import cost_report_inputs, topic_mode
from tests.conftest import REPO
from tests.test_budget import call_record, journal


def _call(sid: str, cost: float) -> dict:
    return {**call_record(sid, cost), "rates": None, "model": "m", "duration_s": 1.0}


def _doc(sid: str, key: str, cost: float) -> dict:
    """A usage document as the cost report reads it (one call)."""
    calls = [_call(sid, cost)]
    return {
        "section": sid,
        "key": key,
        "title": f"Title {sid}",
        "model": "m",
        "provider": "simulator",
        "simulated": True,
        "words": 100,
        "wall_time_s": 1.0,
        "calls": calls,
        "totals": sum_calls(calls),
    }


# -- a book in any directory ------------------------------------------------------------------


def test_a_book_directory_layers_its_own_config_over_the_workflows(tmp_path, monkeypatch):
    book = tmp_path / "demo"
    (book / "config").mkdir(parents=True)
    monkeypatch.chdir(book)
    workflow = REPO / "config" / "config.yaml"
    assert config_files(REPO) == [workflow]  # no config of its own: the workflow's alone
    own = {"provider": "simulator", "topic": "Tides", "book": {"audience": "sailors"}}
    (book / "config" / "config.yaml").write_text(yaml.safe_dump(own))
    assert config_files(REPO) == [workflow, paths.Path("config/config.yaml")]
    # A topic in the book's own file replaces the workflow's (the demo's) sections, and
    # --config on top still wins.
    layer = book_layer(REPO, {"book": {"title": "T"}})
    assert layer == {**own, "book": {"audience": "sailors", "title": "T"}}
    config = load_book_config([], ["section_count=4"], REPO)
    assert config["provider"] == "simulator" and config["section_count"] == 4
    assert topic_mode(config) and config["book"]["audience"] == "sailors"
    assert config["prices"]  # inherited from the workflow's config
    assert config["prompts"]["outline"] == str(REPO / "config/prompts/outline.md")
    # The workflow's own folder is one book: its config is read once.
    monkeypatch.chdir(REPO)
    assert config_files(REPO) == [workflow] and book_layer(REPO, {}) == {}


def test_bookgen_finds_the_workflow_above_the_book(tmp_path):
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "demo").mkdir()
    assert workflow_dir(tmp_path / "demo", tmp_path / "elsewhere") == tmp_path
    other = tmp_path.parent / f"{tmp_path.name}-book"
    other.mkdir()
    assert workflow_dir(other, tmp_path) == tmp_path  # started where the Snakefile is


# -- two books in one folder ------------------------------------------------------------------


def test_the_demos_cost_report_after_a_topic_book_in_its_folder(demo_config, tmp_path, monkeypatch):
    """The reproduced mix: the topic example written in the demo's folder gave the demo's
    report the outline's row and "12 sections". Its calls stay in the total, in the row of
    calls no current section lists."""
    monkeypatch.chdir(tmp_path)
    sections = sections_from_config(demo_config)
    docs = [_doc(s.id, s.key, 0.001) for s in sections]
    atomic_write_json(paths.outline_usage(), _doc("outline", "outline", 0.0))
    assert cost_report_inputs(demo_config, sections) == [
        paths.section_usage(s.id) for s in sections
    ]
    journals = {d["key"]: d["calls"] for d in docs}
    journals["outline"] = [_call("outline", 0.0004)]
    journals["spec-of-the-topic-book"] = [_call("01", 0.002)] * 2
    earlier = earlier_calls(journals, docs, {s.id: s.key for s in sections})
    report = build_cost_report(docs, "How Computers Work", earlier)
    t = report["totals"]
    assert t["sections"] == 11 and report["sections"][0]["id"] == "01"
    assert report["earlier"]["calls"] == 3 and t["calls"] == 14
    assert t["cost_usd"] == pytest.approx(11 * 0.001 + 0.0004 + 0.004)  # all money stays
    md = render_markdown(report)
    assert "for 11 sections" in md and f"| {EARLIER_TITLE} | 3 |" in md
    assert "| outline" not in md


def test_a_topic_book_has_its_outline_row_not_counted_as_a_section(demo_config, tmp_path):
    topic = {**demo_config, "sections": [], "topic": "Tides"}
    sections = sections_from_config(demo_config)[:3]
    assert cost_report_inputs(topic, sections)[0] == paths.outline_usage()
    docs = [_doc("outline", "outline", 0.0), *(_doc(s.id, s.key, 0.001) for s in sections)]
    report = build_cost_report(docs, "Tides")
    assert report["totals"]["sections"] == 3 and report["totals"]["calls"] == 4
    assert report["sections"][0]["id"] == "outline"
    assert report["simulated_sections"] == ["01", "02", "03"]
    assert "The text of every section was written" in render_markdown(report)


def test_only_this_books_current_texts_are_in_place(demo_config, tmp_path, monkeypatch):
    """What a run counts as kept ("[N/11]" starts from it): another book's section_01.md in
    the same output/ is not this book's section 01, nor is an outdated text."""
    monkeypatch.chdir(tmp_path)
    shared = book_fingerprint(demo_config)
    one, two, three = sections_from_config(demo_config)[:3]
    other = sections_from_config({"sections": [{**demo_config["sections"][0], "words": 99}]})[0]
    for section, writer in ((one, one), (two, other), (three, three)):
        atomic_write_text(paths.section_md(section.id), "## text\n")
        fp = section_fingerprint(shared, writer)
        atomic_write_json(
            paths.section_usage(section.id), {"section": section.id, "fingerprint": fp}
        )
    paths.section_md("03").unlink()
    assert history.in_place(one, section_fingerprint(shared, one))
    assert not history.in_place(two, section_fingerprint(shared, two))  # another book's file
    assert not history.in_place(three, section_fingerprint(shared, three))  # no file
    moved = {**demo_config, "provider": "other"}
    assert not history.in_place(one, section_fingerprint(book_fingerprint(moved), one))


def test_status_rows_are_this_books_and_its_total_is_the_folders(
    demo_config, tmp_path, monkeypatch
):
    """A row per section of this book; the total money is every call journaled in the folder
    (another book's included): what the budget and the cost report's total count."""
    monkeypatch.chdir(tmp_path)
    sections = sections_from_config(demo_config)
    journal(paths.STATE, sections[0].key, call_record("01", 0.001))
    journal(paths.STATE, "spec-of-another-book", call_record("01", 0.002))
    journal(paths.STATE, "outline", call_record("outline", 0.0005))
    report = status_report(demo_config, section_states(demo_config, sections))
    assert len(report["sections"]) == 11 and report["totals"]["sections"] == 11
    assert report["sections"][0]["cost_usd"] == pytest.approx(0.001)
    assert report["totals"]["calls"] == 3 == book_spending().calls
    assert report["totals"]["cost_usd"] == pytest.approx(0.0035)
    assert set(journal_calls()) == {sections[0].key, "spec-of-another-book", "outline"}
