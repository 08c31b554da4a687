"""Trackers compiled for the hot path: a tracker's stored row and pricing inputs become a
:class:`CachedTracker` with its pricing plan, redirect settings and pre-encoded record ids."""

from __future__ import annotations

from adtrack.collector.conversion_cookies import cookie_parts
from adtrack.collector.query import safe_redirect_target
from adtrack.collector.records import tracker_fragment
from adtrack.collector.redirect_policy import NO_OVERRIDE, AdvertiserRedirects
from adtrack.collector.tracker_tables import CachedTracker
from adtrack.domain.model import ImpType, PaymentRule, State, TrackerType
from adtrack.domain.pricing import PricingPlan
from adtrack.services.ports import TrackerInputs

__all__ = ["compile_trackers"]

_CLICK_TYPE = TrackerType.CLICK.value
_CLICK = int(ImpType.EXTERNAL_CLICK)
_IMPRESSION = int(ImpType.EXTERNAL_IMPRESSION)
_ACTIVE = State.ACTIVE.value


def compile_trackers(inputs: TrackerInputs) -> list[CachedTracker]:
    """One :class:`CachedTracker` per tracker of ``inputs``, in their order."""
    if not inputs.trackers:
        return []
    redirects = {
        advertiser: AdvertiserRedirects.of(policy, landing_domains)
        for advertiser, (policy, landing_domains) in inputs.advertiser_redirects.items()
    }
    line_items = inputs.line_items
    cookie_advertisers = inputs.cookie_advertisers
    rules: dict[int, PaymentRule] = {}
    by_publisher: dict[int, list[PaymentRule]] = {}
    for rule in inputs.payment_rules:
        rules[rule.id] = rule
        by_publisher.setdefault(rule.publisher_id, []).append(rule)
    out = []
    plans: dict[tuple[int, int | None, int, int], PricingPlan] = {}
    for row in inputs.trackers:
        # plain tuple unpacking: attribute access on 100,000 rows is a large part of a load
        (tid, tracker_type, code, state, adv, li, pub, placement, rule_id, landing_url, param) = row
        landing = None
        if landing_url:
            landing = safe_redirect_target(str(landing_url).strip().encode("utf-8"))
        # trackers with the same pricing inputs share one plan (most of a tracker's memory)
        plan_key = (li, rule_id, pub, adv)
        plan = plans.get(plan_key)
        if plan is None:
            plan = plans[plan_key] = PricingPlan(
                line_item=line_items.get(li),
                tracker_rule=rules.get(rule_id) if rule_id else None,
                publisher_rules=by_publisher.get(pub, ()),
                advertiser_id=adv,
                line_item_id=li,
            )
        imp_type = _CLICK if tracker_type == _CLICK_TYPE else _IMPRESSION
        out.append(
            CachedTracker(
                tid,
                imp_type,
                code,
                state == _ACTIVE,
                adv,
                li,
                pub,
                placement,
                landing,
                plan,
                tracker_fragment(imp_type, tid, adv, li, pub, placement),
                redirects.get(adv, NO_OVERRIDE),
                param.encode("ascii") if param and param.isascii() else None,
                cookie_parts(imp_type, adv) if adv in cookie_advertisers else None,
            )
        )
    return out
