"""Original ids and codes (what an object was on the platform it was imported from): shown
read-only by the API, filtered by ``?original_id=``, found by ``q``; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.domain.errors import ValidationError
from adtrack.services.catalogue import CatalogueService
from tests.support.api_fixtures import API, ApiTestbed, error_fields, make_testbed

PATHS = (
    "advertisers",
    "line-items",
    "publishers",
    "placements",
    "payment-rules",
    "impression-trackers",
    "click-trackers",
)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(db_url, tmp_path)


def imported_chain(api: ApiTestbed) -> dict[str, int]:
    """One object of each kind as an import creates it: with its original id and code."""
    catalogue = CatalogueService(lambda: SqlUnitOfWork(api.engine))
    origin = {"original_code": "Xandr code 1"}
    advertiser = catalogue.advertisers.create(
        {"name": "Acme", "original_id": 55_000_000_001, **origin}
    )
    line_item = catalogue.line_items.create(
        {"name": "Spring", "advertiser_id": advertiser.id, "original_id": 2001, **origin}
    )
    publisher = catalogue.publishers.create({"name": "Daily", "original_id": 3001, **origin})
    placement = catalogue.placements.create(
        {"name": "Top", "publisher_id": publisher.id, "original_id": 4001, **origin}
    )
    rule = catalogue.payment_rules.create(
        {"name": "CPM", "publisher_id": publisher.id, "original_id": 5001, **origin}
    )
    refs = {"line_item_id": line_item.id, "publisher_id": publisher.id}
    imp = catalogue.impression_trackers.create(
        {"name": "Imps", **refs, "original_id": 1425, **origin}
    )
    clk = catalogue.click_trackers.create({"name": "Clicks", **refs, "original_id": 1426, **origin})
    return {
        "advertisers": advertiser.id,
        "line-items": line_item.id,
        "publishers": publisher.id,
        "placements": placement.id,
        "payment-rules": rule.id,
        "impression-trackers": imp.id,
        "click-trackers": clk.id,
    }


ORIGINAL_IDS = {
    "advertisers": 55_000_000_001,  # beyond 32 bits: the column is a BigInteger
    "line-items": 2001,
    "publishers": 3001,
    "placements": 4001,
    "payment-rules": 5001,
    "impression-trackers": 1425,
    "click-trackers": 1426,
}


def test_shown_filtered_and_searchable(api: ApiTestbed) -> None:
    ids = imported_chain(api)
    plain = api.trafficker.post(f"{API}/advertisers", json={"name": "Not imported"}).json()
    assert plain["original_id"] is None and plain["original_code"] is None
    for path in PATHS:
        shown = api.reporter.get(f"{API}/{path}/{ids[path]}").json()
        assert shown["original_id"] == ORIGINAL_IDS[path], path
        assert shown["original_code"] == "Xandr code 1", path
        listed = api.reporter.get(f"{API}/{path}", params={"original_id": ORIGINAL_IDS[path]})
        assert [o["id"] for o in listed.json()["items"]] == [ids[path]], path
        none = api.reporter.get(f"{API}/{path}", params={"original_id": 999_999})
        assert none.json()["total"] == 0, path
        by_code = api.reporter.get(f"{API}/{path}", params={"q": "xandr CODE"}).json()
        assert [o["id"] for o in by_code["items"]] == [ids[path]], path
        by_original_id = api.reporter.get(f"{API}/{path}", params={"q": ORIGINAL_IDS[path]})
        assert ids[path] in [o["id"] for o in by_original_id.json()["items"]], path


@pytest.mark.parametrize("field", ["original_id", "original_code"])
def test_read_only_in_the_api(api: ApiTestbed, field: str) -> None:
    value: object = 7 if field == "original_id" else "X7"
    refused = api.trafficker.post(f"{API}/advertisers", json={"name": "A", field: value})
    assert refused.status_code == 422 and error_fields(refused) == [field]
    created = api.trafficker.post(f"{API}/advertisers", json={"name": "A"}).json()
    patched = api.trafficker.patch(f"{API}/advertisers/{created['id']}", json={field: value})
    assert patched.status_code == 422 and error_fields(patched) == [field]


def test_bad_original_id_filter_names_the_parameter(api: ApiTestbed) -> None:
    for bad in ("0", "x", str(2**63)):
        answer = api.reporter.get(f"{API}/advertisers", params={"original_id": bad})
        assert answer.status_code == 422 and error_fields(answer) == ["original_id"], bad


def test_service_refuses_a_bad_original_id(api: ApiTestbed) -> None:
    catalogue = CatalogueService(lambda: SqlUnitOfWork(api.engine))
    with pytest.raises(ValidationError) as refused:
        catalogue.publishers.create({"name": "P", "original_id": 0})
    assert refused.value.field == "original_id"
    with pytest.raises(ValidationError) as refused:
        catalogue.publishers.create({"name": "P", "original_code": "x" * 101})
    assert refused.value.field == "original_code"
