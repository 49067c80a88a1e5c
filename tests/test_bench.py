"""Smoke test of the benchmark harness (``python -m bench``) at the smallest scale.

It checks that the harness runs and its numbers are consistent, never how fast anything is.
"""

from __future__ import annotations

import os
import sys

from bench import measure, seed
from bench.measure import abba_order, big_run_order, summarise_big_runs, summarise_display
from bench.report import ratio_row, render, seed_section, seed_targets, targets
from bench.schedule import best_schedule, lower_bound
from bench.terminal import run_in_terminal


def test_ideal_makespan_of_whole_sections() -> None:
    assert lower_bound([3.0] * 24, 16) == 4.5
    assert best_schedule([3.0] * 24, 16) == 6.0  # 24 equal sections need 2 rounds on 16 slots
    assert best_schedule([3, 3, 2, 2, 2], 2) == 6  # LPT gives 7; the optimum is 3+3 | 2+2+2
    assert best_schedule([1.0, 2.0], 1) == 3.0


def test_bench_harness_runs_at_small_scale(tmp_path) -> None:
    settings = measure.Settings(
        sections=2, cores=(2,), reps=1, section_s=0.4, ttft_s=0.1, words=60, timeout_s=120
    )
    result = measure.parallel(settings, tmp_path, log=lambda msg: None)
    runs = result["runs"]
    assert [r["system"] for r in runs] == ["bookgen", "baseline"]
    for run in runs:
        assert run["requests"] == run["sections"] == 2  # one billed request per section
        assert 0 < run["ideal_best_s"] <= run["wall_s"]
        assert run["max_open_requests"] <= 2
    results = {
        "mode": "quick",
        "started": "now",
        "duration_s": 1.0,
        "machine": {
            "cores": 2,
            "cpu": "x",
            "memory_gib": 1,
            "os": "x",
            "python": "3",
            "packages": {},
            "commit": "x",
        },
        "settings": settings.as_dict(),
        "parallel": result,
    }
    text = render(results, tmp_path / "no-notes.md")
    assert "bookgen / thread pool" in text and "| 2 |" in text


def test_a_command_in_a_terminal_is_read_to_its_end_and_sees_a_terminal(tmp_path) -> None:
    # 1 MB: many times a pty's buffer, so the run would block if the output were not drained
    code = (
        "import os, sys; print(sys.stdout.isatty(), sys.stderr.isatty(), os.get_terminal_size())"
        "; sys.stdout.write('x' * 1_000_000); sys.stdout.flush(); sys.exit(3)"
    )
    run = run_in_terminal([sys.executable, "-c", code], tmp_path, dict(os.environ), 60, (90, 30))
    assert run.returncode == 3
    first = run.text().splitlines()[0]
    assert first == "True True os.terminal_size(columns=90, lines=30)"
    assert run.output.count(b"x") == 1_000_000


def test_ratio_rows_say_met_not_met_or_not_measured() -> None:
    assert measure.ratio(1.1, 1.0) == 1.1
    assert measure.ratio(None, 1.0) is None and measure.ratio(1.0, 0.0) is None
    assert ratio_row("run / reference", 1.19, 1.2, " (119 s / 100 s)") == [
        "run / reference",
        "<= 1.2",
        "1.19 (119 s / 100 s)",
        "met",
    ]
    assert ratio_row("x", 1.06, 1.05)[3] == "**not met**"
    assert ratio_row("x", None, 1.05)[2:] == ["not measured", "n/a"]


