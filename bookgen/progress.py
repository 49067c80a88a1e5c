"""A section's human-readable log, meant for ``tail -f`` while the section is written."""

from __future__ import annotations

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
        self.line(f"{call_label}: {tokens:,} tokens so far, {rate:.1f} tokens/s")

    def close(self) -> None:
        self._fh.close()
