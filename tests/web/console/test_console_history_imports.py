"""The console's report history import page: check, import, refusals by line, undo."""

from __future__ import annotations

from typing import Any

from adtrack.domain.model import Role
from tests.support.console import ConsoleBed
from tests.support.report_history import API_DAILY, seed_catalogue

PAGE = "/imports/report-history"


def upload(bed: ConsoleBed, text: str, action: str, **fields: str) -> Any:
    return bed.client.post(
        PAGE,
        data={"csrf_token": bed.token(page=PAGE), "action": action, **fields},
        files={"file": ("network_analytics.csv", text.encode(), "text/csv")},
        follow_redirects=False,
    )


def test_check_import_and_undo(bed: ConsoleBed) -> None:
    seed_catalogue(bed.engine)
    page = bed.client.get(PAGE)
    assert page.status_code == 200 and "No report history imported yet" in page.text

    checked = upload(bed, API_DAILY, "check", timezone="UTC")
    assert checked.status_code == 200, checked.text
    assert "Would import" in checked.text and "1500 imps" in checked.text
    assert "No report history imported yet" in checked.text

    done = upload(bed, API_DAILY, "import", timezone="America/New_York")
    assert done.status_code == 200 and "Imported" in done.text
    import_id = bed.app.state.web.services.report_history.imports()[0].id
    assert f"Undo import {import_id}" in bed.client.get(PAGE).text

    undone = bed.post(f"{PAGE}/{import_id}/undo", {})
    assert undone.status_code == 303
    assert "Undone: import" in bed.client.get(PAGE).text


def test_refused_rows_are_listed_by_line(bed: ConsoleBed) -> None:
    seed_catalogue(bed.engine)
    refused = upload(bed, API_DAILY + "2026-03-01,9,1,77,3,4,1,0,0,0\n", "import", timezone="UTC")
    assert refused.status_code == 422
    text = refused.text
    assert "Refused rows (1)" in text and "<td>5</td><td>line_item_id</td>" in text
    missing = upload(bed, API_DAILY, "import", timezone="")
    assert missing.status_code == 422 and "timezone" in missing.text


def test_reporters_see_the_list_but_cannot_import(bed: ConsoleBed) -> None:
    reporter = bed.new_client()
    bed.sign_in(bed.add_user(Role.REPORTER), reporter)
    page = reporter.get(PAGE)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' not in page.text
    token = bed.token(reporter, page=PAGE)
    refused = reporter.post(
        PAGE,
        data={"csrf_token": token, "action": "import", "timezone": "UTC"},
        files={"file": ("r.csv", API_DAILY.encode(), "text/csv")},
    )
    assert refused.status_code == 403


TAGS_PAGE = "/imports/tags"
TAG_FILE = (
    b'<!-- Imp Tracker - Spring sale - DO NOT MODIFY --><img src="https://ib.adnxs.com/imptr?'
    b'id=531&cachebuster=[CACHEBUSTER]" width="1" height="1" /><!-- End of Imp Tracker -->\n'
    b"https://ib.adnxs.com/imptr?id=532&t=1\n"
)


def test_tags_page_checks_and_creates(bed: ConsoleBed) -> None:
    seed_catalogue(bed.engine)
    assert bed.client.get(TAGS_PAGE).status_code == 200

    def send(action: str, **fields: str) -> Any:
        return bed.client.post(
            TAGS_PAGE,
            data={"csrf_token": bed.token(page=TAGS_PAGE), "action": action, **fields},
            files=[("files", ("tags.html", TAG_FILE, "text/html"))],
        )

    checked = send("check", line_item_id="2", publisher_id="3")
    assert checked.status_code == 200, checked.text
    assert "Would create 2" in checked.text and "Imp Tracker 532" in checked.text
    assert "JavaScript" in checked.text
    created = send("create", line_item_id="2", publisher_id="3", placement_id="4")
    assert created.status_code == 200 and "Created 2" in created.text
    assert bed.catalogue.trackers.get(531).name == "Spring sale"
    refused = send("create", line_item_id="", publisher_id="3")
    assert refused.status_code == 422 and "line_item_id" in refused.text
