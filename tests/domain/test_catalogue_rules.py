"""Cross-object catalogue rules, as pure functions over entities (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adtrack.domain import catalogue_rules as rules
from adtrack.domain.errors import Conflict, InUse, ValidationError
from adtrack.domain.model import (
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

LINE_ITEM = LineItem(id=10, advertiser_id=1, name="Spring")
PLACEMENT = Placement(id=20, publisher_id=2, name="Top")
RULE = PaymentRule(id=30, publisher_id=2, name="CPM")


def tracker(**changes: object) -> Tracker:
    values: dict[str, object] = {
        "id": 7,
        "tracker_type": TrackerType.IMPRESSION,
        "name": "Banner",
        "advertiser_id": 1,
        "line_item_id": 10,
        "publisher_id": 2,
    }
    values.update(changes)
    return Tracker(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Trackers
# ---------------------------------------------------------------------------------------------


def test_consistent_tracker_passes() -> None:
    rules.check_tracker(tracker(placement_id=20, payment_rule_id=30), LINE_ITEM, PLACEMENT, RULE)
    click = tracker(tracker_type=TrackerType.CLICK, landing_page_url="https://a.example/")
    rules.check_tracker(click, LINE_ITEM, None, None)


def test_line_item_of_another_advertiser() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_tracker(tracker(advertiser_id=5), LINE_ITEM, None, None)
    assert info.value.field == "line_item_id"
    assert info.value.message == "line item 10 belongs to advertiser 1, not to advertiser 5"


def test_placement_of_another_publisher() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_tracker(tracker(publisher_id=5), LINE_ITEM, PLACEMENT, None)
    assert info.value.field == "placement_id"
    assert info.value.message == "placement 20 belongs to publisher 2, not to publisher 5"


def test_payment_rule_of_another_publisher() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_tracker(tracker(publisher_id=5), LINE_ITEM, None, RULE)
    assert info.value.field == "payment_rule_id"
    assert info.value.message == "payment rule 30 belongs to publisher 2, not to publisher 5"


def test_landing_page_on_impression_tracker() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_tracker(tracker(landing_page_url="https://a.example/"), LINE_ITEM, None, None)
    assert info.value.field == "landing_page_url"


def test_code_unique_per_type() -> None:
    mine = tracker(code="C1")
    rules.check_code_unique(mine, [mine])  # itself
    rules.check_code_unique(mine, [tracker(id=8, code="C1", tracker_type=TrackerType.CLICK)])
    rules.check_code_unique(tracker(code=None), [tracker(id=8, code=None)])
    with pytest.raises(Conflict) as info:
        rules.check_code_unique(mine, [tracker(id=8, name="Other", code="C1")])
    assert info.value.field == "code"
    assert info.value.message == "code 'C1' is already used by impression tracker 8 ('Other')"


def test_tracker_type_is_fixed() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_tracker_type_unchanged(tracker(), tracker(tracker_type=TrackerType.CLICK))
    assert info.value.field == "tracker_type"


def test_references() -> None:
    rules.check_reference("placement_id", "placement", 3, PLACEMENT)
    with pytest.raises(ValidationError) as info:
        rules.check_reference("placement_id", "placement", 3, None)
    assert (info.value.field, info.value.message) == ("placement_id", "placement 3 does not exist")
    rules.check_references("advertiser_ids", "advertiser", [1, 2], [2, 1])
    with pytest.raises(ValidationError) as many:
        rules.check_references("advertiser_ids", "advertiser", [4, 1, 9], [1])
    assert many.value.message == "advertisers 4, 9 do not exist"


# ---------------------------------------------------------------------------------------------
# Line items
# ---------------------------------------------------------------------------------------------


def test_none_revenue_has_no_value() -> None:
    item = LineItem(id=1, advertiser_id=1, name="x", revenue_value_micros=5)
    with pytest.raises(ValidationError) as info:
        rules.check_line_item(item, {"revenue_value_micros"}, None)
    assert info.value.field == "revenue_value"
    # a value left over from a cpm type is dropped when switching to none
    before = LineItem(
        id=1, advertiser_id=1, name="x", revenue_type=RevenueType.CPM, revenue_value_micros=5
    )
    assert rules.check_line_item(item, {"revenue_type"}, before).revenue_value_micros == 0


def test_cpm_and_cpc_need_a_value_when_set() -> None:
    cpc = LineItem(id=1, advertiser_id=1, name="x", revenue_type=RevenueType.CPC)
    with pytest.raises(ValidationError, match="required"):
        rules.check_line_item(cpc, {"revenue_type"}, None)
    assert rules.check_line_item(cpc, {"revenue_type", "revenue_value_micros"}, None) == cpc
    # unchanged type on update: the stored value stands
    assert rules.check_line_item(cpc, {"name"}, cpc) == cpc


def test_line_item_dates_and_moves() -> None:
    day = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError):
        rules.check_line_item(LineItem(1, 1, "x", start_date=day, end_date=day), set(), None)
    moved = LineItem(id=10, advertiser_id=9, name="Spring")
    rules.check_line_item_move(LINE_ITEM, moved, [], 0)
    with pytest.raises(InUse) as info:
        rules.check_line_item_move(LINE_ITEM, moved, [tracker()], 1)
    assert info.value.field == "advertiser_id"
    assert info.value.blockers[0]["id"] == 7


# ---------------------------------------------------------------------------------------------
# Payment rules
# ---------------------------------------------------------------------------------------------


def rule(**changes: object) -> PaymentRule:
    values: dict[str, object] = {"id": 30, "publisher_id": 2, "name": "R"}
    values.update(changes)
    return PaymentRule(**values)  # type: ignore[arg-type]


def test_only_the_pricing_types_amount_may_be_set() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_payment_rule(rule(cost_cpm_micros=5), {"cost_cpm_micros"}, None)
    assert info.value.field == "cost_cpm"
    assert "pricing_type is 'cpm'" in info.value.message
    switched = rules.check_payment_rule(
        rule(pricing_type=PricingType.CPM, revshare_ppm=300_000, cost_cpm_micros=2),
        {"pricing_type", "cost_cpm_micros"},
        rule(revshare_ppm=300_000),
    )
    assert (switched.revshare_ppm, switched.cost_cpm_micros) == (0, 2)


def test_cpm_and_cpc_rules_need_their_cost() -> None:
    for pricing_type, field in ((PricingType.CPM, "cost_cpm"), (PricingType.CPC, "cost_cpc")):
        with pytest.raises(ValidationError) as info:
            rules.check_payment_rule(rule(pricing_type=pricing_type), {"pricing_type"}, None)
        assert info.value.field == field


def test_filters_need_action_and_ids() -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_payment_rule(rule(advertiser_ids=frozenset({1})), {"advertiser_ids"}, None)
    assert info.value.field == "advertiser_filter"
    with pytest.raises(ValidationError) as empty:
        rules.check_payment_rule(
            rule(line_item_filter=FilterAction.INCLUDE), {"line_item_filter"}, None
        )
    assert empty.value.field == "line_item_ids"
    # clearing the action alone clears the ids, and the other way round
    stored = rule(advertiser_filter=FilterAction.EXCLUDE, advertiser_ids=frozenset({1}))
    cleared = rules.check_payment_rule(
        rule(advertiser_ids=frozenset({1})), {"advertiser_filter"}, stored
    )
    assert (cleared.advertiser_filter, cleared.advertiser_ids) == (None, frozenset())
    cleared = rules.check_payment_rule(
        rule(advertiser_filter=FilterAction.EXCLUDE), {"advertiser_ids"}, stored
    )
    assert (cleared.advertiser_filter, cleared.advertiser_ids) == (None, frozenset())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"priority": 9}, "priority"),
        ({"start_date": datetime(2024, 1, 1, tzinfo=UTC)}, "start_date"),
        ({"end_date": datetime(2024, 1, 1, tzinfo=UTC)}, "end_date"),
        (
            {"advertiser_filter": FilterAction.INCLUDE, "advertiser_ids": frozenset({1})},
            "advertiser_filter",
        ),
        (
            {"line_item_filter": FilterAction.EXCLUDE, "line_item_ids": frozenset({1})},
            "line_item_filter",
        ),
        ({"state": State.INACTIVE}, "state"),
    ],
)
def test_base_rule_has_no_conditions(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_payment_rule(rule(is_base=True, **changes), set(changes), None)
    assert info.value.field == field


def test_base_rule_changes() -> None:
    base = rule(is_base=True)
    with pytest.raises(Conflict):
        rules.check_payment_rule_change(base, rule(is_base=False), [], 0)
    with pytest.raises(Conflict):
        rules.check_payment_rule_change(rule(), rule(is_base=True), [], 0)
    with pytest.raises(ValidationError):
        rules.check_payment_rule_change(base, rule(is_base=True, publisher_id=3), [], 0)
    with pytest.raises(Conflict):
        rules.check_new_conditional_rule(rule(is_base=True))
    with pytest.raises(Conflict) as info:
        rules.check_payment_rule_deletable(base)
    assert info.value.message.startswith("payment rule 30 is the base rule of publisher 2")
    rules.check_payment_rule_deletable(rule())
    with pytest.raises(InUse):
        rules.check_payment_rule_change(rule(), rule(publisher_id=3), [tracker()], 1)
    rules.check_payment_rule_change(rule(), rule(publisher_id=3), [], 0)


def test_placement_move() -> None:
    moved = Placement(id=20, publisher_id=3, name="Top")
    rules.check_placement_move(PLACEMENT, moved, [], 0)
    with pytest.raises(InUse) as info:
        rules.check_placement_move(PLACEMENT, moved, [tracker()], 1)
    assert info.value.field == "publisher_id"


# ---------------------------------------------------------------------------------------------
# In use
# ---------------------------------------------------------------------------------------------


def test_not_in_use_passes() -> None:
    rules.check_not_in_use("placement", 20, [], 0, [("line_item", [], 0)])


def test_in_use_message_and_blockers() -> None:
    trackers = [tracker(id=i, name=f"t{i}") for i in range(1, 151)]
    with pytest.raises(InUse) as info:
        rules.check_not_in_use("advertiser", 1, trackers, 150, [("line_item", [LINE_ITEM], 1)])
    error = info.value
    assert error.status == 409
    assert error.field == "id"
    assert error.message.startswith(
        "advertiser 1 cannot be deleted: 150 trackers and 1 line item still use it"
    )
    assert len(error.blockers) == rules.MAX_BLOCKERS + 1
    assert error.blockers[0] == {
        "kind": "tracker",
        "id": 1,
        "name": "t1",
        "tracker_type": "impression",
    }
    assert error.blockers[-1] == {"kind": "line_item", "id": 10, "name": "Spring"}


def test_in_use_by_one_tracker() -> None:
    with pytest.raises(InUse) as info:
        rules.check_not_in_use("placement", 20, [tracker()], 1)
    assert info.value.message.startswith("placement 20 cannot be deleted: 1 tracker still uses it")


def test_api_field_names() -> None:
    assert rules.api_field("revenue_value_micros") == "revenue_value"
    assert rules.api_field("revshare_ppm") == "revshare"
    assert rules.api_field("cost_cpc_micros") == "cost_cpc"
    assert rules.api_field("name") == "name"
