"""The per-kind checks of ``KindCatalogue``: each loads, inside the write's transaction, what
its rules need and calls them (the rules themselves are pure, in ``domain/catalogue_rules.py``).

A write check returns the entity to store (a rule may normalise it); a delete check raises
``InUse`` (listing the blockers) while live objects still depend on the one being deleted.
"""

from __future__ import annotations

from dataclasses import replace

from adtrack.domain import catalogue_rules as rules
from adtrack.domain.model import (
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    Publisher,
    Tracker,
)
from adtrack.services.ports import UnitOfWork

__all__ = [
    "advertiser_delete_check",
    "check_conversion_pixel",
    "check_line_item",
    "check_payment_rule",
    "check_placement",
    "check_tracker",
    "line_item_delete_check",
    "payment_rule_delete_check",
    "placement_delete_check",
    "publisher_delete_check",
]


# --- advertisers ------------------------------------------------------------------------------


def advertiser_delete_check(uow: UnitOfWork, advertiser: Advertiser) -> None:
    id = advertiser.id
    trackers, total = uow.trackers.live_using("advertiser_id", id, rules.MAX_BLOCKERS)
    line_items, li_total = uow.line_items.live_for_advertiser(id, rules.MAX_BLOCKERS)
    filtering, f_total = uow.payment_rules.live_filtering_on("advertiser", id, rules.MAX_BLOCKERS)
    pixels, px_total = uow.conversion_pixels.live_for_advertiser(id, rules.MAX_BLOCKERS)
    rules.check_not_in_use(
        "advertiser",
        id,
        trackers,
        total,
        [
            ("line_item", line_items, li_total),
            ("payment_rule", filtering, f_total),
            ("conversion_pixel", pixels, px_total),
        ],
    )


# --- line items -------------------------------------------------------------------------------


def check_line_item(
    uow: UnitOfWork, item: LineItem, given: frozenset[str], before: LineItem | None
) -> LineItem:
    rules.check_reference(
        "advertiser_id", "advertiser", item.advertiser_id, uow.advertisers.get(item.advertiser_id)
    )
    item = rules.check_line_item(item, given, before)
    if before is not None and before.advertiser_id != item.advertiser_id:
        trackers, total = uow.trackers.live_using("line_item_id", item.id, rules.MAX_BLOCKERS)
        rules.check_line_item_move(before, item, trackers, total)
    return item


def line_item_delete_check(uow: UnitOfWork, line_item: LineItem) -> None:
    id = line_item.id
    trackers, total = uow.trackers.live_using("line_item_id", id, rules.MAX_BLOCKERS)
    filtering, f_total = uow.payment_rules.live_filtering_on("line_item", id, rules.MAX_BLOCKERS)
    rules.check_not_in_use("line item", id, trackers, total, [("payment_rule", filtering, f_total)])


# --- publishers -------------------------------------------------------------------------------


def publisher_delete_check(uow: UnitOfWork, publisher: Publisher) -> None:
    """Refused while trackers, placements or conditional payment rules of the publisher are
    live (its base rule goes with it)."""
    id = publisher.id
    trackers, total = uow.trackers.live_using("publisher_id", id, rules.MAX_BLOCKERS)
    placements, p_total = uow.placements.live_for_publisher(id, rules.MAX_BLOCKERS)
    conditional, r_total = uow.payment_rules.live_conditional_for_publisher(id, rules.MAX_BLOCKERS)
    rules.check_not_in_use(
        "publisher",
        id,
        trackers,
        total,
        [("placement", placements, p_total), ("payment_rule", conditional, r_total)],
    )


# --- placements -------------------------------------------------------------------------------


def check_placement(
    uow: UnitOfWork, placement: Placement, given: frozenset[str], before: Placement | None
) -> Placement:
    rules.check_reference(
        "publisher_id",
        "publisher",
        placement.publisher_id,
        uow.publishers.get(placement.publisher_id),
    )
    if before is not None and before.publisher_id != placement.publisher_id:
        trackers, total = uow.trackers.live_using("placement_id", placement.id, rules.MAX_BLOCKERS)
        rules.check_placement_move(before, placement, trackers, total)
    return placement


