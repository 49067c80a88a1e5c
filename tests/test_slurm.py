"""The demo book on a real SLURM (scripts/setup-slurm.sh) through Snakemake's slurm executor
plugin and profiles/slurm: a Ctrl-C mid-run, a resume in which one section fails, and a rerun
that finishes the book. What ran where is asked of SLURM itself, not taken from Snakemake.

Skipped where SLURM is not running or the executor plugin is not installed; in CI
(BOOKGEN_CI=1, set by .ci/run) that is a failure. The plugin (the `slurm` extra) is taken from
this virtualenv, else from `.venv-slurm` (.ci/run makes it: installed with the test suite's
venv, it would cost every other test's Snakemake start 0.8 s of importing it).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bookgen.run.cluster import slurm_plugin_installed
from tests.book import BIN, Book
from tests.conftest import REPO
from tests.loopback import LoopbackSimulator

pytestmark = pytest.mark.slurm

# About 110 tokens a section at 25 tokens/s: ~5 s streaming each, so a Ctrl-C finds some
# sections finished and others streaming (jobs start some seconds apart on a busy machine).
SLOW = {"ttft_s": 0.5, "tokens_per_s": 25, "words_factor": 0.05}
# Sections far below their target length on purpose (fast): quality control only flags them.
CHECK_ONLY = {"qc": {"max_attempts": 0, "on_fail": "warn"}}
SECRET = "sk-bookgen-slurm-SECRET-5d1e77"
KEY = {"DEEPSEEK_API_KEY": SECRET}
FAILING = 11  # the simulator answers every request for this section with HTTP 500
PROFILE = ("--profile", "profiles/slurm")


def slurm_snakemake() -> tuple[str, ...] | None:
    """A snakemake command with the SLURM executor plugin: this venv's, else ``.venv-slurm``'s."""
    if slurm_plugin_installed():
        return (str(BIN / "snakemake"),)
    other = REPO / ".venv-slurm" / "bin" / "python"
    return (str(other), "-m", "snakemake") if other.exists() else None


def slurm_missing() -> str | None:
    """Why the SLURM tests cannot run here, or None."""
    if not slurm_snakemake():
        return (
            "the SLURM executor plugin is not installed (pip install -e '.[slurm]', or beside "
            "this venv: scripts/slurm-venv.sh)"
        )
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return "SLURM is not installed (as root: scripts/setup-slurm.sh)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    states = proc.stdout.split()
    if proc.returncode != 0 or not {"idle", "mix", "alloc"} & set(states):
        why = (proc.stderr or " ".join(states)).strip()
        return f"no SLURM node is up ({why}); run scripts/setup-slurm.sh"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    reason = slurm_missing()
    if reason and os.environ.get("BOOKGEN_CI"):
        pytest.fail(f"CI must run the SLURM tests: {reason}")
    if reason:
        pytest.skip(reason)


def slurm_jobs(book: Book | None = None, after: int = 0) -> list[dict[str, str]]:
    """The jobs SLURM knows of (finished ones for MinJobAge) with an id above ``after`` that ran
    in ``book`` (all with None)."""
    proc = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%S|%e|%Z"],
        capture_output=True,
        text=True,
        check=True,
    )
    jobs = []
    for line in proc.stdout.splitlines():
        jobid, comment, state, start, end, workdir = line.split("|", 5)
        if int(jobid) > after and (book is None or Path(workdir) == book.path):
            section = comment.rsplit("_", 1)[-1]
            jobs.append(
                {"id": jobid, "section": section, "state": state, "start": start, "end": end}
            )
    return jobs


def most_at_once(jobs: list[dict[str, str]]) -> int:
    """The most jobs SLURM ran at the same time (start and end times, to the second)."""
    spans = [(j["start"], j["end"]) for j in jobs if j["start"] != "N/A"]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


def processes_in(path: Path) -> list[str]:
    """The command lines of the processes whose working directory is ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == path:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def section_mtimes(book: Book) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (book.path / "output").glob("section_*.md")}


