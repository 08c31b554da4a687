"""Objects as the original platform's API documentation shows them (Impression Tracker, Click
Tracker, Advertiser, Line Item, Publisher, Placement and Payment Rule services), trimmed to a
representative part of their fields. Functions, so each test gets its own copy."""

from __future__ import annotations

from typing import Any


def imptracker() -> dict[str, Any]:
    # "Creating a new impression tracker": the response.
    return {
        "id": 1425,
        "member_id": 958,
        "advertiser_id": 37236,
        "name": "Test Impression Tracker",
        "code": None,
        "state": "active",
        "last_modified": "2012-01-10 16:02:15",
        "publisher": {"id": 44449, "name": "November Publisher"},
        "tag": None,
        "payment_rule": None,
        "line_item": {"id": 74957, "name": "Test Line Item"},
    }


def imptracker_with_tag() -> dict[str, Any]:
    # "Updating an impression tracker": the response, with its placement.
    return {
        **imptracker(),
        "last_modified": "2012-01-10 16:10:12",
        "tag": {"id": 474412, "name": "[Demo Publisher] - Default"},
    }


def clicktracker() -> dict[str, Any]:
    # "Viewing click tracker 582".
    return {
        "id": 582,
        "member_id": 1066,
        "advertiser_id": 35081,
        "name": "Test Click Tracker 1",
        "code": None,
        "state": "active",
        "click_url": "https://test-landing-page.com",
        "last_modified": "2012-02-28 19:06:01",
        "publisher": {"id": 89287, "name": "Test Publisher 1"},
        "tag": None,
        "payment_rule": None,
        "line_item": {"id": 31189, "name": "Test Line Item 1"},
    }


def advertiser() -> dict[str, Any]:
    # "View all advertisers": the first one.
    return {
        "id": 51,
        "code": None,
        "name": "Advertiser B",
        "legal_entity_name": "Toyota France",
        "state": "active",
        "default_brand_id": 0,
        "lifetime_budget": None,
        "enable_pacing": True,
        "profile_id": None,
        "control_pct": 0,
        "timezone": "EST5EDT",
        "last_modified": "2010-08-03 23:07:02",
        "billing_city": "New York",
        "default_currency": "USD",
        "use_insertion_orders": False,
    }


def line_item() -> dict[str, Any]:
    # "Retrieve all line items" (its first fields) with the booked revenue of "Add a
    # performance offer line item".
    return {
        "id": 45047,
        "code": None,
        "name": "Line Item 1",
        "advertiser_id": 35081,
        "state": "active",
        "start_date": "2012-04-01 00:00:00",
        "end_date": "2012-05-01 00:00:00",
        "timezone": "EST5EDT",
        "revenue_type": "cpc",
        "revenue_value": "5.00",
        "line_item_type": "standard_v1",
        "last_modified": "2012-04-02 10:11:12",
        "advertiser": {"id": 35081, "name": "Advertiser B"},
    }


def publisher() -> dict[str, Any]:
    # "Add a publisher": the response (part).
    return {
        "id": 233,
        "code": None,
        "reselling_exposure": "private",
        "timezone": "EST5EDT",
        "last_modified": "2015-05-12 23:58:20",
        "name": "New Publisher",
        "description": "",
        "state": "active",
        "default_site_id": 229,
        "allow_cpm_managed": True,
        "is_oo": False,
        "base_payment_rule_id": 161,
        "currency": "USD",
        "placements": [{"id": 232, "code": None}],
    }


def placement() -> dict[str, Any]:
    # "Viewing a specific placement" (part).
    return {
        "id": 605057,
        "name": "Test Placement 4",
        "code": None,
        "code2": None,
        "state": "active",
        "cost_cpm": None,
        "publisher_id": 88888,
        "site_id": 188040,
        "width": 1,
        "height": 1,
        "last_modified": "2012-03-08 01:07:47",
        "publisher_name": "Test Publisher 1",
        "site_name": "[Test Publisher 1] - ROS",
    }


def payment_rule_cpm() -> dict[str, Any]:
    # "Create a payment rule": the response.
    return {
        "id": 66323,
        "code": "france_payment_rule",
        "name": "France - 1/24 - $.40 CPM",
        "description": "",
        "pricing_type": "cpm",
        "cost_cpm": 0.4,
        "revshare": None,
        "state": "active",
        "start_date": "2010-01-01 00:00:00",
        "end_date": "2010-03-31 11:59:59",
        "profile_id": 12345,
        "timezone": "EST5EDT",
        "priority": 8,
        "last_modified": "2011-02-18 21:19:52",
    }


def payment_rule_base() -> dict[str, Any]:
    # "Read all of a publisher's payment rules": the base rule.
    return {
        "id": 95479,
        "code": None,
        "name": "Base Payment Rule",
        "description": "",
        "pricing_type": "revshare",
        "cost_cpm": None,
        "revshare": 0.6,
        "state": "active",
        "start_date": None,
        "end_date": None,
        "profile_id": None,
        "timezone": "EST5EDT",
        "priority": 1,
        "last_modified": "2012-04-09 11:40:54",
        "buyer_type": "both",
        "max_revshare": None,
        "target_ecpm": None,
        "apply_cost_on_default": False,
        "demand_filter_action": "default",
        "lifetime_budget": None,
        "filtered_advertisers": None,
        "filtered_line_items": None,
        "filtered_campaigns": None,
    }


def payment_rule_dynamic() -> dict[str, Any]:
    # "Read a single payment rule".
    return {
        "apply_cost_on_default": True,
        "target_ecpm": 0.8,
        "max_revshare": 0.8,
        "buyer_type": "both",
        "last_modified": "2012-08-02 19:04:00",
        "priority": 10,
        "timezone": "EST5EDT",
        "profile_id": None,
        "end_date": None,
        "start_date": "2013-01-01 00:00:00",
        "state": "active",
        "revshare": 0.67,
        "cost_cpm": 40,
        "pricing_type": "dynamic",
        "description": "A payment rule for targeting USA users",
        "name": "USA",
        "code": "usa_payment_rule",
        "id": 98273,
    }
