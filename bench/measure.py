"""The six measurements of issue 6, each against the loopback (or in-process) simulator.

Every run starts from a clean book directory and a fresh simulator, so no run replays another's
response cache or prefix cache. Each function returns plain data for ``results.json``.
"""

from __future__ import annotations

import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import reference
from bench.machine import load1
from bench.procmon import MB, TreeMonitor
from bench.schedule import best_schedule, lower_bound, section_latencies
from bench.terminal import run_in_terminal
from tests.book import FAST, Book
from tests.conftest import REPO
from tests.loopback import LoopbackSimulator

KEY = {"DEEPSEEK_API_KEY": "sk-bench-loopback"}
STATE_DIRS = ("output", ".bookgen", ".snakemake", "baseline")
TARGET_CORES = (2, 8, 16)  # issue 6 sets efficiency targets at these --cores
# The commit bench/results.md's 3.46 s dry run and 156 s run were measured at (before parts)
REFERENCE = "7ae322d"
PLAIN_PROFILE = "profiles/bench-plain"  # the default profile without `logger: [bookgen]`


@dataclass
class Settings:
    """What to measure and how often (``quick`` shrinks everything for a smoke run)."""

    sections: int = 24
    cores: tuple[int, ...] = (1, 2, 4, 8, 16)
    reps: int = 3  # at the cores with a target (2, 8, 16)
    reps_other: int = 1  # at the others (1, 4): one run each, to keep the suite shorter
    section_s: float = 5.0  # the issue: "scaled so one section takes ~5 s"
    ttft_s: float = 0.5
    words: int = 300
    overhead_reps: int = 2
    scale_sizes: tuple[int, ...] = (100, 1000, 5000)
    scale_reps: int = 3
    big_run: int = 1000
    memory_cores: int = 8
    timeout_s: float = 1800
    display_reps: int = 8  # pairs: the book in a terminal with and without the live display
    big_run_pairs: int = 2  # the big run with and without the live display (big_run_order)
    reference: str | None = REFERENCE  # older code run next to this one (None: not run)
    reference_sections: int = 1000  # the dry-run size it is compared at

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            sections=6,
            cores=(1, 2, 4),
            reps=1,
            section_s=1.0,
            ttft_s=0.2,
            words=120,
            overhead_reps=1,
            scale_sizes=(100,),
            scale_reps=1,
            big_run=30,
            memory_cores=4,
            timeout_s=300,
            display_reps=1,
            big_run_pairs=1,
            reference_sections=100,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bench_sections(n: int, words: int) -> list[dict[str, Any]]:
    """A book of ``n`` sections of the same target length."""
    return [
        {
            "title": f"Chapter {i}: Topic {i}",
            "key_points": [f"the first idea of topic {i}", f"a worked example for topic {i}"],
            "words": words,
        }
        for i in range(1, n + 1)
    ]


def clean(book: Book) -> None:
    for name in STATE_DIRS:
        shutil.rmtree(book.path / name, ignore_errors=True)


def loopback_book(path: Path, sections: list[dict[str, Any]], base_url: str) -> Book:
    return Book(path, loopback_overrides(sections, base_url))


