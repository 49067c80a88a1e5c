"""Memory of a process tree while it runs: per-process peak RSS and the tree's total over time.

Samples ``/proc`` (through psutil) every ``interval_s``. A process's peak comes from the
kernel's own high-water mark (``VmHWM``), so a short-lived job's peak is exact as long as it
was sampled at least once near its end; the tree total is a sampled sum of current RSS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

MB = 1024 * 1024


def _hwm_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class ProcInfo:
    """One process seen in the tree."""

    pid: int
    cmdline: str
    peak_rss: int = 0


@dataclass
class TreeMonitor:
    """``with TreeMonitor(pid) as mon:`` samples the descendants of ``pid`` until exit.

    Processes in ``exclude`` (and ``pid`` itself) are left out; ``main`` names the process
    (a command-line substring) whose RSS is also recorded on its own over time.
    """

    root: int
    main: str = "bin/snakemake"
    exclude: frozenset[int] = frozenset()
    interval_s: float = 0.1
    procs: dict[int, ProcInfo] = field(default_factory=dict)
    series: list[tuple[float, int, int]] = field(default_factory=list)  # (t, main rss, total)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeMonitor:
        self._thread = threading.Thread(target=self._run, name="bench-procmon", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            root = psutil.Process(self.root)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                tree = [p for p in root.children(recursive=True) if p.pid not in self.exclude]
            except psutil.Error:  # a process vanished mid-scan: try again
                continue
            total = main_rss = 0
            for p in tree:
                try:
                    rss = p.memory_info().rss
                    cmdline = " ".join(p.cmdline())  # re-read: a fresh child execs after fork
                except psutil.Error:
                    continue
                info = self.procs.setdefault(p.pid, ProcInfo(p.pid, cmdline))
                if info.cmdline != cmdline:  # exec'd since: a new program, a new peak
                    info.cmdline, info.peak_rss = cmdline, 0
                info.peak_rss = max(info.peak_rss, _hwm_bytes(p.pid) or rss)
                total += rss
                if self.main in info.cmdline:
                    main_rss = max(main_rss, rss)
            if tree:
                self.series.append((time.monotonic() - t0, main_rss, total))
            self._stop.wait(self.interval_s)

    def peak(self, needle: str) -> int:
        """Largest peak RSS (bytes) of the processes whose command line contains ``needle``."""
        return max((p.peak_rss for p in self.procs.values() if needle in p.cmdline), default=0)

    def count(self, needle: str) -> int:
        return sum(1 for p in self.procs.values() if needle in p.cmdline)

    def peak_tree(self) -> int:
        return max((s[2] for s in self.series), default=0)

    def main_rss_at(self, fraction: float) -> int:
        """The main process's RSS at ``fraction`` (0..1) of the sampled run time."""
        if not self.series:
            return 0
        return self.series[min(len(self.series) - 1, int(fraction * len(self.series)))][1]
