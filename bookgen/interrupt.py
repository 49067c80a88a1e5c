"""Ctrl-C while sections are written in threads of the Snakemake process.

Python delivers SIGINT to the main thread only, where Snakemake turns it into "cancel the
jobs" and then waits for their threads. ``install`` (called at the run's start) adds a step in
front: the first Ctrl-C sets a flag that every writer checks between streamed chunks, before
each request and during retry waits, and shuts down the connections of the replies in flight
(``abandoned_on_stop``), so a thread waiting for a first token that may be minutes away returns
at once. The sections in flight stop within moments and record what their cut calls cost. A
second Ctrl-C ends the process at once.

The KeyboardInterrupt that tells Snakemake is raised at a safe point. Snakemake's main thread
runs coroutines on an asyncio loop; asyncio's Runner turns Ctrl-C into a clean cancel only when
SIGINT has Python's default handler, which ours replaces. An exception raised in the middle of
the loop's own code can leave a task no step will ever wake, and Snakemake's tear-down then
waits for it forever (seen: a Ctrl-C'd run that never exited, 1 run in about 50). So while a
loop runs, the interrupt is raised from a callback that loop runs next, between its steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

_stop = threading.Event()
# What the first Ctrl-C closes: one callable per reply in flight. An RLock, because the signal
# handler runs in the main thread, which may itself be inside ``abandoned_on_stop``.
_in_flight: dict[int, Callable[[], None]] = {}
_in_flight_lock = threading.RLock()
# What runs just before a second Ctrl-C ends the process (e.g. the live display giving the
# terminal back its cursor and the lines it held).
_before_exit: list[Callable[[], None]] = []


def before_hard_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Run ``fn`` (in the signal handler, so without waiting for locks) just before a second
    Ctrl-C ends the process at once. Returns a callable that takes it back."""
    _before_exit.append(fn)
    return lambda: _before_exit.remove(fn) if fn in _before_exit else None


def run_before_hard_exit() -> None:
    """What a second Ctrl-C does before it ends the process: each ``before_hard_exit``
    callable, whatever the others raise."""
    for fn in list(_before_exit):
        with contextlib.suppress(Exception):
            fn()


def stopping() -> bool:
    """True once the run was interrupted: no new request may start, streams are abandoned."""
    return _stop.is_set()


def sleep(seconds: float) -> None:
    """``time.sleep`` that returns early when the run is interrupted."""
    _stop.wait(max(0.0, seconds))


def request_stop() -> None:
    """What the first Ctrl-C does (also for tests): set the flag, close the replies in flight."""
    _stop.set()
    with _in_flight_lock:
        closers = list(_in_flight.values())
    for close in closers:
        with contextlib.suppress(OSError):
            close()


@contextlib.contextmanager
def abandoned_on_stop(close: Callable[[], None]) -> Iterator[None]:
    """While inside, the first Ctrl-C calls ``close`` (e.g. shuts down a streaming reply's
    socket, so the thread blocked reading it returns at once)."""
    key = id(close)
    with _in_flight_lock:
        _in_flight[key] = close
    try:
        if stopping():
            with contextlib.suppress(OSError):
                close()
        yield
    finally:
        with _in_flight_lock:
            _in_flight.pop(key, None)


def reset() -> None:
    """Forget an interruption (a new run in the same process, e.g. in tests)."""
    _stop.clear()


def install() -> None:
    """Put bookgen's Ctrl-C handling in front of the current SIGINT handler (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        if stopping():
            run_before_hard_exit()
            print("bookgen: second Ctrl-C: stopping at once.", file=sys.stderr, flush=True)
            os._exit(130)
        request_stop()
        print(
            "bookgen: Ctrl-C: stopping. Sections in flight are abandoned and what their calls "
            "cost so far is recorded; finished sections are kept. Run the same command again "
            "to continue. (Ctrl-C again stops at once.)",
            file=sys.stderr,
            flush=True,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop runs in the main thread: interrupt right here
            _interrupt(previous, signum, frame)
        else:
            loop.call_soon_threadsafe(_interrupt, previous, signum, None)

    signal.signal(signal.SIGINT, on_sigint)


def _interrupt(previous: Any, signum: int, frame: Any) -> None:
    """What Ctrl-C did before ``install``: Python's default raises KeyboardInterrupt."""
    if callable(previous):
        previous(signum, frame)
    else:
        raise KeyboardInterrupt
