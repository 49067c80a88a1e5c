"""A planned section's parts: their prompts, the checks where parts meet, and parts as jobs of
the build graph (real snakemake CLI, in-process simulator)."""

from __future__ import annotations

import json
import re

from bookgen.writing.planning import group_parts
from bookgen.writing.prompts import parallel_part_messages, plan_messages, planned_task
from bookgen.writing.quality import Context, check_part_overlap, check_seams, join_parts
from bookgen.writing.section import SectionWriter
from tests.book import Book
from tests.conftest import load_config
from tests.test_faults import Sleeps
from tests.test_repair import job_for

QC = load_config({})["qc"]
PLAN = [
    {"heading": "Waves", "covers": "how waves form", "words": 200},
    {"heading": "Drift", "covers": "longshore drift", "words": 200},
    {"heading": "Walls", "covers": "sea walls", "words": 200},
]
PARTS = [["Waves"], ["Drift"], ["Walls"]]
# Three sections, the middle one planned into three parts of one subsection each.
BOOK = [
    {"title": "Tides", "key_points": ["the moon", "spring tides"], "words": 300},
    {
        "title": "Coastal Erosion",
        "key_points": ["wave refraction around headlands", "longshore drift", "sea walls"],
        "words": 900,
    },
    {"title": "Estuaries", "key_points": ["salinity", "sediment"], "words": 300},
]
PLANNING = {"min_words": 800, "words_per_call": 300}


def prose(seed: str, n: int = 80) -> str:
    return " ".join(f"{seed}{i}" for i in range(n)) + "."


# -- prompts -------------------------------------------------------------------------------------


def test_a_part_prompt_is_the_shared_prefix_then_the_plan_its_brief_and_its_neighbours():
    base = [
        {"role": "system", "content": "BOOK CONTEXT AND OUTLINE"},
        {"role": "user", "content": "TASK OF SECTION 2"},
    ]
    prefix = planned_task(base, PLAN)
    groups = group_parts(PLAN, 250)
    assert len(groups) == 3
    middle = parallel_part_messages(prefix, "Coastal Erosion", 2, groups)
    assert middle[0] == base[0]  # the same first message as every call (prefix cache)
    ask = middle[1]["content"]
    # the task and the whole plan first, as in the plan request and every other part
    assert ask.startswith(prefix[1]["content"])
    assert plan_messages(base, _section())[1]["content"].startswith("TASK OF SECTION 2")
    own = ask.split("Subsections to write now, in this order:")[1]
    assert own.splitlines()[1].startswith("### Drift (about 200 words)")
    assert "Part 1 of 3 (before this one):\n### Waves" in own
    assert "Part 3 of 3 (after this one):\n### Walls" in own
    assert "no section title" in ask
    first = parallel_part_messages(prefix, "Coastal Erosion", 1, groups)[1]["content"]
    assert "`## Coastal Erosion`" in first and "Part 2 of 3 (after this one)" in first
    assert "before this one" not in first


def _section():
    from bookgen.config import sections_from_config

    return sections_from_config({"sections": BOOK})[1]


# -- checks where parts meet -------------------------------------------------------------------


def test_parts_that_repeat_each_other_fail_part_overlap():
    ctx = Context(target_words=300, parts=PARTS)
    clean = (
        f"## T\n\nIntro.\n\n### Waves\n\n{prose('a')}\n\n### Drift\n\n{prose('b')}\n\n"
        f"### Walls\n\n{prose('c')}\n"
    )
    verdict = check_part_overlap(clean, ctx, QC)
    assert verdict.passed and verdict.value["max"] == 0.0
    repeat = clean.replace(f"### Walls\n\n{prose('c')}", f"### Walls\n\n{prose('b')}")
    verdict = check_part_overlap(repeat, ctx, QC)
    assert not verdict.passed
    [pair] = verdict.value["over"]
    assert pair["parts"] == [2, 3] and pair["overlap"] > 0.9


def test_seams_catch_a_neighbours_subsection_and_a_second_title_and_join_parts_mends_them():
    ctx = Context(target_words=300, parts=PARTS)
    text = (
        f"## T\n\nIntro.\n\n### Waves\n\n{prose('a')}\n\n### Drift\n\n{prose('b')}\n\n"
        f"## T\n\n### Waves\n\n{prose('a')}\n\n### Walls\n\n{prose('c')}\n"
    )
    verdict = check_seams(text, ctx)
    assert not verdict.passed
    assert verdict.value == ["the section title again at line 13", "the subsection 'Waves' twice"]
    mended, dropped = join_parts(text, PARTS)
    assert dropped == 2 and check_seams(mended, ctx).passed
    assert mended.count("### Waves") == 1 and mended.index("### Waves") < mended.index("### Drift")


def test_a_part_that_repeats_its_neighbour_is_rewritten_once(tmp_path):
    defect = {"kind": "repeats_neighbour", "section": 2, "times": 1}
    writer = SectionWriter(
        job_for(tmp_path, [defect], planning={"min_words": 400, "words_per_call": 160}),
        sleep=Sleeps(),
    )
    text = writer.write()
    qc = writer.qc
    log = writer.job.log.read_text()
    assert "quality control: part_overlap failed; repair round 1" in log
    assert qc["passed"] and [r["repair"] for r in qc["repairs"]] == ["rewrite_part"]
    assert qc["repairs"][0]["calls"] == 1
    checks = {c["name"]: c for c in qc["checks"]}
    assert checks["part_overlap"]["passed"] and checks["seams"]["passed"]
    plan = json.loads(next(writer.job.output_root.glob("plans/*.json")).read_text())
    assert [text.count(f"### {s['heading']}\n") for s in plan["subsections"]] == [1] * len(
        plan["subsections"]
    )


