"""Run a command in a real pseudo-terminal, as a person at a terminal would, and read all it
writes (so it never blocks on a full pty buffer): bookgen's live display draws only there."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

COLUMNS, LINES = 120, 40


@dataclass
class TerminalRun:
    """A finished command: its exit code and everything it wrote to the terminal."""

    returncode: int
    output: bytes

    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


def run_in_terminal(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    size: tuple[int, int] = (COLUMNS, LINES),
) -> TerminalRun:
    """Run ``cmd`` with stdin, stdout and stderr on a new pty of ``size`` (columns, lines),
    reading its output until it exits; on ``timeout`` its process group is killed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    term_env = {**env, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=term_env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,  # the pty is its controlling terminal, as in a shell
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise TimeoutError(f"{cmd[:3]} ran longer than {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None and not _more(master):
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError as e:  # EIO: every writer closed the terminal (Linux)
                if e.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return TerminalRun(proc.wait(), b"".join(chunks))


def _more(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)