def loopback_overrides(sections: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    return {"provider": "deepseek", "base_url": base_url, "sections": sections, **FAST}


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Timed:
    """One timed command: wall seconds, CPU seconds of it and its descendants, start time."""

    wall_s: float
    cpu_s: float
    started_unix_s: float
    load1: float


def run_bookgen(
    book: Book, cores: int, *extra: str, timeout: float = 1800, terminal: bool = False
) -> Timed:
    """``snakemake --cores N --resources api=N`` in the book, timed; raises if it fails.
    ``terminal``: in a pseudo-terminal (where the live display draws), not a pipe."""
    args = ("--cores", str(cores), "--resources", f"api={cores}", *extra)
    load, cpu0, t_unix, t0 = load1(), _cpu_children(), time.time(), time.monotonic()
    if terminal:
        run = run_in_terminal(book.command(*args), book.path, book.env(KEY), timeout)
        code, err = run.returncode, run.text()
    else:
        proc = book.run(*args, env=KEY, timeout=timeout)
        code, err = proc.returncode, proc.stderr
    wall = time.monotonic() - t0
    if code != 0:
        raise RuntimeError(f"snakemake failed in {book.path}:\n{err[-3000:]}")
    return Timed(wall, _cpu_children() - cpu0, t_unix, load)


def plain_logger(book: Book) -> tuple[str, ...]:
    """Arguments that run the book with Snakemake's own logger: a copy of the workflow profile
    without its ``logger:`` (``--logger`` takes no empty list, and a flag cannot unset it)."""
    profile = yaml.safe_load((book.path / "profiles" / "default" / "config.yaml").read_text())
    profile.pop("logger", None)
    (book.path / PLAIN_PROFILE).mkdir(parents=True, exist_ok=True)
    (book.path / PLAIN_PROFILE / "config.yaml").write_text(yaml.safe_dump(profile))
    return ("--workflow-profile", PLAIN_PROFILE)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to 3 places, None when either is missing or zero."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def reference_tree(s: Settings, work: Path, log) -> reference.Reference | None:
    """The reference commit checked out under ``work`` (once per bench run), or None."""
    if not s.reference:
        return None
    dest = work / "reference"
    if (dest / "tree").exists():
        return reference.Reference(s.reference, dest / "tree", dest / "venv" / "bin" / "python")
    ref = reference.checkout(s.reference, dest)
    log(f"  reference: {ref.commit} in {ref.root}")
    return ref


def reference_book(path: Path, overrides: dict[str, Any], ref: reference.Reference) -> Book:
    """A book of the reference's workflow run by its interpreter; raises unless Snakemake
    imports the reference's own ``bookgen`` there."""
    book = Book(path, overrides, workflow=ref.root, snakemake=ref.snakemake)
    where = Path(reference.imported_bookgen(ref.snakemake, book.path))
    if book.path not in where.parents and ref.root not in where.parents:
        raise RuntimeError(f"the reference run imports another bookgen ({where})")
    return book


def run_baseline(book: Book, workers: int, timeout: float = 1800) -> Timed:
    """``python -m bench.baseline`` on the same book, timed the same way."""
    cmd = [sys.executable, "-m", "bench.baseline", "--book", str(book.path), "--workers"]
    env = {**os.environ, **KEY, "PYTHONPATH": str(REPO)}
    load, cpu0, t_unix, t0 = load1(), _cpu_children(), time.time(), time.monotonic()
    proc = subprocess.run(
        [*cmd, str(workers)], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"baseline failed in {book.path}:\n{proc.stderr[-3000:]}")
    return Timed(wall, _cpu_children() - cpu0, t_unix, load)


def latency_config(s: Settings) -> dict[str, Any]:
    """The simulator's latency model, scaled so one bench section takes about ``section_s``."""
    tokens = reply_tokens(s.words)
    return {"ttft_s": s.ttft_s, "tokens_per_s": round(tokens / (s.section_s - s.ttft_s), 1)}


def reply_tokens(words: int) -> int:
    """Output tokens the simulator writes for a bench section of ``words`` (one real request)."""
    from bookgen.config import sections_from_config, template_text
    from bookgen.provider.client import make_client, stream_call
    from bookgen.writing.prompts import section_messages
    from tests.conftest import load_config

    config = load_config({"provider": "simulator", "sections": bench_sections(3, words)})
    sections = sections_from_config(config)
    tmp = Path(REPO / "bench" / "work" / "calibrate")
    shutil.rmtree(tmp, ignore_errors=True)
    client = make_client(config, tmp)
    system, task = template_text(config, "system"), template_text(config, "section")
    counts = []
    for sec in sections:
        msgs = section_messages(system, task, config["book"], sections, sec)
        out = stream_call(client, {"model": config["model"], "messages": msgs})
        counts.append(out.usage["completion_tokens"])
    shutil.rmtree(tmp, ignore_errors=True)
    return round(statistics.mean(counts))


def _ledger_run(
    system: str, book: Book, sim: LoopbackSimulator, cores: int, timed: Timed
) -> dict[str, Any]:
    """One run's numbers: wall, CPU, and the ideal makespans from the simulator's ledger."""
    entries = sim.ledger()["entries"]
    lat = list(section_latencies(entries).values())
    starts = [e["received_unix_s"] for e in entries]
    ends = [e["received_unix_s"] + e["latency_s"] for e in entries]
    ideal_bound, ideal_best = lower_bound(lat, cores), best_schedule(lat, cores)
    return {
        "system": system,
        "cores": cores,
        "wall_s": round(timed.wall_s, 3),
        "cpu_s": round(timed.cpu_s, 3),
        "load1": timed.load1,
        "requests": len(entries),
        "sections": len(lat),
        "latency_total_s": round(sum(lat), 3),
        "latency_max_s": round(max(lat), 3),
        "ideal_bound_s": round(ideal_bound, 3),
        "ideal_best_s": round(ideal_best, 3),
        "efficiency_bound": round(ideal_bound / timed.wall_s, 3),
        "efficiency_best": round(ideal_best / timed.wall_s, 3),
        "to_first_request_s": round(min(starts) - timed.started_unix_s, 3),
        "after_last_request_s": round(timed.started_unix_s + timed.wall_s - max(ends), 3),
        "max_open_requests": _max_overlap(starts, ends),
        "handover_s": _handover(starts, ends, cores),
        # each request: (start after the command's start, latency), for later analysis
        "requests_timing": sorted(
            (round(e["received_unix_s"] - timed.started_unix_s, 3), e["latency_s"]) for e in entries
        ),
    }


def _handover(starts: list[float], ends: list[float], slots: int) -> float | None:
    """Median time from a reply's end to the next request taking its slot (the per-section
    overhead as the provider sees it)."""
    gaps = handover_gaps(starts, ends, slots)
    return round(statistics.median(gaps), 3) if gaps else None


def handover_gaps(starts: list[float], ends: list[float], slots: int) -> list[float]:
    """Each handover's seconds: the k-th request waits for the (k - slots)-th reply's end."""
    starts, ends = sorted(starts), sorted(ends)
    return [starts[k] - ends[k - slots] for k in range(slots, len(starts))]


def _max_overlap(starts: list[float], ends: list[float]) -> int:
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends], key=lambda e: (e[0], e[1]))
    open_now = peak = 0
    for _, d in events:
        open_now += d
        peak = max(peak, open_now)
    return peak


