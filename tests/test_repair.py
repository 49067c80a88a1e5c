"""Quality control with targeted repairs, planning and JSON retries, driven through the real
openai client against the in-process simulator, which spoils replies on purpose."""

from __future__ import annotations

import json
import shutil

import pytest

from bookgen import paths
from bookgen.config import ConfigError, template_text
from bookgen.provider.request_identity import request_key
from bookgen.simulator import Simulator
from bookgen.writing.errors import SectionFailed
from bookgen.writing.outline import book_sections, write_outline
from bookgen.writing.planning import group_parts
from bookgen.writing.prompts import part_messages, planned_task, section_messages
from bookgen.writing.repair import QualityFailed
from bookgen.writing.section import SectionWriter, run_section_job
from tests.conftest import load_config
from tests.test_faults import Sleeps, make_job
from tests.test_quality import TIDES

LONG = {"planning": {"min_words": 400, "words_per_call": 260}}


def job_for(tmp, defects=(), **overrides):
    return make_job(tmp, sim={"defects": list(defects)}, **{"sections": TIDES, **overrides})


def written(tmp, defects=(), **overrides) -> SectionWriter:
    writer = SectionWriter(job_for(tmp, defects, **overrides), sleep=Sleeps())
    writer.text = writer.write()
    return writer


def purposes(writer: SectionWriter) -> list[str]:
    return [c["purpose"] for c in writer.journal.records()]


@pytest.mark.parametrize(
    ("kind", "check", "repair", "calls"),
    [
        ("too_short", "length", "expand", None),
        ("missing_subsection", "key_points", "write_missing", 1),
        ("meta_text", "meta_text", "strip_chatter", 0),
        ("prompt_echo", "prompt_echo", "strip_chatter", 0),
        ("unbalanced_fence", "markdown", "rewrite", 1),
        ("unbalanced_math", "markdown", "rewrite", 1),
    ],
)
def test_defect_is_detected_repaired_and_recorded(tmp_path, kind, check, repair, calls):
    writer = written(tmp_path, [{"kind": kind, "section": 2, "times": 1}])
    qc = writer.qc
    assert qc["passed"] and not qc["flagged"] and qc["attempts"] == 1
    assert {r["repair"] for r in qc["repairs"]} == {repair}
    api_calls = sum(r["calls"] for r in qc["repairs"])
    assert api_calls >= 1 if calls is None else api_calls == calls
    assert purposes(writer) == ["write"] + ["repair"] * api_calls
    assert all(c["passed"] for c in qc["checks"])
    # The defect was there: the first reply failed the check the repair is for.
    log = writer.job.log.read_text().splitlines()
    detected = next(line for line in log if "repair round 1" in line)
    assert check in detected.split("quality control: ")[1].split(" failed")[0].split(", ")
    doc = writer.usage_document(writer.text, 1.0)
    assert doc["qc"] == qc and doc["totals"]["calls"] == 1 + api_calls


def test_clean_section_makes_no_repair_and_one_call(tmp_path):
    writer = written(tmp_path)
    assert writer.qc["passed"] and writer.qc["repairs"] == [] and purposes(writer) == ["write"]


def test_copy_of_another_section_is_written_again(tmp_path):
    writer = written(tmp_path, [{"kind": "duplicate", "section": 2, "of": 1, "times": 1}])
    log = writer.job.log.read_text()
    assert "quality control: key_points failed" in log  # it covers section 1's points instead
    assert writer.qc["repairs"] == [
        {"attempt": 1, "repair": "rewrite", "target": "the whole section", "calls": 1}
    ]
    assert writer.text.startswith("## Coastal Erosion\n")
    for point in TIDES[1]["key_points"]:
        assert f"### {point[0].upper()}{point[1:]}" in writer.text
    assert "gravitational" not in writer.text.lower()


SEQUENTIAL = {"planning": {**LONG["planning"], "parallel_parts": False}}


def test_long_section_is_planned_written_in_parts_and_the_plan_is_reused(tmp_path):
    writer = written(tmp_path, **SEQUENTIAL)
    assert purposes(writer) == ["plan", "write", "write"]
    plan_file = tmp_path / "output" / "plans" / f"section_{writer.job.section.key}.json"
    plan = json.loads(plan_file.read_text())
    headings = [s["heading"] for s in plan["subsections"]]
    assert headings == [*(p[0].upper() + p[1:] for p in TIDES[1]["key_points"]), "Summary"]
    assert writer.qc["planned"] and writer.qc["plan_file"] == str(plan_file)
    assert [h for h in headings if f"### {h}" not in writer.text] == []
    # Part 2 was sent the book outline, the plan and the text of part 1.
    job = writer.job
    cfg = job.config
    base = section_messages(
        template_text(cfg, "system"), template_text(cfg, "section"), cfg["book"], job.sections,
        job.section,
    )  # fmt: skip
    prefix = planned_task(base, plan["subsections"])
    groups = group_parts(plan["subsections"], LONG["planning"]["words_per_call"])
    assert len(groups) == 2
    first = part_messages(prefix, job.section.title, "", 1, 2, groups[0])
    part1 = writer.cache.get(request_key(writer.config, writer._request(first)))["text"].strip()
    second = part_messages(prefix, job.section.title, part1, 2, 2, groups[1])
    assert (
        "Ocean Tides" in second[0]["content"] and "# Plan of this section" in second[1]["content"]
    )
    assert second[2] == {"role": "assistant", "content": part1}
    hashes = [c["request_hash"] for c in writer.journal.records()]
    assert hashes[1:] == [request_key(writer.config, writer._request(m)) for m in (first, second)]
    # The plan call starts with the same book context as the writing calls (prefix cache).
    ledger = Simulator({}, state_dir=job.state_root / "simulator").ledger()
    assert ledger[1]["usage"]["prompt_cache_hit_tokens"] >= 64
    # A rerun without the response cache still reuses the stored plan: no plan call.
    shutil.rmtree(job.state_root / "cache")
    before = purposes(writer)
    again = SectionWriter(job_for(tmp_path, **SEQUENTIAL), sleep=Sleeps())
    assert again.write() == writer.text
    assert purposes(again) == [*before, "write", "write"]


