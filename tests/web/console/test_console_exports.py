"""The Export Trackers dialog: options, tags now (copy, downloads) and by email."""

from __future__ import annotations

import csv
import io
import re
import time
from html import unescape
from pathlib import Path

import openpyxl
import pytest

from adtrack.domain.macro_presets import Macro
from adtrack.domain.model import Role
from adtrack.domain.tags import TagFormat, TagOptions, TrackerTagData, render_tag
from tests.support.console import HTMX, ConsoleBed, console_bed, field_errors, seed_chain
from tests.support.smtp import SmtpServer

PUBLIC_URL = "https://track.example.com"
ALL_MACROS = [m.value for m in Macro]


@pytest.fixture
def bed(tmp_path: Path, smtp_server: SmtpServer):
    env = {"ADTRACK_PUBLIC_URL": PUBLIC_URL, "ADTRACK_SMTP_URL": smtp_server.url}
    with console_bed(tmp_path, env=env) as bed:
        bed.sign_in(bed.add_user(Role.TRAFFICKER))
        ids = seed_chain(bed.catalogue)
        for kind, name in (("impression", "Homepage pixel"), ("click", "Homepage click")):
            bed.catalogue.trackers.create(
                {
                    "tracker_type": kind,
                    "name": name,
                    "line_item_id": ids["line_item"],
                    "publisher_id": ids["publisher"],
                    "placement_id": ids["placement"],
                }
            )
        yield bed


def tags_in(html: str) -> dict[int, str]:
    return {
        int(i): unescape(tag)
        for i, tag in re.findall(
            r'<textarea id="tag-(\d+)" class="tag"[^>]*>([^<]*)</textarea>', html
        )
    }


def test_the_dialog_offers_the_seed_pages_options(bed: ConsoleBed) -> None:
    html = bed.client.get("/export?tracker_type=impression&ids=1", headers=HTMX).text
    for text in (
        "Export Trackers",
        "Basic Options",
        "JavaScript tag",
        "Secure pixel",
        "Delivery Options",
        "Generate tags now",
        "Email to",
        "Advanced Options",
        "CACHEBUSTER",
        "ANCOST",
        "REDIRECT_URL",
        "Google Ad Manager",
    ):
        assert text in html, text
    assert html.count('name="macros"') == 3 and html.count("checked") >= 5
    clicks = bed.client.get("/export?tracker_type=click&ids=2", headers=HTMX).text
    assert "Click URL" in clicks and "Anchor (&lt;a&gt; tag)" in clicks
    assert "JavaScript tag" not in clicks
    # the click token: where the macro goes (docs/conversions.md), for click trackers only
    assert "Click token (conversions)" in clicks and "${SSP_DATA}" in clicks
    assert "Click token parameter" in clicks and "[SSP_DATA]" in clicks
    assert "SSP_DATA" not in html
    nothing = bed.client.get("/export?tracker_type=impression", headers=HTMX).text
    assert "Select at least one tracker" in nothing


@pytest.mark.parametrize("fmt", ["javascript", "pixel"])
def test_generate_now_shows_the_same_tags_as_the_service(bed: ConsoleBed, fmt: str) -> None:
    answer = bed.post(
        "/export",
        {
            "tracker_type": "impression",
            "ids": ["1"],
            "format": fmt,
            "delivery": "now",
            "macros": ALL_MACROS,
            "preset": "generic",
        },
        htmx=True,
    )
    assert answer.status_code == 200, field_errors(answer.text)
    expected = render_tag(
        TrackerTagData(1, bed.catalogue.trackers.get(1).tracker_type, "Homepage pixel"),
        TagOptions(PUBLIC_URL, TagFormat(fmt), frozenset(Macro)),
    )
    assert tags_in(answer.text) == {1: expected}
    assert "cachebuster=[CACHEBUSTER]&ancost=[ANCOST]" in expected
    assert 'data-copy="tag-1"' in answer.text
    for kind in ("txt", "csv", "xlsx"):
        assert f'name="download" value="{kind}"' in answer.text


def test_the_element_to_measure_is_an_advanced_option_of_impression_tags(
    bed: ConsoleBed,
) -> None:
    dialog = bed.client.get("/export?tracker_type=impression&ids=1", headers=HTMX).text
    assert 'name="view_element"' in dialog and "Viewability: element id to measure" in dialog
    clicks = bed.client.get("/export?tracker_type=click&ids=2", headers=HTMX).text
    assert 'name="view_element"' not in clicks
    body = {"tracker_type": "impression", "ids": ["1"], "format": "javascript", "delivery": "now"}
    answer = bed.post("/export", {**body, "view_element": "slot-top"}, htmx=True)
    assert answer.status_code == 200, field_errors(answer.text)
    assert 'data-view-element="slot-top"' in tags_in(answer.text)[1]
    # the downloads carry the option on
    assert 'name="view_element" value="slot-top"' in answer.text
    refused = bed.post("/export", {**body, "view_element": "slot top"}, htmx=True)
    assert refused.status_code == 422
    assert "is not an element id" in field_errors(refused.text)["view_element"]


