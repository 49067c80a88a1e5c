"""``schedule: off_peak``: a call that would start in the model's peak window waits for its end.

Time is bookgen's clock (``bookgen.clock``), in UTC; a call's period is decided by its start
(see ``bookgen.money.pricing``), so a call that starts the moment the window ends is billed
off-peak. A model without peak prices (or without a price) never waits. The wait is
``bookgen.interrupt.sleep``: Ctrl-C ends it at once, and no request starts after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bookgen import clock, interrupt
from bookgen.config import Section
from bookgen.money.estimate import estimate_book, format_duration
from bookgen.money.pricing import format_usd, off_peak_at
from bookgen.run.progress import announce
from bookgen.run.status import section_states

NAP_S = 60.0  # the longest single sleep: the clock is read again after each one

_lock = threading.Lock()
_messages: dict[datetime, str] = {}  # the run's wait line per off-peak start, printed once


def wait_message(until: datetime, now: datetime, saving: float | None) -> str:
    """``waiting for off-peak at 10:00 UTC, saves about $0.0150 ...``"""
    at = until.strftime("%H:%M UTC")
    if until.date() != now.date():
        at = until.strftime("%a %Y-%m-%d %H:%M UTC")
    saves = f", saves about {format_usd(saving)}" if saving is not None else ""
    left = format_duration((until - now).total_seconds())
    return (
        f"waiting for off-peak at {at}{saves} (schedule: off_peak; peak for {left} more; "
        "Ctrl-C stops)"
    )


def pending_saving(config: dict[str, Any], sections: list[Section]) -> float | None:
    """What the pending sections would cost at peak minus at off-peak rates (estimated), or
    None when there is nothing to estimate or no price."""
    if not sections:
        return None
    est = estimate_book(config, sections, section_states(config, sections), cores=1)
    return est["totals"]["cost_usd"]["off_peak_saving"] if est["pending"] else None


def wait_for_off_peak(
    config: dict[str, Any],
    sections: list[Section],
    log: Callable[[str], None],
    now_utc: Callable[[], datetime] = clock.now_utc,
    sleep: Callable[[float], None] = interrupt.sleep,
) -> None:
    """With ``schedule: off_peak``, return once the model's rates are off-peak (or at Ctrl-C).

    The first section of the run to wait prints the line on the console, with the saving
    estimated for the pending sections; every waiting section writes it to its own log (``log``).
    """
    if config.get("schedule", "now") != "off_peak":
        return
    logged: datetime | None = None
    while not interrupt.stopping():
        now = now_utc()
        until = off_peak_at(config["prices"], config["model"], now)
        if until is None:
            log("schedule: off_peak, but the model's peak windows never end: not waiting")
            return
        if until <= now:
            return
        if logged != until:
            log(_run_message(config, sections, until, now))
            logged = until
        sleep(min((until - now).total_seconds(), NAP_S))


def _run_message(
    config: dict[str, Any], sections: list[Section], until: datetime, now: datetime
) -> str:
    with _lock:
        message = _messages.get(until)
        if message is None:
            message = wait_message(until, now, pending_saving(config, sections))
            _messages[until] = message
            announce(f"bookgen: {message}")
    return message