def parallel(s: Settings, work: Path, log) -> dict[str, Any]:
    """1 + 2: the book at each ``--cores``, bookgen and the baseline interleaved per round."""
    sim_cfg = latency_config(s)
    log(f"latency model: {sim_cfg} (about {s.section_s} s per section)")
    sections = bench_sections(s.sections, s.words)
    runs = []
    book = None
    for rep in range(max(s.reps, s.reps_other)):
        for cores in s.cores:
            if rep >= (s.reps if cores in TARGET_CORES else s.reps_other):
                continue
            for system in ("bookgen", "baseline"):
                with LoopbackSimulator(work / "sim", sim_cfg) as sim:
                    if book is None:
                        book = loopback_book(work / "book", sections, sim.base_url)
                    clean(book)
                    book.set_overrides(loopback_overrides(sections, sim.base_url))
                    timed = (
                        run_bookgen(book, cores, timeout=s.timeout_s)
                        if system == "bookgen"
                        else run_baseline(book, cores, timeout=s.timeout_s)
                    )
                    run = {"rep": rep, **_ledger_run(system, book, sim, cores, timed)}
                runs.append(run)
                log(
                    f"  {system:8} cores {cores:2} rep {rep}: {run['wall_s']:6.2f} s, "
                    f"efficiency {run['efficiency_best']:.3f} "
                    f"(bound {run['efficiency_bound']:.3f}), load {run['load1']}"
                )
    return {"simulator": sim_cfg, "runs": runs, "summary": _parallel_summary(runs, s.cores)}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def _parallel_summary(runs: list[dict[str, Any]], cores_list: tuple[int, ...]) -> list[dict]:
    rows = []
    for cores in cores_list:
        ours = [r for r in runs if r["cores"] == cores and r["system"] == "bookgen"]
        base = [r for r in runs if r["cores"] == cores and r["system"] == "baseline"]
        # ratio within one round (same rep): the runs closest in time, then the median
        pairs = [(o, b) for o in ours for b in base if b["rep"] == o["rep"]]
        ratios = [o["wall_s"] / b["wall_s"] for o, b in pairs]
        # the same, up to the last reply: without the reports and formats only bookgen builds
        gen_ratios = [
            (o["wall_s"] - o["after_last_request_s"]) / (b["wall_s"] - b["after_last_request_s"])
            for o, b in pairs
        ]
        rows.append(
            {
                "cores": cores,
                "runs": len(ours),
                "bookgen_wall_s": _median(ours, "wall_s"),
                "baseline_wall_s": _median(base, "wall_s"),
                "ideal_best_s": _median(ours, "ideal_best_s"),
                "ideal_bound_s": _median(ours, "ideal_bound_s"),
                "efficiency_best": _median(ours, "efficiency_best"),
                "efficiency_bound": _median(ours, "efficiency_bound"),
                "baseline_efficiency_best": _median(base, "efficiency_best"),
                "ratio_to_baseline": round(statistics.median(ratios), 3),
                "ratio_to_last_reply": round(statistics.median(gen_ratios), 3),
                "to_first_request_s": _median(ours, "to_first_request_s"),
                "after_last_request_s": _median(ours, "after_last_request_s"),
                "handover_s": _median_of(ours, "handover_s"),
                "baseline_handover_s": _median_of(base, "handover_s"),
                "cpu_s": _median(ours, "cpu_s"),
                "baseline_cpu_s": _median(base, "cpu_s"),
                "load1": [r["load1"] for r in ours],
            }
        )
    return rows


