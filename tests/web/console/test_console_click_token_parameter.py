"""The click tracker dialog's **Click token parameter** (Advanced Options)."""

from __future__ import annotations

from tests.support.console import ConsoleBed, field_errors, seed_chain

HTMX = {"HX-Request": "true"}


def test_set_refused_shown_and_cleared(bed: ConsoleBed) -> None:
    ids = seed_chain(bed.catalogue)
    base = {
        "advertiser_id": str(ids["advertiser"]),
        "name": "Spring click",
        "state": "active",
        "line_item_id": str(ids["line_item"]),
        "publisher_id": str(ids["publisher"]),
        "landing_page_url": "https://shop.example.com/?t=${SSP_DATA}",
    }
    dialog = bed.client.get(
        f"/click-trackers/new?advertiser_id={ids['advertiser']}", headers=HTMX
    ).text
    assert "Click token parameter" in dialog
    assert (
        "Click token parameter"
        not in bed.client.get(
            f"/impression-trackers/new?advertiser_id={ids['advertiser']}", headers=HTMX
        ).text
    )

    refused = bed.post("/click-trackers", {**base, "ssp_data_param": "a b"}, htmx=True)
    assert set(field_errors(refused.text)) == {"ssp_data_param"}
    assert 'value="a b"' in refused.text and '<details class="advanced" open' in refused.text

    created = bed.post("/click-trackers", {**base, "ssp_data_param": "sspdata"}, htmx=True)
    assert created.status_code == 204, field_errors(created.text)
    [tracker] = bed.catalogue.trackers.list(tracker_type="click").items
    assert tracker.ssp_data_param == "sspdata"
    assert tracker.landing_page_url == "https://shop.example.com/?t=${SSP_DATA}"
    page = bed.client.get(f"/trackers/{tracker.id}").text
    assert "Click token parameter" in page and "<code>sspdata</code>" in page
    edit = bed.client.get(f"/click-trackers/{tracker.id}/edit", headers=HTMX).text
    assert 'value="sspdata"' in edit

    cleared = bed.post(f"/click-trackers/{tracker.id}", {**base, "ssp_data_param": ""}, htmx=True)
    assert cleared.status_code == 204
    assert bed.catalogue.trackers.get(tracker.id).ssp_data_param is None
