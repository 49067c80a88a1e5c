"""Smoke test of the benchmark harness (``python -m bench``) at the smallest scale.

It checks that the harness runs and its numbers are consistent, never how fast anything is.
"""

from __future__ import annotations

import os
import sys

from bench import measure
from bench.report import ratio_row, render, targets
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
            "runs": {"snakemake": {**run, "wall_s": 160.0}, "bookgen": run},
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
