"""Stable section identity: a section's bookkeeping follows the section, not its file number, and
a section that only moved (sections inserted, removed, reordered; 99 to 100) costs nothing."""

from __future__ import annotations

import json

import jsonschema
import pytest

from bookgen import paths
from bookgen.config import (
    ConfigError,
    book_fingerprint,
    check_config,
    section_fingerprint,
    sections_from_config,
)
from bookgen.fsutil import append_line, atomic_write_json, atomic_write_text
from bookgen.money.budget import journal_calls
from bookgen.money.report import EARLIER_TITLE, build_cost_report, earlier_calls, render_markdown
from bookgen.money.usage import TOKEN_FIELDS, sum_calls, validate
from bookgen.provider.journal import CallJournal
from bookgen.simulator import Simulator
from bookgen.writing import history
from tests.book import FAST, Book
from tests.test_budget import call_record
from tests.test_scale import small_sections

# Six tiny sections; the third has an explicit id.
SECTIONS = small_sections(6)
SECTIONS[2] = {"id": "bits", **SECTIONS[2]}
INTERLUDE = {"title": "Interlude", "key_points": ["a pause between chapters"], "words": 80}


# -- units ------------------------------------------------------------------------------------


def test_key_is_the_id_or_the_entry_never_the_position(demo_config):
    table = sections_from_config({"sections": SECTIONS})
    assert table[2].key == "id-bits" and table[0].key.startswith("spec-")
    assert len({s.key for s in table}) == 6
    # Another position, another file number, and 99 -> 100 sections: the same keys.
    shifted = sections_from_config({"sections": [INTERLUDE, *SECTIONS]})
    assert [s.key for s in shifted[1:]] == [s.key for s in table]
    big = sections_from_config({"sections": small_sections(100)})
    assert big[0].id == "001" and big[0].key == table[0].key
    # Its own entry changed: without an id a new key, with one the same.
    edited = sections_from_config({"sections": [{**e, "words": 90} for e in SECTIONS]})
    assert edited[0].key != table[0].key and edited[2].key == "id-bits"


def test_id_is_a_unique_safe_slug(demo_config):
    for bad in ("Bits", "../etc", "a b", "", "x" * 65):
        config = {**demo_config, "sections": [{"id": bad, **SECTIONS[0]}]}
        with pytest.raises(jsonschema.ValidationError):
            validate(config, "config.schema.yaml")
    config = {**demo_config, "sections": [SECTIONS[2], {**SECTIONS[3], "id": "bits"}]}
    validate(config, "config.schema.yaml")
    with pytest.raises(ConfigError, match=r"sections\[1\]\.id.*same id as section 1"):
        check_config(config)


def _usage(config, section) -> dict:
    return {
        "section": section.id,
        "key": section.key,
        "fingerprint": section_fingerprint(book_fingerprint(config), section),
        "generated_at": "2026-12-05T12:00:00Z",
        "wall_time_s": 1.0,
    }


def test_restore_needs_the_same_fingerprint_and_no_failed_quality(demo_config, tmp_path):
    section = sections_from_config(demo_config)[1]
    usage = _usage(demo_config, section)
    history.keep(section.key, "old text", {**usage, "fingerprint": {"spec": "older"}}, tmp_path)
    kept_path = history.keep(section.key, "the text", usage, tmp_path)
    kept = history.restorable(demo_config, section, usage["fingerprint"], tmp_path)
    assert kept.text_path == kept_path and kept.was == "02"
    assert history.restorable(demo_config, section, {"spec": "other"}, tmp_path) is None
    no_cache = {**demo_config, "response_cache": False}  # asks for a fresh take
    assert history.restorable(no_cache, section, usage["fingerprint"], tmp_path) is None
    atomic_write_json(paths.failure_note(section.key, tmp_path), {"error": "x", "qc": {}})
    assert history.restorable(demo_config, section, usage["fingerprint"], tmp_path) is None


