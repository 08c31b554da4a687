"""Pricing a tracked event: which payment rule applies, its media cost and its booked revenue.

Pure functions over the catalogue entities (no I/O). Money is integer micros throughout.

Rule choice (the publisher's payment rules):

1. The tracker's own payment rule, when it has one and that rule applies now (active, inside its
   start/end dates). An explicitly assigned rule is not subject to its advertiser/line-item
   filters: assigning it is the trafficker's choice.
2. Otherwise the publisher's conditional (non-base) rules that apply now and whose filters match
   the tracker's advertiser and line item, highest ``priority`` first. Equal priorities are
   broken deterministically: **the lowest rule id wins** (the original platform picks randomly).
3. Otherwise the publisher's base rule, if it applies now.
4. Otherwise no rule: media cost 0, ``payment_rule_id`` None.

Filters: ``include`` matches only the listed ids (an empty include list matches nothing),
``exclude`` matches everything but the listed ids, no filter matches everything. A rule's
filters must all match.

Media cost: ``cpm`` costs ``cost_cpm / 1000`` per impression and nothing per click; ``cpc``
costs ``cost_cpc`` per click and nothing per impression; ``revshare`` costs ``revshare`` times
the event's booked revenue. Booked revenue comes from the line item: ``cpm`` value / 1000 per
impression, ``cpc`` value per click, ``none`` 0; a line item that is inactive or outside its
dates books 0 (and its revenue type is recorded as ``none``).

``ancost`` (the media cost the external system paid for this one event) overrides the rules:
the media cost is the ancost, ``ancost_used`` is true and ``payment_rule_id`` is None (no rule
priced the event); booked revenue is still computed from the line item.

Dates: ``start_date`` inclusive, ``end_date`` exclusive, both optional.

Two forms are provided: :func:`price_event` works on entities and datetimes (clear, used by
tests and slow paths), :class:`PricingPlan` is the same logic compiled once per tracker for the
collector's hot path (epoch microseconds, results memoised between date boundaries).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from adtrack.domain.model import (
    PPM,
    FilterAction,
    ImpType,
    LineItem,
    PaymentRule,
    PricingType,
    RevenueType,
    State,
)
from adtrack.domain.money import mul_ratio

__all__ = [
    "PricedEvent",
    "PricingPlan",
    "booked_revenue",
    "choose_payment_rule",
    "epoch_micros",
    "filters_match",
    "line_item_applies",
    "media_cost",
    "price_event",
    "rule_applies",
]

_NO_END = 1 << 62  # "no end date" in epoch micros, far beyond any real date


class PricedEvent(NamedTuple):
    """What an event costs and earns, and what priced it (a tuple: cheap to build per hit)."""

    payment_rule_id: int | None
    media_cost_micros: int
    booked_revenue_micros: int
    revenue_type: str  # the line item's revenue type when it applied, else "none"
    ancost_used: bool


def epoch_micros(at: datetime) -> int:
    """A datetime as integer epoch microseconds (naive datetimes are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _in_dates(start: datetime | None, end: datetime | None, at: datetime) -> bool:
    at_us = epoch_micros(at)
    if start is not None and at_us < epoch_micros(start):
        return False
    return not (end is not None and at_us >= epoch_micros(end))


def rule_applies(rule: PaymentRule, at: datetime) -> bool:
    """Active and inside its dates."""
    return rule.state == State.ACTIVE and _in_dates(rule.start_date, rule.end_date, at)


def line_item_applies(line_item: LineItem, at: datetime) -> bool:
    """Active and inside its dates."""
    return line_item.state == State.ACTIVE and _in_dates(
        line_item.start_date, line_item.end_date, at
    )


def _filter_matches(action: FilterAction | str | None, ids: frozenset[int], value: int) -> bool:
    if action is None:
        return True
    if action == FilterAction.INCLUDE:
        return value in ids
    return value not in ids


def filters_match(rule: PaymentRule, advertiser_id: int, line_item_id: int) -> bool:
    """Whether all of the rule's filters accept this advertiser and line item."""
    return _filter_matches(
        rule.advertiser_filter, rule.advertiser_ids, advertiser_id
    ) and _filter_matches(rule.line_item_filter, rule.line_item_ids, line_item_id)


def _conditional_order(rules: Iterable[PaymentRule]) -> list[PaymentRule]:
    """Conditional rules in the order they are tried: priority descending, then id ascending."""
    return sorted((r for r in rules if not r.is_base), key=lambda r: (-r.priority, r.id))


def choose_payment_rule(
    *,
    tracker_rule: PaymentRule | None,
    publisher_rules: Sequence[PaymentRule],
    advertiser_id: int,
    line_item_id: int,
    at: datetime,
) -> PaymentRule | None:
    """The rule that prices an event of this tracker at ``at`` (see the module docstring)."""
    if tracker_rule is not None and rule_applies(tracker_rule, at):
        return tracker_rule
    for rule in _conditional_order(publisher_rules):
        if rule_applies(rule, at) and filters_match(rule, advertiser_id, line_item_id):
            return rule
    for rule in sorted((r for r in publisher_rules if r.is_base), key=lambda r: r.id):
        if rule_applies(rule, at):
            return rule
    return None


def _revenue(revenue_type: str, value_micros: int, is_click: bool) -> int:
    if revenue_type == RevenueType.CPM:
        return 0 if is_click else mul_ratio(value_micros, 1, 1000)
    if revenue_type == RevenueType.CPC:
        return value_micros if is_click else 0
    return 0


def booked_revenue(line_item: LineItem | None, imp_type: ImpType | int, at: datetime) -> int:
    """What the advertiser is booked for one event (0 when the line item does not apply)."""
    if line_item is None or not line_item_applies(line_item, at):
        return 0
    return _revenue(
        line_item.revenue_type,
        line_item.revenue_value_micros,
        imp_type == ImpType.EXTERNAL_CLICK,
    )


def _cost(
    pricing_type: str, revshare_ppm: int, cpm: int, cpc: int, is_click: bool, revenue: int
) -> int:
    if pricing_type == PricingType.CPM:
        return 0 if is_click else mul_ratio(cpm, 1, 1000)
    if pricing_type == PricingType.CPC:
        return cpc if is_click else 0
    if pricing_type == PricingType.REVSHARE:
        return mul_ratio(revenue, revshare_ppm, PPM)
    return 0


def media_cost(
    rule: PaymentRule | None, imp_type: ImpType | int, booked_revenue_micros: int
) -> int:
    """The media cost one event owes the publisher under ``rule`` (0 without a rule)."""
    if rule is None:
        return 0
    return _cost(
        rule.pricing_type,
        rule.revshare_ppm,
        rule.cost_cpm_micros,
        rule.cost_cpc_micros,
        imp_type == ImpType.EXTERNAL_CLICK,
        booked_revenue_micros,
    )


def price_event(
    *,
    imp_type: ImpType | int,
    at: datetime,
    line_item: LineItem | None,
    tracker_rule: PaymentRule | None,
    publisher_rules: Sequence[PaymentRule],
    advertiser_id: int,
    line_item_id: int,
    ancost_micros: int | None = None,
) -> PricedEvent:
    """Price one event: booked revenue from the line item, media cost from ancost or a rule."""
    revenue = booked_revenue(line_item, imp_type, at)
    revenue_type = (
        str(line_item.revenue_type)
        if line_item is not None and line_item_applies(line_item, at)
        else str(RevenueType.NONE)
    )
    if ancost_micros is not None:
        return PricedEvent(None, ancost_micros, revenue, revenue_type, True)
    rule = choose_payment_rule(
        tracker_rule=tracker_rule,
        publisher_rules=publisher_rules,
        advertiser_id=advertiser_id,
        line_item_id=line_item_id,
        at=at,
    )
    return PricedEvent(
        None if rule is None else rule.id,
        media_cost(rule, imp_type, revenue),
        revenue,
        revenue_type,
        False,
    )


# ---------------------------------------------------------------------------------------------
# Compiled form for the hot path
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    id: int
    start_us: int
    end_us: int
    pricing_type: str
    revshare_ppm: int
    cost_cpm_micros: int
    cost_cpc_micros: int

    @classmethod
    def of(cls, rule: PaymentRule) -> _CompiledRule:
        return cls(
            rule.id,
            -_NO_END if rule.start_date is None else epoch_micros(rule.start_date),
            _NO_END if rule.end_date is None else epoch_micros(rule.end_date),
            str(rule.pricing_type),
            rule.revshare_ppm,
            rule.cost_cpm_micros,
            rule.cost_cpc_micros,
        )


class PricingPlan:
    """One tracker's pricing, compiled: the candidate rules in the order they are tried.

    Everything that does not depend on time (state, filters, ordering) is decided once here;
    :meth:`price` only checks dates, and memoises its answer until the next date boundary, so a
    hot tracker is priced with a couple of comparisons. Equivalent to :func:`price_event`.
    """

    __slots__ = (
        "_candidates",
        "_revenue_type",
        "_revenue_value",
        "_li_start",
        "_li_end",
        "_li_active",
        "_boundaries",
        "_memo",
    )

    def __init__(
        self,
        *,
        line_item: LineItem | None,
        tracker_rule: PaymentRule | None,
        publisher_rules: Sequence[PaymentRule],
        advertiser_id: int,
        line_item_id: int,
    ) -> None:
        candidates: list[_CompiledRule] = []
        if tracker_rule is not None and tracker_rule.state == State.ACTIVE:
            candidates.append(_CompiledRule.of(tracker_rule))
        candidates.extend(
            _CompiledRule.of(rule)
            for rule in _conditional_order(publisher_rules)
            if rule.state == State.ACTIVE and filters_match(rule, advertiser_id, line_item_id)
        )
        candidates.extend(
            _CompiledRule.of(rule)
            for rule in sorted((r for r in publisher_rules if r.is_base), key=lambda r: r.id)
            if rule.state == State.ACTIVE
        )
        self._candidates = tuple(candidates)
        if line_item is None:
            self._li_active = False
            self._revenue_type = str(RevenueType.NONE)
            self._revenue_value = 0
            self._li_start, self._li_end = -_NO_END, _NO_END
        else:
            self._li_active = line_item.state == State.ACTIVE
            self._revenue_type = str(line_item.revenue_type)
            self._revenue_value = line_item.revenue_value_micros
            self._li_start = (
                -_NO_END if line_item.start_date is None else epoch_micros(line_item.start_date)
            )
            self._li_end = (
                _NO_END if line_item.end_date is None else epoch_micros(line_item.end_date)
            )
        points = {self._li_start, self._li_end}
        for rule in self._candidates:
            points.add(rule.start_us)
            points.add(rule.end_us)
        self._boundaries = tuple(sorted(points))
        # imp_type -> (valid_from_us, valid_until_us, result without ancost, results with ancost)
        self._memo: dict[int, tuple[int, int, PricedEvent, dict[int, PricedEvent]]] = {}

    @property
    def candidate_rule_ids(self) -> tuple[int, ...]:
        """Rule ids in the order they are tried (for diagnostics and tests)."""
        return tuple(rule.id for rule in self._candidates)

    def _window(self, now_us: int) -> tuple[int, int]:
        lo, hi = -_NO_END - 1, _NO_END + 1
        for point in self._boundaries:
            if point <= now_us:
                lo = point
            else:
                hi = point
                break
        return lo, hi

    def _compute(self, imp_type: int, now_us: int) -> PricedEvent:
        is_click = imp_type == ImpType.EXTERNAL_CLICK
        if self._li_active and self._li_start <= now_us < self._li_end:
            revenue_type = self._revenue_type
            revenue = _revenue(revenue_type, self._revenue_value, is_click)
        else:
            revenue_type, revenue = str(RevenueType.NONE), 0
        for rule in self._candidates:
            if rule.start_us <= now_us < rule.end_us:
                cost = _cost(
                    rule.pricing_type,
                    rule.revshare_ppm,
                    rule.cost_cpm_micros,
                    rule.cost_cpc_micros,
                    is_click,
                    revenue,
                )
                return PricedEvent(rule.id, cost, revenue, revenue_type, False)
        return PricedEvent(None, 0, revenue, revenue_type, False)

    def price_window(
        self, imp_type: int, now_us: int, ancost_micros: int | None = None
    ) -> tuple[PricedEvent, int, int]:
        """:meth:`price`, and the span ``[from_us, until_us)`` around ``now_us`` in which it
        stays the same (no rule or line item starts or ends in it), so a caller can keep it."""
        priced = self.price(imp_type, now_us, ancost_micros)
        memo = self._memo[imp_type]
        return priced, memo[0], memo[1]

    def price(self, imp_type: int, now_us: int, ancost_micros: int | None = None) -> PricedEvent:
        """Price one event at ``now_us`` (epoch micros); ``ancost_micros`` overrides the rules."""
        memo = self._memo.get(imp_type)
        if memo is None or not memo[0] <= now_us < memo[1]:
            base = self._compute(imp_type, now_us)
            lo, hi = self._window(now_us)
            memo = (lo, hi, base, {})
            self._memo[imp_type] = memo
        if ancost_micros is None:
            return memo[2]
        # ancost values repeat: keep the few last answers instead of building new ones
        with_ancost = memo[3]
        priced = with_ancost.get(ancost_micros)
        if priced is None:
            base = memo[2]
            priced = PricedEvent(
                None, ancost_micros, base.booked_revenue_micros, base.revenue_type, True
            )
            if len(with_ancost) >= 64:
                with_ancost.clear()
            with_ancost[ancost_micros] = priced
        return priced
