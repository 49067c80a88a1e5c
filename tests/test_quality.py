"""Quality checks as pure functions: the simulator's clean text passes every check, and each
defect the simulator can produce on purpose fails the check meant to catch it."""

from __future__ import annotations

import pytest

from bookgen.config import ConfigError, check_config, sections_from_config, template_text
from bookgen.config import validate_config as validate_book_config
from bookgen.simulator import content, defects, validate_config
from bookgen.writing.outline import apply_topic_layering
from bookgen.writing.prompts import fixed_prompt_texts
from bookgen.writing.quality import (
    CHECKS,
    Context,
    check_section,
    echo_patterns,
    fix_heading_levels,
    strip_chatter,
)
from bookgen.writing.quality_report import build_quality_report, render_markdown
from tests.conftest import load_config

SEED = {"seed": 0, "model": "deepseek-flash", "words_factor": 1.0}
TIDES = [
    {
        "title": "Ocean Tides",
        "key_points": ["gravitational pull of the moon", "spring and neap cycles", "tidal bores"],
        "words": 450,
    },
    {
        "title": "Coastal Erosion",
        "key_points": ["wave refraction around headlands", "longshore drift", "sea walls"],
        "words": 450,
    },
    {
        "title": "Estuaries",
        "key_points": ["salinity gradients", "sediment trapping", "mangrove nurseries"],
        "words": 450,
    },
]


def patterns(config: dict) -> list:
    templates = [template_text(config, "system"), template_text(config, "section")]
    return echo_patterns([*templates, *fixed_prompt_texts()])


def task_of(section) -> content.Task:
    return content.Task(section.number, 11, section.title, list(section.key_points), section.words)


def context(config: dict, section) -> Context:
    return Context(section.words, section.key_points, None, patterns(config))


def test_clean_demo_sections_pass_every_check(demo_config):
    for section in sections_from_config(demo_config):
        text = content.section_text(task_of(section), default_words=600, **SEED)
        verdicts = check_section(text, context(demo_config, section), demo_config["qc"])
        # part_overlap and seams only for a section written in parts
        assert [v.name for v in verdicts] == list(CHECKS[:-2])
        assert [v.name for v in verdicts if not v.passed] == [], section.title


def test_clean_planned_text_passes_the_heading_check(demo_config):
    section = sections_from_config(demo_config)[4]
    plan = content.plan_reply(task_of(section), 600)["subsections"]
    brief = content.Brief([content.BriefItem(s["heading"], s["words"]) for s in plan], True)
    text = content.brief_text(task_of(section), brief, **SEED)
    ctx = Context(section.words, section.key_points, [s["heading"] for s in plan], [])
    assert all(v.passed for v in check_section(text, ctx, demo_config["qc"]))
    missing = Context(section.words, section.key_points, [*ctx.planned_headings, "Pipelines"], [])
    (verdict,) = [v for v in check_section(text, missing, demo_config["qc"]) if not v.passed]
    assert verdict.name == "headings" and verdict.value["missing"] == ["Pipelines"]


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("truncated", "truncation"),
        ("too_short", "length"),
        ("missing_subsection", "key_points"),
        ("meta_text", "meta_text"),
        ("prompt_echo", "prompt_echo"),
        ("unbalanced_fence", "markdown"),
        ("unbalanced_math", "markdown"),
    ],
)
def test_each_simulated_defect_fails_its_check(kind, check):
    config = load_config({"sections": TIDES})
    section = sections_from_config(config)[0]
    rule = defects.DefectRule(kind=kind)
    text = defects.prose(rule, task_of(section), None, [], default_words=600, **SEED)
    failed = {
        v.name for v in check_section(text, context(config, section), config["qc"]) if not v.passed
    }
    assert check in failed


def test_chatter_and_echo_are_stripped_without_touching_the_text(demo_config):
    section = sections_from_config(demo_config)[0]
    clean = content.section_text(task_of(section), default_words=600, **SEED)
    noisy = (
        f"# Your task: section 1 of 11\nKey points to cover:\n\n{defects.CHATTER_BEFORE}\n\n"
        f"{clean.rstrip()}\n\n{defects.CHATTER_AFTER}\n"
    )
    stripped, removed = strip_chatter(noisy, patterns(demo_config))
    assert stripped == clean
    assert removed == [
        "# Your task: section 1 of 11",
        "Key points to cover:",
        "Certainly!",
        "Here is the section you asked for.",
        "I hope this helps!",
        "Let me know if you would like any changes.",
    ]