def placement_delete_check(uow: UnitOfWork, placement: Placement) -> None:
    trackers, total = uow.trackers.live_using("placement_id", placement.id, rules.MAX_BLOCKERS)
    rules.check_not_in_use("placement", placement.id, trackers, total)


# --- payment rules ----------------------------------------------------------------------------


def check_payment_rule(
    uow: UnitOfWork, rule: PaymentRule, given: frozenset[str], before: PaymentRule | None
) -> PaymentRule:
    rules.check_reference(
        "publisher_id", "publisher", rule.publisher_id, uow.publishers.get(rule.publisher_id)
    )
    if before is None:
        if "is_base" in given:
            rules.check_new_conditional_rule(rule)
    else:
        trackers: list[Tracker] = []
        total = 0
        if before.publisher_id != rule.publisher_id:
            trackers, total = uow.trackers.live_using(
                "payment_rule_id", rule.id, rules.MAX_BLOCKERS
            )
        rules.check_payment_rule_change(before, rule, trackers, total)
    rule = rules.check_payment_rule(rule, given, before)
    rules.check_references(
        "advertiser_ids",
        "advertiser",
        rule.advertiser_ids,
        (i for i in rule.advertiser_ids if uow.advertisers.get(i) is not None),
    )
    rules.check_references(
        "line_item_ids",
        "line item",
        rule.line_item_ids,
        (i for i in rule.line_item_ids if uow.line_items.get(i) is not None),
    )
    return rule


def payment_rule_delete_check(uow: UnitOfWork, rule: PaymentRule) -> None:
    rules.check_payment_rule_deletable(rule)
    trackers, total = uow.trackers.live_using("payment_rule_id", rule.id, rules.MAX_BLOCKERS)
    rules.check_not_in_use("payment rule", rule.id, trackers, total)


# --- trackers ---------------------------------------------------------------------------------


def check_tracker(
    uow: UnitOfWork, tracker: Tracker, given: frozenset[str], before: Tracker | None
) -> Tracker:
    if before is not None:
        rules.check_tracker_type_unchanged(before, tracker)
    line_item = uow.line_items.get(tracker.line_item_id)
    rules.check_reference("line_item_id", "line item", tracker.line_item_id, line_item)
    assert line_item is not None
    # The advertiser follows the line item unless the request names one.
    line_item_set = before is None or "line_item_id" in given
    if tracker.advertiser_id is None or ("advertiser_id" not in given and line_item_set):
        tracker = replace(tracker, advertiser_id=line_item.advertiser_id)
    rules.check_reference(
        "advertiser_id",
        "advertiser",
        tracker.advertiser_id,
        uow.advertisers.get(tracker.advertiser_id),
    )
    rules.check_reference(
        "publisher_id", "publisher", tracker.publisher_id, uow.publishers.get(tracker.publisher_id)
    )
    placement = None
    if tracker.placement_id is not None:
        placement = uow.placements.get(tracker.placement_id)
        rules.check_reference("placement_id", "placement", tracker.placement_id, placement)
    payment_rule = None
    if tracker.payment_rule_id is not None:
        payment_rule = uow.payment_rules.get(tracker.payment_rule_id)
        rules.check_reference(
            "payment_rule_id", "payment rule", tracker.payment_rule_id, payment_rule
        )
    rules.check_tracker(tracker, line_item, placement, payment_rule)
    if tracker.code is not None:
        rules.check_code_unique(
            tracker, uow.trackers.live_with_code(tracker.tracker_type, tracker.code)
        )
    return tracker


# --- conversion pixels ------------------------------------------------------------------------


def check_conversion_pixel(
    uow: UnitOfWork, pixel: ConversionPixel, given: frozenset[str], before: ConversionPixel | None
) -> ConversionPixel:
    rules.check_reference(
        "advertiser_id", "advertiser", pixel.advertiser_id, uow.advertisers.get(pixel.advertiser_id)
    )
    if pixel.code is not None:
        rules.check_pixel_code_unique(pixel, uow.conversion_pixels.live_with_code(pixel.code))
    return pixel