def test_targets_compare_with_the_reference_and_without_the_display() -> None:
    reference = {"commit": "abc1234", "dry_run_s": 3.0, "runs_s": [3.0], "load1": [1.0]}
    run = {"sections": 1000, "wall_s": 170.0, "requests": 1000, "sections_written": 1000}
    run |= {"report_sections": 1000, "load1": 1.0, "terminal_bytes": 10}
    run |= {"snakemake_rss_mb": {"10%": 1, "50%": 1, "90%": 1}, "snakemake_peak_mb": 1}
    results = {
        "scale": {"rows": [{"sections": 1000, "dry_run_s": 3.9, "reference": reference}]},
        "big_run": {
            **run,
            "runs": [{**run, "name": "snakemake", "wall_s": 160.0}, {**run, "name": "bookgen"}],
            "plain_wall_s": 160.0,
            "display_ratio": 1.062,
            "reference": {"commit": "abc1234", "wall_s": 150.0, "ratio": 1.067},
        },
    }
    results["scale"]["rows"][0]["reference"]["ratio"] = 1.3
    results["big_run"]["reference"]["ratio_default"] = 1.133
    rows = {row[0]: row[2:] for row in targets(results)}
    assert rows["4. dry run, 1000 sections, this code / abc1234 (same bench run)"] == [
        "1.3 (3.9 s / 3.0 s)",
        "**not met**",
    ]
    assert rows["4. dry run, 1000 sections, against results.md at 7ae322d (3.46 s, another day)"]
    key = "4. 1000-section run, this code / abc1234 (same bench run, both with Snakemake's logger)"
    assert rows[key] == ["1.067 (160.0 s / 150.0 s; with the live display: 1.133)", "met"]
    key = "4. 1000-section run, live display / Snakemake's logger (in a terminal)"
    assert rows[key] == ["1.062 (170.0 s / 160.0 s)", "**not met**"]


def test_big_runs_alternate_around_the_reference_and_compare_summed_times() -> None:
    assert abba_order(("a", "b"), 3) == ["a", "b", "b", "a", "a", "b"]
    assert big_run_order(2, reference=True) == [
        "snakemake",
        "bookgen",
        "reference",
        "bookgen",
        "snakemake",
    ]
    assert big_run_order(1, reference=False) == ["snakemake", "bookgen"]
    walls = {"snakemake": [100.0, 120.0], "bookgen": [105.0, 115.0], "reference": [200.0]}
    runs = []
    for name in big_run_order(2, reference=True):
        wall = walls[name].pop(0)
        runs.append({"name": name, "wall_s": wall, "cpu_s": wall / 2, "sections": 10})
    s = summarise_big_runs(runs, "abc1234")
    # a machine slowing down through the runs: each side's sum cancels the drift
    assert s["display_ratio"] == 1.0 and s["display_cpu_ratio"] == 1.0
    assert s["wall_s"] == 110.0 and s["plain_wall_s"] == 110.0 and s["sections"] == 10
    assert s["reference"] == {
        "commit": "abc1234",
        "wall_s": 200.0,
        "ratio": 0.55,
        "ratio_default": 0.55,
        "cpu_ratio": 0.55,
    }
    assert [r["name"] for r in s["runs"]] == big_run_order(2, reference=True)


def _call(section: int, start: float, latency: float) -> dict:
    return {"section": section, "received_unix_s": start, "latency_s": latency}


