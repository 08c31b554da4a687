"""The trackers' batch endpoints (``POST|PATCH /{impression,click}-trackers/batch``,
``POST .../batch/deactivate``) on SQLite and PostgreSQL: all or nothing, 422 naming each
refused item and field, the batch size limit, the OpenAPI request bodies, and a tracker
created in a batch counted by a collector."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adtrack.bootstrap import bootstrap
from adtrack.config import Settings
from adtrack.web.app import create_app
from tests.support.api_fixtures import API, ApiTestbed, create_chain, error_fields, make_testbed
from tests.support.collector import request, settings_for, start_thread_collector


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(db_url, tmp_path)


def tracker_items(chain: dict[str, dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"Batch {n}",
            "code": f"B-{n}",
            "line_item_id": chain["line_item"]["id"],
            "publisher_id": chain["publisher"]["id"],
            "placement_id": chain["placement"]["id"],
        }
        for n in range(count)
    ]


def test_create_update_and_deactivate_in_batches(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    answer = api.trafficker.post(
        f"{API}/impression-trackers/batch", json={"items": tracker_items(chain, 50)}
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()["items"]
    assert [t["name"] for t in created] == [f"Batch {n}" for n in range(50)]
    assert all(t["tracker_type"] == "impression" and "landing_page_url" not in t for t in created)
    shown = api.reporter.get(f"{API}/impression-trackers/{created[7]['id']}").json()
    assert shown == created[7]

    changes = [{"id": t["id"], "name": t["name"] + " (renamed)"} for t in created[:3]]
    answer = api.trafficker.patch(f"{API}/impression-trackers/batch", json={"items": changes})
    assert answer.status_code == 200, answer.text
    assert [t["name"] for t in answer.json()["items"]] == [
        "Batch 0 (renamed)",
        "Batch 1 (renamed)",
        "Batch 2 (renamed)",
    ]
    ids = [t["id"] for t in created[:5]]
    answer = api.trafficker.post(f"{API}/impression-trackers/batch/deactivate", json={"ids": ids})
    assert answer.status_code == 200, answer.text
    assert {t["state"] for t in answer.json()["items"]} == {"inactive"}
    listed = api.reporter.get(f"{API}/impression-trackers", params={"state": "inactive"}).json()
    assert sorted(t["id"] for t in listed["items"]) == ids

    clicks = [
        {**item, "landing_page_url": "https://shop.example/"} for item in tracker_items(chain, 2)
    ]
    answer = api.trafficker.post(f"{API}/click-trackers/batch", json={"items": clicks})
    assert answer.status_code == 201, answer.text
    assert [t["landing_page_url"] for t in answer.json()["items"]] == ["https://shop.example/"] * 2


def test_one_bad_item_writes_nothing_and_names_item_and_field(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    other = create_chain(api.trafficker, "-b")
    items = tracker_items(chain, 4)
    items[2]["placement_id"] = other["placement"]["id"]  # a placement of another publisher
    before = api.reporter.get(f"{API}/impression-trackers").json()["total"]
    answer = api.trafficker.post(f"{API}/impression-trackers/batch", json={"items": items})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert error_fields(answer) == ["items"]
    assert body["errors"] == [
        {"item": 2, "id": None, "field": "placement_id", "message": body["errors"][0]["message"]}
    ]
    assert "publisher" in body["errors"][0]["message"] and body["refused"] == 1
    assert api.reporter.get(f"{API}/impression-trackers").json()["total"] == before

    # a type error in one item: refused by the body's model, with the item named too
    items = tracker_items(chain, 3)
    items[1]["line_item_id"] = "seven"
    answer = api.trafficker.post(f"{API}/impression-trackers/batch", json={"items": items})
    assert answer.status_code == 422
    assert error_fields(answer) == ["items[1].line_item_id"]
    assert [(e["item"], e["field"]) for e in answer.json()["errors"]] == [(1, "line_item_id")]

    # an update naming a missing tracker
    first = api.reporter.get(f"{API}/impression-trackers").json()["items"][0]
    answer = api.trafficker.patch(
        f"{API}/impression-trackers/batch",
        json={"items": [{"id": first["id"], "name": "x"}, {"id": 99_999, "name": "y"}]},
    )
    assert answer.status_code == 422
    assert [(e["item"], e["id"], e["field"]) for e in answer.json()["errors"]] == [
        (1, 99_999, "id")
    ]
    assert (
        api.reporter.get(f"{API}/impression-trackers/{first['id']}").json()["name"] == first["name"]
    )
    # unknown fields, read-only ones, an empty batch, a reporter
    answer = api.trafficker.post(
        f"{API}/click-trackers/batch", json={"items": [{**tracker_items(chain, 1)[0], "id": 5}]}
    )
    assert answer.status_code == 422 and error_fields(answer) == ["items[0].id"]
    answer = api.trafficker.post(f"{API}/click-trackers/batch", json={"items": []})
    assert answer.status_code == 422 and error_fields(answer) == ["items"]
    answer = api.reporter.post(
        f"{API}/click-trackers/batch", json={"items": tracker_items(chain, 1)}
    )
    assert answer.status_code == 403


def test_the_batch_size_limit(sqlite_url: str, tmp_path: Path) -> None:
    for testbed in make_testbed(sqlite_url, tmp_path):
        settings = Settings.from_env(
            {
                "ADTRACK_DATA_DIR": str(tmp_path),
                "ADTRACK_DATABASE_URL": sqlite_url,
                "ADTRACK_BATCH_MAX_ITEMS": "3",
            }
        )
        app = create_app(bootstrap(settings, engine=testbed.engine))
        client = TestClient(app, headers=testbed.trafficker.headers)
        chain = create_chain(client)
        answer = client.post(
            f"{API}/impression-trackers/batch", json={"items": tracker_items(chain, 4)}
        )
        assert answer.status_code == 422 and error_fields(answer) == ["items"]
        assert "at most 3" in answer.json()["detail"][0]["message"]
        ok = client.post(
            f"{API}/impression-trackers/batch", json={"items": tracker_items(chain, 3)}
        )
        assert ok.status_code == 201
        ids = {"ids": [t["id"] for t in ok.json()["items"]] + [1]}
        assert (
            client.post(f"{API}/impression-trackers/batch/deactivate", json=ids).status_code == 422
        )


def test_the_openapi_spec_documents_the_batch_bodies(api: ApiTestbed) -> None:
    spec = api.anonymous.get(f"{API}/openapi.json").json()
    post = spec["paths"]["/api/v1/impression-trackers/batch"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    item_ref = body["properties"]["items"]["items"]["$ref"]
    assert item_ref.endswith("/ImpressionTrackerCreate")
    patch = spec["paths"]["/api/v1/click-trackers/batch"]["patch"]
    assert "requestBody" in patch
    assert "/api/v1/click-trackers/batch/deactivate" in spec["paths"]


def test_a_tracker_created_in_a_batch_is_counted_by_a_collector(
    api: ApiTestbed, db_url: str, tmp_path: Path
) -> None:
    chain = create_chain(api.trafficker)
    collector = start_thread_collector(settings_for(tmp_path / "collector", db_url), api.engine)
    try:
        created = api.trafficker.post(
            f"{API}/impression-trackers/batch", json={"items": tracker_items(chain, 3)}
        ).json()["items"]
        tracker = created[1]
        deadline = time.monotonic() + 5
        while collector.cache.by_id(tracker["id"]) is None:
            assert time.monotonic() < deadline, "the collector never saw the batch"
            time.sleep(0.05)
        assert request(collector.port, f"/imptr?id={tracker['id']}").status == 200
        events = [e for e in collector.events() if e["tracker_id"] == tracker["id"]]
        assert len(events) == 1
        assert events[0]["line_item_id"] == chain["line_item"]["id"]
        assert events[0]["placement_id"] == chain["placement"]["id"]
    finally:
        collector.stop()
