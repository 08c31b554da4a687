"""Rules that involve more than one field or more than one catalogue object.

Pure functions over entities: the service loads what a rule needs inside its transaction and
calls these. Field validators (one value at a time) are in ``validation.py``.

Every error names the field as the API user typed it (``revenue_value``, not
``revenue_value_micros``), see ``API_FIELD``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Literal, Protocol, TypedDict

from adtrack.domain.errors import Conflict, InUse, ValidationError
from adtrack.domain.model import (
    ConversionPixel,
    FilterAction,
    LineItem,
    PaymentRule,
    Placement,
    PricingType,
    RevenueType,
    State,
    Tracker,
    TrackerType,
)
from adtrack.domain.validation import DEFAULT_PRIORITY, check_date_range

# Entity attribute -> the field name the API (and so the user) uses for it.
API_FIELD: dict[str, str] = {
    "revenue_value_micros": "revenue_value",
    "cost_cpm_micros": "cost_cpm",
    "cost_cpc_micros": "cost_cpc",
    "revshare_ppm": "revshare",
    "post_click_revenue_micros": "post_click_revenue",
    "post_view_revenue_micros": "post_view_revenue",
}

# How many blocking objects an ``InUse`` error lists, per kind.
MAX_BLOCKERS = 100

PricingAmount = Literal["revshare_ppm", "cost_cpm_micros", "cost_cpc_micros"]
FilterActionAttribute = Literal["advertiser_filter", "line_item_filter"]
FilterIdsAttribute = Literal["advertiser_ids", "line_item_ids"]


class _PricingReset(TypedDict, total=False):
    revshare_ppm: int
    cost_cpm_micros: int
    cost_cpc_micros: int


class _FilterReset(TypedDict, total=False):
    advertiser_filter: FilterAction | None
    advertiser_ids: frozenset[int]
    line_item_filter: FilterAction | None
    line_item_ids: frozenset[int]


_PRICING_FIELD: dict[PricingType, PricingAmount] = {
    PricingType.REVSHARE: "revshare_ppm",
    PricingType.CPM: "cost_cpm_micros",
    PricingType.CPC: "cost_cpc_micros",
}


def api_field(attribute: str) -> str:
    return API_FIELD.get(attribute, attribute)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------


def check_reference(field: str, label: str, object_id: int, found: object | None) -> None:
    """A reference in a request body must name a live object.

    A bad reference is invalid input (422 naming the field), not a missing URL resource (404).
    """
    if found is None:
        raise ValidationError(field, f"{label} {object_id} does not exist")


def check_references(field: str, label: str, ids: Iterable[int], found: Iterable[int]) -> None:
    missing = sorted(set(ids) - set(found))
    if missing:
        listed = ", ".join(str(i) for i in missing)
        noun = label if len(missing) == 1 else f"{label}s"
        verb = "does" if len(missing) == 1 else "do"
        raise ValidationError(field, f"{noun} {listed} {verb} not exist")


# ---------------------------------------------------------------------------------------------
# Line items
# ---------------------------------------------------------------------------------------------


def check_line_item(item: LineItem, given: Iterable[str], before: LineItem | None) -> LineItem:
    """Check (and normalise) a line item about to be stored.

    ``given`` are the attributes the request set; ``before`` is the stored version on update.
    - ``none`` revenue has no value: a non-zero ``revenue_value`` is refused, and switching to
      ``none`` resets the value to 0;
    - ``cpm``/``cpc`` need a value when the type is set (on create, or when switching type);
    - start before end.
    """
    given = frozenset(given)
    if item.revenue_type is RevenueType.NONE:
        if item.revenue_value_micros != 0:
            if "revenue_value_micros" in given:
                raise ValidationError(
                    "revenue_value", "must be 0 or omitted when revenue_type is 'none'"
                )
            item = replace(item, revenue_value_micros=0)
    else:
        switching = before is None or before.revenue_type is not item.revenue_type
        if switching and "revenue_value_micros" not in given:
            raise ValidationError(
                "revenue_value", f"is required when revenue_type is '{item.revenue_type.value}'"
            )
    check_date_range(item.start_date, item.end_date)
    return item


def check_line_item_move(
    before: LineItem, after: LineItem, trackers: Sequence[Tracker], total: int
) -> None:
    """A line item used by live trackers cannot move to another advertiser: the trackers'
    advertiser would no longer match."""
    if before.advertiser_id != after.advertiser_id and total:
        raise InUse(
            "advertiser_id",
            f"line item {before.id} is used by {_plural(total, 'tracker')} of advertiser "
            f"{before.advertiser_id}; it cannot move to advertiser {after.advertiser_id}",
            tracker_blockers(trackers),
        )


# ---------------------------------------------------------------------------------------------
# Payment rules
# ---------------------------------------------------------------------------------------------

# What only conditional rules have: the base rule applies whenever no other rule does (so
# the base rule refuses them, and its console page does not show them).
BASE_RULE_CONDITIONAL_ONLY = (
    "priority",
    "start_date",
    "end_date",
    "advertiser_filter",
    "advertiser_ids",
    "line_item_filter",
    "line_item_ids",
)


def _normalise_pricing(
    rule: PaymentRule, given: frozenset[str], before: PaymentRule | None
) -> PaymentRule:
    applicable = _PRICING_FIELD[rule.pricing_type]
    resets: _PricingReset = {}
    for pricing_type, attribute in _PRICING_FIELD.items():
        if attribute == applicable or getattr(rule, attribute) == 0:
            continue
        if attribute in given:
            raise ValidationError(
                api_field(attribute),
                f"applies only when pricing_type is '{pricing_type.value}' "
                f"(this rule's pricing_type is '{rule.pricing_type.value}')",
            )
        resets[attribute] = 0  # left over from the previous pricing type
    if rule.pricing_type is not PricingType.REVSHARE:
        switching = before is None or before.pricing_type is not rule.pricing_type
        if switching and applicable not in given:
            raise ValidationError(
                api_field(applicable),
                f"is required when pricing_type is '{rule.pricing_type.value}'",
            )
    return replace(rule, **resets) if resets else rule


def _normalise_filter(
    rule: PaymentRule,
    given: frozenset[str],
    action_attr: FilterActionAttribute,
    ids_attr: FilterIdsAttribute,
    label: str,
) -> PaymentRule:
    action: FilterAction | None = getattr(rule, action_attr)
    ids: frozenset[int] = getattr(rule, ids_attr)
    # Clearing one half of a filter clears the other unless the request set it too.
    if action is None and ids and ids_attr not in given:
        cleared: _FilterReset = {}
        cleared[ids_attr] = frozenset()
        return replace(rule, **cleared)
    if action is not None and not ids and action_attr not in given:
        cleared = {}
        cleared[action_attr] = None
        return replace(rule, **cleared)
    if action is None and ids:
        raise ValidationError(
            action_attr, f"must be 'include' or 'exclude' when {ids_attr} lists {label}s"
        )
    if action is not None and not ids:
        raise ValidationError(
            ids_attr, f"must list at least one {label} when {action_attr} is '{action.value}'"
        )
    return rule


def check_payment_rule(
    rule: PaymentRule, given: Iterable[str], before: PaymentRule | None
) -> PaymentRule:
    """Check (and normalise) a payment rule about to be stored.

    - only the amount of the rule's pricing type may be non-zero: an explicit other amount is
      refused, one left over from a previous pricing type is reset to 0;
    - ``cpm``/``cpc`` need their cost when the type is set (on create or when switching);
    - a filter needs both an action and at least one id;
    - the base rule has no priority, dates or filters, and is always active;
    - start before end.
    """
    given = frozenset(given)
    rule = _normalise_pricing(rule, given, before)
    rule = _normalise_filter(rule, given, "advertiser_filter", "advertiser_ids", "advertiser")
    rule = _normalise_filter(rule, given, "line_item_filter", "line_item_ids", "line item")
    if rule.is_base:
        defaults = PaymentRule(id=0, publisher_id=0, name="", priority=DEFAULT_PRIORITY)
        for attribute in BASE_RULE_CONDITIONAL_ONLY:
            if getattr(rule, attribute) != getattr(defaults, attribute):
                raise ValidationError(
                    attribute,
                    "does not apply to the base rule (it applies whenever no other rule does)",
                )
        if rule.state is not State.ACTIVE:
            raise ValidationError(
                "state", "the base rule cannot be deactivated (it is the publisher's fallback)"
            )
    check_date_range(rule.start_date, rule.end_date)
    return rule


def check_new_conditional_rule(rule: PaymentRule) -> None:
    """Base rules are only created with their publisher; each publisher has exactly one."""
    if rule.is_base:
        raise Conflict(
            "is_base",
            f"publisher {rule.publisher_id} already has its base rule; edit that rule instead",
        )


def check_payment_rule_change(
    before: PaymentRule, after: PaymentRule, trackers: Sequence[Tracker], total: int
) -> None:
    """What an update may not change: base-ness, and the publisher of a rule in use."""
    if before.is_base and not after.is_base:
        raise Conflict("is_base", "the base rule cannot be made a conditional rule")
    if not before.is_base and after.is_base:
        raise Conflict(
            "is_base",
            f"publisher {before.publisher_id} already has a base rule; each publisher has "
            "exactly one",
        )
    if before.publisher_id != after.publisher_id:
        if before.is_base:
            raise ValidationError("publisher_id", "the base rule cannot move to another publisher")
        if total:
            raise InUse(
                "publisher_id",
                f"payment rule {before.id} is used by {_plural(total, 'tracker')} of publisher "
                f"{before.publisher_id}; it cannot move to publisher {after.publisher_id}",
                tracker_blockers(trackers),
            )


def check_payment_rule_deletable(rule: PaymentRule) -> None:
    if rule.is_base:
        raise Conflict(
            "id",
            f"payment rule {rule.id} is the base rule of publisher {rule.publisher_id} and "
            "cannot be deleted; edit it instead",
        )


# ---------------------------------------------------------------------------------------------
# Placements
# ---------------------------------------------------------------------------------------------


def check_placement_move(
    before: Placement, after: Placement, trackers: Sequence[Tracker], total: int
) -> None:
    if before.publisher_id != after.publisher_id and total:
        raise InUse(
            "publisher_id",
            f"placement {before.id} is used by {_plural(total, 'tracker')} of publisher "
            f"{before.publisher_id}; it cannot move to publisher {after.publisher_id}",
            tracker_blockers(trackers),
        )


# ---------------------------------------------------------------------------------------------
# Trackers
# ---------------------------------------------------------------------------------------------


def check_tracker(
    tracker: Tracker,
    line_item: LineItem,
    placement: Placement | None,
    payment_rule: PaymentRule | None,
) -> None:
    """The associations of a tracker must agree with each other.

    ``line_item``, ``placement`` and ``payment_rule`` are the live objects the tracker names
    (the service has already refused unknown or deleted references).
    """
    if tracker.landing_page_url is not None and tracker.tracker_type is not TrackerType.CLICK:
        raise ValidationError("landing_page_url", "only click trackers have a landing page")
    if tracker.ssp_data_param is not None and tracker.tracker_type is not TrackerType.CLICK:
        raise ValidationError("ssp_data_param", "only click trackers pass on a click token")
    if line_item.advertiser_id != tracker.advertiser_id:
        raise ValidationError(
            "line_item_id",
            f"line item {line_item.id} belongs to advertiser {line_item.advertiser_id}, "
            f"not to advertiser {tracker.advertiser_id}",
        )
    if placement is not None and placement.publisher_id != tracker.publisher_id:
        raise ValidationError(
            "placement_id",
            f"placement {placement.id} belongs to publisher {placement.publisher_id}, "
            f"not to publisher {tracker.publisher_id}",
        )
    if payment_rule is not None and payment_rule.publisher_id != tracker.publisher_id:
        raise ValidationError(
            "payment_rule_id",
            f"payment rule {payment_rule.id} belongs to publisher {payment_rule.publisher_id}, "
            f"not to publisher {tracker.publisher_id}",
        )


def check_tracker_type_unchanged(before: Tracker, after: Tracker) -> None:
    if before.tracker_type is not after.tracker_type:
        raise ValidationError(
            "tracker_type",
            f"tracker {before.id} is a {before.tracker_type.value} tracker; its type cannot "
            "change (create a new tracker instead)",
        )


def check_code_unique(tracker: Tracker, same_code: Iterable[Tracker]) -> None:
    """A code is unique among live trackers of one type (the tracker itself aside)."""
    if tracker.code is None:
        return
    for other in same_code:
        if other.id != tracker.id and other.tracker_type is tracker.tracker_type:
            raise Conflict(
                "code",
                f"code '{tracker.code}' is already used by {tracker.tracker_type.value} "
                f"tracker {other.id} ('{other.name}')",
            )


# ---------------------------------------------------------------------------------------------
# Conversion pixels
# ---------------------------------------------------------------------------------------------


def check_pixel_code_unique(pixel: ConversionPixel, same_code: Iterable[ConversionPixel]) -> None:
    """A code is unique among live conversion pixels (``/sspx?code=`` finds a pixel by it)."""
    if pixel.code is None:
        return
    for other in same_code:
        if other.id != pixel.id:
            raise Conflict(
                "code",
                f"code '{pixel.code}' is already used by conversion pixel {other.id} "
                f"('{other.name}')",
            )


# ---------------------------------------------------------------------------------------------
# Deleting objects still in use
# ---------------------------------------------------------------------------------------------


class Named(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


def tracker_blockers(trackers: Iterable[Tracker]) -> list[dict[str, object]]:
    return [
        {"kind": "tracker", "id": t.id, "name": t.name, "tracker_type": t.tracker_type.value}
        for t in list(trackers)[:MAX_BLOCKERS]
    ]


def check_not_in_use(
    label: str,
    object_id: int,
    trackers: Sequence[Tracker],
    tracker_total: int,
    others: Sequence[tuple[str, Sequence[Named], int]] = (),
) -> None:
    """Refuse to delete an object that live trackers (or other live objects) still use.

    ``others`` are ``(kind, objects, total)`` for non-tracker dependants, e.g. the line items
    of an advertiser; each object needs ``id`` and ``name``. Blockers list trackers first, at
    most ``MAX_BLOCKERS`` of each kind; the message gives the full counts.
    """
    parts: list[str] = []
    blockers: list[dict[str, object]] = []
    if tracker_total:
        parts.append(_plural(tracker_total, "tracker"))
        blockers.extend(tracker_blockers(trackers))
    for kind, objects, total in others:
        if not total:
            continue
        parts.append(_plural(total, kind.replace("_", " ")))
        blockers.extend(
            {"kind": kind, "id": o.id, "name": o.name} for o in list(objects)[:MAX_BLOCKERS]
        )
    if not parts:
        return
    if len(parts) == 1:
        users = parts[0]
        verb = "uses" if parts[0].startswith("1 ") else "use"
    else:
        users = ", ".join(parts[:-1]) + " and " + parts[-1]
        verb = "use"
    raise InUse(
        "id",
        f"{label} {object_id} cannot be deleted: {users} still {verb} it "
        "(delete them or point them elsewhere first)",
        blockers,
    )
