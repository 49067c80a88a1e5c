"""The wall clock bookgen prices calls by, and the one place tests (or a what-if) can set it.

Peak and off-peak prices differ 2x, so everything that decides a call's period reads the time
here. ``BOOKGEN_CLOCK=2026-12-05T12:00:00Z`` starts this process's clock at that instant; it
then advances in real time, so waits (e.g. ``schedule: off_peak``) still end. Unset, it is the
system clock. Durations use ``time.monotonic`` and never this clock.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

ENV = "BOOKGEN_CLOCK"


def _offset() -> float:
    value = os.environ.get(ENV, "").strip()
    if not value:
        return 0.0
    try:
        start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(
            f"bookgen: {ENV}={value!r} is not an ISO time (e.g. 2026-12-05T12:00:00Z); "
            f"unset {ENV} to use the system clock"
        ) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start.timestamp() - time.time()


_OFFSET = _offset()
_PINNED = bool(os.environ.get(ENV, "").strip())


def now() -> float:
    """Seconds since the epoch on bookgen's clock."""
    return time.time() + _OFFSET


def now_utc() -> datetime:
    """``now()`` as an aware UTC datetime."""
    return datetime.fromtimestamp(now(), UTC)


def pinned() -> bool:
    """True when ``BOOKGEN_CLOCK`` set the clock (reports say so)."""
    return _PINNED
