"""Run the benchmark and write ``bench/results.json`` and ``bench/results.md``.

    python -m bench            # the full suite (about 45 minutes on 2 cores)
    python -m bench --only seed  # issue 13's seed-scale book alone (about 7 minutes)
    python -m bench --quick    # a small smoke run (about a minute), into bench/quick/

Everything runs against bookgen's simulator on loopback (or in-process); nothing leaves the
machine. Scratch books live in ``bench/work/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import measure, seed
from bench.machine import describe, load1
from bench.report import render

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MEASUREMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "parallel": measure.parallel,
    "overhead": measure.overhead,
    "scale": measure.scale,
    "memory": measure.memory,
    "caching": measure.caching,
    "slurm": measure.slurm,  # the demo book on the local SLURM (scripts/setup-slurm.sh)
    "seed": seed.measure,  # issue 13: a seed-scale book of planned sections, three ways
    "big_run": measure.big_run,  # the longest: last, so a cut-short run keeps the rest
}


def wait_for_quiet(max_load: float, max_wait_s: float, log: Callable[[str], None]) -> None:
    """Wait (up to ``max_wait_s``) until the 1-minute load is below ``max_load``."""
    deadline = time.monotonic() + max_wait_s
    while load1() > max_load and time.monotonic() < deadline:
        log(f"load {load1()} > {max_load}: waiting 30 s for a quieter machine")
        time.sleep(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, fast smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(MEASUREMENTS),
        help="run only these measurements, keeping the others' results from results.json",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where results.* go (default: bench/, or bench/quick/ for --quick, so a smoke run "
        "never replaces the committed full results)",
    )
    parser.add_argument("--work", type=Path, default=BENCH / "work", help="scratch directory")
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="first wait (up to 10 min) until the 1-minute load is below this",
    )
    parser.add_argument("--section-s", type=float, help="seconds per section (default 5)")
    parser.add_argument(
        "--reps", type=int, help="runs per --cores with a target, and of seed (b), (c) (default 3)"
    )
    parser.add_argument(
        "--reference",
        default=measure.REFERENCE,
        help="commit whose code runs the 1,000-section dry run and run next to this one's, in "
        f"the same bench run (default {measure.REFERENCE}, before parts; 'none': skip)",
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite results.md from results.json"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = BENCH / "quick" if args.quick else BENCH
    if args.render:
        results = json.loads((args.out / "results.json").read_text())
        (args.out / "results.md").write_text(render(results, BENCH / "notes.md"))
        return 0

    settings = measure.Settings.quick() if args.quick else measure.Settings()
    if args.section_s:
        settings.section_s = args.section_s
    seed_settings = seed.SeedSettings.quick() if args.quick else seed.SeedSettings()
    if args.reps:
        settings.reps = seed_settings.reps = args.reps
    settings.reference = None if args.reference.lower() == "none" else args.reference

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.max_load is not None:
        wait_for_quiet(args.max_load, 600, log)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    previous = args.out / "results.json"
    results: dict[str, Any] = (
        json.loads(previous.read_text()) if args.only and previous.exists() else {}
    )
    run_info = {
        "mode": "quick" if args.quick else "full",
        "machine": describe(REPO),
        "settings": settings.as_dict(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    whole = not results  # a whole run, or the first with --only: the run's own info
    if whole:
        results.update(run_info)
    if args.only:  # the others' run info stays; this one is kept with each measurement
        results.setdefault("reruns", {}).update({name: run_info for name in args.only})
    t0 = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fn in MEASUREMENTS.items():
        if args.only and name not in args.only:
            continue
        log(f"{name} (load {load1()})")
        results[name] = fn(seed_settings if name == "seed" else settings, args.work, log)
        if whole:
            results["duration_s"] = round(time.monotonic() - t0, 1)
        # written after every measurement: a run cut short keeps what it measured
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "results.md").write_text(render(results, BENCH / "notes.md"))
    log(f"wrote {args.out / 'results.md'} and results.json in {time.monotonic() - t0:.1f} s")
    shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
