"""Creative > Impression / Click Trackers: lists, the create/edit dialog, pickers, bulk
actions, and a tracker's page with its live hits."""

from __future__ import annotations

import re
import time
from pathlib import Path

from adtrack.collector.hits import RecentHit, RecentHits
from adtrack.domain.model import Role, State, TrackerType
from adtrack.web.state import state_of
from tests.support.console import HTMX, ConsoleBed, field_errors, seed_chain


def test_an_advertiser_is_picked_first_and_remembered(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    page = bed.client.get("/impression-trackers")
    assert "Select an advertiser" in page.text
    assert f'href="/impression-trackers?advertiser_id={ids["advertiser"]}"' in page.text
    assert "Blue Bank" in page.text
    narrowed = bed.client.get("/impression-trackers?choose=1&q=Blue").text
    assert "Blue Bank" in narrowed and "Acme Shoes" not in narrowed

    chosen = bed.client.get(f"/impression-trackers?advertiser_id={ids['advertiser']}")
    assert "Advertiser: <strong>Acme Shoes</strong>" in chosen.text
    assert "+ New" in chosen.text and "More Actions" in chosen.text
    for action in ("Export Tags", "Activate", "Deactivate", "Delete"):
        assert f">{action}</button>" in chosen.text
    # Remembered for the next visit, also on the click trackers' list.
    assert "Advertiser: <strong>Acme Shoes</strong>" in bed.client.get("/click-trackers").text
    assert "Select an advertiser" in bed.client.get("/click-trackers?choose=1").text


def test_create_dialog_reports_errors_then_creates(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    dialog = bed.client.get(
        f"/impression-trackers/new?advertiser_id={ids['advertiser']}", headers=HTMX
    ).text
    assert "<html" not in dialog  # a fragment for the dialog
    for text in (
        "Create New Impression Tracker",
        "Imp Tracker Details",
        "Advanced Options",
        "Line Item Association",
        "Publisher Settings",
        "Placement",
        "Payment Rule",
        "Create Imp Tracker",
    ):
        assert text in dialog
    assert "Landing Page URL" not in dialog  # clicks only
    # The line item picker offers this advertiser's line items only.
    assert "Spring Sale" in dialog and "Savings Push" not in dialog

    refused = bed.post(
        "/impression-trackers",
        {"advertiser_id": str(ids["advertiser"]), "name": "", "code": "hp-1", "state": "active"},
        htmx=True,
    )
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert set(errors) == {"name", "line_item_id", "publisher_id"}
    assert 'value="hp-1"' in refused.text  # nothing typed is lost
    assert '<details class="advanced" open>' in refused.text  # the code is visible again

    # A placement of another publisher: the domain refuses it, next to the Placement field.
    wrong = bed.post(
        "/impression-trackers",
        {
            "advertiser_id": str(ids["advertiser"]),
            "name": "Homepage pixel",
            "state": "active",
            "line_item_id": str(ids["line_item"]),
            "publisher_id": str(ids["publisher"]),
            "placement_id": str(ids["other_placement"]),
        },
        htmx=True,
    )
    assert wrong.status_code == 422
    assert list(field_errors(wrong.text)) == ["placement_id"]
    # The chosen line item and publisher are still shown by name.
    assert "Spring Sale (" in wrong.text and "Daily News (" in wrong.text

    created = bed.post(
        "/impression-trackers",
        {
            "advertiser_id": str(ids["advertiser"]),
            "name": "Homepage pixel",
            "code": "hp-1",
            "state": "active",
            "line_item_id": str(ids["line_item"]),
            "publisher_id": str(ids["publisher"]),
            "placement_id": str(ids["placement"]),
            "payment_rule_id": str(ids["rule"]),
        },
        htmx=True,
    )
    assert created.status_code == 204
    assert (
        created.headers["HX-Redirect"] == f"/impression-trackers?advertiser_id={ids['advertiser']}"
    )
    [tracker] = bed.catalogue.trackers.list().items
    assert tracker.tracker_type is TrackerType.IMPRESSION
    assert (tracker.name, tracker.code, tracker.advertiser_id) == (
        "Homepage pixel",
        "hp-1",
        ids["advertiser"],
    )
    assert (tracker.placement_id, tracker.payment_rule_id) == (ids["placement"], ids["rule"])
    listing = bed.client.get(created.headers["HX-Redirect"]).text
    assert "Created impression tracker “Homepage pixel”" in listing
    row = listing[listing.index("Homepage pixel") :]
    assert "Spring Sale" in row and "Homepage Top" in row and "Sports CPC" in row


def test_click_tracker_landing_page_and_edit_in_the_same_dialog(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    base = {
        "advertiser_id": str(ids["advertiser"]),
        "name": "Homepage click",
        "state": "active",
        "line_item_id": str(ids["line_item"]),
        "publisher_id": str(ids["publisher"]),
    }
    dialog = bed.client.get(
        f"/click-trackers/new?advertiser_id={ids['advertiser']}", headers=HTMX
    ).text
    assert "Create New Click Tracker" in dialog and "Click Tracker Details" in dialog
    assert "Landing Page URL" in dialog and "Create Click Tracker" in dialog
    refused = bed.post(
        "/click-trackers", {**base, "landing_page_url": "javascript:alert(1)"}, htmx=True
    )
    assert field_errors(refused.text) == {"landing_page_url": "must be an http:// or https:// URL"}
    created = bed.post(
        "/click-trackers", {**base, "landing_page_url": "https://shop.example.com/"}, htmx=True
    )
    assert created.status_code == 204
    [tracker] = bed.catalogue.trackers.list(tracker_type="click").items
    assert tracker.landing_page_url == "https://shop.example.com/"

    edit = bed.client.get(f"/click-trackers/{tracker.id}/edit", headers=HTMX).text
    assert "Edit Click Tracker" in edit
    assert 'value="Homepage click"' in edit and 'value="https://shop.example.com/"' in edit
    saved = bed.post(
        f"/click-trackers/{tracker.id}",
        {**base, "name": "Homepage click v2", "placement_id": str(ids["placement"])},
        htmx=True,
    )
    assert saved.status_code == 204
    edited = bed.catalogue.trackers.get(tracker.id)
    assert edited.name == "Homepage click v2" and edited.placement_id == ids["placement"]
    assert edited.landing_page_url is None  # the field was emptied
    # An impression tracker's id is not a click tracker.
    assert (
        bed.client.get(f"/impression-trackers/{tracker.id}/edit", headers=HTMX).status_code == 404
    )


def test_pickers_search_and_publisher_options(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    found = bed.client.get(f"/pickers/line-items?advertiser_id={ids['advertiser']}&q=spring")
    assert "Spring Sale" in found.text and 'data-pick="line_item_id"' in found.text
    none = bed.client.get(f"/pickers/line-items?advertiser_id={ids['advertiser']}&q=savings")
    assert "No line items found" in none.text
    publishers = bed.client.get("/pickers/publishers?q=sports").text
    assert "Sports Weekly" in publishers and "Daily News" not in publishers
    options = bed.client.get(f"/pickers/publisher-options?publisher_id={ids['publisher']}").text
    assert "Homepage Top" in options and "Sports CPC" in options and "Base rule" in options
    assert "Sidebar" not in options
    empty = bed.client.get("/pickers/publisher-options?publisher_id=").text
    assert "Choose a publisher first" in empty and "disabled" in empty


def test_bulk_actions_and_list_controls(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    made = [
        bed.catalogue.trackers.create(
            {
                "tracker_type": "impression",
                "name": f"Tracker {name}",
                "line_item_id": ids["line_item"],
                "publisher_id": ids["publisher"],
            }
        )
        for name in ("Bravo", "Alpha", "Charlie")
    ]
    url = f"/impression-trackers?advertiser_id={ids['advertiser']}"
    by_name = bed.client.get(url + "&sort=name&dir=asc").text
    assert by_name.index("Tracker Alpha") < by_name.index("Tracker Bravo")
    paged = bed.client.get(url + "&sort=name&dir=asc&per_page=2&page=2").text
    assert "Tracker Charlie" in paged and "Tracker Alpha" not in paged

    answer = bed.post(
        "/impression-trackers/bulk",
        {"action": "deactivate", "ids": [str(made[0].id), str(made[1].id)]},
        htmx=True,
    )
    assert answer.status_code == 204
    states = {t.name: t.state for t in bed.catalogue.trackers.list().items}
    assert states == {
        "Tracker Bravo": State.INACTIVE,
        "Tracker Alpha": State.INACTIVE,
        "Tracker Charlie": State.ACTIVE,
    }
    inactive = bed.client.get(url + "&state=inactive").text
    assert "Tracker Charlie" not in inactive and "Tracker Alpha" in inactive
    bed.post("/impression-trackers/bulk", {"action": "activate", "ids": [str(made[0].id)]})
    assert bed.catalogue.trackers.get(made[0].id).state is State.ACTIVE
    deleted = bed.post("/impression-trackers/bulk", {"action": "delete", "ids": [str(made[2].id)]})
    assert deleted.status_code == 303
    assert "Deleted 1 impression tracker." in bed.client.get(deleted.headers["location"]).text
    assert bed.catalogue.trackers.list().total == 2
    nothing = bed.post("/impression-trackers/bulk", {"action": "delete"})
    assert "Select at least one tracker" in bed.client.get(nothing.headers["location"]).text


def test_tracker_page_shows_live_hits(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    tracker = bed.catalogue.trackers.create(
        {
            "tracker_type": "click",
            "name": "Homepage click",
            "line_item_id": ids["line_item"],
            "publisher_id": ids["publisher"],
        }
    )
    page = bed.client.get(f"/trackers/{tracker.id}").text
    assert "Live hits" in page and "Fire test hit" in page
    test_url = re.search(r'data-test-hit="([^"]+)"', page)
    assert test_url is not None
    assert test_url.group(1).startswith("http://localhost:8001/clktrb?id=")
    assert "[CACHEBUSTER]" in test_url.group(1)
    assert "No hits yet" in bed.client.get(f"/trackers/{tracker.id}/hits").text

    ring = RecentHits()
    state_of(bed.app).recent_hits = ring
    now = int(time.time() * 1_000_000)
    ring.add(
        tracker.id,
        RecentHit(
            now - 2_000_000,
            "valid",
            50_000,
            True,
            "https://shop.example.com/",
            "Firefox/1",
            "https://news.example.com/",
        ),
    )
    ring.add(
        tracker.id, RecentHit(now - 1_000_000, "duplicate_click", 0, False, None, "Firefox/1", None)
    )
    ring.add(
        tracker.id, RecentHit(now, "rejected:inactive_tracker", 0, False, None, "curl/8", None)
    )
    ring.add(
        tracker.id,
        RecentHit(
            now + 1,
            "valid",
            0,
            False,
            "https://landing.example/",
            "Firefox/1",
            None,
            "e1",
            "userinfo",
            "US",
            "mobile",
        ),
    )
    hits = bed.client.get(f"/trackers/{tracker.id}/hits").text
    rows = hits.split("<tr>")[2:]
    assert "https://landing.example/" in rows[0]  # newest first
    assert "redir not followed: a user name in the target" in rows[0]
    assert "US · mobile" in rows[0]  # the visitor's country and device type
    assert "rejected: inactive tracker" in rows[1]
    assert "invalid: duplicate click" in rows[2]
    assert "counted" in rows[3] and "0.050000" in rows[3] and ">yes<" in rows[3]
    assert "https://shop.example.com/" in rows[3] and "https://news.example.com/" in rows[3]
    assert "redir not followed" not in rows[3]
    assert "US · mobile" not in rows[3] and "—" in rows[3]


def test_reporters_see_trackers_but_cannot_change_them(bed: ConsoleBed, tmp_path: Path) -> None:
    ids = seed_chain(bed.catalogue)
    reporter = bed.sign_in(bed.add_user(Role.REPORTER), bed.new_client())
    page = reporter.get(f"/impression-trackers?advertiser_id={ids['advertiser']}").text
    assert (
        "+ New" not in page and ">Export Tags</button>" in page and ">Delete</button>" not in page
    )
    assert (
        reporter.get(
            f"/impression-trackers/new?advertiser_id={ids['advertiser']}", headers=HTMX
        ).status_code
        == 403
    )
