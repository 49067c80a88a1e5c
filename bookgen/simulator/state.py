"""The provider's memory: prefix cache, fault counters and ledger, in memory or shared on disk.

With a state directory every piece of state is an append-only file written with ``O_APPEND``
under ``fcntl.flock``; each process keeps its file offset and reads only lines added since,
so several Simulator instances in different processes behave like one provider and a
1,000-request book stays cheap.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LEDGER_FILE = "ledger.jsonl"
COUNTERS_FILE = "counters.log"
CACHE_FILE = "prefix_cache.log"

TOTAL_KEYS = (
    "prompt_tokens",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
    "completion_tokens",
    "reasoning_tokens",
)


class _AppendLog:
    """A line-oriented append-only file shared between processes, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        self._offset = 0
        self._partial = b""

    @contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def read_new(self) -> list[str]:
        """Complete lines appended since the last call."""
        chunks = []
        while True:
            data = os.pread(self._fd, 1 << 20, self._offset)
            if not data:
                break
            chunks.append(data)
            self._offset += len(data)
        if not chunks:
            return []
        data = self._partial + b"".join(chunks)
        *lines, self._partial = data.split(b"\n")
        return [line.decode("utf-8") for line in lines if line]

    def append(self, lines: list[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self) -> None:
        os.close(self._fd)


class _Shared:
    """State rebuilt from lines: applied directly in memory, or via an append-only file."""

    def __init__(self, path: Path | None, apply: Callable[[str], None]) -> None:
        self._lock = threading.Lock()
        self._log = _AppendLog(path) if path is not None else None
        self._apply = apply

    @contextmanager
    def transaction(self, exclusive: bool = True) -> Iterator[Callable[[str], None]]:
        """Bring state up to date and yield ``emit(line)``; emitted lines apply after the block."""
        with self._lock:
            pending: list[str] = []
            if self._log is None:
                yield pending.append
                for line in pending:
                    self._apply(line)
                return
            with self._log.locked(exclusive):
                for line in self._log.read_new():
                    self._apply(line)
                yield pending.append
                if pending:
                    self._log.append(pending)
                    for line in self._log.read_new():
                        self._apply(line)

    def append(self, line: str) -> None:
        """Record ``line`` without catching up first (it is applied at the next transaction)."""
        with self._lock:
            if self._log is None:
                self._apply(line)
                return
            with self._log.locked(exclusive=True):
                self._log.append([line])

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


class State:
    """Prefix cache, named counters and the ledger of one simulated provider."""

    def __init__(self, state_dir: str | Path | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        self._counts: Counter[str] = Counter()
        self._seen: set[str] = set()
        self._entries: list[dict[str, Any]] = []
        self._counters = _Shared(self._file(COUNTERS_FILE), self._apply_counter)
        self._cache = _Shared(self._file(CACHE_FILE), self._seen.add)
        self._ledger = _Shared(self._file(LEDGER_FILE), self._apply_ledger)

    def _file(self, name: str) -> Path | None:
        return self.state_dir / name if self.state_dir is not None else None

    def _apply_counter(self, line: str) -> None:
        self._counts[line] += 1

    def _apply_ledger(self, line: str) -> None:
        entry = json.loads(line)
        if entry.get("reset"):
            self._entries.clear()
        else:
            self._entries.append(entry)

    # counters -------------------------------------------------------------------------------
    def take(self, key: str, limit: int | None = None) -> tuple[bool, int]:
        """Atomically count one use of ``key`` unless ``limit`` uses were counted already.

        Returns (taken, uses counted before this one).
        """
        with self._counters.transaction() as emit:
            before = self._counts[key]
            taken = limit is None or before < limit
            if taken:
                emit(key)
        return taken, before

    # prefix cache ---------------------------------------------------------------------------
    def cache_hit_and_store(self, boundary_hashes: list[str]) -> int:
        """How many leading boundaries were seen before; then remember all of them."""
        if not boundary_hashes:
            return 0
        with self._cache.transaction() as emit:
            hit = 0
            for i, h in enumerate(boundary_hashes):
                if h in self._seen:
                    hit = i + 1
            for h in boundary_hashes:
                if h not in self._seen:
                    emit(h)
        return hit

    # ledger ---------------------------------------------------------------------------------
    def ledger_add(self, entry: dict[str, Any]) -> None:
        self._ledger.append(json.dumps(entry, separators=(",", ":"), sort_keys=True))

    def ledger_entries(self) -> list[dict[str, Any]]:
        with self._ledger.transaction(exclusive=False):
            return copy.deepcopy(self._entries)

    def ledger_reset(self) -> None:
        self._ledger.append('{"reset":true}')

    def ledger_totals(self) -> dict[str, int]:
        totals = {"calls": 0, **dict.fromkeys(TOTAL_KEYS, 0)}
        with self._ledger.transaction(exclusive=False):
            for entry in self._entries:
                if not entry.get("reported_to_client"):
                    continue
                totals["calls"] += 1
                usage = entry.get("usage") or {}
                for k in TOTAL_KEYS:
                    totals[k] += int(usage.get(k) or 0)
        return totals

    def close(self) -> None:
        for shared in (self._counters, self._cache, self._ledger):
            shared.close()
