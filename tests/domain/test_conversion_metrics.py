"""The conversion metrics' arithmetic on rollup counters: exact, in micros and six-place
ratios, none where the denominator is zero."""

from __future__ import annotations

from decimal import Decimal

from adtrack.domain.rollup_counters import Counters


def counters(*, clicks: int, cost: int, conversions: int, revenue: int) -> Counters:
    return Counters(
        clicks=clicks,
        media_cost_micros=cost,
        conversions=conversions,
        post_click_conversions=conversions,
        conversion_revenue_micros=revenue,
    )


def test_cpa_is_media_cost_per_conversion_rounded_half_up_to_the_micro() -> None:
    assert counters(clicks=9, cost=10_000_000, conversions=3, revenue=0).cpa_micros == 3_333_333
    assert counters(clicks=9, cost=5, conversions=2, revenue=0).cpa_micros == 3  # 2.5 -> 3
    assert counters(clicks=9, cost=7, conversions=0, revenue=0).cpa_micros is None
    assert counters(clicks=0, cost=0, conversions=4, revenue=0).cpa_micros == 0


def test_conversion_rate_is_conversions_per_click() -> None:
    assert counters(clicks=3, cost=0, conversions=1, revenue=0).conversion_rate == Decimal(
        "0.333333"
    )
    assert counters(clicks=8, cost=0, conversions=1, revenue=0).conversion_rate == Decimal(
        "0.125000"
    )
    assert counters(clicks=0, cost=0, conversions=2, revenue=0).conversion_rate is None


def test_roas_is_conversion_revenue_per_media_cost() -> None:
    assert counters(clicks=1, cost=3_000_000, conversions=1, revenue=2_000_000).roas == Decimal(
        "0.666667"
    )
    assert counters(clicks=1, cost=1, conversions=1, revenue=25_000_000).roas == Decimal(
        "25000000.000000"
    )
    assert counters(clicks=1, cost=0, conversions=1, revenue=9).roas is None


def test_conversion_counters_add_up_with_the_others() -> None:
    a = counters(clicks=1, cost=2, conversions=3, revenue=4)
    total = a.plus(a)
    assert (total.clicks, total.conversions, total.conversion_revenue_micros) == (2, 6, 8)
    assert Counters().is_zero() and not a.is_zero()