def overhead(s: Settings, work: Path, log) -> dict[str, Any]:
    """3: zero latency, ``--cores 2``: wall and CPU per section, bookgen and the baseline."""
    sections = bench_sections(s.sections, s.words)
    runs = []
    book = None
    for rep in range(s.overhead_reps):
        for system in ("bookgen", "baseline"):
            with LoopbackSimulator(work / "sim0", {}) as sim:
                if book is None:
                    book = loopback_book(work / "book0", sections, sim.base_url)
                clean(book)
                book.set_overrides(loopback_overrides(sections, sim.base_url))
                timed = (
                    run_bookgen(book, 2, timeout=s.timeout_s)
                    if system == "bookgen"
                    else run_baseline(book, 2, timeout=s.timeout_s)
                )
                run = {"rep": rep, **_ledger_run(system, book, sim, 2, timed)}
            run["wall_per_section_s"] = round(run["wall_s"] / s.sections, 3)
            run["cpu_per_section_s"] = round(run["cpu_s"] / s.sections, 3)
            runs.append(run)
            log(
                f"  {system:8} zero latency: {run['wall_per_section_s']:.3f} s/section wall, "
                f"{run['cpu_per_section_s']:.3f} CPU-s/section, load {run['load1']}"
            )
    ours = [r for r in runs if r["system"] == "bookgen"]
    base = [r for r in runs if r["system"] == "baseline"]
    summary = {
        "sections": s.sections,
        "cores": 2,
        "wall_per_section_s": _median(ours, "wall_per_section_s"),
        "cpu_per_section_s": _median(ours, "cpu_per_section_s"),
        "to_first_request_s": _median(ours, "to_first_request_s"),
        "after_last_request_s": _median(ours, "after_last_request_s"),
        "baseline_wall_per_section_s": _median(base, "wall_per_section_s"),
        "baseline_cpu_per_section_s": _median(base, "cpu_per_section_s"),
    }
    return {
        "runs": runs,
        "summary": summary,
        "run_imports": run_imports(),
        "display": display_handover(s, work, log),
    }


def abba_order(pair: tuple[str, str], reps: int) -> list[str]:
    """``reps`` runs of each of ``pair``, the order swapped every rep (A B, B A, A B, ...): a
    machine that slows down or speeds up during the bench (it did here: the same run 10% slower
    five minutes later) then weighs on both sides alike instead of always on the second."""
    a, b = pair
    return [name for rep in range(reps) for name in ((a, b) if rep % 2 == 0 else (b, a))]


