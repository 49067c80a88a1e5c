"""Issue 13's benchmark: a seed-scale book (11 sections, each planned into 6 parts) against the
loopback simulator, written three ways in one run:

(a) the seed's design: ``python -m bench.baseline --workers 2`` (two threads, each writing one
    section at a time: its plan, then its parts one after another);
(b) bookgen with ``planning.parallel_parts: false``, ``--cores 11 --resources api=11``;
(c) bookgen with parallel parts, ``--cores 66 --resources api=66`` (every part of the book at
    once: ``--cores`` bounds the jobs running at once, ``api`` the requests in flight).

The physical limit comes from the simulator's own ledger (each request from its arrival to its
last byte): per section its plan call plus its longest part (parallel) or all its parts
(sequential); the book's limit is the longest section. Each run starts from a clean book and a
fresh simulator (no response cache, no prefix cache carried over).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.measure import Timed, _max_overlap, clean, loopback_overrides, run_baseline, run_bookgen
from bench.schedule import best_schedule
from bookgen.config import sections_from_config, template_text
from bookgen.provider.client import make_client, stream_call
from bookgen.run.cluster import slurm_plugin_installed
from bookgen.writing.planning import check_plan, group_parts, normalise_plan
from bookgen.writing.prompts import (
    parallel_part_messages,
    plan_messages,
    planned_task,
    section_messages,
)
from bookgen.writing.structured import JSON_MODE, parse_reply
from tests.book import Book
from tests.conftest import load_config
from tests.loopback import LoopbackSimulator

SYSTEMS = ("seed", "sequential", "parallel")  # (a), (b), (c)
# Key points with words of their own (points that differ by a number alone read as one topic
# to the overlap and heading checks)
WORDS = (  # noqa: SIM905 (a list of 83 names reads better as words)
    "hydrogen helium lithium beryllium boron carbon nitrogen oxygen fluorine neon sodium "
    "magnesium aluminium silicon phosphorus sulfur chlorine argon potassium calcium "
    "scandium titanium vanadium chromium manganese iron cobalt nickel copper zinc gallium "
    "germanium arsenic selenium bromine krypton rubidium strontium yttrium zirconium "
    "niobium molybdenum technetium ruthenium rhodium palladium silver cadmium indium tin "
    "antimony tellurium iodine xenon caesium barium lanthanum cerium praseodymium "
    "neodymium promethium samarium europium gadolinium terbium dysprosium holmium erbium "
    "thulium ytterbium lutetium hafnium tantalum tungsten rhenium osmium iridium platinum "
    "gold mercury thallium lead bismuth"
).split()


@dataclass
class SeedSettings:
    """The seed-scale book and the latency model. With 6 key points the simulator plans 7
    subsections (one per point, then a summary); ``words_per_call`` keeps every point a part
    of its own and puts the summary with the last point: 6 parts."""

    sections: int = 11
    parts: int = 6  # what the planner must yield (checked before the runs)
    key_points: int = 6
    words: int = 6000
    min_words: int = 2000
    words_per_call: int = 1400
    part_s: float = 6.0  # a part's mean latency at the simulator
    ttft_s: float = 0.3
    workers: int = 2  # the seed's thread pool
    reps: int = 3  # runs of (b) and (c)
    seed_reps: int = 1  # runs of (a): about 6 rounds of 7 calls; its overheads are negligible
    timeout_s: float = 900

    @classmethod
    def quick(cls) -> SeedSettings:
        return cls(sections=4, words=1800, min_words=1000, words_per_call=400, part_s=1.5, reps=1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_sections(c: SeedSettings) -> list[dict[str, Any]]:
    return [
        {
            "title": f"Chapter {i}: Topic {i}",
            "key_points": [
                f"{WORDS[k % len(WORDS)]} in {WORDS[(k + 37) % len(WORDS)]} systems"
                for k in range((i - 1) * c.key_points, i * c.key_points)
            ],
            "words": c.words,
        }
        for i in range(1, c.sections + 1)
    ]


def seed_overrides(c: SeedSettings, base_url: str, parallel: bool) -> dict[str, Any]:
    planning = {
        "min_words": c.min_words,
        "words_per_call": c.words_per_call,
        "parallel_parts": parallel,
    }
    return {**loopback_overrides(seed_sections(c), base_url), "planning": planning}


def calibrate(c: SeedSettings, work: Path) -> dict[str, Any]:
    """One section planned and written in parts by the in-process simulator: the tokens of its
    plan reply and of each part (parallel prompts), and so the latency model. Raises when the
    simulator does not plan ``c.parts`` parts."""
    overrides = seed_overrides(c, "", True)
    del overrides["base_url"]
    config = load_config({**overrides, "provider": "simulator"})
    sections = sections_from_config(config)
    tmp = work / "calibrate"
    client = make_client(config, tmp)
    system, task = template_text(config, "system"), template_text(config, "section")
    section = sections[0]
    base = section_messages(system, task, config["book"], sections, section)
    model = config["model"]
    out = stream_call(
        client, {"model": model, "messages": plan_messages(base, section), **JSON_MODE}
    )
    data = parse_reply(out.text, "plan.schema.yaml")
    check_plan(data)
    plan = normalise_plan(data, section)
    groups = group_parts(plan, c.words_per_call)
    if len(groups) != c.parts:
        raise RuntimeError(
            f"the simulator plans {len(groups)} parts per section, not {c.parts}: change "
            "SeedSettings.words / key_points / words_per_call"
        )
    prefix = planned_task(base, plan)
    part_tokens = []
    for number in range(1, len(groups) + 1):
        msgs = parallel_part_messages(prefix, section.title, number, groups)
        part_tokens.append(stream_call(client, {"model": model, "messages": msgs}).usage)
    shutil.rmtree(tmp, ignore_errors=True)
    tokens = [u["completion_tokens"] for u in part_tokens]
    mean = statistics.mean(tokens)
    return {
        "plan_tokens": out.usage["completion_tokens"],
        "part_tokens": tokens,
        "part_words": [sum(s["words"] for s in g) for g in groups],
        "simulator": {
            "ttft_s": c.ttft_s,
            "tokens_per_s": round(mean / (c.part_s - c.ttft_s), 1),
        },
    }


# -- pure logic: the limit from a ledger, the ratios ----------------------------------------------


def section_calls(entries: list[dict[str, Any]], parts: int) -> dict[int, dict[str, Any]]:
    """Each section's plan call (its first request) and its ``parts`` part calls (the next
    ones: a part job starts only once the plan exists, and a repair only once every part is
    written); the rest (repairs) apart. Latencies in seconds."""
    by_section: dict[int, list[dict[str, Any]]] = {}
    for e in entries:
        by_section.setdefault(e["section"], []).append(e)
    out = {}
    for sid, calls in by_section.items():
        calls.sort(key=lambda e: e["received_unix_s"])
        out[sid] = {
            "plan": calls[0],
            "parts": calls[1 : 1 + parts],
            "after": calls[1 + parts :],
        }
    return out


def limits(entries: list[dict[str, Any]], parts: int, workers: int) -> dict[str, Any]:
    """The physical limits from the simulator's per-request latencies (arrival to last byte):
    ``parallel``: the longest plan + longest part of a section; ``sequential``: the longest
    plan + all parts of a section; ``pool``: whole sections (plan and parts one after another)
    on ``workers`` threads, best schedule."""
    calls = section_calls(entries, parts)
    par, seq = {}, {}
    for sid, c in calls.items():
        plan, lat = c["plan"]["latency_s"], [p["latency_s"] for p in c["parts"]]
        par[sid] = plan + max(lat, default=0.0)
        seq[sid] = plan + sum(lat)
    return {
        "parallel_s": round(max(par.values()), 3),
        "sequential_s": round(max(seq.values()), 3),
        "pool_s": round(best_schedule(list(seq.values()), workers), 3),
        "plan_s": round(statistics.median(c["plan"]["latency_s"] for c in calls.values()), 3),
        "part_s": round(
            statistics.median(p["latency_s"] for c in calls.values() for p in c["parts"]), 3
        ),
        "longest_part_s": round(max(p["latency_s"] for c in calls.values() for p in c["parts"]), 3),
        "repair_calls": sum(len(c["after"]) for c in calls.values()),
    }


def where_time_goes(entries: list[dict[str, Any]], parts: int, timed: Timed) -> dict[str, Any]:
    """A run's wall time against the provider's: start-up to the first request, each section's
    plan reply to its first part request (checkpoint re-evaluation and the part jobs' start),
    the spread of its part requests, its last part's reply to its next request (a repair), and
    the last reply to the command's end (the last section job, reports, book, exit)."""
    calls = section_calls(entries, parts)
    t0 = timed.started_unix_s
    ends = [e["received_unix_s"] + e["latency_s"] for e in entries]
    gaps, spread = [], []
    for c in calls.values():
        plan_end = c["plan"]["received_unix_s"] + c["plan"]["latency_s"]
        starts = [p["received_unix_s"] for p in c["parts"]]
        if starts:
            gaps.append(min(starts) - plan_end)
            spread.append(max(starts) - min(starts))
    return {
        "to_first_request_s": round(min(e["received_unix_s"] for e in entries) - t0, 3),
        "plan_to_first_part_s": _spread(gaps),
        "part_start_spread_s": _spread(spread),
        "after_last_reply_s": round(t0 + timed.wall_s - max(ends), 3),
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per system, the limit, and the ratios the issue sets targets for."""

    def med(system: str, key: str) -> float | None:
        values = [r[key] for r in runs if r["system"] == system and r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    seed, seq, par = (med(s, "wall_s") for s in SYSTEMS)
    limit = med("parallel", "limit_s")
    # (c) / limit within each run (its own ledger), then the median
    par_ratio = [r["wall_s"] / r["limit_s"] for r in runs if r["system"] == "parallel"]
    fixed = [r["wall_s"] - r["limit_s"] for r in runs if r["system"] == "parallel"]
    seed_limit = med("seed", "limit_s")
    return {
        "seed_wall_s": seed,
        "sequential_wall_s": seq,
        "parallel_wall_s": par,
        "limit_s": limit,
        "sequential_limit_s": med("sequential", "limit_s"),
        "seed_limit_s": med("seed", "limit_s"),
        "parallel_over_limit": round(statistics.median(par_ratio), 3) if par_ratio else None,
        "seed_over_parallel": _ratio(seed, par),
        "sequential_over_parallel": _ratio(seq, par),
        "seed_over_sequential": _ratio(seed, seq),
        # (c)'s time beyond the limit (start-up, handovers, the tail): it does not grow with
        # the sections' length; the limit does, in step with the seed's own limit
        "parallel_beyond_limit_s": round(statistics.median(fixed), 3) if fixed else None,
        "limit_over_seed_limit": round(limit / seed_limit, 4) if limit and seed_limit else None,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def at_real_scale(summary: dict[str, Any], seed_minutes: float = 110.0) -> dict[str, Any]:
    """What the measured ratios mean when the seed's design takes ``seed_minutes``: the wall
    time ratios as measured, and (c) with every request ``seed_minutes`` / (a)'s limit times
    longer while its time beyond the limit stays what it was."""
    out: dict[str, Any] = {"seed_min": seed_minutes}
    for key in ("seed_over_parallel", "seed_over_sequential"):
        ratio = summary.get(key)
        out[key.removeprefix("seed_over_") + "_min"] = (
            round(seed_minutes / ratio, 1) if ratio else None
        )
    share, beyond = summary.get("limit_over_seed_limit"), summary.get("parallel_beyond_limit_s")
    out["parallel_scaled_min"] = (
        round(seed_minutes * share + beyond / 60, 1) if share and beyond is not None else None
    )
    return out


def slurm_probe_s() -> float | None:
    """Seconds ``scontrol show config`` takes here (None without SLURM's tools or without the
    SLURM executor plugin, bookgen's ``slurm`` extra). Snakemake imports every installed plugin
    when it starts, and this one then asks ``scontrol``, for every run: with SLURM's tools
    installed and its controller down it waits up to 10 s."""
    if shutil.which("scontrol") is None or not slurm_plugin_installed():
        return None
    t0 = time.monotonic()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=30)
    return round(time.monotonic() - t0, 2)


# -- the runs --------------------------------------------------------------------------------


def _quality(book: Book) -> dict[str, Any]:
    """What the quality report says about the parts: overlap between a section's parts, their
    seams, and the repairs made."""
    q = book.json("output/quality_report.json")
    overlap, seams, failing = [], 0, set()
    for s in q["sections"]:
        for check in s["checks"]:
            if check["name"] == "part_overlap":
                overlap.append((check.get("value") or {}).get("max") or 0.0)
            if check["name"] == "seams":
                seams += len(check.get("value") or [])
            if check["name"] in ("part_overlap", "seams") and not check["passed"]:
                failing.add(s["id"])
    repairs: dict[str, int] = {}
    for s in q["sections"]:
        for r in s["repairs"]:
            repairs[r["repair"]] = repairs.get(r["repair"], 0) + 1
    t = q["totals"]
    return {
        "part_overlap_max": round(max(overlap), 3) if overlap else None,
        "part_overlap_median": round(statistics.median(overlap), 3) if overlap else None,
        "seam_problems": seams,
        "sections_failing_part_checks_after_repairs": len(failing),
        "passed": t["passed"],
        "flagged": t["flagged"],
        "repairs": t["repairs"],
        "repair_calls": t["repair_calls"],
        "repairs_by_kind": repairs,
    }


def _cost(book: Book) -> dict[str, Any]:
    t = book.json("output/cost_report.json")["totals"]
    return {
        "prompt_tokens": t["prompt_tokens"],
        "prompt_cache_hit_tokens": t["prompt_cache_hit_tokens"],
        "hit_share": round(t["prompt_cache_hit_tokens"] / t["prompt_tokens"], 4),
        "cost_usd": t["cost_usd"],
    }


def _one_run(
    system: str, c: SeedSettings, sim_cfg: dict[str, Any], book: Book, work: Path
) -> dict[str, Any]:
    with LoopbackSimulator(work / f"sim-{system}", sim_cfg) as sim:
        clean(book)
        book.set_overrides(seed_overrides(c, sim.base_url, system == "parallel"))
        if system == "seed":
            timed = run_baseline(book, c.workers, timeout=c.timeout_s)
        else:
            cores = c.sections * (c.parts if system == "parallel" else 1)
            timed = run_bookgen(book, cores, timeout=c.timeout_s)
        entries = sim.ledger()["entries"]
    lim = limits(entries, c.parts, c.workers)
    limit = {
        "seed": lim["pool_s"],
        "sequential": lim["sequential_s"],
        "parallel": lim["parallel_s"],
    }
    starts = [e["received_unix_s"] for e in entries]
    ends = [e["received_unix_s"] + e["latency_s"] for e in entries]
    run = {
        "system": system,
        "wall_s": round(timed.wall_s, 3),
        "cpu_s": round(timed.cpu_s, 3),
        "load1": timed.load1,
        "requests": len(entries),
        "max_open_requests": _max_overlap(starts, ends),
        "limit_s": limit[system],
        "limits": lim,
        **where_time_goes(entries, c.parts, timed),
    }
    if system != "seed":
        run["cost"] = _cost(book)
        run["quality"] = _quality(book)
    return run


def measure(c: SeedSettings, work: Path, log) -> dict[str, Any]:
    """(a), (b) and (c), interleaved per round: (c) and (b) every round, (a) in the first
    ``seed_reps`` rounds."""
    cal = calibrate(c, work)
    sim_cfg = cal["simulator"]
    probe = slurm_probe_s()
    log(f"  `scontrol show config` (the SLURM plugin, if installed, runs it at start-up): {probe}")
    log(
        f"  latency model {sim_cfg}: plan {cal['plan_tokens']} tokens, parts {cal['part_tokens']}"
        f" tokens (about {c.part_s} s a part)"
    )
    book = Book(work / "seed-book", {"sections": seed_sections(c)})
    runs = []
    for rep in range(max(c.reps, c.seed_reps)):
        for system in ("parallel", "sequential", "seed"):
            if rep >= (c.seed_reps if system == "seed" else c.reps):
                continue
            run = {"rep": rep, **_one_run(system, c, sim_cfg, book, work)}
            runs.append(run)
            log(
                f"  {system:10} rep {rep}: {run['wall_s']:7.2f} s, limit {run['limit_s']} s, "
                f"{run['requests']} requests, max open {run['max_open_requests']}, "
                f"load {run['load1']}"
            )
    shutil.rmtree(book.path, ignore_errors=True)
    summary = summarise(runs)
    return {
        "settings": c.as_dict(),
        "calibration": cal,
        "runs": runs,
        "summary": summary,
        "real_scale": at_real_scale(summary),
        "slurm_probe_s": probe,
    }
