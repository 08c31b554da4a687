"""``POST /api/v1/imports/xandr`` on SQLite and PostgreSQL: a zipped paged dump, dry run,
import, re-run, refusals naming the file, the object and the field, the size limit, roles, and
a tracker of the dump fired by its original id counting for its line item, publisher and
placement."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adtrack.bootstrap import bootstrap
from adtrack.config import Settings
from adtrack.web.app import create_app
from tests.support.api_fixtures import API, ApiTestbed, error_fields, make_testbed
from tests.support.collector import request, settings_for, start_thread_collector
from tests.support.xandr_dump import build_catalogue, dump_files, zip_bytes

URL = f"{API}/imports/xandr"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(db_url, tmp_path)


def upload(client: TestClient, files: list[tuple[str, bytes]], **params: Any) -> Any:
    return client.post(
        URL,
        params=params,
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )


def test_dry_run_then_import_then_rerun(api: ApiTestbed) -> None:
    source = build_catalogue()
    archive = [("dump.zip", zip_bytes(dump_files(source, page_size=5)))]
    dry = upload(api.trafficker, archive, dry_run="true")
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["dry_run"] is True and plan["applied"] is False
    assert plan["counts"]["imptracker"]["create"] == len(source.objects["imptracker"])
    first = next(o for o in plan["objects"] if o["kind"] == "imptracker")
    assert first["file"].startswith("dump.zip/dump/imptracker-") and first["id_kept"] is True
    assert api.reporter.get(f"{API}/impression-trackers").json()["total"] == 0

    done = upload(api.trafficker, archive)
    assert done.status_code == 200, done.text
    assert done.json()["applied"] is True
    tracker = source.objects["imptracker"][0]
    shown = api.reporter.get(f"{API}/impression-trackers/{tracker['id']}").json()
    assert shown["original_id"] == tracker["id"] and shown["name"] == tracker["name"]
    assert shown["placement_id"] == tracker["tag"][0]["id"]

    again = upload(api.trafficker, archive).json()
    assert {a for c in again["counts"].values() for a, n in c.items() if n} == {"unchanged"}


def test_refusals_name_the_file_the_object_and_the_field(api: ApiTestbed) -> None:
    source = build_catalogue()
    broken = copy.deepcopy(source)
    broken.objects["clicktracker"][2]["click_url"] = "ftp://files.example.com/"
    answer = upload(api.trafficker, dump_files(broken))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert error_fields(answer) == ["clicktracker-00000.json: clicktrackers[2]: click_url"]
    assert body["errors"] == [
        {
            "file": "clicktracker-00000.json",
            "object": "clicktrackers[2]",
            "kind": "clicktracker",
            "original_id": broken.objects["clicktracker"][2]["id"],
            "field": "click_url",
            "message": body["errors"][0]["message"],
        }
    ]
    assert body["report"]["applied"] is False
    assert api.reporter.get(f"{API}/advertisers").json()["total"] == 0  # nothing written

    answer = upload(api.trafficker, [("page.json", b'{"response": {"status": "OK", "x": [')])
    assert answer.status_code == 422 and error_fields(answer) == ["page.json"]
    answer = api.trafficker.post(URL, files=[("other", ("a.json", b"{}", "application/json"))])
    assert answer.status_code == 422 and error_fields(answer) == ["files"]
    answer = api.trafficker.post(URL, json={"response": {}})
    assert answer.status_code == 422 and error_fields(answer) == ["body"]
    assert upload(api.reporter, dump_files(source)).status_code == 403
    assert upload(api.anonymous, dump_files(source)).status_code == 401


def test_the_upload_size_limit(sqlite_url: str, tmp_path: Path) -> None:
    for testbed in make_testbed(sqlite_url, tmp_path):
        settings = Settings.from_env(
            {
                "ADTRACK_DATA_DIR": str(tmp_path),
                "ADTRACK_DATABASE_URL": sqlite_url,
                "ADTRACK_IMPORT_MAX_BYTES": "1000",
                "ADTRACK_IMPORT_MAX_OBJECTS": "5",
            }
        )
        client = TestClient(
            create_app(bootstrap(settings, engine=testbed.engine)),
            headers=testbed.trafficker.headers,
        )
        files = dump_files(build_catalogue())
        big = [("big.json", b" " * 70_000 + files[0][1])]
        answer = upload(client, big)
        assert answer.status_code == 413 and error_fields(answer) == ["files"]
        largest = max(files, key=lambda file: len(file[1]))
        assert 1000 < len(largest[1]) < 64 * 1024
        answer = upload(client, [largest])  # its request is under the bound, its file is not
        assert answer.status_code == 422 and "ADTRACK_IMPORT_MAX_BYTES" in answer.text
        small = Settings.from_env(
            {
                "ADTRACK_DATA_DIR": str(tmp_path),
                "ADTRACK_DATABASE_URL": sqlite_url,
                "ADTRACK_IMPORT_MAX_OBJECTS": "5",
            }
        )
        client = TestClient(
            create_app(bootstrap(small, engine=testbed.engine)),
            headers=testbed.trafficker.headers,
        )
        answer = upload(client, files)
        assert answer.status_code == 422 and "ADTRACK_IMPORT_MAX_OBJECTS" in answer.text


def test_a_tracker_fired_by_its_original_id_counts_for_its_line_item_publisher_and_placement(
    api: ApiTestbed, db_url: str, tmp_path: Path
) -> None:
    source = build_catalogue()
    assert upload(api.trafficker, dump_files(source)).status_code == 200
    collector = start_thread_collector(settings_for(tmp_path / "collector", db_url), api.engine)
    try:
        imp = source.objects["imptracker"][5]
        click = source.objects["clicktracker"][6]
        deadline = time.monotonic() + 5
        while (
            collector.cache.by_id(imp["id"]) is None or collector.cache.by_id(click["id"]) is None
        ):
            assert time.monotonic() < deadline, "the collector never saw the import"
            time.sleep(0.05)
        # the tags the platform exported, pointed at adtrack's host
        assert request(collector.port, f"/imptr?id={imp['id']}&t=2&cachebuster=1").status == 200
        redirect = request(collector.port, f"/clktrb?id={click['id']}&cachebuster=2")
        assert redirect.status == 302
        assert redirect.headers["location"] == click["click_url"]
        events = {e["tracker_id"]: e for e in collector.events()}
        for tracker in (imp, click):
            event = events[tracker["id"]]
            assert event["line_item_id"] == tracker["line_item"]["id"]
            assert event["publisher_id"] == tracker["publisher"]["id"]
            assert event["placement_id"] == tracker["tag"][0]["id"]
            assert event["advertiser_id"] == tracker["advertiser_id"]
        assert events[imp["id"]]["imp_type"] == 9 and events[click["id"]]["imp_type"] == 10
    finally:
        collector.stop()