def test_demo_book_on_slurm_with_ctrl_c_failure_and_resume(slurm, tmp_path):
    before = max((int(j["id"]) for j in slurm_jobs()), default=0)
    faulty = {**SLOW, "faults": [{"kind": "http_500", "section": FAILING}]}
    with LoopbackSimulator(tmp_path / "sim1", faulty) as sim1:
        book = Book(
            tmp_path / "book",
            {"provider": "deepseek", "base_url": sim1.base_url, **CHECK_ONLY},
            snakemake=slurm_snakemake() or (),
        )
        # 1. Ctrl-C in the middle: the SLURM jobs are cancelled at once; their processes get
        #    SLURM's KillWait (30 s) to end, and then nothing is left in the queue.
        with (tmp_path / "run1.log").open("w") as log:
            proc = book.start(*PROFILE, env=KEY, output=log)
        book.wait_mid_run(proc, timeout=240, poll=0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=300) != 0
        run1 = (tmp_path / "run1.log").read_text()
        jobs = slurm_jobs(book, before)
        assert not [j for j in jobs if j["state"] in ("PENDING", "RUNNING")], jobs
        assert any(j["state"] == "CANCELLED" for j in jobs), jobs
        deadline = time.monotonic() + 120
        while any(j["state"] == "COMPLETING" for j in slurm_jobs(book, before)):
            assert time.monotonic() < deadline, slurm_jobs(book, before)
            time.sleep(1)
        # ... and no process of the book is left behind (a job step's process orphaned by the
        # cancel went on retrying its calls: it now stops when its parent is gone)
        deadline = time.monotonic() + 60
        while left := processes_in(book.path):
            assert time.monotonic() < deadline, left
            time.sleep(1)
        assert 2 <= len(book.sections()) < 11
        assert re.search(r"\[\d+/11\] section_\d\d done · \$[\d.]+ so far", run1), run1[-3000:]
        kept = section_mtimes(book)

        # 2. The same command resumes: every other section is written, the faulty one fails with
        #    its reason and the SLURM log kept for it.
        proc = book.run(*PROFILE, env=KEY, timeout=400)
        outputs = [proc.stdout, proc.stderr]
        assert proc.returncode != 0
        err = proc.stderr
        note = re.search(rf"section_{FAILING}: (.*) \(log: (.*)\)", err)
        assert note and "HTTP 500" in note[1], err[-3000:]
        logs = note[2].split(", ")
        assert logs[0] == f"output/logs/section_{FAILING}.log"
        assert logs[1].startswith(f".snakemake/slurm_logs/rule_section/{FAILING}/")
        assert (book.path / logs[1]).is_file()
        assert book.sections() == [f"section_{i:02d}.md" for i in range(1, 11)]
        after = section_mtimes(book)
        assert all(after[name] == mtime for name, mtime in kept.items())  # kept, not rewritten
        done_lines = re.findall(r"\[(\d+)/11\] section_(\d\d) done", proc.stdout)
        assert {sid for _, sid in done_lines} == {f"{i:02d}" for i in range(1, 11)} - {
            name[8:10] for name in kept
        }, proc.stdout

        ledger1 = sim1.ledger()["entries"]

    # 3. The provider is healthy again: the same command writes the last section and the book.
    with LoopbackSimulator(tmp_path / "sim2", SLOW) as sim2:
        book.set_overrides({"provider": "deepseek", "base_url": sim2.base_url, **CHECK_ONLY})
        proc = book.run(*PROFILE, env=KEY, timeout=400)
        outputs += [proc.stdout, proc.stderr]
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(book.sections()) == 11 and book.file("output/book.html").exists()
        assert book.pending() == {}
        ledger2 = sim2.ledger()["entries"]

    # Nothing bought twice: each section's reply was delivered once, over both providers.
    delivered = collections.Counter(
        e["section"] for e in ledger1 + ledger2 if e["reported_to_client"]
    )
    assert delivered == {n: 1 for n in range(1, 12)}, delivered

    # From SLURM: each section's log names the SLURM job that wrote it (its own SLURM_JOB_ID),
    # and SLURM knows that job as this section's, run in this directory. A section finished just
    # as Ctrl-C cancelled its job ends CANCELLED; the failing section's jobs FAILED.
    jobs = slurm_jobs(book, before)
    by_id = {j["id"]: j for j in jobs}
    for i in range(1, 12):
        sid = f"{i:02d}"
        log = book.file(f"output/logs/section_{sid}.log").read_text()
        writer = by_id[re.findall(r"SLURM job (\d+) on node", log)[-1]]
        assert writer["section"] == sid, (writer, jobs)
        assert writer["state"] == "COMPLETED" or (
            writer["state"] == "CANCELLED" and f"section_{sid}.md" in kept
        ), (writer, jobs)
    assert any(j["section"] == f"{FAILING}" and j["state"] == "FAILED" for j in jobs), jobs
    # The `api` cap (8) held across the jobs: the first run had 11 sections and `jobs: 16`.
    assert most_at_once(jobs) <= 8, jobs

    # The key reached the jobs (they called the provider with it) only through the environment:
    # not in a job script SLURM holds, not in any file of the book, its logs or Snakemake's.
    for job in jobs:
        script = subprocess.run(
            ["scontrol", "write", "batch_script", job["id"], "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "snakemake" in script and SECRET not in script
    for path in book.path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in run1 + "".join(outputs)