def test_positional_bookkeeping_of_older_versions_is_adopted(demo_config, tmp_path, monkeypatch):
    """A book written before keys: what its usage file names moves to that section's key;
    what matches no current section (here: an edited one) keeps its name and still counts."""
    monkeypatch.chdir(tmp_path)
    sections = sections_from_config(demo_config)
    state = paths.STATE
    for section, text in ((sections[1], "two"), (sections[2], "three")):
        sid = section.id
        append_line(paths.calls_journal(sid, state), json.dumps(call_record(sid, 0.001)))
        atomic_write_text(paths.section_history(sid, state) / "20260101T000000.000000Z.md", text)
        atomic_write_text(paths.section_md(sid), text)
        atomic_write_json(paths.section_usage(sid), {**_usage(demo_config, section), "key": None})
    edited = sections_from_config(
        {
            "sections": [
                {**e, "words": 999} if i == 2 else e for i, e in enumerate(demo_config["sections"])
            ]
        }
    )
    lines = history.adopt_bookkeeping(edited, state)
    assert len(lines) == 1 and "section_02" in lines[0]
    key = sections[1].key
    assert (
        paths.calls_journal(key, state).exists() and not paths.calls_journal("02", state).exists()
    )
    kept = history.find(key, _usage(demo_config, sections[1])["fingerprint"], state)
    assert kept.text_path.read_text() == "two"  # the old copy, now with its usage document
    assert paths.calls_journal("03", state).exists()  # the edited one's: an earlier version
    assert sorted(journal_calls(state)) == sorted(["03", key])
    # Giving a section an id (entry unchanged) takes over its entry's bookkeeping.
    with_id = [
        {**e, "id": "memory"} if i == 1 else e for i, e in enumerate(demo_config["sections"])
    ]
    (renamed,) = [s for s in sections_from_config({"sections": with_id}) if s.key == "id-memory"]
    assert history.adopt_bookkeeping([renamed], state)
    assert paths.calls_journal("id-memory", state).exists()
    assert not paths.section_history(key, state).exists()


def test_cost_report_has_a_row_for_earlier_versions_and_removed_sections():
    doc = {
        "section": "01",
        "key": "spec-a",
        "title": "One",
        "model": "m",
        "provider": "simulator",
        "simulated": True,
        "words": 100,
        "wall_time_s": 1.0,
        "calls": [{**call_record("01", 0.002), "rates": None, "model": "m", "duration_s": 1.0}],
    }
    doc["totals"] = sum_calls(doc["calls"])
    old = {**call_record("02", 0.003), "rates": None, "model": "m", "duration_s": 2.0}
    journals = {"spec-a": doc["calls"], "spec-gone": [old], "02": [old]}
    earlier = earlier_calls(journals, [doc], {"01": "spec-a"})
    assert len(earlier) == 2
    report = build_cost_report([doc], "A book", earlier)
    assert report["totals"]["calls"] == 3 and report["totals"]["sections"] == 1
    assert report["totals"]["cost_usd"] == pytest.approx(0.008)
    assert report["earlier"]["calls"] == 2 and report["totals"]["words"] == 100
    assert f"| {EARLIER_TITLE} | 2 |" in render_markdown(report)
    assert build_cost_report([doc], "A book")["earlier"] is None


# -- through snakemake ------------------------------------------------------------------------


def _set_sections(book: Book, sections: list[dict]) -> None:
    book.set_overrides({"provider": "simulator", **FAST, "sections": sections})


def _ledger(book: Book) -> list[dict]:
    return Simulator({}, state_dir=book.path / ".bookgen" / "simulator").ledger()


def _texts(book: Book) -> dict[str, str]:
    """Each section's text by title."""
    out = {}
    for path in (book.path / "output").glob("section_*.md"):
        usage = book.json(f"output/usage/{path.stem}.json")
        out[usage["title"]] = path.read_text()
    return out


def _assert_money_whole(book: Book) -> None:
    """The cost report counts every journaled call once (earlier versions and removed sections
    included), and equals what the provider served."""
    report = book.json("output/cost_report.json")
    journals = journal_calls(book.path / ".bookgen")
    every = sum_calls([c for calls in journals.values() for c in calls])
    for field in ("calls", "simulated_calls", "simulated_cost_usd", *TOKEN_FIELDS):
        assert report["totals"][field] == pytest.approx(every[field]), field
    bill = Simulator({}, state_dir=book.path / ".bookgen" / "simulator").ledger_totals()
    for field in TOKEN_FIELDS:
        assert report["totals"][field] == bill[field], field


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Book:
    book = Book(tmp_path_factory.mktemp("identity") / "book", {"sections": SECTIONS})
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return book


@pytest.fixture
def book(built, tmp_path) -> Book:
    return built.copy(tmp_path / "book")