def display_handover(s: Settings, work: Path, log) -> dict[str, Any]:
    """The live display's cost per section: the book with the latency model at ``--cores 2``
    in a pseudo-terminal, with bookgen's logger (the board) and with Snakemake's own, one right
    after the other, the order swapped every rep (``abba_order``); every handover (a reply's
    end to the next request in its slot) of each (``summarise_display``)."""
    sim_cfg = latency_config(s)
    sections = bench_sections(s.sections, s.words)
    runs = []
    book = None
    for i, logger in enumerate(abba_order(("bookgen", "snakemake"), s.display_reps)):
        with LoopbackSimulator(work / "simdisp", sim_cfg) as sim:
            if book is None:
                book = loopback_book(work / "display", sections, sim.base_url)
            clean(book)
            book.set_overrides(loopback_overrides(sections, sim.base_url))
            extra = plain_logger(book) if logger == "snakemake" else ()
            timed = run_bookgen(book, 2, *extra, timeout=s.timeout_s, terminal=True)
            run = {"rep": i // 2, "logger": logger, **_ledger_run("bookgen", book, sim, 2, timed)}
        timing = run.pop("requests_timing")
        starts, ends = [t for t, _ in timing], [t + lat for t, lat in timing]
        run["handover_gaps_s"] = [round(g, 4) for g in handover_gaps(starts, ends, 2)]
        runs.append(run)
        log(
            f"  {logger:9} logger in a terminal: handover {run['handover_s']} s, "
            f"{run['wall_s']:.2f} s, load {run['load1']}"
        )
    return {"simulator": sim_cfg, "runs": runs, "summary": summarise_display(runs, s.sections)}


BOOTSTRAP_DRAWS = 2000


def summarise_display(runs: list[dict[str, Any]], sections: int) -> dict[str, Any]:
    """The display's cost from ``display_handover``'s runs. A run's median handover moves by
    about 10% from one run to the next here (the machine drifts; 24 sections give 22
    handovers), more than the 5% the target allows, so the handovers of all the reps are
    pooled: the ratio is of the two sides' medians over every handover. Its 90% interval
    resamples the reps (a board run and the Snakemake-logger run next to it) with
    replacement, seeded: the same runs always give the same interval."""
    board = [r for r in runs if r["logger"] == "bookgen"]
    plain = [r for r in runs if r["logger"] == "snakemake"]
    by_rep = {r["rep"]: [x for x in runs if x["rep"] == r["rep"]] for r in runs}
    pairs = [rs for rs in by_rep.values() if {r["logger"] for r in rs} == {"bookgen", "snakemake"}]

    def pooled(side: list[dict[str, Any]]) -> float | None:
        gaps = [g for r in side for g in r.get("handover_gaps_s", [])]
        return round(statistics.median(gaps), 4) if gaps else None

    summary: dict[str, Any] = {
        "sections": sections,
        "cores": 2,
        "pairs": len(pairs),
        "handover_s": pooled(board),
        "plain_handover_s": pooled(plain),
        "wall_s": _median(board, "wall_s"),
        "plain_wall_s": _median(plain, "wall_s"),
        "cpu_s": _median(board, "cpu_s"),
        "plain_cpu_s": _median(plain, "cpu_s"),
    }
    summary["handover_ratio"] = ratio(summary["handover_s"], summary["plain_handover_s"])
    summary["wall_ratio"] = ratio(summary["wall_s"], summary["plain_wall_s"])
    summary["cpu_ratio"] = ratio(summary["cpu_s"], summary["plain_cpu_s"])
    if len(pairs) >= 2:
        draw = random.Random(0)
        ratios = []
        for _ in range(BOOTSTRAP_DRAWS):
            sample = [r for _ in pairs for r in draw.choice(pairs)]
            b = pooled([r for r in sample if r["logger"] == "bookgen"])
            p = pooled([r for r in sample if r["logger"] == "snakemake"])
            if b and p:
                ratios.append(b / p)
        ratios.sort()
        summary["handover_ratio_90"] = [
            round(ratios[int(0.05 * len(ratios))], 3),
            round(ratios[int(0.95 * len(ratios)) - 1], 3),
        ]
    return summary


_IMPORT_RE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def run_imports(tries: int = 3) -> dict[str, Any]:
    """What a run imports once, before its first request (``python -X importtime``), fastest
    run: Snakemake, and the modules the section jobs use (they run in its threads; ``openai``
    is imported by the first request)."""
    code = (
        "import snakemake.api, snakemake.cli\nimport bookgen.jobs, bookgen.writing.section, openai"
    )
    best: dict[str, Any] | None = None
    for _ in range(tries):
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - t0
        total = 0.0
        packages: dict[str, float] = {}  # each package's cumulative time where first imported
        own = 0.0  # bookgen's own modules, excluding what they import
        for m in _IMPORT_RE.finditer(proc.stderr):
            name, self_s, cum_s = m.group(4), int(m.group(1)) / 1e6, int(m.group(2)) / 1e6
            if len(m.group(3)) == 1:  # top level: one space of indent
                total += cum_s
            if "." not in name:
                packages[name] = cum_s
            if name.split(".")[0] == "bookgen":
                own += self_s
        if best is None or total < best["imports_s"]:
            top = sorted(packages.items(), key=lambda x: -x[1])[:10]
            best = {
                "process_wall_s": round(wall, 3),
                "imports_s": round(total, 3),
                "bookgen_own_s": round(own, 3),
                "top": [{"module": n, "cumulative_s": round(t, 3)} for n, t in top],
            }
    assert best is not None
    return best


def _dry_run(book: Book, timeout: float) -> tuple[float, float]:
    """Wall and CPU seconds of one ``snakemake --dry-run`` of the book."""
    cpu0, t0 = _cpu_children(), time.monotonic()
    proc = book.run("--dry-run", timeout=timeout)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed in {book.path}:\n{proc.stderr[-3000:]}")
    return wall, _cpu_children() - cpu0


def _pair_ratio(ours: list[float], theirs: list[float]) -> float:
    """Each run against the other side's run right after it, then the median."""
    return round(statistics.median(a / b for a, b in zip(ours, theirs, strict=True)), 3)


def startup_s(book: Book, reps: int = 3) -> float:
    """Snakemake's start-up alone (``snakemake --version``, fastest of ``reps``): importing it
    and every installed plugin (the SLURM executor plugin, where installed, asks ``scontrol``)."""
    walls = []
    for _ in range(reps):
        t0 = time.monotonic()
        subprocess.run([*book.snakemake, "--version"], cwd=book.path, capture_output=True)
        walls.append(time.monotonic() - t0)
    return round(min(walls), 3)


def scale(s: Settings, work: Path, log) -> dict[str, Any]:
    """4a: ``snakemake --dry-run`` wall time for books of 100, 1,000 and 5,000 sections; at
    ``reference_sections``, each run followed by the same dry run of the reference commit."""
    ref = reference_tree(s, work, log)
    rows = []
    for n in s.scale_sizes:
        config = {"sections": bench_sections(n, 80)}
        book = Book(work / f"dry{n}", config)
        old = None
        if ref is not None and n == s.reference_sections:
            old = reference_book(work / f"dry{n}-ref", config, ref)
        walls, cpus, loads, ref_walls, ref_cpus, ref_loads = [], [], [], [], [], []
        for _ in range(s.scale_reps):
            loads.append(load1())
            wall, cpu = _dry_run(book, s.timeout_s)
            walls.append(wall)
            cpus.append(cpu)
            if old is not None:
                ref_loads.append(load1())
                wall, cpu = _dry_run(old, s.timeout_s)
                ref_walls.append(wall)
                ref_cpus.append(cpu)
        row: dict[str, Any] = {
            "sections": n,
            "dry_run_s": round(statistics.median(walls), 3),
            "runs_s": [round(w, 3) for w in walls],
            "cpu_s": round(statistics.median(cpus), 3),
            "load1": loads,
        }
        if old is not None:
            row["startup_s"] = startup_s(book)
            ref_startup = startup_s(old)
            row["reference"] = {
                "commit": ref.commit,
                "dry_run_s": round(statistics.median(ref_walls), 3),
                "runs_s": [round(w, 3) for w in ref_walls],
                "load1": ref_loads,
                # each run against the reference's run right after it, then the median
                "ratio": _pair_ratio(walls, ref_walls),
                # CPU seconds: what the two do, much less moved by a loaded machine than wall
                "cpu_s": round(statistics.median(ref_cpus), 3),
                "cpu_ratio": _pair_ratio(cpus, ref_cpus),
                "startup_s": ref_startup,
            }
            # the same without Snakemake's start-up, which can dwarf the rest (see startup_s)
            row["reference"]["ratio_after_startup"] = ratio(
                row["dry_run_s"] - row["startup_s"], row["reference"]["dry_run_s"] - ref_startup
            )
            shutil.rmtree(old.path, ignore_errors=True)
        rows.append(row)
        log(
            f"  dry run, {n:5} sections: {row['dry_run_s']:.2f} s (load {loads})"
            + (f"; reference {row['reference']}" if old is not None else "")
        )
        shutil.rmtree(book.path, ignore_errors=True)
    return {"rows": rows}


def big_run_order(pairs: int, reference: bool) -> list[str]:
    """The big runs in the order they run: ``pairs`` of Snakemake's logger and the board in
    ``abba_order``, the reference in the middle (P B R B P), so a drift of the machine's speed
    during the runs weighs on each side alike."""
    order = abba_order(("snakemake", "bookgen"), pairs)
    if reference:
        order.insert(len(order) // 2, "reference")
    return order


def big_run(s: Settings, work: Path, log) -> dict[str, Any]:
    """4b: a ``big_run``-section book at zero latency, default profile (``--cores 2``), in a
    pseudo-terminal, in ``big_run_order``: with Snakemake's own logger, with bookgen's live
    display (the default; the snakemake process's memory is sampled), and the reference
    commit's code. Each completes, with the report. Ratios are of the sides' summed times."""
    n = s.big_run
    ref = reference_tree(s, work, log)
    runs: list[dict[str, Any]] = []
    for name in big_run_order(s.big_run_pairs, ref is not None):
        with LoopbackSimulator(work / f"simbig-{name}", {}) as sim:
            overrides = loopback_overrides(bench_sections(n, s.words), sim.base_url)
            path = work / f"big-{name}"
            book = (
                reference_book(path, overrides, ref)
                if name == "reference" and ref is not None
                else Book(path, overrides)
            )
            extra = plain_logger(book) if name == "snakemake" else ()
            exclude = frozenset({os.getpid(), sim.proc.pid})
            with TreeMonitor(os.getpid(), exclude=exclude, interval_s=0.5) as mon:
                load, cpu0, t0 = load1(), _cpu_children(), time.monotonic()
                term = run_in_terminal(book.command(*extra), book.path, book.env(KEY), s.timeout_s)
                wall, cpu = time.monotonic() - t0, _cpu_children() - cpu0
            requests = len(sim.ledger()["entries"])
        if term.returncode != 0:
            raise RuntimeError(f"{n}-section run ({name}) failed:\n{term.text()[-3000:]}")
        report = book.json("output/cost_report.json")
        runs.append(
            {
                "name": name,
                "sections": n,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),  # a loaded machine moves it far less than the wall time
                "load1": load,
                "requests": requests,
                "sections_written": len(book.sections()),
                "report_sections": report["totals"]["sections"],
                "terminal_bytes": len(term.output),
                "snakemake_rss_mb": {
                    f"{int(f * 100)}%": round(mon.main_rss_at(f) / MB, 1) for f in (0.1, 0.5, 0.9)
                },
                "snakemake_peak_mb": round(mon.peak("snakemake") / MB, 1),
            }
        )
        log(f"  {n} sections, {name}: {wall:.2f} s, load {load}")
        shutil.rmtree(book.path, ignore_errors=True)
    return summarise_big_runs(runs, ref.commit if ref else None)


def summarise_big_runs(runs: list[dict[str, Any]], commit: str | None) -> dict[str, Any]:
    """The board's first run (its memory and report) with each side's mean times, and the
    ratios of the sides' summed times (wall and CPU)."""

    def total(name: str, key: str) -> float:
        return sum(r[key] for r in runs if r["name"] == name)

    def mean(name: str, key: str) -> float:
        return round(total(name, key) / sum(r["name"] == name for r in runs), 2)

    board = next(r for r in runs if r["name"] == "bookgen")
    result = {
        **{k: v for k, v in board.items() if k != "name"},
        "wall_s": mean("bookgen", "wall_s"),
        "cpu_s": mean("bookgen", "cpu_s"),
        "plain_wall_s": mean("snakemake", "wall_s"),
        "plain_cpu_s": mean("snakemake", "cpu_s"),
        "runs": runs,
        "display_ratio": ratio(total("bookgen", "wall_s"), total("snakemake", "wall_s")),
        "display_cpu_ratio": ratio(total("bookgen", "cpu_s"), total("snakemake", "cpu_s")),
    }
    if any(r["name"] == "reference" for r in runs):
        ref_wall, ref_cpu = mean("reference", "wall_s"), mean("reference", "cpu_s")
        result["reference"] = {
            "commit": commit,
            "wall_s": ref_wall,
            # the same logger on both sides: what the code between them costs
            "ratio": ratio(result["plain_wall_s"], ref_wall),
            # what a user sees: the default profile now (the board) against then
            "ratio_default": ratio(result["wall_s"], ref_wall),
            "cpu_ratio": ratio(result["plain_cpu_s"], ref_cpu),
        }
    return result


def memory(s: Settings, work: Path, log) -> dict[str, Any]:
    """5: peak RSS of the run at ``--cores 1`` and ``--cores memory_cores``. Section jobs are
    threads of the snakemake process, so what one job costs is the difference divided by the
    extra jobs running at once."""
    sim_cfg = latency_config(s)
    sections = bench_sections(s.sections, s.words)
    peaks: dict[int, dict[str, Any]] = {}
    book = None
    for cores in (1, s.memory_cores):
        with LoopbackSimulator(work / "simmem", sim_cfg) as sim:
            if book is None:
                book = loopback_book(work / "mem", sections, sim.base_url)
            clean(book)
            book.set_overrides(loopback_overrides(sections, sim.base_url))
            exclude = frozenset({os.getpid(), sim.proc.pid})
            with TreeMonitor(os.getpid(), exclude=exclude, interval_s=0.05) as mon:
                timed = run_bookgen(book, cores, timeout=s.timeout_s)
        peaks[cores] = {
            "wall_s": round(timed.wall_s, 2),
            "load1": timed.load1,
            "snakemake_peak_rss_mb": round(mon.peak("bin/snakemake") / MB, 1),
            "run_peak_rss_mb": round(mon.peak_tree() / MB, 1),
        }
    one, many = peaks[1], peaks[s.memory_cores]
    per_job = (many["snakemake_peak_rss_mb"] - one["snakemake_peak_rss_mb"]) / (s.memory_cores - 1)
    result = {
        "cores": s.memory_cores,
        **many,
        "one_core": one,
        "per_job_mb": round(max(per_job, 0.0), 1),
    }
    log(f"  memory: {result}")
    shutil.rmtree(book.path, ignore_errors=True)
    return result


def caching(s: Settings, work: Path, log) -> dict[str, Any]:
    """6: the demo book with the prefix cache on and off (in-process simulator, profile
    defaults): the share of input tokens billed as cache hits, and the cost."""
    out: dict[str, Any] = {}
    for label, prefix_cache in (("with_cache", True), ("without_cache", False)):
        book = Book(work / f"demo_{label}", {"simulator": {"prefix_cache": prefix_cache}})
        load = load1()
        proc = book.run(timeout=s.timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"demo book failed:\n{proc.stderr[-3000:]}")
        t = book.json("output/cost_report.json")["totals"]
        out[label] = {
            "load1": load,
            "sections": t["sections"],
            "prompt_tokens": t["prompt_tokens"],
            "prompt_cache_hit_tokens": t["prompt_cache_hit_tokens"],
            "completion_tokens": t["completion_tokens"],
            "hit_share": round(t["prompt_cache_hit_tokens"] / t["prompt_tokens"], 4),
            # a simulated run: what its tokens would cost at the model's prices, never money
            "cost_usd": t["simulated_cost_usd"],
        }
        shutil.rmtree(book.path, ignore_errors=True)
    w, wo = out["with_cache"]["cost_usd"], out["without_cache"]["cost_usd"]
    out["cost_saving"] = None if not (w and wo) else round(1 - w / wo, 4)
    log(f"  caching: {out}")
    return out


# The demo book on the local SLURM (issue 12). SLURM's times are to the second, local time.
_SNAKEMAKE_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_JOB_SECTION = re.compile(r"^Job (\d+): Writing section (\d+)")
_JOB_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: section\)")
DEMO_LATENCY = {"ttft_s": 0.5, "tokens_per_s": 400}  # a demo section (~2,000 tokens): ~5.5 s


