"""Ideal makespans from the simulator's own per-request latencies (its ledger)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def section_latencies(entries: list[dict[str, Any]]) -> dict[int, float]:
    """Seconds the provider spent answering each section (all its requests, summed)."""
    out: dict[int, float] = defaultdict(float)
    for e in entries:
        out[e["section"]] += e["latency_s"]
    return dict(out)


def lower_bound(latencies: list[float], slots: int) -> float:
    """The issue's physical limit: max(longest section, total latency / parallel slots)."""
    return max(max(latencies), sum(latencies) / slots) if latencies else 0.0


def best_schedule(latencies: list[float], slots: int, max_nodes: int = 200_000) -> float:
    """Shortest makespan of whole sections on ``slots`` parallel slots (P||Cmax).

    Branch and bound over sections in decreasing order, starting from the LPT schedule; exact
    unless ``max_nodes`` is exhausted, then the best schedule found (never below the bound).
    """
    jobs = sorted(latencies, reverse=True)
    if not jobs:
        return 0.0
    slots = min(slots, len(jobs))
    loads = [0.0] * slots
    for j in jobs:  # LPT: longest first onto the least-loaded slot
        loads[loads.index(min(loads))] += j
    best = max(loads)
    bound = lower_bound(jobs, slots)
    nodes = 0

    def place(i: int, loads: list[float]) -> None:
        nonlocal best, nodes
        nodes += 1
        if i == len(jobs) or best <= bound + 1e-9 or nodes > max_nodes:
            best = min(best, max(loads)) if i == len(jobs) else best
            return
        tried: set[float] = set()
        for k in range(slots):
            load = loads[k]
            if load in tried or load + jobs[i] >= best - 1e-9:
                continue
            tried.add(load)
            loads[k] = load + jobs[i]
            place(i + 1, loads)
            loads[k] = load

    place(0, [0.0] * slots)
    return best
