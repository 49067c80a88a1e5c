"""Prices: peak/off-peak by UTC time and weekday, costs, unknown prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bookgen.money.pricing import (
    call_costs,
    cost_usd,
    is_peak,
    off_peak_at,
    rates_for,
    window_bounds,
)


@pytest.fixture
def prices(demo_config):
    return demo_config["prices"]


@pytest.mark.parametrize(
    ("when", "period"),
    [
        (datetime(2026, 11, 23, 0, 59, tzinfo=UTC), "off-peak"),  # Monday, before 01:00
        (datetime(2026, 11, 23, 1, 0, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 23, 3, 59, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "off-peak"),  # gap between windows
        (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 23, 9, 59, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "off-peak"),
        (datetime(2026, 11, 27, 7, 0, tzinfo=UTC), "peak"),  # Friday
        (datetime(2026, 11, 28, 7, 0, tzinfo=UTC), "off-peak"),  # Saturday
        (datetime(2026, 11, 29, 2, 0, tzinfo=UTC), "off-peak"),  # Sunday
    ],
)
def test_deepseek_peak_windows(prices, when, period):
    assert rates_for(prices, "deepseek-flash", when).period == period


def test_time_zone_is_converted_to_utc(prices):
    beijing = timezone(timedelta(hours=8))
    # 15:00 in Beijing on a Monday is 07:00 UTC: peak.
    when = datetime(2026, 11, 23, 15, 0, tzinfo=beijing)
    assert rates_for(prices, "deepseek-flash", when).period == "peak"


def test_shipped_deepseek_prices(prices):
    peak = rates_for(prices, "deepseek-v4-pro", datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    off = rates_for(prices, "deepseek-v4-pro", datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert (peak.cache_hit, peak.cache_miss, peak.output) == (0.044, 1.32, 3.96)
    assert (off.cache_hit, off.cache_miss, off.output) == (0.022, 0.66, 1.98)
    flash = rates_for(prices, "deepseek-flash", datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    assert (flash.cache_hit, flash.cache_miss, flash.output) == (0.006, 0.30, 1.20)


def test_cost_of_a_call(prices):
    off = rates_for(prices, "deepseek-flash", datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    # 1M hit, 1M miss, 1M out at off-peak: 0.003 + 0.15 + 0.60
    assert cost_usd(off, 1_000_000, 1_000_000, 1_000_000) == pytest.approx(0.753)
    assert cost_usd(off, 0, 2_000, 500) == pytest.approx((2_000 * 0.15 + 500 * 0.60) / 1e6)


def test_flat_price_without_peak_is_standard():
    prices = {"gpt-x": {"cache_hit": 0.5, "cache_miss": 2.0, "output": 8.0}}
    r = rates_for(prices, "gpt-x", datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    assert r.period == "standard" and r.output == 8.0


def test_unknown_model_has_unknown_cost(prices):
    rates = rates_for(prices, "some-unpriced-model", datetime.now(UTC))
    assert rates is None
    assert cost_usd(rates, 10, 10, 10) is None


NIGHT = {  # a provider whose peak wraps midnight, on weeknights that start Mon-Fri
    "cache_hit": 0.1,
    "cache_miss": 1.0,
    "output": 2.0,
    "peak": {
        "cache_hit": 0.2,
        "cache_miss": 2.0,
        "output": 4.0,
        "hours_utc": ["22:00-02:00"],
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
    },
}


@pytest.mark.parametrize(
    ("when", "period"),
    [
        (datetime(2026, 11, 23, 21, 59, 59, tzinfo=UTC), "off-peak"),  # Monday, before
        (datetime(2026, 11, 23, 22, 0, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 24, 0, 0, tzinfo=UTC), "peak"),  # Tuesday, Monday night's window
        (datetime(2026, 11, 24, 1, 59, 59, tzinfo=UTC), "peak"),
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "off-peak"),  # the end is exclusive
        (datetime(2026, 11, 28, 1, 0, tzinfo=UTC), "peak"),  # Saturday 01:00: Friday night's
        (datetime(2026, 11, 28, 22, 30, tzinfo=UTC), "off-peak"),  # Saturday night: no window
        (datetime(2026, 11, 23, 1, 0, tzinfo=UTC), "off-peak"),  # Monday 01:00: Sunday night's
    ],
)
def test_a_peak_window_may_wrap_midnight(when, period):
    assert rates_for({"m": NIGHT}, "m", when).period == period


def test_a_window_may_end_at_24_00():
    entry = {**NIGHT, "peak": {**NIGHT["peak"], "hours_utc": ["20:00-24:00"], "weekdays": ["Mon"]}}
    assert is_peak(entry, datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC))
    assert not is_peak(entry, datetime(2026, 11, 24, 0, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("window", "bounds"),
    [
        ("01:00-04:00", (3600, 14400)),
        ("22:00-02:00", (79200, 7200)),
        ("00:00-24:00", (0, 86400)),
        ("23:30-00:00", (84600, 0)),
    ],
)
def test_window_bounds(window, bounds):
    assert window_bounds(window) == bounds


@pytest.mark.parametrize(
    "window",
    [
        "24:30-02:00",
        "22:00-24:30",
        "24:00-01:00",
        "9:00-10:00",
        "10:60-11:00",
        "10:00",
        "10:00-10:00",
    ],
)
def test_invalid_windows_are_refused(window):
    with pytest.raises(ValueError, match=window):
        window_bounds(window)


def test_a_call_is_priced_by_its_start():
    """started_at decides the period: a call that starts in peak is billed at peak."""
    call = {
        "model": "m",
        "started_at": "2026-11-24T01:59:59.500+00:00",  # ends off-peak, started in peak
        "usage_reported": True,
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 1_000_000,
        "completion_tokens": 1_000_000,
        "estimated_prompt_tokens": 0,
        "estimated_completion_tokens": 0,
    }
    costs = call_costs({"m": NIGHT}, call)
    assert costs["rates"]["period"] == "peak"
    assert costs["cost_usd"] == pytest.approx(6.0)
    assert costs["estimated_cost_usd"] is None
    cut = {
        **call,
        "usage_reported": False,
        "estimated_prompt_tokens": 1_000_000,
        "prompt_cache_miss_tokens": 0,
        "completion_tokens": 0,
    }
    costs = call_costs({"m": NIGHT}, cut)
    assert costs["cost_usd"] == 0 and costs["estimated_cost_usd"] == pytest.approx(2.0)
    assert call_costs({}, call) == {"rates": None, "cost_usd": None, "estimated_cost_usd": None}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 23, 9, 59, 57, tzinfo=UTC), datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), datetime(2026, 11, 23, 4, 0, tzinfo=UTC)),
        (datetime(2026, 11, 23, 5, 0, tzinfo=UTC), datetime(2026, 11, 23, 5, 0, tzinfo=UTC)),
        (datetime(2026, 11, 28, 7, 0, tzinfo=UTC), datetime(2026, 11, 28, 7, 0, tzinfo=UTC)),
    ],
)
def test_next_off_peak_with_deepseeks_windows(prices, when, expected):
    assert off_peak_at(prices, "deepseek-flash", when) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 27, 23, 0, tzinfo=UTC), datetime(2026, 11, 28, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 28, 1, 0, tzinfo=UTC), datetime(2026, 11, 28, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 28, 23, 0, tzinfo=UTC), datetime(2026, 11, 28, 23, 0, tzinfo=UTC)),
        (datetime(2026, 11, 23, 1, 0, tzinfo=UTC), datetime(2026, 11, 23, 1, 0, tzinfo=UTC)),
        (datetime(2026, 11, 23, 22, 0, tzinfo=UTC), datetime(2026, 11, 24, 2, 0, tzinfo=UTC)),
    ],
)
def test_next_off_peak_across_midnight_and_weekends(when, expected):
    assert off_peak_at({"m": NIGHT}, "m", when) == expected


def test_next_off_peak_follows_chained_windows():
    peak = {**NIGHT["peak"], "hours_utc": ["22:00-24:00", "00:00-03:00", "03:00-04:30"]}
    peak.pop("weekdays")
    entry = {**NIGHT, "peak": peak}
    when = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert off_peak_at({"m": entry}, "m", when) == datetime(2026, 11, 29, 4, 30, tzinfo=UTC)


def test_no_next_off_peak_when_peak_never_ends():
    entry = {**NIGHT, "peak": {**NIGHT["peak"], "hours_utc": ["00:00-24:00"]}}
    entry["peak"].pop("weekdays")
    assert off_peak_at({"m": entry}, "m", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) is None


def test_a_model_without_peak_prices_never_waits():
    when = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    flat = {"cache_hit": 0.5, "cache_miss": 2.0, "output": 8.0}
    assert off_peak_at({"flat": flat}, "flat", when) == when
    assert off_peak_at({}, "unpriced", when) == when