def test_click_tags_and_downloads(bed: ConsoleBed) -> None:
    body = {
        "tracker_type": "click",
        "ids": ["2"],
        "format": "anchor",
        "macros": ALL_MACROS,
        "preset": "generic",
    }
    answer = bed.post("/export", {**body, "delivery": "now"}, htmx=True)
    [anchor] = tags_in(answer.text).values()
    assert anchor == (
        '<!-- Click Tracker - Homepage click --><a href="https://track.example.com/clktrb?id=2'
        '&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]">YOUR TEXT HERE</a>'
        "<!-- End of Click Tracker -->"
    )
    csv_file = bed.post("/export/download", {**body, "download": "csv"})
    assert csv_file.status_code == 200
    assert csv_file.headers["content-disposition"].endswith('.csv"')
    [row] = list(csv.DictReader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    assert row["tag"] == anchor and row["placement"] == "Homepage Top"
    xlsx = bed.post("/export/download", {**body, "download": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert anchor in [cell.value for cell in sheet[2]]
    txt = bed.post("/export/download", {**body, "format": "url", "download": "txt"})
    assert "https://track.example.com/clktrb?id=2&cachebuster=" in txt.text


def test_the_tag_map_download_pairs_old_and_new_tags(bed: ConsoleBed) -> None:
    pixel = bed.catalogue.trackers.get(1)
    imported = bed.catalogue.trackers.create(  # as an import leaves it: its original id kept
        {
            "tracker_type": "impression",
            "name": "Imported pixel",
            "line_item_id": pixel.line_item_id,
            "publisher_id": pixel.publisher_id,
            "original_id": 531,
        }
    )
    body = {
        "tracker_type": "impression",
        "ids": ["1", str(imported.id)],
        "format": "javascript",
        "macros": ["CACHEBUSTER", "ANCOST"],
        "preset": "generic",
        "delivery": "now",
    }
    shown = bed.post("/export", body, htmx=True)
    assert 'name="download" value="tag-map"' in shown.text and 'name="old_host"' in shown.text
    answer = bed.post("/export/download", {**body, "download": "tag-map", "old_host": ""})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="adtrack-tag-map-'
    )
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    # Every format of each tracker, whatever the dialog's format: an ad server may hold any.
    assert [(r["tracker_id"], r["format"]) for r in rows] == [
        (tracker_id, fmt)
        for tracker_id in ("1", str(imported.id))
        for fmt in ("javascript", "pixel", "url")
    ]
    old_pixel = rows[4]["old_tag"]
    assert old_pixel == (
        "<!-- Imp Tracker - Imported pixel - DO NOT MODIFY -->"
        '<img src="https://secure.adnxs.com/imptr?id=531&cachebuster=[CACHEBUSTER]'
        '&ancost=[ANCOST]&t=2" width="1" height="1" /><!-- End of Imp Tracker -->'
    )
    assert rows[4]["new_tag"] == old_pixel.replace(
        "https://secure.adnxs.com/imptr?id=531", f"{PUBLIC_URL}/imptr?id={imported.id}"
    )
    assert rows[0]["original_id"] == "" and rows[0]["old_tag"].startswith(
        "<!-- Imp Tracker - Homepage pixel - DO NOT MODIFY -->"
        '<script src="https://secure.adnxs.com/imptr?id=1&'
    )
    moved = bed.post(
        "/export/download", {**body, "download": "tag-map", "old_host": "ib.adnxs.com"}
    )
    assert "https://ib.adnxs.com/imptr?id=531&" in moved.text
    refused = bed.post("/export/download", {**body, "download": "tag-map", "old_host": "ftp://x"})
    assert refused.status_code == 422 and "old_host" in unescape(refused.text)
    unknown = bed.post("/export/download", {**body, "download": "pdf"})
    assert unknown.status_code == 422 and "download" in unescape(unknown.text)


def test_email_delivery_shows_its_status_until_sent(
    bed: ConsoleBed, smtp_server: SmtpServer
) -> None:
    refused = bed.post(
        "/export",
        {"tracker_type": "impression", "ids": ["1"], "delivery": "email", "emails": "nope"},
        htmx=True,
    )
    assert refused.status_code == 422
    assert "emails" in field_errors(refused.text)
    assert ">nope</textarea>" in refused.text

    answer = bed.post(
        "/export",
        {
            "tracker_type": "impression",
            "ids": ["1"],
            "format": "pixel",
            "delivery": "email",
            "emails": "ops@example.com, trafficking@example.com",
            "macros": ["CACHEBUSTER"],
        },
        htmx=True,
    )
    assert answer.status_code == 200, answer.text
    assert "ops@example.com, trafficking@example.com" in answer.text
    export_id = re.search(r'id="export-status-([0-9a-f-]+)"', answer.text).group(1)  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while True:
        status = bed.client.get(f"/exports/{export_id}/status").text
        if "sent" in re.search(r'class="export-status">(\w+)<', status).group(1):  # type: ignore[union-attr]
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert "The tags were sent" in status and "hx-trigger" not in status  # polling stops
    [message] = smtp_server.wait_for_messages(1)
    assert "Homepage pixel" in message.get_body(("plain",)).get_content()


def test_reporters_export_now_but_not_by_email(bed: ConsoleBed) -> None:
    reporter = bed.sign_in(bed.add_user(Role.REPORTER), bed.new_client())
    body = {"tracker_type": "impression", "ids": ["1"], "format": "pixel"}
    now = bed.post("/export", {**body, "delivery": "now"}, htmx=True, client=reporter)
    assert now.status_code == 200 and tags_in(now.text)
    email = bed.post(
        "/export",
        {**body, "delivery": "email", "emails": "a@example.com"},
        htmx=True,
        client=reporter,
    )
    assert email.status_code == 422 and "cannot send tags by email" in email.text
