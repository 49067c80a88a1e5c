"""Durable bookkeeping for a section: the journal of every API call and the response cache.

Both live under ``.bookgen/`` so they survive Snakemake deleting a failed job's outputs. A
section is written by one job at a time, so its journal has a single writer; cache entries are
written atomically under content-addressed names, so concurrent sections never clash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bookgen.fsutil import append_line, atomic_write_json, read_json_lines


class CallJournal:
    """Append-only JSON-lines record of a section's API calls, failed ones included.

    Before a request is sent, ``begin`` journals what to bill if its process dies before the
    reply is recorded (a failed call, input tokens estimated); ``append`` then records the call
    itself under the same ``call_id``, which supersedes that line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def begin(self, unfinished: dict[str, Any]) -> None:
        """Journal the record that stands for this call should it never finish."""
        self.append({**unfinished, "unfinished": True})

    def append(self, record: dict[str, Any]) -> None:
        append_line(self.path, json.dumps(record, ensure_ascii=False, sort_keys=True))

    def recorded(self, call_id: str) -> bool:
        """True when the call's own record (not just its begin line) is in the journal."""
        return any(
            r.get("call_id") == call_id and not r.get("unfinished") for r in _read(self.path)
        )

    def records(self, in_flight: Callable[[], bool] = lambda: False) -> list[dict[str, Any]]:
        """Every call, in order. A call begun and never recorded counts as failed, unless
        ``in_flight()`` says its section is being written right now: then it is left out
        (asked only when the journal has such a call)."""
        lines = _read(self.path)
        key = str(self.path)
        settled = _settled.get(key)
        if settled is not None and settled[0] is lines:
            return list(settled[1])
        finished = {r["call_id"] for r in lines if "call_id" in r and not r.get("unfinished")}
        open_calls = [r for r in lines if r.get("unfinished") and r["call_id"] not in finished]
        skip_open = bool(open_calls) and in_flight()
        out = []
        for r in lines:
            if r.get("unfinished"):
                if skip_open or r["call_id"] in finished:
                    continue
                r = {k: v for k, v in r.items() if k != "unfinished"}
            out.append(r)
        if not open_calls:  # nothing here depends on in_flight(): the same until the file changes
            _settled[key] = (lines, out)
            return list(out)
        return out

    def settled(self) -> bool:
        """Whether ``records`` of the file as it is now left no call open: its answer then
        depends on nothing else until the file changes."""
        hit = _settled.get(str(self.path))
        return hit is not None and hit[0] is _read(self.path)


# Parsed journals by path, with the (mtime, size) they were read at: the cost-so-far line and the
# budget check read every section's journal after every section, and only a few have changed.
_parsed: dict[str, tuple[int, int, list[dict[str, Any]]]] = {}
# ``records()`` of journals with no call left open, by path, with the parsed lines they came
# from: at 1,000 sections, building them again for every section's cost-so-far line took about
# a tenth of a zero-latency run.
_settled: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}


def _read(path: Path) -> list[dict[str, Any]]:
    """The journal's lines (parsed once per version of the file; do not modify them)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    key = str(path)
    hit = _parsed.get(key)
    if hit is not None and hit[:2] == (st.st_mtime_ns, st.st_size):
        return hit[2]
    lines = read_json_lines(path)
    _parsed[key] = (st.st_mtime_ns, st.st_size, lines)
    return lines


class ResponseCache:
    """Completed replies on disk, keyed by the request's identity
    (``bookgen.provider.request_identity.request_key``), so a retry never pays twice."""

    def __init__(self, root: Path, enabled: bool = True, replay: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.replay = replay  # False: store new replies but do not replay stored ones

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if not (self.enabled and self.replay):
            return None
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, reply: dict[str, Any]) -> None:
        if self.enabled:
            atomic_write_json(self._path(key), reply)
