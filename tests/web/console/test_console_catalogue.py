"""Catalogue screens: advertisers, line items, publishers with placements and payment rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from adtrack.domain.model import PricingType, RedirectPolicy, RevenueType, Role, State
from tests.support.console import ConsoleBed, console_bed, field_errors, seed_chain


@pytest.fixture
def bed_on_each_backend(tmp_path: Path, db_url: str):
    """Like ``bed``, once on SQLite and once on PostgreSQL."""
    with console_bed(tmp_path, url=db_url) as bed:
        bed.sign_in(bed.add_user(Role.TRAFFICKER))
        yield bed


def test_set_everything_up_from_the_browser(bed_on_each_backend: ConsoleBed) -> None:
    bed = bed_on_each_backend
    answer = bed.post("/advertisers", {"name": "Acme Shoes", "code": "acme", "state": "active"})
    assert answer.status_code == 303
    [advertiser] = bed.catalogue.advertisers.list().items
    assert (advertiser.name, advertiser.code) == ("Acme Shoes", "acme")
    assert "Created advertiser “Acme Shoes”" in bed.client.get(answer.headers["location"]).text

    answer = bed.post(
        "/line-items",
        {
            "advertiser_id": str(advertiser.id),
            "name": "Spring Sale",
            "state": "active",
            "revenue_type": "cpm",
            "revenue_value": "2.50",
            "start_date": "2026-03-01",
            "end_date": "2026-04-01",
        },
    )
    assert answer.status_code == 303, field_errors(answer.text)
    [line_item] = bed.catalogue.line_items.list().items
    assert line_item.revenue_type is RevenueType.CPM
    assert line_item.revenue_value_micros == 2_500_000
    assert line_item.start_date is not None and line_item.start_date.isoformat().startswith(
        "2026-03-01T00:00"
    )

    answer = bed.post(
        "/publishers",
        {
            "name": "Daily News",
            "state": "active",
            "base_rule.pricing_type": "revshare",
            "base_rule.revshare": "0.35",
            "base_rule.cost_cpm": "9",  # ignored: not the chosen pricing
        },
    )
    assert answer.status_code == 303, field_errors(answer.text)
    [publisher] = bed.catalogue.publishers.list().items
    [base] = bed.catalogue.payment_rules.list(publisher_id=publisher.id).items
    assert base.is_base and base.pricing_type is PricingType.REVSHARE
    assert base.revshare_ppm == 350_000 and base.cost_cpm_micros == 0

    answer = bed.post(
        "/placements",
        {"publisher_id": str(publisher.id), "name": "Homepage Top", "state": "active"},
    )
    assert answer.headers["location"] == f"/publishers/{publisher.id}#placements"
    answer = bed.post(
        "/payment-rules",
        {
            "publisher_id": str(publisher.id),
            "name": "Sports CPC",
            "state": "active",
            "pricing_type": "cpc",
            "cost_cpc": "0.10",
            "priority": "7",
            "advertiser_filter": "include",
            "advertiser_ids": [str(advertiser.id)],
        },
    )
    assert answer.status_code == 303, field_errors(answer.text)
    rule = next(r for r in bed.catalogue.payment_rules.list().items if not r.is_base)
    assert (rule.cost_cpc_micros, rule.priority) == (100_000, 7)
    assert rule.advertiser_ids == frozenset({advertiser.id})

    page = bed.client.get(f"/publishers/{publisher.id}").text
    assert "Homepage Top" in page and "Sports CPC" in page and "CPC 0.10" in page
    assert "revshare 35 %" in page


def test_errors_sit_next_to_their_field_and_keep_what_was_typed(bed: ConsoleBed) -> None:
    advertiser = bed.catalogue.advertisers.create({"name": "Acme Shoes"})
    answer = bed.post(
        "/line-items",
        {
            "advertiser_id": str(advertiser.id),
            "name": "Spring Sale",
            "code": "spring",
            "state": "active",
            "revenue_type": "cpc",
            "revenue_value": "",
        },
    )
    assert answer.status_code == 422
    assert field_errors(answer.text) == {"revenue_value": "is required when revenue_type is 'cpc'"}
    assert 'value="Spring Sale"' in answer.text and 'value="spring"' in answer.text
    assert 'aria-invalid="true"' in answer.text

    bad_money = bed.post(
        "/line-items",
        {
            "advertiser_id": str(advertiser.id),
            "name": "X",
            "state": "active",
            "revenue_type": "cpc",
            "revenue_value": "1.1234567",
        },
    )
    assert field_errors(bad_money.text) == {"revenue_value": "has more than 6 decimal places"}

    dates = bed.post(
        "/line-items",
        {
            "advertiser_id": str(advertiser.id),
            "name": "X",
            "state": "active",
            "start_date": "2026-05-01",
            "end_date": "2026-04-01",
        },
    )
    assert "end_date" in field_errors(dates.text)
    assert bed.catalogue.line_items.list().total == 0


def test_edit_and_delete_and_refused_delete(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    page = bed.client.get(f"/advertisers/{ids['advertiser']}")
    assert 'value="Acme Shoes"' in page.text
    answer = bed.post(
        f"/advertisers/{ids['advertiser']}", {"name": "Acme Boots", "state": "inactive"}
    )
    assert answer.status_code == 303
    edited = bed.catalogue.advertisers.get(ids["advertiser"])
    assert (edited.name, edited.state) == ("Acme Boots", State.INACTIVE)

    # Still has line items: refused, with what is in the way.
    refused = bed.post(f"/advertisers/{ids['advertiser']}/delete", {})
    assert refused.status_code == 409
    assert "Spring Sale" in refused.text or "line item" in refused.text
    bed.catalogue.advertisers.get(ids["advertiser"])

    # The base rule cannot be deleted on its own; the page does not offer it.
    base = next(
        r
        for r in bed.catalogue.payment_rules.list(publisher_id=ids["publisher"]).items
        if r.is_base
    )
    base_page = bed.client.get(f"/payment-rules/{base.id}").text
    assert "Delete payment rule" not in base_page and "Priority" not in base_page

    answer = bed.post(f"/placements/{ids['other_placement']}/delete", {})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/publishers/{ids['other_publisher']}"
    assert bed.catalogue.placements.list(publisher_id=ids["other_publisher"]).total == 0


def test_lists_search_filter_sort_and_page(bed: ConsoleBed) -> None:
    for i in range(30):
        bed.catalogue.advertisers.create(
            {"name": f"Advertiser {i:02d}", "state": "inactive" if i % 3 == 0 else "active"}
        )
    page = bed.client.get("/advertisers?sort=name&dir=asc&per_page=10").text
    assert page.index("Advertiser 00") < page.index("Advertiser 09")
    assert "Advertiser 10" not in page and "1–10 of 30" in page
    second = bed.client.get("/advertisers?sort=name&dir=asc&per_page=10&page=2").text
    assert "Advertiser 10" in second and "Advertiser 09" not in second
    desc = bed.client.get("/advertisers?sort=name&dir=desc&per_page=10").text
    assert "Advertiser 29" in desc and "Advertiser 00" not in desc
    inactive = bed.client.get("/advertisers?state=inactive&per_page=100").text
    assert "of 10" in inactive and "Advertiser 01" not in inactive
    found = bed.client.get("/advertisers?q=Advertiser 2").text
    assert "of 10" in found and "Advertiser 19" not in found
    # htmx asks for the same page; the list region is in it.
    partial = bed.client.get("/advertisers?q=07", headers={"HX-Request": "true"})
    assert 'id="list-region"' in partial.text and "Advertiser 07" in partial.text


def test_line_items_filter_by_advertiser(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    page = bed.client.get(f"/line-items?advertiser_id={ids['advertiser']}").text
    assert "Spring Sale" in page and "Savings Push" not in page
    assert "CPM 2.50" in page


def test_landing_domains_and_redirect_policy_are_shown_and_edited(bed: ConsoleBed) -> None:
    answer = bed.post(
        "/advertisers",
        {
            "name": "Acme Shoes",
            "state": "active",
            "landing_domains": "Shop.Example\r\n\r\n  *.acme.example  \r\nbücher.example\r\n",
            "redirect_policy": "allow-list",
        },
    )
    assert answer.status_code == 303, field_errors(answer.text)
    [advertiser] = bed.catalogue.advertisers.list().items
    assert advertiser.landing_domains == ("shop.example", "*.acme.example", "xn--bcher-kva.example")
    assert advertiser.redirect_policy is RedirectPolicy.ALLOW_LIST

    page = bed.client.get(f"/advertisers/{advertiser.id}").text
    assert "Landing domains" in page
    assert ">shop.example\n*.acme.example\nxn--bcher-kva.example</textarea>" in page
    assert '<option value="allow-list" selected' in page

    # a bad line is refused next to the field, naming it, and what was typed stays
    refused = bed.post(
        f"/advertisers/{advertiser.id}",
        {
            "name": "Acme Shoes",
            "state": "active",
            "landing_domains": "shop.example\nhttps://evil.example/path",
            "redirect_policy": "",
        },
    )
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert list(errors) == ["landing_domains"]
    assert "https://evil.example/path" in errors["landing_domains"]
    assert "https://evil.example/path</textarea>" in refused.text
    assert bed.catalogue.advertisers.get(advertiser.id).landing_domains[0] == "shop.example"

    # emptied: no domains, back to the server's policy
    cleared = bed.post(
        f"/advertisers/{advertiser.id}",
        {"name": "Acme Shoes", "state": "active", "landing_domains": "", "redirect_policy": ""},
    )
    assert cleared.status_code == 303, field_errors(cleared.text)
    saved = bed.catalogue.advertisers.get(advertiser.id)
    assert (saved.landing_domains, saved.redirect_policy) == ((), None)


def test_conversion_cookies_are_shown_and_edited(bed: ConsoleBed) -> None:
    fields = {"name": "Acme", "state": "active", "landing_domains": "", "redirect_policy": ""}
    answer = bed.post("/advertisers", {**fields, "conversion_cookies": "true"})
    assert answer.status_code == 303, field_errors(answer.text)
    [advertiser] = bed.catalogue.advertisers.list().items
    assert advertiser.conversion_cookies is True
    page = bed.client.get(f"/advertisers/{advertiser.id}").text
    assert "Conversion cookies" in page and '<option value="true" selected' in page
    refused = bed.post(f"/advertisers/{advertiser.id}", {**fields, "conversion_cookies": "maybe"})
    assert refused.status_code == 422
    assert list(field_errors(refused.text)) == ["conversion_cookies"]
    off = bed.post(f"/advertisers/{advertiser.id}", {**fields, "conversion_cookies": "false"})
    assert off.status_code == 303, field_errors(off.text)
    assert bed.catalogue.advertisers.get(advertiser.id).conversion_cookies is False
