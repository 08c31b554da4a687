"""The mapping between the original platform's API objects and adtrack's catalogue, both ways,
on the objects of the platform's documentation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adtrack.domain.model import (
    Advertiser,
    FilterAction,
    LineItem,
    PaymentRule,
    Placement,
    PricingType,
    Publisher,
    RevenueType,
    State,
    Tracker,
    TrackerType,
)
from adtrack.services.catalogue.entity_specs import (
    ADVERTISER,
    LINE_ITEM,
    PAYMENT_RULE,
    PLACEMENT,
    PUBLISHER,
    TRACKER,
)
from adtrack.services.xandr.objects import (
    OTHER_FIELDS,
    FieldNote,
    MappedObject,
    XandrKind,
    XandrRefusal,
    advertiser_to_xandr,
    format_timestamp,
    from_xandr,
    line_item_to_xandr,
    parse_timestamp,
    payment_rule_to_xandr,
    placement_to_xandr,
    publisher_to_xandr,
    tracker_kind,
    tracker_to_xandr,
)
from tests.services.xandr import documented_objects as doc


def _note(mapped: MappedObject, field: str) -> FieldNote:
    matching = [note for note in mapped.notes if note.field == field]
    assert len(matching) == 1, mapped.notes
    return matching[0]


def _without_original(values: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if k not in ("original_id", "original_code")}


# ---------------------------------------------------------------------------------------------
# Trackers
# ---------------------------------------------------------------------------------------------


def test_imptracker_maps_to_tracker_values_with_its_references_and_original_id() -> None:
    mapped = from_xandr("imptracker", doc.imptracker())

    assert mapped.kind is XandrKind.IMPTRACKER
    assert mapped.original_id == 1425
    assert mapped.original_code is None
    assert mapped.values == {
        "name": "Test Impression Tracker",
        "code": None,
        "state": State.ACTIVE,
        "original_id": 1425,
        "original_code": None,
    }
    assert mapped.references == {
        "advertiser_id": 37236,
        "publisher_id": 44449,
        "line_item_id": 74957,
        "placement_id": None,
        "payment_rule_id": None,
    }
    assert mapped.last_modified == datetime(2012, 1, 10, 16, 2, 15, tzinfo=UTC)
    assert mapped.notes == ()


def test_tracker_values_are_what_the_catalogue_accepts() -> None:
    mapped = from_xandr("clicktracker", {**doc.clicktracker(), "code": "clk_582"})
    values = mapped.catalogue_values()

    cleaned = TRACKER.clean({**values, "tracker_type": "click"}, creating=True)

    assert (cleaned["original_id"], cleaned["original_code"]) == (582, "clk_582")
    assert cleaned["code"] == "clk_582"
    assert cleaned["landing_page_url"] == "https://test-landing-page.com"
    assert cleaned["line_item_id"] == 31189
    assert cleaned["publisher_id"] == 89287
    assert cleaned["advertiser_id"] == 35081


def test_tag_and_payment_rule_are_read_as_an_object_or_a_list() -> None:
    as_object = from_xandr(
        "imptracker", {**doc.imptracker_with_tag(), "payment_rule": {"id": 7, "name": "R"}}
    )
    as_list = from_xandr(
        "imptracker",
        {**doc.imptracker(), "tag": [{"id": 474412}], "payment_rule": [{"id": 7}]},
    )

    for mapped in (as_object, as_list):
        assert mapped.references["placement_id"] == 474412
        assert mapped.references["payment_rule_id"] == 7
        assert mapped.notes == ()


def test_more_than_one_tag_keeps_the_first_and_says_so() -> None:
    mapped = from_xandr(
        "imptracker", {**doc.imptracker(), "tag": [{"id": 5}, {"id": 6}, {"id": 9}]}
    )

    assert mapped.references["placement_id"] == 5
    assert "the first is kept, not 6, 9" in _note(mapped, "tag").reason


def test_the_original_code_becomes_the_code_too() -> None:
    mapped = from_xandr("imptracker", {**doc.imptracker(), "code": "  FR-300x250 "})

    assert mapped.original_code == "FR-300x250"
    assert mapped.values["code"] == "FR-300x250"
    assert mapped.values["original_code"] == "FR-300x250"


def test_a_code_with_spaces_is_kept_as_the_original_code_only() -> None:
    mapped = from_xandr("imptracker", {**doc.imptracker(), "code": "FR 300x250"})

    assert mapped.values["code"] is None
    assert mapped.values["original_code"] == "FR 300x250"
    assert "FR 300x250" in _note(mapped, "code").reason
    assert TRACKER.clean({**mapped.values, "tracker_type": "impression"}, creating=False)


def test_original_ids_beyond_adtracks_own_are_kept() -> None:
    mapped = from_xandr("imptracker", {**doc.imptracker(), "id": 2**40})

    assert mapped.original_id == 2**40
    assert TRACKER.clean({"original_id": mapped.values["original_id"]}, creating=False)


def test_advertiser_id_comes_from_the_query_string_when_the_object_has_none() -> None:
    body = {"name": "T", "publisher": {"id": 44449}, "line_item": {"id": 74957}}

    mapped = from_xandr("imptracker", body, advertiser_id=37236, keep_original=False)

    assert mapped.references["advertiser_id"] == 37236
    assert "original_id" not in mapped.values
    assert mapped.values["state"] is State.ACTIVE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 12}, "name"),
        ({"publisher": None}, "publisher.id"),
        ({"publisher": {"name": "no id"}}, "publisher.id"),
        ({"line_item": None}, "line_item.id"),
        ({"line_item": {"id": "x"}}, "line_item.id"),
        ({"line_item": {"id": 0}}, "line_item.id"),
        ({"tag": [{"name": "no id"}]}, "tag.id"),
        ({"state": "paused"}, "state"),
        ({"id": -4}, "id"),
        ({"code": 7}, "code"),
        ({"last_modified": "yesterday"}, "last_modified"),
    ],
)
def test_a_tracker_that_cannot_be_used_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(XandrRefusal) as refused:
        from_xandr("imptracker", {**doc.imptracker(), **change})

    assert refused.value.field == field


def test_a_service_the_mapping_does_not_know_is_refused() -> None:
    with pytest.raises(XandrRefusal) as refused:
        from_xandr("creative", {"id": 1, "name": "Banner"})

    assert refused.value.field == "kind"


def test_a_tracker_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(XandrRefusal) as refused:
        from_xandr("clicktracker", ["not", "an", "object"])

    assert refused.value.field == "clicktracker"


def test_an_update_maps_only_the_fields_it_gives() -> None:
    # The documentation's PUT: associate a placement.
    mapped = from_xandr("imptracker", {"tag": {"id": 474412}}, partial=True, keep_original=False)

    assert mapped.values == {}
    assert mapped.references == {"placement_id": 474412}
    assert mapped.catalogue_values() == {"placement_id": 474412}


def test_an_update_can_clear_the_placement_but_not_the_line_item() -> None:
    cleared = from_xandr("imptracker", {"tag": None}, partial=True)
    assert cleared.references == {"placement_id": None}

    with pytest.raises(XandrRefusal) as refused:
        from_xandr("imptracker", {"line_item": None}, partial=True)
    assert refused.value.field == "line_item.id"


def test_leftover_fields_with_a_value_are_named_in_one_note() -> None:
    mapped = from_xandr(
        "imptracker",
        {**doc.imptracker(), "clicktracker": None, "secret_sauce": "x", "n": 3, "zero": 0},
    )

    note = _note(mapped, OTHER_FIELDS)
    assert note.reason.endswith("not kept: secret_sauce, n")


def test_catalogue_values_translate_references_through_the_id_map() -> None:
    mapped = from_xandr("imptracker", doc.imptracker_with_tag())
    ids = {
        (XandrKind.ADVERTISER, 37236): 1,
        (XandrKind.PUBLISHER, 44449): 2,
        (XandrKind.LINE_ITEM, 74957): 3,
        (XandrKind.PLACEMENT, 474412): 4,
    }

    values = mapped.catalogue_values(lambda kind, id: ids[(kind, id)])

    assert values["advertiser_id"] == 1
    assert values["publisher_id"] == 2
    assert values["line_item_id"] == 3
    assert values["placement_id"] == 4
    assert values["payment_rule_id"] is None
    assert values["original_id"] == 1425  # the tracker's own id is not a reference


# ---------------------------------------------------------------------------------------------
# Advertisers, publishers, placements
# ---------------------------------------------------------------------------------------------


def test_advertiser_keeps_name_code_state_and_lists_the_rest() -> None:
    mapped = from_xandr("advertiser", doc.advertiser())

    assert _without_original(dict(mapped.values)) == {
        "name": "Advertiser B",
        "code": None,
        "state": State.ACTIVE,
    }
    assert ADVERTISER.clean(mapped.catalogue_values(), creating=True)
    note = _note(mapped, OTHER_FIELDS)
    assert "legal_entity_name" in note.reason
    assert "billing_city" in note.reason
    assert "enable_pacing" in note.reason
    # null, 0 and false carry nothing to lose; the time zone is used for its line items.
    assert "lifetime_budget" not in note.reason
    assert "use_insertion_orders" not in note.reason
    assert "timezone" not in note.reason
    assert len(mapped.notes) == 1


def test_publisher_gives_its_base_payment_rule_and_notes_its_time_zone() -> None:
    mapped = from_xandr("publisher", doc.publisher())

    assert mapped.base_payment_rule_id == 161
    assert mapped.values["name"] == "New Publisher"
    assert PUBLISHER.clean(mapped.catalogue_values(), creating=True)
    assert "EST5EDT" in _note(mapped, "timezone").reason
    other = _note(mapped, OTHER_FIELDS).reason
    assert "allow_cpm_managed" in other
    assert "placements" not in other


def test_a_publisher_without_state_is_inactive_as_on_the_platform() -> None:
    body = {k: v for k, v in doc.publisher().items() if k != "state"}

    assert from_xandr("publisher", body).values["state"] is State.INACTIVE


def test_placement_belongs_to_its_publisher_and_its_site_is_noted() -> None:
    mapped = from_xandr("placement", doc.placement())

    assert mapped.references == {"publisher_id": 88888}
    assert PLACEMENT.clean(mapped.catalogue_values(), creating=True)
    assert "188040" in _note(mapped, "site_id").reason
    other = _note(mapped, OTHER_FIELDS).reason
    assert "width" in other
    assert "publisher_name" not in other


def test_placement_without_a_publisher_is_refused() -> None:
    body = {k: v for k, v in doc.placement().items() if k != "publisher_id"}

    with pytest.raises(XandrRefusal) as refused:
        from_xandr("placement", body)

    assert refused.value.field == "publisher_id"
    assert from_xandr("placement", body, publisher_id=5).references == {"publisher_id": 5}


# ---------------------------------------------------------------------------------------------
# Line items: booked revenue and dates
# ---------------------------------------------------------------------------------------------


def test_line_item_books_revenue_and_reads_dates_in_its_time_zone() -> None:
    mapped = from_xandr("line-item", doc.line_item())

    assert mapped.values["revenue_type"] is RevenueType.CPC
    assert mapped.values["revenue_value_micros"] == 5_000_000
    # 2012-04-01 00:00 in New York (EDT, UTC-4).
    assert mapped.values["start_date"] == datetime(2012, 4, 1, 4, 0, tzinfo=UTC)
    # Inclusive to the second on the platform, exclusive in adtrack.
    assert mapped.values["end_date"] == datetime(2012, 5, 1, 4, 0, 1, tzinfo=UTC)
    assert mapped.references == {"advertiser_id": 35081}
    assert mapped.notes == ()
    assert LINE_ITEM.clean(mapped.catalogue_values(), creating=True)


def test_line_item_without_time_zone_uses_the_advertisers_then_the_platform_default() -> None:
    body = {k: v for k, v in doc.line_item().items() if k != "timezone"}

    in_paris = from_xandr("line-item", body, timezone="Europe/Paris")
    default = from_xandr("line-item", body)

    assert in_paris.values["start_date"] == datetime(2012, 3, 31, 22, 0, tzinfo=UTC)
    assert default.values["start_date"] == datetime(2012, 4, 1, 4, 0, tzinfo=UTC)


def test_an_end_at_the_last_second_of_a_day_ends_at_the_next_midnight() -> None:
    body = {**doc.line_item(), "timezone": "UTC", "end_date": "2012-05-04 23:59:59"}

    mapped = from_xandr("line-item", body)

    assert mapped.values["end_date"] == datetime(2012, 5, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("revenue_type", "revenue_value"),
    [
        ("flat_fee", 1500),
        ("cpa", 2),
        ("cost_plus_margin", 0.1),
        ("cost_plus_cpm", 0.5),
        ("vcpm", None),
    ],
)
def test_revenue_types_adtrack_has_not_are_kept_as_none_with_a_note(
    revenue_type: str, revenue_value: object
) -> None:
    body = {**doc.line_item(), "revenue_type": revenue_type, "revenue_value": revenue_value}
    if revenue_type == "flat_fee":
        body["flat_fee"] = {"flat_fee_type": "one_time", "flat_fee_allocation_date": None}

    mapped = from_xandr("line-item", body)

    assert mapped.values["revenue_type"] is RevenueType.NONE
    assert mapped.values["revenue_value_micros"] == 0
    reason = _note(mapped, "revenue_type").reason
    assert revenue_type in reason
    assert "no equivalent" in reason
    assert all(note.field != OTHER_FIELDS for note in mapped.notes)


def test_revenue_none_and_cpm() -> None:
    none = from_xandr(
        "line-item", {**doc.line_item(), "revenue_type": "none", "revenue_value": None}
    )
    cpm = from_xandr("line-item", {**doc.line_item(), "revenue_type": "cpm", "revenue_value": 2.5})

    assert (none.values["revenue_type"], none.values["revenue_value_micros"]) == (
        RevenueType.NONE,
        0,
    )
    assert (cpm.values["revenue_type"], cpm.values["revenue_value_micros"]) == (
        RevenueType.CPM,
        2_500_000,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"revenue_type": "cpm", "revenue_value": None}, "revenue_value"),
        ({"revenue_value": "five"}, "revenue_value"),
        ({"revenue_value": -1}, "revenue_value"),
        ({"revenue_value": "1.1234567"}, "revenue_value"),
        ({"revenue_value": 1_000_000}, "revenue_value"),
        ({"revenue_value": True}, "revenue_value"),
        ({"revenue_type": 3}, "revenue_type"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"start_date": "2012-13-01 00:00:00"}, "start_date"),
        ({"end_date": "2012-03-01 00:00:00"}, "end_date"),
        ({"advertiser_id": None, "advertiser": None}, "advertiser_id"),
    ],
)
def test_a_line_item_that_cannot_be_used_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(XandrRefusal) as refused:
        from_xandr("line-item", {**doc.line_item(), **change})

    assert refused.value.field == field


def test_line_item_advertiser_from_the_nested_object_or_the_query() -> None:
    nested = {k: v for k, v in doc.line_item().items() if k != "advertiser_id"}
    bare = {k: v for k, v in nested.items() if k != "advertiser"}

    assert from_xandr("line-item", nested).references == {"advertiser_id": 35081}
    assert from_xandr("line-item", bare, advertiser_id=51).references == {"advertiser_id": 51}


# ---------------------------------------------------------------------------------------------
# Payment rules
# ---------------------------------------------------------------------------------------------


def test_cpm_rule_keeps_its_price_priority_and_dates_and_notes_its_profile() -> None:
    mapped = from_xandr("payment-rule", doc.payment_rule_cpm(), publisher_id=65103)

    values = mapped.values
    assert values["pricing_type"] is PricingType.CPM
    assert values["cost_cpm_micros"] == 400_000
    assert values["revshare_ppm"] == 0
    assert values["priority"] == 8
    assert values["code"] == "france_payment_rule"
    assert values["description"] is None
    assert values["start_date"] == datetime(2010, 1, 1, 5, 0, tzinfo=UTC)  # EST, UTC-5
    assert values["end_date"] == datetime(2010, 3, 31, 16, 0, tzinfo=UTC)  # 11:59:59 EDT + 1 s
    assert mapped.references == {"publisher_id": 65103}
    assert "12345" in _note(mapped, "profile_id").reason
    assert PAYMENT_RULE.clean(mapped.catalogue_values(), creating=True)


def test_revshare_base_rule() -> None:
    mapped = from_xandr("payment-rule", doc.payment_rule_base(), publisher_id=1, is_base=True)

    assert mapped.values["pricing_type"] is PricingType.REVSHARE
    assert mapped.values["revshare_ppm"] == 600_000
    assert mapped.values["is_base"] is True
    assert mapped.values["priority"] == 1
    assert mapped.values["advertiser_filter"] is None
    assert mapped.id_sets == {"advertiser_ids": frozenset(), "line_item_ids": frozenset()}
    assert mapped.notes == ()


def test_dynamic_pricing_is_kept_as_its_minimum_revshare_with_a_note() -> None:
    mapped = from_xandr("payment-rule", doc.payment_rule_dynamic(), publisher_id=1)

    assert mapped.values["pricing_type"] is PricingType.REVSHARE
    assert mapped.values["revshare_ppm"] == 670_000
    reason = _note(mapped, "pricing_type").reason
    assert "dynamic" in reason
    assert "0.67" in reason
    assert "0.8" in reason
    assert len(mapped.notes) == 1  # max_revshare and target_ecpm belong to that note


def test_demand_filters_become_advertiser_and_line_item_filters() -> None:
    body = {
        **doc.payment_rule_base(),
        "demand_filter_action": "exclude",
        "filtered_advertisers": [{"id": 51, "name": "Advertiser B"}],
        "filtered_line_items": [{"id": 45047, "name": "Line Item 1"}, {"id": 45048}],
        "filtered_campaigns": [{"id": 9, "name": "Campaign"}],
    }

    mapped = from_xandr("payment-rule", body, publisher_id=1)

    assert mapped.values["advertiser_filter"] is FilterAction.EXCLUDE
    assert mapped.values["line_item_filter"] is FilterAction.EXCLUDE
    assert mapped.id_sets == {
        "advertiser_ids": frozenset({51}),
        "line_item_ids": frozenset({45047, 45048}),
    }
    assert "campaign" in _note(mapped, "filtered_campaigns").reason
    ids = {(XandrKind.ADVERTISER, 51): 1, (XandrKind.LINE_ITEM, 45047): 2}
    ids[(XandrKind.LINE_ITEM, 45048)] = 3
    ids[(XandrKind.PUBLISHER, 1)] = 4
    values = mapped.catalogue_values(lambda kind, id: ids[(kind, id)])
    assert values["advertiser_ids"] == frozenset({1})
    assert values["line_item_ids"] == frozenset({2, 3})


def test_include_filter_on_advertisers_only() -> None:
    body = {
        **doc.payment_rule_base(),
        "demand_filter_action": "include",
        "filtered_advertisers": [{"id": 51}],
    }

    mapped = from_xandr("payment-rule", body, publisher_id=1)

    assert mapped.values["advertiser_filter"] is FilterAction.INCLUDE
    assert mapped.values["line_item_filter"] is None


def test_default_action_with_lists_filters_nothing_and_says_so() -> None:
    body = {**doc.payment_rule_base(), "filtered_advertisers": [{"id": 51}]}

    mapped = from_xandr("payment-rule", body, publisher_id=1)

    assert mapped.values["advertiser_filter"] is None
    assert mapped.id_sets["advertiser_ids"] == frozenset()
    assert "default" in _note(mapped, "demand_filter_action").reason


def test_buyer_type_other_than_both_is_noted() -> None:
    mapped = from_xandr(
        "payment-rule", {**doc.payment_rule_base(), "buyer_type": "direct"}, publisher_id=1
    )

    assert "direct" in _note(mapped, "buyer_type").reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pricing_type": "cpm", "cost_cpm": None}, "cost_cpm"),
        ({"pricing_type": "revshare", "revshare": None}, "revshare"),
        ({"revshare": 1.5}, "revshare"),
        ({"revshare": -0.1}, "revshare"),
        ({"pricing_type": "cpc"}, "pricing_type"),
        ({"priority": 11}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"demand_filter_action": "maybe"}, "demand_filter_action"),
        ({"filtered_advertisers": [{"name": "no id"}]}, "filtered_advertisers[0].id"),
        ({"filtered_line_items": "45047"}, "filtered_line_items"),
        ({"description": 5}, "description"),
        ({"timezone": 5}, "timezone"),
    ],
)
def test_a_payment_rule_that_cannot_be_used_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(XandrRefusal) as refused:
        from_xandr("payment-rule", {**doc.payment_rule_base(), **change}, publisher_id=1)

    assert refused.value.field == field


def test_payment_rule_needs_its_publisher() -> None:
    with pytest.raises(XandrRefusal) as refused:
        from_xandr("payment-rule", doc.payment_rule_base())

    assert refused.value.field == "publisher_id"


# ---------------------------------------------------------------------------------------------
# adtrack -> platform
# ---------------------------------------------------------------------------------------------

_NOW = datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)


def test_tracker_json_has_the_documented_fields_and_nested_objects() -> None:
    tracker = Tracker(
        id=1425,
        tracker_type=TrackerType.CLICK,
        name="Test Click Tracker",
        advertiser_id=37236,
        line_item_id=74957,
        publisher_id=44449,
        placement_id=474412,
        payment_rule_id=66323,
        landing_page_url="https://test-landing-page.com",
        last_modified=_NOW,
    )
    names = {
        (XandrKind.PUBLISHER, 44449): "November Publisher",
        (XandrKind.LINE_ITEM, 74957): "Test Line Item",
        (XandrKind.PLACEMENT, 474412): "[Demo Publisher] - Default",
    }

    out = tracker_to_xandr(tracker, names, member_id=958)

    assert out == {
        "id": 1425,
        "member_id": 958,
        "advertiser_id": 37236,
        "name": "Test Click Tracker",
        "code": None,
        "state": "active",
        "click_url": "https://test-landing-page.com",
        "last_modified": "2026-03-01 09:30:05",
        "publisher": {"id": 44449, "name": "November Publisher"},
        "tag": [{"id": 474412, "name": "[Demo Publisher] - Default"}],
        "payment_rule": {"id": 66323, "name": None},
        "line_item": {"id": 74957, "name": "Test Line Item"},
    }
    assert tracker_kind(tracker.tracker_type) is XandrKind.CLICKTRACKER


def test_impression_tracker_json_has_no_click_url_and_null_references() -> None:
    tracker = Tracker(
        id=1,
        tracker_type=TrackerType.IMPRESSION,
        name="T",
        advertiser_id=1,
        line_item_id=2,
        publisher_id=3,
    )

    out = tracker_to_xandr(tracker, {}, member_id=1)

    assert "click_url" not in out
    assert out["tag"] is None
    assert out["payment_rule"] is None
    assert out["last_modified"] is None
    assert tracker_kind(TrackerType.IMPRESSION) is XandrKind.IMPTRACKER


def test_payment_rule_json_for_cpc_pricing_and_differing_filters() -> None:
    rule = PaymentRule(
        id=5,
        publisher_id=3,
        name="Per click",
        pricing_type=PricingType.CPC,
        cost_cpc_micros=250_000,
        advertiser_filter=FilterAction.INCLUDE,
        advertiser_ids=frozenset({7}),
        line_item_filter=FilterAction.EXCLUDE,
        line_item_ids=frozenset({9, 8}),
    )

    out = payment_rule_to_xandr(rule, {(XandrKind.ADVERTISER, 7): "Adv"})

    assert out["pricing_type"] == "cpc"
    assert out["cost_cpc"] == 0.25
    assert out["cost_cpm"] is None
    assert out["revshare"] is None
    assert out["demand_filter_action"] == "include"
    assert out["filtered_advertisers"] == [{"id": 7, "name": "Adv"}]
    assert out["filtered_line_items"] == [{"id": 8, "name": None}, {"id": 9, "name": None}]
    assert out["timezone"] == "UTC"


def test_timestamps_both_ways() -> None:
    assert parse_timestamp("2012-01-10 16:02:15", "f") == datetime(
        2012, 1, 10, 16, 2, 15, tzinfo=UTC
    )
    assert parse_timestamp("", "f") is None
    assert parse_timestamp(None, "f") is None
    assert format_timestamp(datetime(2012, 1, 10, 16, 2, 15, tzinfo=UTC)) == "2012-01-10 16:02:15"
    assert format_timestamp(None) is None
    with pytest.raises(XandrRefusal):
        parse_timestamp(1326211335, "f")


# ---------------------------------------------------------------------------------------------
# Round trips: platform -> adtrack -> platform gives the same fields back
# ---------------------------------------------------------------------------------------------


def _names_of(obj: dict[str, Any]) -> dict[tuple[XandrKind, int], str]:
    names: dict[tuple[XandrKind, int], str] = {}
    for key, kind in (
        ("publisher", XandrKind.PUBLISHER),
        ("line_item", XandrKind.LINE_ITEM),
        ("payment_rule", XandrKind.PAYMENT_RULE),
        ("advertiser", XandrKind.ADVERTISER),
    ):
        if isinstance(obj.get(key), dict):
            names[(kind, obj[key]["id"])] = obj[key]["name"]
    tag = obj.get("tag")
    for item in tag if isinstance(tag, list) else [tag] if tag else []:
        names[(XandrKind.PLACEMENT, item["id"])] = item["name"]
    if "publisher_name" in obj:
        names[(XandrKind.PUBLISHER, obj["publisher_id"])] = obj["publisher_name"]
    return names


def _entity_values(mapped: MappedObject) -> dict[str, Any]:
    values = mapped.catalogue_values()
    assert values["original_id"] == mapped.original_id
    return {"id": mapped.original_id, "last_modified": mapped.last_modified, **values}


def _same_fields(original: dict[str, Any], back: dict[str, Any]) -> None:
    for key, value in back.items():
        if key not in original:
            continue
        expected = original[key]
        if key == "tag" and isinstance(expected, dict):
            expected = [expected]  # read as an object or a list, written as a list
        if key in ("revenue_value", "cost_cpm", "revshare") and isinstance(expected, str):
            expected = float(expected)
        assert value == expected, key


@pytest.mark.parametrize(
    "obj",
    [doc.imptracker(), doc.imptracker_with_tag(), doc.clicktracker()],
    ids=["imptracker", "imptracker-with-tag", "clicktracker"],
)
def test_tracker_round_trip(obj: dict[str, Any]) -> None:
    kind = XandrKind.CLICKTRACKER if "click_url" in obj else XandrKind.IMPTRACKER
    mapped = from_xandr(kind, obj)
    assert kind.tracker_type is not None
    tracker = Tracker(tracker_type=kind.tracker_type, **_entity_values(mapped))

    back = tracker_to_xandr(tracker, _names_of(obj), member_id=obj["member_id"])

    _same_fields(obj, back)
    assert set(back) == set(obj)


def test_line_item_round_trip() -> None:
    obj = doc.line_item()
    line_item = LineItem(**_entity_values(from_xandr("line-item", obj)))

    back = line_item_to_xandr(line_item, _names_of(obj), timezone="EST5EDT")

    _same_fields(obj, back)
    assert set(back) <= set(obj)


@pytest.mark.parametrize(
    "obj",
    [doc.payment_rule_cpm(), doc.payment_rule_base()],
    ids=["cpm", "revshare"],
)
def test_payment_rule_round_trip(obj: dict[str, Any]) -> None:
    mapped = from_xandr("payment-rule", obj, publisher_id=65103)
    rule = PaymentRule(**_entity_values(mapped))

    back = payment_rule_to_xandr(rule, {}, timezone="EST5EDT")

    _same_fields(obj, back)


def test_payment_rule_with_filters_round_trip() -> None:
    obj = {
        **doc.payment_rule_base(),
        "demand_filter_action": "include",
        "filtered_advertisers": [{"id": 51, "name": "Advertiser B"}],
        "filtered_line_items": [{"id": 45047, "name": "Line Item 1"}],
    }
    rule = PaymentRule(**_entity_values(from_xandr("payment-rule", obj, publisher_id=1)))
    names = {
        (XandrKind.ADVERTISER, 51): "Advertiser B",
        (XandrKind.LINE_ITEM, 45047): "Line Item 1",
    }

    _same_fields(obj, payment_rule_to_xandr(rule, names, timezone="EST5EDT"))


def test_advertiser_publisher_and_placement_round_trip() -> None:
    advertiser = Advertiser(**_entity_values(from_xandr("advertiser", doc.advertiser())))
    publisher_mapped = from_xandr("publisher", doc.publisher())
    publisher = Publisher(**_entity_values(publisher_mapped))
    placement = Placement(**_entity_values(from_xandr("placement", doc.placement())))

    _same_fields({**doc.advertiser(), "timezone": "UTC"}, advertiser_to_xandr(advertiser))
    _same_fields(
        {**doc.publisher(), "timezone": "UTC"},
        publisher_to_xandr(publisher, base_payment_rule_id=publisher_mapped.base_payment_rule_id),
    )
    _same_fields(doc.placement(), placement_to_xandr(placement, _names_of(doc.placement())))


def test_adtrack_to_platform_to_adtrack_keeps_the_entity() -> None:
    rule = PaymentRule(
        id=12,
        publisher_id=3,
        name="Summer",
        code="summer",
        pricing_type=PricingType.CPM,
        cost_cpm_micros=1_234_567,
        priority=9,
        start_date=datetime(2026, 6, 1, tzinfo=UTC),
        end_date=datetime(2026, 9, 1, tzinfo=UTC),
        line_item_filter=FilterAction.EXCLUDE,
        line_item_ids=frozenset({4}),
        description="Summer deal",
        last_modified=_NOW,
    )

    mapped = from_xandr(
        "payment-rule", payment_rule_to_xandr(rule, {}), publisher_id=3, keep_original=False
    )

    assert (
        PaymentRule(id=12, last_modified=mapped.last_modified, **mapped.catalogue_values()) == rule
    )