# -- parts as jobs of the graph ------------------------------------------------------------------


def _jobs(proc) -> list[tuple[str, str]]:
    """``(message, reason)`` of every job a dry run lists."""
    out, message = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        if line.startswith("Job ") and ": " in line:
            message = line.split(": ", 1)[1]
        elif line.lower().startswith("reason:") and message:
            out.append((message, line.split(":", 1)[1].strip()))
            message = None
    return out


def _parts(book: Book) -> list:
    return sorted(book.path.glob("output/parts/*/part_*.md"))


def test_parts_are_jobs_the_dry_run_lists_and_a_resumed_run_keeps(tmp_path):
    book = Book(tmp_path / "book", {"sections": BOOK, "planning": PLANNING})
    key = book.key("02")
    # Before the plan exists: the plan is a checkpoint; the parts follow once it is written.
    jobs = _jobs(book.run("--dry-run", "output/section_02.md"))
    assert [m for m, _ in jobs] == [
        "Planning a long section (log: output/logs/parts/section_" + key + ".plan.log)",
        "Writing section 02 (log: output/logs/section_02.log)",
    ]
    proc = book.run("--cores", "1", f"output/plans/section_{key}.json")
    assert proc.returncode == 0, proc.stderr
    plan = book.json(f"output/plans/section_{key}.json")["subsections"]
    count = len(group_parts(plan, PLANNING["words_per_call"]))
    assert count == 4  # three key points and a summary, about 200 words each
    numbers = range(1, count + 1)
    jobs = _jobs(book.run("--dry-run", "output/section_02.md"))
    parts = [(m, r) for m, r in jobs if m.startswith("Writing part")]
    assert sorted(m.split(" (")[0] for m, _ in parts) == [
        f"Writing part {k} of a long section" for k in numbers
    ]
    assert all(r.startswith("Missing output files: output/parts/") for _, r in parts)
    # One part finished, then the run stops (as a killed run would have it).
    proc = book.run("--cores", "1", f"output/parts/section_{key}/part_2.md")
    assert proc.returncode == 0, proc.stderr
    jobs = _jobs(book.run("--dry-run", "output/section_02.md"))
    assert sorted(m.split(" (")[0] for m, _ in jobs) == [
        *(f"Writing part {k} of a long section" for k in numbers if k != 2),
        "Writing section 02",
    ]
    # `snakemake output/section_02.md` builds the section with its parts; part 2 is not redone.
    proc = book.run("--cores", "4", "output/section_02.md")
    assert proc.returncode == 0, proc.stderr
    assert not book.file("output/section_01.md").exists()
    usage = book.json("output/usage/section_02.json")
    calls = [(c["purpose"], c.get("part"), c["status"]) for c in usage["calls"]]
    assert sorted(calls, key=str) == sorted(
        [("plan", None, "ok"), *(("write", k, "ok") for k in numbers)], key=str
    )
    text = book.file("output/section_02.md").read_text()
    assert text.startswith("## Coastal Erosion\n")
    for k in numbers:
        part = book.file(f"output/parts/section_{key}/part_{k}.md").read_text().strip()
        assert part in text
        doc = book.json(f"output/parts/section_{key}/part_{k}.json")
        assert [c["part"] for c in doc["calls"]] == [k] and doc["of"] == count
    checks = {c["name"] for c in usage["qc"]["checks"]}
    assert {"part_overlap", "seams"} <= checks and usage["qc"]["passed"]
    # The whole book: every part's calls are in the cost report; nothing is redone.
    proc = book.run("--cores", "4")
    assert proc.returncode == 0, proc.stderr
    report = book.json("output/cost_report.json")
    row = next(r for r in report["sections"] if r["id"] == "02")
    assert row["calls"] == 1 + count
    assert report["totals"]["calls"] == 3 + count
    assert "Nothing to be done" in book.run("--dry-run").stdout


def test_sequential_parts_are_a_chain_each_seeing_the_text_so_far(tmp_path):
    planning = {**PLANNING, "parallel_parts": False}
    book = Book(tmp_path / "book", {"sections": BOOK, "planning": planning})
    key = book.key("02")
    proc = book.run("--cores", "4", "output/section_02.md")
    assert proc.returncode == 0, proc.stderr
    # Each part needs the one before it: an edited part 1 makes every later part pending.
    with book.file(f"output/parts/section_{key}/part_1.md").open("a") as f:
        f.write("\nAn edit.\n")
    jobs = _jobs(book.run("--dry-run", "output/section_02.md"))
    assert sorted(m.split(" (")[0] for m, _ in jobs) == [
        *(f"Writing part {k} of a long section" for k in (2, 3, 4)),
        "Writing section 02",
    ]
    log = book.file(f"output/logs/parts/section_{key}.part_4.log").read_text()
    assert re.search(r"writing part 4 of 4", log)
    journal = [json.loads(line) for line in book.journal("02").read_text().splitlines()]
    writes = [r for r in journal if r["purpose"] == "write" and not r.get("unfinished")]
    assert [r["part"] for r in writes] == [1, 2, 3, 4]