def test_heading_levels_are_fixed_locally():
    text = "## Title\n\nIntro.\n\n#### Deep\n\nText.\n\n### Part\n\nMore text.\n"
    fixed = fix_heading_levels(text)
    assert "### Deep" in fixed and "#### Deep" not in fixed
    ctx = Context(8, (), None, [])
    verdict = {v.name: v for v in check_section(text, ctx, load_config()["qc"])}["heading_levels"]
    assert not verdict.passed and "level 2 to 4" in verdict.detail


def test_a_textbook_sentence_is_not_chatter():
    text = (
        "## Money\n\nOf course, prices change. Here is an example of a budget: it costs $5 and "
        "$10 to feed a cat.\n\nSure enough, the numbers add up.\n"
    )
    verdicts = {
        v.name: v for v in check_section(text, Context(25, (), None, []), load_config()["qc"])
    }
    assert verdicts["meta_text"].passed and verdicts["markdown"].passed


def test_quality_report_flags_the_copy_and_the_uncovered_key_point():
    config = load_config({"sections": TIDES})
    sections = sections_from_config(config)
    texts = {s.id: content.section_text(task_of(s), default_words=600, **SEED) for s in sections}
    texts["03"] = texts["01"].replace("## Ocean Tides", "## Estuaries")  # a copy of section 1
    usage = {s.id: {"words": len(texts[s.id].split()), "simulated": True} for s in sections}
    report = build_quality_report(config, sections, texts, usage)
    by_id = {e["id"]: e for e in report["sections"]}
    (pair,) = report["overlapping_pairs"]
    assert pair["sections"] == ["01", "03"] and pair["overlap"] > 0.99
    assert by_id["03"]["closest_section"] == "01" and not by_id["03"]["passed"]
    assert by_id["03"]["checked"] == "by this report"  # no qc record in its usage file
    assert "key_points" in by_id["03"]["failed_checks"]
    assert {u["key_point"] for u in report["uncovered_key_points"]} == set(TIDES[2]["key_points"])
    assert by_id["02"]["passed"] and by_id["02"]["overlap"] < 0.35
    md = render_markdown(report)
    assert "01 and 03 | 100% (over the threshold)" in md and "salinity gradients" in md
    assert report["totals"]["overlapping_pairs"] == 1


def test_topic_on_the_command_line_replaces_the_demo_outline(demo_config):
    config = dict(demo_config, book=dict(demo_config["book"]))
    apply_topic_layering(config, {"topic": "Tides", "section_count": 4})
    assert config["sections"] == [] and config["book"]["title"] == "Tides"
    kept = dict(demo_config, book=dict(demo_config["book"]))
    apply_topic_layering(kept, {"topic": "Tides", "sections": TIDES, "book": {"title": "T"}})
    assert kept["sections"] == demo_config["sections"]  # the layer's own sections win
    assert kept["book"]["title"] == demo_config["book"]["title"]


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"qc": {"on_fail": "maybe"}}, ["on_fail", "maybe"]),
        ({"qc": {"min_words_ratio": 2}}, ["min_words_ratio"]),
        ({"planning": {"words_per_call": 5}}, ["words_per_call"]),
        ({"section_count": 0}, ["section_count"]),
    ],
)
def test_bad_quality_settings_name_the_field(settings, names):
    with pytest.raises(ConfigError) as info:
        validate_book_config({**load_config(), **settings})
    assert all(name in str(info.value) for name in names)


def test_a_book_needs_sections_or_a_topic(demo_config):
    with pytest.raises(ConfigError, match=r"sections.*give a `topic`"):
        check_config({**demo_config, "sections": []})
    check_config({**demo_config, "sections": [], "topic": "Tides"})


def test_simulator_defect_rules_are_validated():
    with pytest.raises(ValueError, match=r"defects\[0\]\.kind"):
        validate_config({"defects": [{"kind": "typo", "section": 2}]})
    rules = validate_config({"defects": [{"kind": "duplicate", "section": 3, "of": 1}]}).defects
    assert rules[0].of == 1 and rules[0].section_set() == frozenset({3})


def test_overlap_summary_equals_ranking_every_pair():
    from itertools import combinations

    from bookgen.writing.quality_report import TOP_PAIRS, summarise_overlaps

    ids = [f"{i:02d}" for i in range(1, 9)]
    values = [round((i * 37 % 11) / 10, 1) for i in range(28)]  # ties included
    pairs = dict(zip(combinations(ids, 2), values, strict=True))
    summary = summarise_overlaps(iter(pairs.items()), threshold=0.6)
    for sid in ids:  # the same as taking every pair of the section and its maximum
        others = [(v, b if a == sid else a) for (a, b), v in pairs.items() if sid in (a, b)]
        assert summary.closest[sid] == max(others)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    assert summary.top == ranked[:TOP_PAIRS]
    assert summary.over == [kv for kv in ranked if kv[1] > 0.6] and summary.over
