"""Payment-rule choice, media cost and booked revenue (domain/pricing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from adtrack.domain.model import (
    FilterAction,
    ImpType,
    LineItem,
    PaymentRule,
    PricingType,
    RevenueType,
    State,
)
from adtrack.domain.pricing import (
    PricedEvent,
    PricingPlan,
    choose_payment_rule,
    epoch_micros,
    filters_match,
    price_event,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
IMP = ImpType.EXTERNAL_IMPRESSION
CLICK = ImpType.EXTERNAL_CLICK


def rule(id: int, **kw: object) -> PaymentRule:
    kw.setdefault("publisher_id", 1)
    kw.setdefault("name", f"rule {id}")
    return PaymentRule(id=id, **kw)  # type: ignore[arg-type]


def line_item(**kw: object) -> LineItem:
    kw.setdefault("id", 7)
    kw.setdefault("advertiser_id", 3)
    kw.setdefault("name", "li")
    return LineItem(**kw)  # type: ignore[arg-type]


def price(
    imp_type: ImpType,
    li: LineItem | None,
    rules: list[PaymentRule],
    tracker_rule: PaymentRule | None = None,
    ancost: int | None = None,
    at: datetime = NOW,
) -> PricedEvent:
    direct = price_event(
        imp_type=imp_type,
        at=at,
        line_item=li,
        tracker_rule=tracker_rule,
        publisher_rules=rules,
        advertiser_id=3,
        line_item_id=7,
        ancost_micros=ancost,
    )
    plan = PricingPlan(
        line_item=li,
        tracker_rule=tracker_rule,
        publisher_rules=rules,
        advertiser_id=3,
        line_item_id=7,
    )
    compiled = plan.price(int(imp_type), epoch_micros(at), ancost)
    assert compiled == direct  # the hot-path form always agrees with the reference form
    return direct


# ---- media cost per pricing type ----


def test_cpm_rule_costs_per_thousand_impressions_and_nothing_per_click() -> None:
    base = rule(1, is_base=True, pricing_type=PricingType.CPM, cost_cpm_micros=2_500_000)
    assert price(IMP, None, [base]).media_cost_micros == 2_500  # 2.50 CPM -> 0.0025
    assert price(IMP, None, [base]).payment_rule_id == 1
    assert price(CLICK, None, [base]).media_cost_micros == 0


def test_cpm_cost_rounds_half_up_to_the_micro() -> None:
    base = rule(1, is_base=True, pricing_type=PricingType.CPM, cost_cpm_micros=1_500)
    assert price(IMP, None, [base]).media_cost_micros == 2  # 1.5 micros -> 2
    base = rule(1, is_base=True, pricing_type=PricingType.CPM, cost_cpm_micros=1_499)
    assert price(IMP, None, [base]).media_cost_micros == 1


def test_cpc_rule_costs_per_click_and_nothing_per_impression() -> None:
    base = rule(1, is_base=True, pricing_type=PricingType.CPC, cost_cpc_micros=300_000)
    assert price(CLICK, None, [base]).media_cost_micros == 300_000
    assert price(IMP, None, [base]).media_cost_micros == 0


def test_revshare_is_a_share_of_booked_revenue() -> None:
    base = rule(1, is_base=True, pricing_type=PricingType.REVSHARE, revshare_ppm=400_000)
    cpc_li = line_item(revenue_type=RevenueType.CPC, revenue_value_micros=1_000_000)
    click = price(CLICK, cpc_li, [base])
    assert click == PricedEvent(1, 400_000, 1_000_000, "cpc", False)
    cpm_li = line_item(revenue_type=RevenueType.CPM, revenue_value_micros=10_000_000)
    imp = price(IMP, cpm_li, [base])
    assert imp == PricedEvent(1, 4_000, 10_000, "cpm", False)
    # revshare of nothing is nothing
    assert price(IMP, cpc_li, [base]).media_cost_micros == 0
    assert price(IMP, line_item(), [base]).media_cost_micros == 0


# ---- booked revenue ----


def test_booked_revenue_from_the_line_item() -> None:
    cpm = line_item(revenue_type=RevenueType.CPM, revenue_value_micros=5_000_000)
    assert price(IMP, cpm, []).booked_revenue_micros == 5_000
    assert price(CLICK, cpm, []).booked_revenue_micros == 0
    cpc = line_item(revenue_type=RevenueType.CPC, revenue_value_micros=750_000)
    assert price(CLICK, cpc, []).booked_revenue_micros == 750_000
    assert price(IMP, cpc, []).booked_revenue_micros == 0
    none = line_item(revenue_type=RevenueType.NONE, revenue_value_micros=999)
    assert price(IMP, none, []).booked_revenue_micros == 0
    assert price(IMP, none, []).revenue_type == "none"


def test_inactive_or_out_of_dates_line_item_books_nothing() -> None:
    kw = {"revenue_type": RevenueType.CPC, "revenue_value_micros": 1_000_000}
    inactive = line_item(state=State.INACTIVE, **kw)
    assert price(CLICK, inactive, []) == PricedEvent(None, 0, 0, "none", False)
    ended = line_item(end_date=NOW, **kw)  # end is exclusive
    assert price(CLICK, ended, []).booked_revenue_micros == 0
    future = line_item(start_date=NOW + timedelta(seconds=1), **kw)
    assert price(CLICK, future, []).booked_revenue_micros == 0
    started = line_item(start_date=NOW, end_date=NOW + timedelta(days=1), **kw)  # inclusive
    assert price(CLICK, started, []).booked_revenue_micros == 1_000_000


# ---- ancost ----


def test_ancost_overrides_every_rule_and_records_no_rule() -> None:
    own = rule(9, pricing_type=PricingType.CPM, cost_cpm_micros=9_000_000)
    base = rule(1, is_base=True, pricing_type=PricingType.CPM, cost_cpm_micros=2_000_000)
    li = line_item(revenue_type=RevenueType.CPM, revenue_value_micros=4_000_000)
    for imp_type in (IMP, CLICK):
        priced = price(imp_type, li, [base, own], tracker_rule=own, ancost=1_234_567)
        assert priced.media_cost_micros == 1_234_567
        assert priced.ancost_used is True
        assert priced.payment_rule_id is None
    assert price(IMP, li, [base], ancost=0).media_cost_micros == 0  # ancost=0 is a real cost
    assert price(IMP, li, [base], ancost=10).booked_revenue_micros == 4_000


# ---- rule choice ----


def test_tracker_rule_wins_over_conditional_and_base_rules() -> None:
    own = rule(9, pricing_type=PricingType.CPC, cost_cpc_micros=1)
    cond = rule(2, priority=10, pricing_type=PricingType.CPC, cost_cpc_micros=2)
    base = rule(1, is_base=True, pricing_type=PricingType.CPC, cost_cpc_micros=3)
    assert price(CLICK, None, [base, cond, own], tracker_rule=own).payment_rule_id == 9


def test_explicit_tracker_rule_ignores_its_filters_but_not_its_state_or_dates() -> None:
    own = rule(9, advertiser_filter=FilterAction.INCLUDE, advertiser_ids=frozenset({999}))
    base = rule(1, is_base=True)
    assert price(CLICK, None, [base], tracker_rule=own).payment_rule_id == 9
    inactive = rule(9, state=State.INACTIVE)
    assert price(CLICK, None, [base], tracker_rule=inactive).payment_rule_id == 1
    expired = rule(9, end_date=NOW - timedelta(days=1))
    assert price(CLICK, None, [base], tracker_rule=expired).payment_rule_id == 1


def test_conditional_rules_by_priority_then_lowest_id() -> None:
    base = rule(1, is_base=True)
    low = rule(2, priority=3)
    high_b = rule(6, priority=8)
    high_a = rule(5, priority=8)
    rules = [base, low, high_b, high_a]
    assert price(IMP, None, rules).payment_rule_id == 5  # priority 8, lowest id of the two
    assert (
        choose_payment_rule(
            tracker_rule=None, publisher_rules=rules, advertiser_id=3, line_item_id=7, at=NOW
        )
        is high_a
    )


def test_filters_include_exclude_and_both_must_match() -> None:
    inc_adv = rule(2, advertiser_filter=FilterAction.INCLUDE, advertiser_ids=frozenset({3}))
    assert filters_match(inc_adv, 3, 7)
    assert not filters_match(inc_adv, 4, 7)
    exc_li = rule(3, line_item_filter=FilterAction.EXCLUDE, line_item_ids=frozenset({7}))
    assert not filters_match(exc_li, 3, 7)
    assert filters_match(exc_li, 3, 8)
    both = rule(
        4,
        advertiser_filter=FilterAction.INCLUDE,
        advertiser_ids=frozenset({3}),
        line_item_filter=FilterAction.INCLUDE,
        line_item_ids=frozenset({8}),
    )
    assert not filters_match(both, 3, 7)
    empty_include = rule(5, advertiser_filter=FilterAction.INCLUDE)
    assert not filters_match(empty_include, 3, 7)
    empty_exclude = rule(6, advertiser_filter=FilterAction.EXCLUDE)
    assert filters_match(empty_exclude, 3, 7)


def test_non_matching_conditional_rules_fall_back_to_base() -> None:
    base = rule(1, is_base=True, pricing_type=PricingType.CPM, cost_cpm_micros=1_000_000)
    excluded = rule(
        2,
        priority=10,
        advertiser_filter=FilterAction.EXCLUDE,
        advertiser_ids=frozenset({3}),
        pricing_type=PricingType.CPM,
        cost_cpm_micros=9_000_000,
    )
    priced = price(IMP, None, [base, excluded])
    assert priced.payment_rule_id == 1
    assert priced.media_cost_micros == 1_000


def test_inactive_and_out_of_dates_conditional_rules_do_not_apply() -> None:
    base = rule(1, is_base=True)
    inactive = rule(2, priority=10, state=State.INACTIVE)
    future = rule(3, priority=9, start_date=NOW + timedelta(hours=1))
    ended = rule(4, priority=8, end_date=NOW)
    current = rule(5, priority=1, start_date=NOW, end_date=NOW + timedelta(hours=1))
    assert price(IMP, None, [base, inactive, future, ended, current]).payment_rule_id == 5
    assert price(IMP, None, [base, inactive, future, ended]).payment_rule_id == 1


def test_no_applicable_rule_costs_nothing() -> None:
    assert price(IMP, None, []) == PricedEvent(None, 0, 0, "none", False)
    inactive_base = rule(1, is_base=True, state=State.INACTIVE)
    assert price(IMP, None, [inactive_base]).payment_rule_id is None


def test_plan_follows_date_boundaries_over_time() -> None:
    start = NOW
    end = NOW + timedelta(hours=1)
    base = rule(1, is_base=True, pricing_type=PricingType.CPM, cost_cpm_micros=1_000_000)
    promo = rule(
        2, start_date=start, end_date=end, pricing_type=PricingType.CPM, cost_cpm_micros=5_000_000
    )
    plan = PricingPlan(
        line_item=None,
        tracker_rule=None,
        publisher_rules=[base, promo],
        advertiser_id=3,
        line_item_id=7,
    )
    assert plan.candidate_rule_ids == (2, 1)
    # memoised answers must not leak across a boundary, in either direction of time
    at = [start - timedelta(microseconds=1), start, end - timedelta(microseconds=1), end, start]
    got = [plan.price(int(IMP), epoch_micros(t)).payment_rule_id for t in at]
    assert got == [1, 2, 2, 1, 2]
    # the window a caller may keep a price for runs exactly from one boundary to the next
    inside = epoch_micros(start + timedelta(minutes=30))
    priced, valid_from, valid_until = plan.price_window(int(IMP), inside, 250_000)
    assert (valid_from, valid_until) == (epoch_micros(start), epoch_micros(end))
    assert priced == PricedEvent(None, 250_000, 0, "none", True)
    priced, valid_from, valid_until = plan.price_window(int(IMP), epoch_micros(end))
    assert priced.payment_rule_id == 1 and valid_from == epoch_micros(end) and valid_until > 2**61


# ---- property: compiled plan == reference implementation ----

_dates = st.one_of(st.none(), st.integers(-3, 3).map(lambda h: NOW + timedelta(hours=h)))


@st.composite
def rules_strategy(draw: st.DrawFn) -> list[PaymentRule]:
    n = draw(st.integers(0, 6))
    out = []
    for i in range(n):
        out.append(
            rule(
                draw(st.integers(1, 50)) * 10 + i,  # unique ids
                is_base=draw(st.booleans()),
                state=draw(st.sampled_from([State.ACTIVE, State.INACTIVE])),
                pricing_type=draw(st.sampled_from(list(PricingType))),
                revshare_ppm=draw(st.integers(0, 1_000_000)),
                cost_cpm_micros=draw(st.integers(0, 10**9)),
                cost_cpc_micros=draw(st.integers(0, 10**9)),
                priority=draw(st.integers(1, 10)),
                start_date=draw(_dates),
                end_date=draw(_dates),
                advertiser_filter=draw(st.sampled_from([None, *FilterAction])),
                advertiser_ids=frozenset(draw(st.sets(st.integers(2, 4), max_size=2))),
                line_item_filter=draw(st.sampled_from([None, *FilterAction])),
                line_item_ids=frozenset(draw(st.sets(st.integers(6, 8), max_size=2))),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(
    rules=rules_strategy(),
    own=st.one_of(st.none(), st.integers(0, 5)),
    li=st.one_of(
        st.none(),
        st.builds(
            line_item,
            state=st.sampled_from(list(State)),
            revenue_type=st.sampled_from(list(RevenueType)),
            revenue_value_micros=st.integers(0, 10**9),
            start_date=_dates,
            end_date=_dates,
        ),
    ),
    imp_type=st.sampled_from([IMP, CLICK]),
    offsets=st.lists(st.integers(-4 * 3600, 4 * 3600), min_size=1, max_size=5),
    ancost=st.one_of(st.none(), st.integers(0, 999_999_999_999)),
)
def test_compiled_plan_agrees_with_reference(
    rules: list[PaymentRule],
    own: int | None,
    li: LineItem | None,
    imp_type: ImpType,
    offsets: list[int],
    ancost: int | None,
) -> None:
    tracker_rule = rules[own] if own is not None and own < len(rules) else None
    plan = PricingPlan(
        line_item=li,
        tracker_rule=tracker_rule,
        publisher_rules=rules,
        advertiser_id=3,
        line_item_id=7,
    )
    for offset in offsets:  # several times on one plan: exercises the memo
        at = NOW + timedelta(seconds=offset)
        expected = price_event(
            imp_type=imp_type,
            at=at,
            line_item=li,
            tracker_rule=tracker_rule,
            publisher_rules=rules,
            advertiser_id=3,
            line_item_id=7,
            ancost_micros=ancost,
        )
        assert plan.price(int(imp_type), epoch_micros(at), ancost) == expected
        assert expected.media_cost_micros >= 0
        assert expected.booked_revenue_micros >= 0
