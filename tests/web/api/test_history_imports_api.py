"""``/api/v1/imports/report-history`` on SQLite and PostgreSQL: import, dry run, refusals by
line, the same file twice, the list, undo, roles and limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adtrack.domain.model import Role
from tests.support.api_fixtures import API, ApiTestbed, create_chain, make_testbed


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(db_url, tmp_path)


def report_csv(chain: dict[str, dict[str, Any]], imps: int = 1000) -> bytes:
    ids = (
        chain["line_item"]["id"],
        chain["publisher"]["id"],
        chain["placement"]["id"],
    )
    return (
        "day,imp_type_id,line_item_id,publisher_id,placement_id,imps,clicks,media_cost,"
        "booked_revenue\n"
        f"2026-02-27,9,{ids[0]},{ids[1]},{ids[2]},{imps},0,1.25,2.5\n"
        f"2026-02-27,10,{ids[0]},{ids[1]},{ids[2]},0,9,0,0\n"
    ).encode()


def post(api: ApiTestbed, body: bytes, **params: Any) -> Any:
    params.setdefault("timezone", "UTC")
    return api.admin.post(
        f"{API}/imports/report-history",
        params=params,
        content=body,
        headers={"Content-Type": "text/csv"},
    )


def summary_totals(api: ApiTestbed) -> dict[str, Any]:
    response = api.reporter.get(
        f"{API}/reports/summary", params={"start": "2026-02-27", "end": "2026-02-28"}
    )
    assert response.status_code == 200, response.text
    totals: dict[str, Any] = response.json()["totals"]
    return totals


def test_import_list_and_undo(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    dry = post(api, report_csv(chain), dry_run="true")
    assert dry.status_code == 200, dry.text
    assert dry.json()["import"] is None and dry.json()["totals"]["imps"] == 1000
    assert summary_totals(api)["imps"] == 0

    done = post(api, report_csv(chain), file_name="feb.csv")
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["rows"], body["first_day"], body["refused"]) == (2, "2026-02-27", [])
    assert body["import"]["file_name"] == "feb.csv"
    assert body["import"]["imported_by"] == "admin@example.com"
    totals = summary_totals(api)
    assert (totals["imps"], totals["clicks"], totals["media_cost"]) == (1000, 9, "1.250000")

    again = post(api, report_csv(chain))
    assert again.status_code == 409
    assert again.json()["detail"][0]["field"] == "file"

    listed = api.reporter.get(f"{API}/imports/report-history").json()["items"]
    assert [item["id"] for item in listed] == [body["import"]["id"]]
    assert api.reporter.delete(f"{API}/imports/report-history/{listed[0]['id']}").status_code == 403
    undone = api.admin.delete(f"{API}/imports/report-history/{listed[0]['id']}")
    assert undone.status_code == 200, undone.text
    assert summary_totals(api)["imps"] == 0
    assert api.admin.delete(f"{API}/imports/report-history/{listed[0]['id']}").status_code == 404


def test_refused_rows_are_listed_by_line(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    body = report_csv(chain) + b"2026-02-28,9,424242,1,0,5,0,0,0\n"
    refused = post(api, body)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert answer["detail"][0]["field"] == "file"
    assert answer["errors"] == [
        {"line": 4, "field": "line_item_id", "message": "no line item has the id 424242"}
    ]
    assert summary_totals(api)["imps"] == 0
    skipped = post(api, body, skip_refused="true")
    assert skipped.status_code == 201 and len(skipped.json()["refused"]) == 1


def test_bad_requests_name_the_field(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    assert post(api, report_csv(chain), timezone="").json()["detail"][0]["field"] == "timezone"
    unknown = post(api, report_csv(chain), timezone="Nowhere/Town")
    assert (unknown.status_code, unknown.json()["detail"][0]["field"]) == (422, "timezone")
    empty = post(api, b"")
    assert (empty.status_code, empty.json()["detail"][0]["field"]) == (422, "file")
    forbidden = api.client(api.tokens[Role.REPORTER]).post(
        f"{API}/imports/report-history", params={"timezone": "UTC"}, content=report_csv(chain)
    )
    assert forbidden.status_code == 403


def test_the_size_limit(api: ApiTestbed) -> None:
    api.app.state.web.services.report_history.max_bytes = 64  # ADTRACK_REPORT_HISTORY_MAX_BYTES
    too_big = post(api, b"day,imp_type_id,line_item_id,publisher_id\n" + b"x" * 100)
    assert too_big.status_code == 422
    assert "ADTRACK_REPORT_HISTORY_MAX_BYTES" in too_big.json()["detail"][0]["message"]


TAG_FILE = (
    b'<!-- Imp Tracker - Spring sale - DO NOT MODIFY --><img src="https://ib.adnxs.com/imptr?'
    b'id=531&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]" width="1" height="1" />'
    b"<!-- End of Imp Tracker -->\n"
    b"<!-- Click Tracker - CLIK TRAX -->\n"
    b'<a href="http://ib.adnxs.com/clktrb?id=21378&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]'
    b'&redir=[REDIRECT_URL]">YOUR TEXT HERE</a>\n<!-- End of Click Tracker -->\n'
)


def post_tags(api: ApiTestbed, chain: dict[str, dict[str, Any]], **params: Any) -> Any:
    params.setdefault("line_item_id", chain["line_item"]["id"])
    params.setdefault("publisher_id", chain["publisher"]["id"])
    return api.admin.post(
        f"{API}/imports/xandr-tags",
        params=params,
        content=params.pop("body", TAG_FILE),
        headers={"Content-Type": "text/html"},
    )


def test_trackers_recovered_from_a_tag_file(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    dry = post_tags(api, chain, dry_run="true")
    assert dry.status_code == 200, dry.text
    assert [c["id"] for c in dry.json()["to_create"]] == [531, 21378]
    done = post_tags(api, chain, placement_id=chain["placement"]["id"], file_name="tags.html")
    assert done.status_code == 201, done.text
    assert {(c["id"], c["tracker_type"], c["name"]) for c in done.json()["created"]} == {
        (531, "impression", "Spring sale"),
        (21378, "click", "CLIK TRAX"),
    }
    tracker = api.admin.get(f"{API}/impression-trackers/531").json()
    assert tracker["original_id"] == 531 and tracker["placement_id"] == chain["placement"]["id"]
    again = post_tags(api, chain)
    assert again.status_code == 201 and len(again.json()["unchanged"]) == 2
    assert again.json()["created"] == []


def test_tag_refusals_name_the_field(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    unknown = post_tags(api, chain, line_item_id=424242)
    assert unknown.status_code in (404, 422), unknown.text
    assert unknown.json()["detail"][0]["field"] == "line_item_id"
    empty = post_tags(api, chain, body=b"no tags here")
    assert (empty.status_code, empty.json()["detail"][0]["field"]) == (422, "file")
    missing = api.admin.post(f"{API}/imports/xandr-tags", content=TAG_FILE)
    assert missing.status_code == 422
    reporter = api.reporter.post(
        f"{API}/imports/xandr-tags",
        params={"line_item_id": 1, "publisher_id": 1},
        content=TAG_FILE,
    )
    assert reporter.status_code == 403
