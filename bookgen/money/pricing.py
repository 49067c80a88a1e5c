"""Prices per model (USD per million tokens), peak/off-peak by UTC time, and call costs.

A model without a price has an *unknown* cost (``None``), never $0. A call's period is decided
by the instant it starts (its ``started_at``). Peak windows are ``HH:MM-HH:MM`` in UTC, start
inclusive, end exclusive; the end may be ``24:00``, and a window whose end is before its start
wraps midnight (``22:00-02:00``). ``weekdays`` name the day a window *starts* on: with
``weekdays: [Fri]``, ``22:00-02:00`` covers Friday 22:00 to Saturday 02:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Rates:
    """USD per million tokens."""

    cache_hit: float
    cache_miss: float
    output: float
    period: str  # "standard", "off-peak" or "peak"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cache_hit": self.cache_hit,
            "cache_miss": self.cache_miss,
            "output": self.output,
            "period": self.period,
        }


DAY_S = 86_400


def window_bounds(window: str) -> tuple[int, int]:
    """``"22:00-02:00"`` as (start, end) in seconds after midnight; ``24:00`` is 86,400.

    Raises ValueError saying what is wrong (the schema already rejects most of it).
    """
    try:
        start_s, end_s = window.split("-")
        start, end = _seconds(start_s, allow_24=False), _seconds(end_s, allow_24=True)
    except ValueError:
        raise ValueError(
            f"{window!r} is not a UTC time window HH:MM-HH:MM (00:00 to 23:59; the end may be "
            "24:00; 22:00-02:00 wraps midnight)"
        ) from None
    if start == end:
        raise ValueError(
            f"{window!r} starts where it ends; write 00:00-24:00 for a whole day, or drop it"
        )
    return start, end


def _seconds(hhmm: str, allow_24: bool) -> int:
    hours, minutes = hhmm.split(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(hhmm)
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and (m or not allow_24)):
        raise ValueError(hhmm)
    return h * 3600 + m * 60


def peak_intervals(entry: dict[str, Any], day: datetime) -> list[tuple[datetime, datetime]]:
    """The model's peak windows that start on ``day``'s UTC date, as [start, end) instants
    (a window that wraps midnight ends on the next day); none on a day not in ``weekdays``."""
    peak = entry.get("peak")
    if not peak:
        return []
    midnight = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if WEEKDAYS[midnight.weekday()] not in peak.get("weekdays", WEEKDAYS):
        return []
    out = []
    for window in peak["hours_utc"]:
        start, end = window_bounds(window)
        if end <= start:
            end += DAY_S
        out.append((midnight + timedelta(seconds=start), midnight + timedelta(seconds=end)))
    return out


def is_peak(entry: dict[str, Any], when: datetime) -> bool:
    """True when ``when`` falls in one of the model's peak windows (UTC; a window that wraps
    midnight belongs to the weekday it starts on)."""
    when = when.astimezone(UTC)
    return any(
        start <= when < end
        for day in (when - timedelta(days=1), when)
        for start, end in peak_intervals(entry, day)
    )


MAX_CHAINED_WINDOWS = 64  # peak windows followed end to start before giving up on off-peak


def off_peak_at(prices: dict[str, Any], model: str, when: datetime) -> datetime | None:
    """The first instant at or after ``when`` outside ``model``'s peak windows: ``when`` itself
    when it is off-peak or the model has no peak prices (or no price); None when the peak
    windows never end (they cover every hour of every day)."""
    entry = prices.get(model)
    if not entry or not entry.get("peak"):
        return when
    t = when.astimezone(UTC)
    for _ in range(MAX_CHAINED_WINDOWS):
        ends = [
            end
            for day in (t - timedelta(days=1), t)
            for start, end in peak_intervals(entry, day)
            if start <= t < end
        ]
        if not ends:
            return t
        t = max(ends)
    return None


def rates_for(prices: dict[str, Any], model: str, when: datetime) -> Rates | None:
    """The rates billed for ``model`` at ``when``, or None when the model has no price."""
    entry = prices.get(model)
    if entry is None:
        return None
    if is_peak(entry, when):
        p = entry["peak"]
        return Rates(p["cache_hit"], p["cache_miss"], p["output"], "peak")
    period = "off-peak" if entry.get("peak") else "standard"
    return Rates(entry["cache_hit"], entry["cache_miss"], entry["output"], period)


def call_costs(prices: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    """A call record's ``rates``, ``cost_usd`` and ``estimated_cost_usd`` at ``prices``, in the
    period its ``started_at`` falls in (reported usage is billed; a call cut off before its
    usage arrived is estimated from its ``estimated_*`` tokens)."""
    rates = rates_for(prices, call["model"], datetime.fromisoformat(call["started_at"]))
    cost = cost_usd(
        rates,
        call["prompt_cache_hit_tokens"],
        call["prompt_cache_miss_tokens"],
        call["completion_tokens"],
    )
    estimated = cost_usd(
        rates, 0, call["estimated_prompt_tokens"], call["estimated_completion_tokens"]
    )
    return {
        "rates": rates.as_dict() if rates else None,
        "cost_usd": cost,
        "estimated_cost_usd": None if call["usage_reported"] else estimated,
    }


def cost_usd(rates: Rates | None, hit: int, miss: int, completion: int) -> float | None:
    """Cost of one call, or None when the price is unknown."""
    if rates is None:
        return None
    return (hit * rates.cache_hit + miss * rates.cache_miss + completion * rates.output) / 1e6


def sum_costs(costs: list[float | None]) -> float | None:
    """Sum of costs; unknown (None) as soon as one of them is unknown."""
    if any(c is None for c in costs):
        return None
    return sum(c for c in costs if c is not None)


def format_usd(value: float | None) -> str:
    """Money for people: ``$1,234.5678``, or ``unknown`` when a price is missing (never $0)."""
    return "unknown" if value is None else f"${value:,.4f}"
