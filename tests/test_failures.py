"""Every failure through the real snakemake CLI ends in a named cause and a clean retry: which
errors stop the run, replies that validation rejected, empty replies, unexpected exceptions."""

from __future__ import annotations

from tests.book import FAST, Book
from tests.test_quality import TIDES
from tests.test_topic import SMALL_TOPIC


def notes(book: Book) -> list[str]:
    return sorted(p.stem for p in (book.path / ".bookgen" / "failures").glob("*.json"))


def test_rejected_parameters_fail_their_sections_until_omitted_or_renamed(tmp_path):
    """OpenAI's reasoning models reject `temperature` and `max_tokens`: each section fails with
    the provider's message (the run is not stopped); generation.omit/rename make it work."""
    settings = {"formats": [], "simulator": {"reject_params": ["temperature", "max_tokens"]}}
    book = Book(tmp_path / "book", settings)
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "Unsupported parameter: 'temperature' is not supported with this model" in proc.stderr
    assert "generation.omit" in proc.stderr
    assert not (book.path / ".bookgen" / "halt.json").exists()
    every = sorted(f"section_{book.key(f'{i:02d}')}" for i in range(1, 12))
    assert notes(book) == every  # each tried, none halted
    gen = {"omit": ["temperature"], "rename": {"max_tokens": "max_completion_tokens"}}
    book.set_overrides({"provider": "simulator", **FAST, **settings, "generation": gen})
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(book.sections()) == 11 and notes(book) == []


def test_repair_reply_with_headings_one_level_too_high(tmp_path):
    """The expand repair's reply uses `##` where `###` was asked (seen: StopIteration)."""
    sim = {
        "defects": [
            {"kind": "too_short", "section": 2, "times": 1, "fraction": 0.2},
            {"kind": "raised_headings", "section": 2, "times": 1},
        ]
    }
    book = Book(tmp_path / "book", {"sections": TIDES, "formats": [], "simulator": sim})
    proc = book.run("output/section_02.md", "--cores", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = book.file("output/section_02.md").read_text()
    assert "\n## " not in text.split("\n", 1)[1]  # one title; the repaired part is a ###
    repairs = book.json("output/usage/section_02.json")["qc"]["repairs"]
    assert [r["repair"] for r in repairs].count("expand") >= 2


TOPIC = {k: v for k, v in SMALL_TOPIC.items() if k != "qc"}  # quality control as configured


def test_an_invalid_outline_reply_is_not_replayed_by_the_next_run(tmp_path):
    """Today's bug: the rerun replayed the cached invalid reply and failed the same way, making
    no call, although a new call would succeed."""
    once = {"defects": [{"kind": "invalid_json", "times": 1}]}
    book = Book(tmp_path / "book", {**TOPIC, "qc": {"max_attempts": 0}, "simulator": once})
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "the outline reply was still unusable after 1 attempt(s): it is not valid JSON" in (
        proc.stderr
    )
    assert book.json(".bookgen/failures/section_outline.json")["fresh"] is True
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(book.json("output/outline.json")["sections"]) == 3
    calls = book.json("output/usage/outline.json")["calls"]
    assert [c["status"] for c in calls] == ["ok", "ok"]  # a new call, not the cached reply
    assert notes(book) == []


def test_an_empty_reply_fails_its_section_by_name_and_is_asked_again(tmp_path):
    """Only reasoning, finish_reason stop: the section fails saying so; the next run asks
    again instead of replaying the empty reply."""
    sim = {"thinking": True, "faults": [{"kind": "empty_reply", "section": 2, "times": 1}]}
    book = Book(tmp_path / "book", {"sections": TIDES, "formats": [], "simulator": sim})
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "section_02 failed: the model's reply had no text (finish_reason stop, only" in (
        proc.stderr
    )
    assert "characters of reasoning" in proc.stderr
    assert notes(book) == [f"section_{book.key('02')}"]
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = book.json("output/usage/section_02.json")["calls"]
    assert [c["finish_reason"] for c in calls] == ["stop", "stop"]  # the empty one, then a new one
    assert calls[1]["completion_tokens"] > calls[0]["completion_tokens"]