def test_invalid_plan_json_is_retried_with_the_error(tmp_path):
    defect = {"kind": "wrong_json", "section": 2, "times": 1}
    writer = written(tmp_path, [defect], **LONG)
    assert purposes(writer) == ["plan", "plan", "write", "write"]
    log = writer.job.log.read_text()
    assert "'subsections' is a required property" in log
    job = job_for(tmp_path / "bad", [{"kind": "invalid_json", "section": 2}], **LONG)
    with pytest.raises(
        SectionFailed, match=r"plan reply was still unusable after 3.*not valid JSON"
    ):
        SectionWriter(job, sleep=Sleeps()).write()


def test_missing_planned_subsection_is_written_in_its_place(tmp_path):
    defect = {"kind": "missing_subsection", "section": 2, "times": 1, "subsection": 1}
    writer = written(tmp_path, [defect], planning={"min_words": 400, "words_per_call": 2000})
    (repair,) = writer.qc["repairs"]
    assert repair == {
        "attempt": 1,
        "repair": "write_missing",
        "target": "Wave refraction around headlands",
        "calls": 1,
    }
    order = [writer.text.index(f"### {h}") for h in ("Wave", "Longshore", "Sea walls", "Summary")]
    assert order == sorted(order)


def test_failed_quality_is_not_written_and_the_next_run_starts_afresh(tmp_path):
    short = [{"kind": "too_short", "section": 2, "fraction": 0.2}]
    job = job_for(tmp_path, short, qc={"max_attempts": 1})
    with pytest.raises(QualityFailed, match=r"length: \d+ words, target 450"):
        run_section_job(job)
    assert not job.out_md.exists() and not job.out_usage.exists()
    note = json.loads(paths.failure_note(job.section.key, job.state_root).read_text())
    assert note["qc"]["passed"] is False and "quality control failed" in note["error"]
    # The provider writes well again: the draft is asked for anew, not replayed from the cache.
    job = job_for(tmp_path, qc={"max_attempts": 1})
    run_section_job(job)
    usage = json.loads(job.out_usage.read_text())
    assert usage["qc"]["passed"] and usage["calls"][-1]["purpose"] == "write"
    assert not paths.failure_note(job.section.key, job.state_root).exists()


def test_warn_keeps_a_failing_section_flagged(tmp_path):
    short = [{"kind": "too_short", "section": 2, "fraction": 0.2}]
    job = job_for(tmp_path, short, qc={"max_attempts": 1, "on_fail": "warn"})
    run_section_job(job)
    usage = json.loads(job.out_usage.read_text())
    assert usage["qc"]["flagged"] and not usage["qc"]["passed"]
    assert [c["name"] for c in usage["qc"]["checks"] if not c["passed"]] == ["length"]
    assert job.out_md.exists()


def test_outline_is_validated_retried_and_written(tmp_path):
    topic = {"topic": "volcanoes", "section_count": 4, "section_words": 300, "sections": []}
    sim = {"defects": [{"kind": "invalid_json", "times": 1}]}
    config = load_config({"provider": "simulator", "simulator": sim, **topic})
    out, usage_file, log = (tmp_path / n for n in ("outline.json", "usage.json", "outline.log"))
    write_outline(config, out, usage_file, log, tmp_path / ".bookgen")
    outline = json.loads(out.read_text())
    assert outline["topic"] == "volcanoes" and len(outline["sections"]) == 4
    assert all(s["words"] == 300 and len(s["key_points"]) >= 1 for s in outline["sections"])
    usage = json.loads(usage_file.read_text())
    assert usage["section"] == "outline"
    assert [c["purpose"] for c in usage["calls"]] == ["outline", "outline"]
    assert "not valid JSON" in log.read_text()
    assert [s.id for s in book_sections(config, out)] == ["01", "02", "03", "04"]
    # A hand edit that breaks the outline is named before anything is spent.
    outline["sections"][1]["words"] = 10
    out.write_text(json.dumps(outline))
    with pytest.raises(ConfigError, match=r"outline\.json at sections\[1\]\.words: 10 is less"):
        book_sections(config, out)
