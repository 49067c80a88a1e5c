"""What a job tells the user: its own log (for ``tail -F``), whole lines on the console, and
the count of finished sections those lines carry ("[3/11]")."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bookgen import paths
from bookgen.fsutil import atomic_write_json
from bookgen.locks import exclusive

PROGRESS_RE = re.compile(
    r"^\S+ \S+ (?P<call>.+): about (?P<tokens>[\d,]+) tokens so far, (?P<rate>[\d.]+) tokens/s$"
)
START_MARK = " writing "  # the line a section job begins its log with (bookgen.writing.section)


class ProgressLog:
    """Timestamped lines, flushed at once; streaming progress at most every ``interval_s``."""

    def __init__(self, path: Path | str, label: str, interval_s: float = 2.0) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = path.open("a", encoding="utf-8", buffering=1)
        self.label = label
        self.interval_s = interval_s
        self._last = 0.0

    def line(self, message: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        self._fh.write(f"{stamp} {self.label} {message}\n")

    def progress(self, call_label: str, tokens: int, elapsed_s: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        rate = tokens / elapsed_s if elapsed_s > 0 else 0.0
        self.line(f"{call_label}: about {tokens:,} tokens so far, {rate:.1f} tokens/s")

    def close(self) -> None:
        self._fh.close()


def announce(text: str) -> None:
    """Print ``text`` as whole lines on stdout. Jobs run in threads: one write per message
    keeps two sections finishing at once from splicing their lines together."""
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def last_progress(log: Path) -> tuple[str, int, float] | None:
    """``(call, tokens so far, tokens/s)`` from the newest progress line of a section's log
    written since the job began (its log is appended to by every run), or None."""
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))
            tail = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        if m := PROGRESS_RE.match(line):
            return m["call"], int(m["tokens"].replace(",", "")), float(m["rate"])
        if START_MARK in line:
            return None
    return None


def start_count(done: int, total: int, root: Path = paths.STATE) -> None:
    """A run of a ``total``-section book starts with ``done`` sections it will not rewrite."""
    atomic_write_json(paths.progress_counter(root), {"done": done, "total": total})


def read_count(root: Path = paths.STATE) -> tuple[int, int]:
    """``(done, total)`` as the last finished section counted them."""
    try:
        data = json.loads(paths.progress_counter(root).read_text(encoding="utf-8"))
        return int(data["done"]), int(data["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


@contextmanager
def next_count(total: int, root: Path = paths.STATE) -> Iterator[int]:
    """The count of finished sections, this one included, for a job that just finished one.

    A file under a file lock, so the count never repeats and lines printed inside the block
    come out in increasing order, whether the jobs are threads of the ``snakemake`` process
    (the profile) or processes of their own (``--workflow-profile none``, a cluster executor).
    Counting the files instead repeats a number when two sections land at once, and goes
    back when Snakemake deletes the outputs of a section it starts rewriting.
    """
    with exclusive(root / "locks" / "progress.lock"):
        done = read_count(root)[0] + 1
        atomic_write_json(paths.progress_counter(root), {"done": done, "total": total})
        yield done
