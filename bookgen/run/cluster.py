"""What changes when an executor plugin (SLURM) runs the jobs on other hosts.

Every section job is then a process of its own on a node that shares the book's directory with
the main ``snakemake`` process. Locks, journals, the response cache and the budget all live in
that directory, so they hold across processes as they do across threads. Two things do not
reach the main process by themselves: a job's console lines (they land in the cluster's job
log), and where that log is. ``ProgressWatcher`` follows the book from the shared files
instead, and ``kept_job_logs`` finds the logs the SLURM plugin keeps for failed jobs.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bookgen import interrupt, paths
from bookgen.money.budget import progress_line, run_spending
from bookgen.run.progress import announce, read_count

# The SLURM plugin's default --slurm-logdir, relative to the working directory.
SLURM_LOGDIR = Path(".snakemake") / "slurm_logs"
SLURM_PLUGIN = "snakemake_executor_plugin_slurm"  # bookgen's `slurm` extra installs it


def slurm_plugin_installed() -> bool:
    """Whether this Python has Snakemake's SLURM executor plugin (``pip install -e '.[slurm]'``)."""
    return importlib.util.find_spec(SLURM_PLUGIN) is not None


def _finished(output: Path) -> dict[str, int]:
    """Section files in ``output`` by name, with their modification time (ns)."""
    out = {}
    for path in output.glob("section_*.md"):
        try:
            out[path.stem.removeprefix("section_")] = path.stat().st_mtime_ns
        except FileNotFoundError:  # deleted between listing and stat (a rebuild starting)
            continue
    return out


class ProgressWatcher:
    """Prints ``[3/11] section_04 done · $0.0041 so far (...)`` in the main process for every
    section that a job elsewhere finishes, as a local run does: a thread that looks at the
    section files every ``interval_s`` and reads the money spent from the call journals."""

    def __init__(
        self,
        config: dict[str, Any],
        section_ids: Callable[[], list[str]],
        interval_s: float = 1.0,
        output: Path = paths.OUTPUT,
        state_root: Path = paths.STATE,
        say: Callable[[str], None] = announce,
    ) -> None:
        self.config = config  # real money, or a simulated run's would-be cost
        self.section_ids = section_ids  # a callable: a book from a topic learns them late
        self.interval_s = interval_s
        self.output = output
        self.state_root = state_root
        self.say = say
        self._seen = _finished(output)  # what was there before the run is not news
        # the sections this run keeps (bookgen.run.progress.start_count): each line counts one more,
        # so "[N/11]" never repeats even when sections land in the same poll
        self._done = read_count(state_root)[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bookgen-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, after announcing what finished since the last look."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.poll()

    def poll(self) -> list[str]:
        """Announce the sections finished since the last call; return the lines."""
        now = _finished(self.output)
        new = sorted(sid for sid, mtime in now.items() if self._seen.get(sid) != mtime)
        self._seen = now
        if not new:
            return []
        ids = set(self.section_ids())
        spent = run_spending(self.config, self.state_root)
        lines = []
        for sid in (sid for sid in new if sid in ids):
            self._done += 1
            lines.append(progress_line(sid, self._done, len(ids), spent))
            self.say(lines[-1])
        return lines

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()


def slurm_job_line() -> str | None:
    """``SLURM job 42 on node n1`` for a section's log when it runs under SLURM, else None."""
    job = os.environ.get("SLURM_JOB_ID")
    return f"SLURM job {job} on node {socket.gethostname()}" if job else None


def stop_when_orphaned(interval_s: float = 1.0, grace_s: float = 10.0) -> threading.Thread:
    """In a cluster job's process: stop like Ctrl-C (streams abandoned and billed as cut, no new
    request) once the process that started it is gone, and exit ``grace_s`` later whatever the
    job step's Snakemake is doing.

    When SLURM cancels a job (Ctrl-C on the main process), the job step's Snakemake treats
    SIGTERM as "let the running job finish", and SLURM's process tracking without cgroups
    (``proctrack/linuxproc``) loses a process whose parent died first: seen here, such a section
    job went on for minutes, retrying its calls, after its job was gone from ``squeue``. Once
    stopped, the job step's Snakemake can hang for good: SLURM's SIGTERM reaching its handler
    while the scheduler holds its own lock (seen: ``exit_gracefully`` inside ``_handle_error``),
    hence the exit. The grace lets the section journal what its cut calls cost. The batch
    step's own Snakemake (``--executor slurm-jobstep``, the srun's parent) is lost the same way
    when its shell dies first (seen in CI: it outlived its cancelled job by over a minute), so
    every Snakemake of a job starts this watch, as it loads the workflow.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        interrupt.request_stop()
        time.sleep(grace_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="bookgen-orphan-watch", daemon=True)
    thread.start()
    return thread


def kept_job_logs(section_ids: list[str], logdir: Path | None = None) -> dict[str, Path]:
    """The newest SLURM job log of each section that has one (the plugin keeps the logs of
    failed jobs: ``<logdir>/rule_section/<id>/<jobid>.log``)."""
    root = Path(logdir or SLURM_LOGDIR) / "rule_section"
    out = {}
    for sid in section_ids:
        logs = sorted((root / sid).glob("*.log"), key=os.path.getmtime)
        if logs:
            out[sid] = logs[-1]
    return out
