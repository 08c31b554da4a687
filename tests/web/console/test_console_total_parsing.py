"""Values the parsers did not expect answer 422 naming the field, never 500 (console).

Each case answered 500 before the total parsers (``domain/parsing.py``): ``"²"`` passes
``str.isdigit()`` and then breaks ``int()``, ids beyond the id columns cannot be bound by
SQLite, and ``9999-12-31`` plus one day overflows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adtrack.domain.model import Role
from tests.support.console import ConsoleBed, console_bed, field_errors, seed_chain

SUPERSCRIPT_TWO = "\u00b2"
BEYOND_INT64 = "99999999999999999999"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleBed]:
    with console_bed(tmp_path_factory.mktemp("console-parsing")) as bed:
        # A crash must show up as the 500 a browser would get, not as a raised exception.
        bed.client = TestClient(
            bed.app, base_url="https://testserver", raise_server_exceptions=False
        )
        bed.sign_in(bed.add_user(Role.ADMIN))
        seed_chain(bed.catalogue)
        yield bed


def _names_field(response: object, field: str) -> None:
    status = getattr(response, "status_code", None)
    text = getattr(response, "text", "")
    assert status == 422, (status, text[:500])
    assert field in text, text[:2000]


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, BEYOND_INT64])
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/impression-trackers", "advertiser_id"),
        ("/click-trackers", "advertiser_id"),
        ("/impression-trackers/new", "advertiser_id"),
        ("/line-items", "advertiser_id"),
        ("/placements", "publisher_id"),
        ("/payment-rules", "publisher_id"),
        ("/pickers/publisher-options", "publisher_id"),
        ("/reports", "advertiser_id"),
        ("/reports", "tracker_id"),
        ("/reports", "imp_type"),
        ("/reports/download", "line_item_id"),
        ("/export", "ids"),
    ],
)
def test_ids_in_the_url_are_refused_naming_the_field(
    bed: ConsoleBed, path: str, field: str, value: str
) -> None:
    _names_field(bed.client.get(path, params={field: value}), field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "0001-01-01", "end": "9999-12-31"}, "end"),
        ({"start": "2026-01-01", "end": "9999-12-31"}, "end"),
        ({"start": "0001-01-01", "end": "2026-01-01"}, "start"),
        ({"start": "2026-01-01", "end": "2026-02-30"}, "end"),
    ],
)
@pytest.mark.parametrize("path", ["/reports", "/reports/download"])
def test_report_dates_outside_the_calendar_are_refused(
    bed: ConsoleBed, path: str, params: dict[str, str], field: str
) -> None:
    _names_field(bed.client.get(path, params=params), field)


def test_the_report_form_shows_the_date_error_next_to_its_input(bed: ConsoleBed) -> None:
    response = bed.client.get("/reports", params={"start": "0001-01-01", "end": "9999-12-31"})
    assert response.status_code == 422
    assert "end" in field_errors(response.text), response.text[:2000]


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, BEYOND_INT64])
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/impression-trackers/bulk", {"action": "activate"}),
        ("/click-trackers/bulk", {"action": "delete"}),
        ("/export", {"tracker_type": "impression", "format": "csv", "delivery": "now"}),
        ("/export/download", {"tracker_type": "click", "format": "csv", "delivery": "now"}),
    ],
)
def test_bulk_and_export_forms_refuse_ids_that_are_not_ids(
    bed: ConsoleBed, path: str, data: dict[str, str], value: str
) -> None:
    _names_field(bed.post(path, {**data, "ids": value}), "ids")


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, BEYOND_INT64])
def test_a_new_tracker_with_an_advertiser_that_is_not_an_id_is_refused(
    bed: ConsoleBed, value: str
) -> None:
    response = bed.post(
        "/impression-trackers",
        {"advertiser_id": value, "name": "x", "line_item_id": value, "publisher_id": value},
    )
    _names_field(response, "advertiser_id")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"priority": SUPERSCRIPT_TWO}, "priority"),
        ({"priority": BEYOND_INT64}, "priority"),
        ({"pricing_type": "revshare", "revshare": "1e30"}, "revshare"),
        ({"pricing_type": "cpm", "cost_cpm": "1e99"}, "cost_cpm"),
        ({"pricing_type": "cpc", "cost_cpc": "\u0663.5"}, "cost_cpc"),
        ({"start_date": "9999-12-31"}, "start_date"),
        ({"end_date": "0001-01-01"}, "end_date"),
    ],
)
def test_payment_rule_form_values_are_refused_next_to_their_input(
    bed: ConsoleBed, data: dict[str, str], field: str
) -> None:
    publisher = bed.catalogue.publishers.list(limit=1).items[0]
    response = bed.post(
        "/payment-rules",
        {"publisher_id": str(publisher.id), "name": "Edge rule", "priority": "5", **data},
    )
    assert response.status_code == 422, response.text[:500]
    assert field in field_errors(response.text), response.text[:2000]


@pytest.mark.parametrize("value", ["1e30", SUPERSCRIPT_TWO, "NaN", "Infinity"])
def test_line_item_money_that_is_not_a_number_is_refused(bed: ConsoleBed, value: str) -> None:
    advertiser = bed.catalogue.advertisers.list(limit=1).items[0]
    response = bed.post(
        "/line-items",
        {
            "advertiser_id": str(advertiser.id),
            "name": "Edge money",
            "revenue_type": "cpm",
            "revenue_value": value,
        },
    )
    assert response.status_code == 422, response.text[:500]
    assert "revenue_value" in field_errors(response.text), response.text[:2000]


def test_a_form_with_a_bad_advertiser_id_names_it(bed: ConsoleBed) -> None:
    response = bed.post("/line-items", {"advertiser_id": SUPERSCRIPT_TWO, "name": "x"})
    assert response.status_code == 422, response.text[:500]
    assert "advertiser_id" in field_errors(response.text), response.text[:2000]


def test_a_stale_advertiser_cookie_is_forgotten_not_refused(
    bed: ConsoleBed, tmp_path: Path
) -> None:
    bed.client.cookies.set("adtrack_advertiser", BEYOND_INT64)
    try:
        response = bed.client.get("/impression-trackers")
    finally:
        bed.client.cookies.delete("adtrack_advertiser")
    assert response.status_code == 200, response.text[:500]


@pytest.mark.parametrize(
    ("path", "field"),
    [("/trackers/\u00b2", "tracker_id"), ("/trackers/x/hits", "tracker_id")],
)
def test_a_path_id_of_the_wrong_type_is_a_422_page_naming_it(
    bed: ConsoleBed, path: str, field: str
) -> None:
    response = bed.client.get(path)
    _names_field(response, field)
    assert response.headers["content-type"].startswith("text/html")
