"""The console's conversion pixel screens: create with the defaults the form offers, errors next
to their field, edit, list by advertiser, delete; readers see them read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adtrack.domain.model import ConversionEventType, ConversionTrigger, Role, State
from tests.support.console import ConsoleBed, console_bed, field_errors


@pytest.fixture
def bed_on_each_backend(tmp_path: Path, db_url: str) -> Iterator[ConsoleBed]:
    with console_bed(tmp_path, url=db_url) as bed:
        bed.sign_in(bed.add_user(Role.TRAFFICKER))
        yield bed


def test_create_edit_list_and_delete(bed_on_each_backend: ConsoleBed) -> None:
    bed = bed_on_each_backend
    advertiser = bed.catalogue.advertisers.create({"name": "Acme Shoes"})
    form = bed.client.get(f"/conversion-pixels/new?advertiser_id={advertiser.id}").text
    assert 'value="43200"' in form and 'value="1440"' in form  # the default windows
    assert "Add to cart" in form and "Hybrid" in form

    answer = bed.post(
        "/conversion-pixels",
        {
            "advertiser_id": str(advertiser.id),
            "name": "Checkout done",
            "code": "checkout",
            "state": "active",
            "event_type": "checkout",
            "trigger_type": "hybrid",
            "post_click_window_minutes": "10080",
            "post_view_window_minutes": "1440",
            "min_minutes_per_conversion": "",
            "post_click_revenue": "12.50",
            "post_view_revenue": "",
        },
    )
    assert answer.status_code == 303, field_errors(answer.text)
    assert answer.headers["location"] == "/conversion-pixels"
    [pixel] = bed.catalogue.conversion_pixels.list().items
    assert pixel.event_type is ConversionEventType.CHECKOUT
    assert pixel.trigger_type is ConversionTrigger.HYBRID
    assert pixel.post_click_window_minutes == 10_080
    assert pixel.min_minutes_per_conversion is None
    assert (pixel.post_click_revenue_micros, pixel.post_view_revenue_micros) == (12_500_000, 0)

    listed = bed.client.get(f"/conversion-pixels?advertiser_id={advertiser.id}").text
    assert "Checkout done" in listed and "checkout" in listed
    other = bed.catalogue.advertisers.create({"name": "Other"})
    assert (
        "Checkout done" not in bed.client.get(f"/conversion-pixels?advertiser_id={other.id}").text
    )

    page = bed.client.get(f"/conversion-pixels/{pixel.id}").text
    assert 'value="12.5"' in page and 'value="10080"' in page
    edited = bed.post(
        f"/conversion-pixels/{pixel.id}",
        {
            "advertiser_id": str(advertiser.id),
            "name": "Checkout done",
            "code": "checkout",
            "state": "inactive",
            "event_type": "purchase",
            "trigger_type": "click",
            "post_click_window_minutes": "10080",
            "post_view_window_minutes": "1440",
            "min_minutes_per_conversion": "0",
            "post_click_revenue": "12.5",
            "post_view_revenue": "0",
        },
    )
    assert edited.status_code == 303, field_errors(edited.text)
    changed = bed.catalogue.conversion_pixels.get(pixel.id)
    assert changed.state is State.INACTIVE and changed.min_minutes_per_conversion == 0
    assert changed.event_type is ConversionEventType.PURCHASE

    deleted = bed.post(f"/conversion-pixels/{pixel.id}/delete", {})
    assert deleted.status_code == 303
    assert bed.catalogue.conversion_pixels.list().total == 0


def test_errors_sit_next_to_their_field(bed: ConsoleBed) -> None:
    advertiser = bed.catalogue.advertisers.create({"name": "Acme Shoes"})
    base = {
        "advertiser_id": str(advertiser.id),
        "name": "Lead",
        "state": "active",
        "event_type": "lead",
        "trigger_type": "click",
        "post_click_window_minutes": "43200",
        "post_view_window_minutes": "1440",
    }
    for change, field, message in (
        ({"post_click_window_minutes": "129601"}, "post_click_window_minutes", "129600"),
        ({"post_view_window_minutes": "0"}, "post_view_window_minutes", "between 1 and 43200"),
        ({"min_minutes_per_conversion": "40000"}, "min_minutes_per_conversion", "32767"),
        ({"post_view_revenue": "-1"}, "post_view_revenue", "negative"),
        ({"name": ""}, "name", ""),
    ):
        answer = bed.post("/conversion-pixels", {**base, **change})
        assert answer.status_code == 422, change
        errors = field_errors(answer.text)
        assert list(errors) == [field], errors
        assert message in errors[field]
    assert bed.catalogue.conversion_pixels.list().total == 0


def test_readers_see_pixels_read_only(tmp_path: Path) -> None:
    with console_bed(tmp_path) as bed:
        advertiser = bed.catalogue.advertisers.create({"name": "Acme Shoes"})
        pixel = bed.catalogue.conversion_pixels.create(
            {"advertiser_id": advertiser.id, "name": "Lead"}
        )
        bed.sign_in(bed.add_user(Role.REPORTER))
        assert "Lead" in bed.client.get("/conversion-pixels").text
        assert bed.client.get(f"/conversion-pixels/{pixel.id}").status_code == 200
        refused = bed.post(f"/conversion-pixels/{pixel.id}", {"name": "Changed"})
        assert refused.status_code == 403
        assert bed.catalogue.conversion_pixels.get(pixel.id).name == "Lead"
