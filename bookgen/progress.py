"""What a job tells the user: its own log (for ``tail -f``) and whole lines on the console."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO


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
