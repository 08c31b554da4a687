"""adtrack -> platform (``*_to_xandr``): the platform's JSON for an entity, with the field names,
nested objects (``publisher {id, name}``, ``tag [{id, name}]``, ``payment_rule {id, name}``,
``line_item {id, name}``) and formats (``"YYYY-MM-DD HH:MM:SS"``) of its documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from adtrack.domain.model import (
    Advertiser,
    CatalogueEntity,
    LineItem,
    PaymentRule,
    Placement,
    PricingType,
    Publisher,
    RevenueType,
    Tracker,
    TrackerType,
)
from adtrack.services.xandr.objects.conventions import (
    ONE_SECOND,
    OUTPUT_TIMEZONE,
    XandrKind,
    decimal_out,
    format_timestamp,
)

__all__ = [
    "Names",
    "advertiser_to_xandr",
    "line_item_to_xandr",
    "payment_rule_to_xandr",
    "placement_to_xandr",
    "publisher_to_xandr",
    "tracker_to_xandr",
]

# Names of referenced objects: (kind, id) -> name. A missing name is written as null.
Names = Mapping[tuple[XandrKind, int], str]


def _named(kind: XandrKind, id: int | None, names: Names) -> dict[str, object] | None:
    if id is None:
        return None
    return {"id": id, "name": names.get((kind, id))}


def _common(entity: CatalogueEntity) -> dict[str, object]:
    return {"id": entity.id, "code": entity.code, "name": entity.name, "state": entity.state.value}


def _end_out(end: datetime | None, tz: tzinfo) -> str | None:
    return None if end is None else format_timestamp(end - ONE_SECOND, tz)


def advertiser_to_xandr(advertiser: Advertiser) -> dict[str, object]:
    return {
        **_common(advertiser),
        "timezone": OUTPUT_TIMEZONE,
        "last_modified": format_timestamp(advertiser.last_modified),
    }


def line_item_to_xandr(
    line_item: LineItem, names: Names, *, timezone: str = OUTPUT_TIMEZONE
) -> dict[str, object]:
    """``timezone``: the one its dates are written in (and which the JSON names)."""
    tz = ZoneInfo(timezone)
    revenue_type = line_item.revenue_type
    return {
        **_common(line_item),
        "advertiser_id": line_item.advertiser_id,
        "advertiser": _named(XandrKind.ADVERTISER, line_item.advertiser_id, names),
        "start_date": format_timestamp(line_item.start_date, tz),
        "end_date": _end_out(line_item.end_date, tz),
        "timezone": timezone,
        "revenue_type": revenue_type.value,
        "revenue_value": None
        if revenue_type is RevenueType.NONE
        else decimal_out(line_item.revenue_value_micros),
        "last_modified": format_timestamp(line_item.last_modified),
    }


def publisher_to_xandr(
    publisher: Publisher, *, base_payment_rule_id: int | None
) -> dict[str, object]:
    return {
        **_common(publisher),
        "timezone": OUTPUT_TIMEZONE,
        "base_payment_rule_id": base_payment_rule_id,
        "last_modified": format_timestamp(publisher.last_modified),
    }


def placement_to_xandr(placement: Placement, names: Names) -> dict[str, object]:
    return {
        **_common(placement),
        "publisher_id": placement.publisher_id,
        "publisher_name": names.get((XandrKind.PUBLISHER, placement.publisher_id)),
        "last_modified": format_timestamp(placement.last_modified),
    }


def payment_rule_to_xandr(
    rule: PaymentRule, names: Names, *, timezone: str = OUTPUT_TIMEZONE
) -> dict[str, object]:
    """adtrack's ``cpc`` pricing (its own extension) is written as ``"pricing_type": "cpc"`` with
    ``cost_cpc``. The platform has one filter action for advertisers and line items; a rule
    whose two actions differ is written with the advertisers' action."""
    tz = ZoneInfo(timezone)
    action = rule.advertiser_filter or rule.line_item_filter
    out: dict[str, object] = {
        **_common(rule),
        "description": rule.description or "",
        "pricing_type": rule.pricing_type.value,
        "cost_cpm": decimal_out(rule.cost_cpm_micros)
        if rule.pricing_type is PricingType.CPM
        else None,
        "revshare": decimal_out(rule.revshare_ppm)
        if rule.pricing_type is PricingType.REVSHARE
        else None,
        "start_date": format_timestamp(rule.start_date, tz),
        "end_date": _end_out(rule.end_date, tz),
        "timezone": timezone,
        "priority": rule.priority,
        "demand_filter_action": "default" if action is None else action.value,
        "filtered_advertisers": [
            {"id": id, "name": names.get((XandrKind.ADVERTISER, id))}
            for id in sorted(rule.advertiser_ids)
        ]
        or None,
        "filtered_line_items": [
            {"id": id, "name": names.get((XandrKind.LINE_ITEM, id))}
            for id in sorted(rule.line_item_ids)
        ]
        or None,
        "last_modified": format_timestamp(rule.last_modified),
    }
    if rule.pricing_type is PricingType.CPC:
        out["cost_cpc"] = decimal_out(rule.cost_cpc_micros)
    return out


def tracker_to_xandr(tracker: Tracker, names: Names, *, member_id: int) -> dict[str, object]:
    """An ``imptracker`` or ``clicktracker`` (by the tracker's type). ``member_id``: the
    platform's account id, read only (adtrack is one member)."""
    tag = _named(XandrKind.PLACEMENT, tracker.placement_id, names)
    out: dict[str, object] = {
        "id": tracker.id,
        "member_id": member_id,
        "advertiser_id": tracker.advertiser_id,
        "name": tracker.name,
        "code": tracker.code,
        "state": tracker.state.value,
        "publisher": _named(XandrKind.PUBLISHER, tracker.publisher_id, names),
        "tag": None if tag is None else [tag],
        "payment_rule": _named(XandrKind.PAYMENT_RULE, tracker.payment_rule_id, names),
        "line_item": _named(XandrKind.LINE_ITEM, tracker.line_item_id, names),
        "last_modified": format_timestamp(tracker.last_modified),
    }
    if tracker.tracker_type is TrackerType.CLICK:
        out["click_url"] = tracker.landing_page_url
    return out