def test_seed_limit_ratios_and_rendering_from_a_ledger() -> None:
    # two sections of a plan and 3 parts each, section 2 with a repair after its parts
    ledger = [
        _call(1, 100.0, 1.0),  # plan
        *(_call(1, 101.1 + i / 100, lat) for i, lat in enumerate((4.0, 2.0, 3.0))),
        _call(2, 100.0, 2.0),
        *(_call(2, 102.1 + i / 100, lat) for i, lat in enumerate((1.0, 5.0, 1.0))),
        _call(2, 107.5, 0.5),  # a repair: neither plan nor part
    ]
    lim = seed.limits(list(reversed(ledger)), parts=3, workers=2)
    assert lim["parallel_s"] == 7.0  # section 2: plan 2 + longest part 5 (section 1: 1 + 4)
    assert lim["sequential_s"] == 10.0  # plan and parts one after another: 1 + 9, 2 + 7
    assert lim["pool_s"] == 10.0  # one section per thread
    assert lim["repair_calls"] == 1
    timed = measure.Timed(wall_s=10.0, cpu_s=1.0, started_unix_s=98.0, load1=0.0)
    where = seed.where_time_goes(ledger, 3, timed)
    assert where["to_first_request_s"] == 2.0 and where["after_last_reply_s"] == 0.0
    assert where["plan_to_first_part_s"] == {"median": 0.1, "max": 0.1}
    runs = [
        {"system": "seed", "rep": 0, "wall_s": 200.0, "limit_s": 190.0},
        *(
            {"system": "sequential", "rep": rep, "wall_s": wall, "limit_s": 40.0}
            for rep, wall in enumerate((50.0, 44.0, 60.0))
        ),
        *(
            {"system": "parallel", "rep": rep, "wall_s": wall, "limit_s": limit}
            for rep, (wall, limit) in enumerate(((10.0, 8.0), (12.0, 8.0), (11.0, 10.0)))
        ),
    ]
    su = seed.summarise(runs)
    assert su["parallel_wall_s"] == 11.0 and su["limit_s"] == 8.0
    assert su["parallel_over_limit"] == 1.25  # per run 1.25, 1.5, 1.1: the median
    assert su["seed_over_parallel"] == 18.18 and su["sequential_over_parallel"] == 4.55
    assert su["parallel_beyond_limit_s"] == 2.0 and su["limit_over_seed_limit"] == 0.0421
    real = seed.at_real_scale(su)
    assert real["parallel_min"] == round(110 / 18.18, 1) == 6.1
    assert real["parallel_scaled_min"] == round(110 * 0.0421 + 2 / 60, 1) == 4.7
    rows = {row[0]: row for row in seed_targets(su, [])}
    assert rows["13. seed-scale book, parallel parts (c) / physical limit"][3] == "met"
    assert rows["13. seed's design (a) / parallel parts (c)"][3] == "**not met**"
    quality = {
        "part_overlap_median": 0.2,
        "part_overlap_max": 0.25,
        "seam_problems": 0,
        "repairs": 1,
        "repair_calls": 1,
        "repairs_by_kind": {"part_overlap": 1},
        "passed": 11,
        "flagged": 0,
    }
    for run in runs:
        run.update(
            cpu_s=1.0,
            load1=0.5,
            requests=77,
            max_open_requests=66,
            to_first_request_s=2.0,
            after_last_reply_s=1.0,
            plan_to_first_part_s={"median": 0.1, "max": 0.2},
        )
        if run["system"] != "seed":
            run.update(quality=quality, cost={"hit_share": 0.8, "cost_usd": 0.01})
    result = {
        "settings": seed.SeedSettings().as_dict(),
        "calibration": {
            "plan_tokens": 300,
            "part_tokens": [2000, 1100],
            "part_words": [1400, 800],
            "simulator": {"ttft_s": 0.3, "tokens_per_s": 250},
        },
        "runs": runs,
        "summary": su,
        "real_scale": real,
    }
    text = "\n".join(seed_section(result, None))
    assert "`--cores 66 --resources api=66` | 3 | 11.0 | 8.0 |" in text
    assert "110 / 18.18 = **6.1 minutes**" in text
    assert "| (b) rep 1 | 44.0 | 0.2 / 0.25 | 0 | 1 (1 calls: part_overlap 1) |" in text


def test_the_display_s_handover_pools_every_handover_of_the_reps() -> None:
    def run(rep: int, logger: str, gaps: list[float]) -> dict:
        return {
            "rep": rep,
            "logger": logger,
            "handover_gaps_s": gaps,
            "wall_s": 60.0,
            "cpu_s": 10.0,
        }

    # per run, the board looks 10% slower or faster by turns (a drifting machine); pooled,
    # the two sides' handovers are the same
    runs = [
        run(0, "bookgen", [0.044, 0.044, 0.044]),
        run(0, "snakemake", [0.040, 0.040, 0.040]),
        run(1, "snakemake", [0.044, 0.044, 0.044]),
        run(1, "bookgen", [0.040, 0.040, 0.040]),
        run(2, "bookgen", [0.042, 0.042, 0.042]),
        run(2, "snakemake", [0.042, 0.042, 0.042]),
    ]
    s = summarise_display(runs, 24)
    assert s["pairs"] == 3 and s["handover_s"] == s["plain_handover_s"] == 0.042
    assert s["handover_ratio"] == 1.0 and s["wall_ratio"] == 1.0
    lo, hi = s["handover_ratio_90"]
    assert lo < 1.0 < hi and hi <= 1.1  # resampling reps: 1.1 when only rep 0 is drawn
    assert summarise_display(runs, 24) == s  # seeded: the same runs, the same interval
    # a display that really costs 5 ms per handover shows in every pair and the interval
    slower = [
        dict(r, handover_gaps_s=[g + 0.005 for g in r["handover_gaps_s"]])
        if r["logger"] == "bookgen"
        else r
        for r in runs
    ]
    s = summarise_display(slower, 24)
    assert s["handover_ratio"] == round(0.047 / 0.042, 3) and s["handover_ratio_90"][0] > 1.0
