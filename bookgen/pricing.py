"""Prices per model (USD per million tokens), peak/off-peak by UTC time, and call costs.

A model without a price has an *unknown* cost (``None``), never $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
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


def _in_window(window: str, t: time) -> bool:
    start_s, end_s = window.split("-")
    start = time.fromisoformat(start_s)
    end = time.max if end_s == "24:00" else time.fromisoformat(end_s)
    return start <= t < end


def is_peak(entry: dict[str, Any], when: datetime) -> bool:
    """True when ``when`` falls in the model's peak windows (UTC hours on listed weekdays)."""
    peak = entry.get("peak")
    if not peak:
        return False
    when = when.astimezone(UTC)
    if WEEKDAYS[when.weekday()] not in peak.get("weekdays", WEEKDAYS):
        return False
    return any(_in_window(w, when.time()) for w in peak["hours_utc"])


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
