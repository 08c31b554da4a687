"""The console's report history import page: check, import, refusals by line, undo."""

from __future__ import annotations

from typing import Any

from adtrack.domain.model import Role
from tests.support.console import ConsoleBed
from tests.support.report_history import API_DAILY, seed_catalogue

PAGE = "/console/imports/report-history"


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