def test_inserted_section_is_the_only_one_written(book):
    before, served = _texts(book), len(_ledger(book))
    _set_sections(book, [*SECTIONS[:3], INTERLUDE, *SECTIONS[3:]])
    dry = book.run("--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    for n in (4, 5, 6):
        assert (
            f"'Chapter {n}' moved section_{n:02d} → section_{n + 1:02d}: its text is reused "
            "from .bookgen/history, no API call"
        ) in dry.stderr
    assert "'Chapter 3'" not in dry.stderr  # unmoved
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    new_requests = _ledger(book)[served:]
    assert new_requests and {e["section"] for e in new_requests} == {4}
    assert book.json("output/usage/section_04.json")["totals"]["calls"] == len(new_requests)
    after = _texts(book)
    assert {t: after[t] for t in before} == before  # byte-identical, under their new numbers
    assert book.json("output/usage/section_07.json")["title"] == "Chapter 6"
    log = book.file("output/logs/section_05.log").read_text()
    assert "(was section_04): no API call" in log
    assert book.json("output/usage/section_05.json")["section"] == "05"
    assert book.pending() == {}
    _assert_money_whole(book)


def test_removed_section_calls_nothing_and_its_cost_stays_in_the_report(book):
    before, served = _texts(book), len(_ledger(book))
    removed_calls = book.json("output/usage/section_02.json")["totals"]["calls"]
    _set_sections(book, [SECTIONS[0], *SECTIONS[2:]])
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_ledger(book)) == served
    del before["Chapter 2"]
    assert _texts(book) == before
    report = book.json("output/cost_report.json")
    assert report["totals"]["sections"] == 5 and report["earlier"]["calls"] == removed_calls
    _assert_money_whole(book)


def test_reordered_sections_swap_files_at_no_cost(book):
    before, served = _texts(book), len(_ledger(book))
    order = [SECTIONS[0], SECTIONS[4], SECTIONS[2], SECTIONS[3], SECTIONS[1], SECTIONS[5]]
    _set_sections(book, order)
    jobs = book.pending()
    assert set(jobs) >= {"section_02", "section_05"} and "section_03" not in jobs
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_ledger(book)) == served
    assert _texts(book) == before
    assert book.json("output/usage/section_02.json")["title"] == "Chapter 5"
    _assert_money_whole(book)


def test_renamed_section_with_an_id_keeps_its_journal(book):
    journal = book.file(".bookgen/calls/section_id-bits.jsonl")
    earlier = [c["call_id"] for c in CallJournal(journal).records()]
    served = len(_ledger(book))
    _set_sections(book, [{**e, "title": "Bits and Bytes"} if e.get("id") else e for e in SECTIONS])
    jobs = book.pending()
    assert set(jobs) & {f"section_{i:02d}" for i in range(1, 7)} == {"section_03"}
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    new_requests = _ledger(book)[served:]
    assert new_requests and {e["section"] for e in new_requests} == {3}
    usage = book.json("output/usage/section_03.json")
    assert usage["key"] == "id-bits" and usage["title"] == "Bits and Bytes"
    calls = [c["call_id"] for c in usage["calls"]]
    assert calls[: len(earlier)] == earlier and len(calls) == len(earlier) + len(new_requests)
    assert len(list(book.path.glob(".bookgen/calls/*.jsonl"))) == 6  # no new journal
    assert book.json("output/cost_report.json")["earlier"] is None
    _assert_money_whole(book)


def test_hundredth_section_renames_every_file_and_bills_only_itself(tmp_path):
    book = Book(tmp_path / "big", {"sections": small_sections(99, words=60)})
    targets = [f"output/section_{i:02d}.md" for i in range(1, 100)]
    proc = book.run("--cores", "2", *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = [book.file(f"output/section_{i:02d}.md").read_text() for i in range(1, 100)]
    served = len(_ledger(book))
    _set_sections(book, small_sections(100, words=60))
    proc = book.run("--cores", "2", *[f"output/section_{i:03d}.md" for i in range(1, 101)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    new_requests = _ledger(book)[served:]
    assert new_requests and {e["section"] for e in new_requests} == {100}
    after = [book.file(f"output/section_{i:03d}.md").read_text() for i in range(1, 100)]
    assert after == before  # every file renamed (two digits to three), every text kept
