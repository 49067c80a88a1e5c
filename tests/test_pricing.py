"""Prices: peak/off-peak by UTC time and weekday, costs, unknown prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bookgen.pricing import cost_usd, rates_for


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
