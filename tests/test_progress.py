"""The "[N/11] section_NN done" count: unique and increasing, whatever finishes at once."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from bookgen.run.progress import next_count, start_count
from tests.book import FAST, Book, short_sections
from tests.conftest import REPO

LINE = re.compile(r"^\[(\d+)/11\] section_(\d\d) done")
TINY = {"sections": short_sections(300), "simulator": {"tokens_per_s": 5000}}


def test_threads_finishing_at_once_get_one_count_each_in_order(tmp_path):
    start_count(3, 30, tmp_path)
    barrier = threading.Barrier(16)
    printed: list[int] = []

    def finish() -> None:
        barrier.wait()  # all sixteen reach the counter together
        with next_count(30, tmp_path) as done:
            printed.append(done)  # what a job prints inside the block

    threads = [threading.Thread(target=finish) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert printed == list(range(4, 20))


def test_processes_share_the_count(tmp_path):
    """Jobs are processes of their own with --workflow-profile none or a cluster executor."""
    start_count(0, 40, tmp_path)
    code = (
        "import sys; from pathlib import Path; from bookgen.run.progress import next_count\n"
        "for _ in range(10):\n"
        "    with next_count(40, Path(sys.argv[1])) as n: print(n, flush=True)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    counts = sorted(int(n) for p in procs for n in p.communicate()[0].split())
    assert counts == list(range(1, 41))


def counts(stdout: str) -> list[int]:
    return [int(m.group(1)) for m in map(LINE.match, stdout.splitlines()) if m]


def test_a_run_counts_1_to_11_and_a_rerun_counts_on_from_what_it_keeps(tmp_path):
    book = Book(tmp_path / "book", TINY)
    proc = book.run("--cores", "11")  # every section at once: many finish in the same instant
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert counts(proc.stdout) == list(range(1, 12))
    # Not a terminal: Snakemake's usual lines (the profile's logger plugin prints no board).
    assert "steps (100%) done" in proc.stderr and "sections done ·" not in proc.stderr
    # Two deleted and one whose key points changed (Snakemake deletes its file as it starts
    # rewriting it): the rerun keeps 8 and counts 9, 10, 11.
    for sid in ("03", "07"):
        book.file(f"output/section_{sid}.md").unlink()
    sections = [*TINY["sections"]]
    sections[9] = {**sections[9], "key_points": ["A new key point"]}
    book.set_overrides({"provider": "simulator", **FAST, **TINY, "sections": sections})
    proc = book.run("--cores", "11")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert counts(proc.stdout) == [9, 10, 11]
