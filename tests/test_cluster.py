"""bookgen.run.cluster without Snakemake or SLURM: the main process's progress lines for sections
that jobs elsewhere finish, and the SLURM logs kept for failed sections."""

from __future__ import annotations

import os
from pathlib import Path

from bookgen import paths
from bookgen.config import sections_from_config
from bookgen.fsutil import atomic_write_json, atomic_write_text
from bookgen.run.cluster import ProgressWatcher, kept_job_logs, slurm_job_line
from bookgen.run.progress import start_count
from bookgen.run.status import failure_summary
from tests.test_budget import call_record, journal

IDS = ["01", "02", "03"]


def watcher(tmp_path: Path, said: list[str], kept: int = 0) -> ProgressWatcher:
    start_count(kept, len(IDS), tmp_path / "state")  # as on_start does before the watcher
    return ProgressWatcher(
        {"provider": "deepseek"},
        lambda: IDS,
        output=tmp_path / "output",
        state_root=tmp_path / "state",
        say=said.append,
    )


def test_each_section_a_job_finishes_is_announced_once_with_the_money_so_far(tmp_path):
    atomic_write_text(tmp_path / "output" / "section_01.md", "finished before the run\n")
    said: list[str] = []
    w = watcher(tmp_path, said, kept=1)
    assert w.poll() == []  # what was there at the start is not news
    journal(tmp_path / "state", "02", call_record("02", 0.0021))
    atomic_write_text(tmp_path / "output" / "section_02.md", "text\n")
    assert w.poll() == ["[2/3] section_02 done · $0.0021 so far (150 tokens)"]
    assert w.poll() == []
    journal(tmp_path / "state", "03", call_record("03", 0.0010))
    atomic_write_text(tmp_path / "output" / "section_03.md", "text\n")
    w.start()
    w.stop()  # the last look happens on stop, whatever the interval
    assert said == [
        "[2/3] section_02 done · $0.0021 so far (150 tokens)",
        "[3/3] section_03 done · $0.0031 so far (300 tokens)",
    ]


def test_sections_landing_in_one_poll_get_their_own_numbers(tmp_path):
    said: list[str] = []
    w = watcher(tmp_path, said)
    for sid in IDS:
        atomic_write_text(tmp_path / "output" / f"section_{sid}.md", "text\n")
    assert [line.split(" section")[0] for line in w.poll()] == ["[1/3]", "[2/3]", "[3/3]"]


def test_a_rewritten_section_is_announced_again(tmp_path):
    md = tmp_path / "output" / "section_01.md"
    atomic_write_text(md, "old\n")
    said: list[str] = []
    w = watcher(tmp_path, said)
    atomic_write_text(md, "new\n")
    os.utime(md, ns=(md.stat().st_atime_ns, md.stat().st_mtime_ns + 1_000_000))
    assert [line.split(" done")[0] for line in w.poll()] == ["[1/3] section_01"]


def test_the_newest_kept_slurm_log_is_named_in_the_failure_summary(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logdir = Path(".snakemake/slurm_logs")
    for jobid, mtime in (("31", 1000), ("44", 2000)):
        log = logdir / "rule_section" / "02" / f"{jobid}.log"
        atomic_write_text(log, "srun: error\n")
        os.utime(log, (mtime, mtime))
    logs = kept_job_logs(IDS)
    assert logs == {"02": logdir / "rule_section" / "02" / "44.log"}
    sections = sections_from_config(
        {"sections": [{"title": f"T{i}", "key_points": ["k"], "words": 100} for i in (1, 2, 3)]}
    )
    assert [s.id for s in sections] == IDS
    atomic_write_json(paths.failure_note(sections[1].key), {"section": "02", "error": "HTTP 500"})
    summary = failure_summary(sections, job_logs=logs)
    assert (
        "section_02: HTTP 500 (log: output/logs/section_02.log, "
        ".snakemake/slurm_logs/rule_section/02/44.log)" in summary
    )
    assert kept_job_logs(IDS, tmp_path / "elsewhere") == {}


def test_the_slurm_job_line_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurm_job_line() is None
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert (slurm_job_line() or "").startswith("SLURM job 42 on node ")


ORPHAN = """
import os, sys, time
sys.path.insert(0, {repo!r})
from bookgen import interrupt
from bookgen.run import cluster

if os.fork():  # the job step that started the section job, cancelled: it dies
    time.sleep(0.5)
    os._exit(0)
cluster.stop_when_orphaned(interval_s=0.05, grace_s=1.0)
deadline = time.monotonic() + 20
while not interrupt.stopping() and time.monotonic() < deadline:
    time.sleep(0.05)
open({marker!r}, "w").write(f"{{os.getpid()}} stopping={{interrupt.stopping()}}")
time.sleep(60)  # a job step hung for good: the watcher ends the process after its grace
"""


def test_a_job_whose_parent_died_stops_like_ctrl_c(tmp_path):
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    marker = tmp_path / "marker"
    script = ORPHAN.format(repo=str(REPO), marker=str(marker))
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid, stopping = marker.read_text().split()
    assert stopping == "stopping=True"
    while Path(f"/proc/{pid}").exists():  # ended after its grace, not 60 s later
        assert time.monotonic() < deadline, "the orphaned job is still running"
        time.sleep(0.1)
