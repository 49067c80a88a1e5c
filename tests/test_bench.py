"""Smoke test of the benchmark harness (``python -m bench``) at the smallest scale.

It checks that the harness runs and its numbers are consistent, never how fast anything is.
"""

from __future__ import annotations

from bench import measure
from bench.report import render
from bench.schedule import best_schedule, lower_bound


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
