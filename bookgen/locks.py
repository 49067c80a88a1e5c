"""Process locks that the kernel releases when their holder dies, even by SIGKILL.

Snakemake's own directory lock survives a killed run and blocks the next one until
``--unlock``; bookgen's profile switches it off (``nolock``) and holds these instead.
"""

from __future__ import annotations

import fcntl
import glob
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bookgen import paths

_held: list[int] = []


class LockBusy(RuntimeError):
    """Another live process holds the lock."""


def hold_run_lock(root: Path = paths.STATE) -> None:
    """Lock the book directory for the lifetime of this process (one run at a time)."""
    path = root / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock_soon(fd)
    except BlockingIOError:
        os.close(fd)
        raise LockBusy(
            "bookgen: another snakemake run is writing this book (lock .bookgen/run.lock is "
            "held by a live process). Wait for it to finish, or stop it, then run again."
        ) from None
    _held.append(fd)


def _lock_soon(fd: int, tries: int = 20, pause_s: float = 0.01) -> None:
    """An exclusive lock on ``fd`` now, or BlockingIOError. ``run_busy`` (``bookgen status
    --watch``) takes the run lock shared for an instant to look: that is waited out."""
    for _ in range(tries - 1):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(pause_s)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def run_busy(root: Path = paths.STATE) -> bool:
    """True while a run (a ``snakemake`` main process) is writing the book."""
    return _held_by_someone(root / "run.lock")


@contextmanager
def exclusive(path: Path, on_wait=None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block. Every ``open`` is its own lock holder,
    so this excludes threads of one process as well as other processes; ``on_wait()`` is
    called first when someone else holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def section_lock(key: str, root: Path = paths.STATE, on_wait=None, part: int | None = None):
    """Serialise writers of one section (by its key), e.g. a new run and a job process left
    running by a killed one (jobs are processes of their own when the workflow profile is not
    used). ``part``: only that part of a planned section (its parts are written in parallel)."""
    path = (
        paths.section_lock_file(key, root)
        if part is None
        else paths.part_lock_file(key, part, root)
    )
    return exclusive(path, on_wait)


def section_busy(key: str, root: Path = paths.STATE) -> bool:
    """True while a live process holds the section's lock or one of its parts' (it is being
    written right now)."""
    main = paths.section_lock_file(key, root)
    parts = main.parent.glob(f"{glob.escape(main.stem)}.part_*.lock")
    return any(_held_by_someone(p) for p in (main, *parts))


def _held_by_someone(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