def _slurm_jobs(after: int, workdir: Path) -> list[dict[str, Any]]:
    """SLURM's record of the jobs above id ``after`` that ran in ``workdir``."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%V|%S|%e|%Z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = []
    for line in out.splitlines():
        jobid, comment, state, submit, start, end, wd = line.split("|", 6)
        if int(jobid) > after and Path(wd) == workdir:
            stamp = [
                time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%S")) for t in (submit, start, end)
            ]
            jobs.append(
                {"id": int(jobid), "section": comment.rsplit("_", 1)[-1], "state": state}
                | dict(zip(("submit", "start", "end"), stamp, strict=True))
            )
    return jobs


def _noticed(stderr: str) -> dict[str, float]:
    """When the main snakemake process logged each section job as finished (to the second)."""
    sections, noticed, stamp = {}, {}, None
    for line in stderr.splitlines():
        if m := _SNAKEMAKE_STAMP.match(line.strip()):
            stamp = time.mktime(time.strptime(m[1], "%a %b %d %H:%M:%S %Y"))
        elif m := _JOB_SECTION.match(line.strip()):
            sections[m[1]] = m[2]
        elif (m := _JOB_FINISHED.match(line.strip())) and stamp is not None:
            noticed[sections[m[1]]] = stamp
    return noticed


def _slurm_overheads(
    jobs: list[dict[str, Any]], entries: list[dict[str, Any]], noticed: dict[str, float]
) -> list[dict[str, Any]]:
    """Per section job: submission → its first request, its last reply → the job's end → the
    main process noticing."""
    rows = []
    for job in sorted(jobs, key=lambda j: j["section"]):
        mine = [e for e in entries if f"{e['section']:02d}" == job["section"]]
        if job["state"] != "COMPLETED" or not mine or job["section"] not in noticed:
            continue
        first = min(e["received_unix_s"] for e in mine)
        last = max(e["received_unix_s"] + e["latency_s"] for e in mine)
        rows.append(
            {
                "section": job["section"],
                "queued_s": job["start"] - job["submit"],
                "submit_to_first_request_s": round(first - job["submit"], 1),
                "start_to_first_request_s": round(first - job["start"], 1),
                "api_s": round(last - first, 1),
                "last_reply_to_job_end_s": round(job["end"] - last, 1),
                "job_end_to_noticed_s": round(noticed[job["section"]] - job["end"], 1),
                "last_reply_to_noticed_s": round(noticed[job["section"]] - last, 1),
            }
        )
    return rows


def slurm(s: Settings, work: Path, log) -> dict[str, Any]:
    """The demo book through ``--profile profiles/slurm`` on the local one-node SLURM against
    the same book run locally (the workflow profile: jobs in threads, ``--cores 8``)."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return {"skipped": "SLURM is not running here (as root: scripts/setup-slurm.sh)"}
    runs = []
    book = None
    for rep in range(max(1, s.reps - 1)):
        for system in ("local", "slurm"):
            with LoopbackSimulator(work / "sim-slurm", DEMO_LATENCY) as sim:
                overrides = {"provider": "deepseek", "base_url": sim.base_url, **FAST}
                if book is None:
                    book = Book(work / "demo", overrides)
                clean(book)
                shutil.rmtree(book.path / ".snakemake", ignore_errors=True)
                book.set_overrides(overrides)
                before = max((int(x) for x in _all_job_ids()), default=0)
                load, t_unix, t0 = load1(), time.time(), time.monotonic()
                args = ("--cores", "8") if system == "local" else ("--profile", "profiles/slurm")
                proc = book.run(*args, env=KEY, timeout=s.timeout_s)
                wall = time.monotonic() - t0
                if proc.returncode != 0:
                    raise RuntimeError(f"{system} run failed:\n{proc.stderr[-3000:]}")
                entries = sim.ledger()["entries"]
            starts = [e["received_unix_s"] for e in entries]
            ends = [e["received_unix_s"] + e["latency_s"] for e in entries]
            run = {
                "rep": rep,
                "system": system,
                "wall_s": round(wall, 1),
                "load1": load,
                "requests": len(entries),
                "latency_total_s": round(sum(e["latency_s"] for e in entries), 1),
                "to_first_request_s": round(min(starts) - t_unix, 1),
                "after_last_reply_s": round(t_unix + wall - max(ends), 1),
                "max_open_requests": _max_overlap(starts, ends),
            }
            if system == "slurm":
                jobs = _slurm_jobs(before, book.path)
                run["slurm_jobs"] = len(jobs)
                run["per_job"] = _slurm_overheads(jobs, entries, _noticed(proc.stderr))
            runs.append(run)
            log(f"  {system:5} demo book: {run['wall_s']} s, load {load}")
    summary: dict[str, Any] = {}
    for system in ("local", "slurm"):
        mine = [r for r in runs if r["system"] == system]
        summary[f"{system}_wall_s"] = _median(mine, "wall_s")
    per_job = [row for r in runs if r["system"] == "slurm" for row in r["per_job"]]
    for key in (
        "queued_s",
        "submit_to_first_request_s",
        "start_to_first_request_s",
        "last_reply_to_job_end_s",
        "job_end_to_noticed_s",
        "last_reply_to_noticed_s",
    ):
        values = [row[key] for row in per_job]
        summary[key] = {
            "median": round(statistics.median(values), 1),
            "max": round(max(values), 1),
        }
    return {"simulator": DEMO_LATENCY, "runs": runs, "summary": summary}


def _all_job_ids() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True)
    return out.stdout.split()
