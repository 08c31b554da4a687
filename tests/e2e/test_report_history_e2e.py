"""A real ``adtrack serve`` (SQLite and PostgreSQL): live hits on the tracking port, counted by
its aggregator, and the old platform's report history imported through the API; the summary
and the report span both, and undoing the import leaves the live counts alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.net import free_port
from tests.support.server import AdtrackServer

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def create(client: httpx.Client, path: str, body: dict[str, Any]) -> int:
    answer = client.post(f"/api/v1/{path}", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def by_day(client: httpx.Client, start: str, end: str) -> list[tuple[str, int, int]]:
    answer = client.get(
        "/api/v1/reports/summary", params={"start": start, "end": end, "group_by": "day"}
    )
    assert answer.status_code == 200, answer.text
    return [(r["day"], r["imps"], r["clicks"]) for r in answer.json()["rows"]]


@pytest.mark.slow
def test_reports_span_imported_and_live_days(adtrack_server_factory: Any, db_url: str) -> None:
    tracking_port = free_port()
    server: AdtrackServer = adtrack_server_factory(
        env={"ADTRACK_DATABASE_URL": db_url}, tracking_port=tracking_port
    )
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    with server.client() as api, httpx.Client(timeout=10) as browser:
        advertiser = create(api, "advertisers", {"name": "Acme"})
        line_item = create(api, "line-items", {"name": "Spring", "advertiser_id": advertiser})
        publisher = create(api, "publishers", {"name": "Daily News"})
        placement = create(api, "placements", {"name": "Top", "publisher_id": publisher})
        tracker = create(
            api,
            "impression-trackers",
            {
                "name": "Imp",
                "line_item_id": line_item,
                "publisher_id": publisher,
                "placement_id": placement,
            },
        )
        for n in range(3):
            hit = browser.get(
                f"http://127.0.0.1:{tracking_port}/imptr?id={tracker}&cachebuster={n}&t=2",
                headers={"User-Agent": BROWSER_UA, "Accept": "*/*"},
            )
            assert hit.status_code == 200, hit.text
        report = (
            "Day,Imp Type,Line Item,Publisher,Placement,Imps,Clicks,Media Cost,Booked Revenue\n"
            f"{days[0]},External Impression,Spring ({line_item}),Daily News ({publisher}),"
            f"Top ({placement}),100,0,$1.00,$2.00\n"
            f"{days[1]},External Click,Spring ({line_item}),Daily News ({publisher}),"
            f"Top ({placement}),0,4,$0.00,$0.00\n"
        )
        imported = api.post(
            "/api/v1/imports/report-history",
            params={"timezone": "UTC", "file_name": "network_analytics.csv"},
            content=report.encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert imported.status_code == 201, imported.text
        expected = [(days[0], 100, 0), (days[1], 0, 4), (days[2], 3, 0)]
        deadline = time.monotonic() + 20
        while (found := by_day(api, days[0], days[2] + "T23:59:59Z")) != expected:
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        # The report (by line item) holds both: imported history and the live hits.
        answer = api.get(
            "/api/v1/reports",
            params={
                "start": days[0],
                "end": (today + timedelta(days=1)).isoformat(),
                "interval": "cumulative",
                "group_by": "line_item",
                "format": "json",
            },
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert int(body["totals"]["imps"]) == 103 and int(body["totals"]["clicks"]) == 4
        assert len(body["rows"]) == 1  # one line item: imported and live rows together

        undone = api.delete(f"/api/v1/imports/report-history/{imported.json()['import']['id']}")
        assert undone.status_code == 200, undone.text
        assert by_day(api, days[0], days[2] + "T23:59:59Z") == [(days[2], 3, 0)]

        # A tracker recovered from its old tag keeps the tag's id: a hit on that id counts for
        # the line item, publisher and placement picked.
        tag = (
            '<!-- Imp Tracker - Old banner - DO NOT MODIFY --><img src="https://ib.adnxs.com/'
            'imptr?id=90531&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]" width="1" height="1" />'
            "<!-- End of Imp Tracker -->"
        )
        recovered = api.post(
            "/api/v1/imports/xandr-tags",
            params={
                "line_item_id": line_item,
                "publisher_id": publisher,
                "placement_id": placement,
            },
            content=tag.encode(),
        )
        assert recovered.status_code == 201, recovered.text
        assert [c["id"] for c in recovered.json()["created"]] == [90531]
        deadline = time.monotonic() + 10
        while True:  # the collector picks the new tracker up within its poll interval
            hit = browser.get(
                f"http://127.0.0.1:{tracking_port}/imptr?id=90531&cachebuster=x&t=2",
                headers={"User-Agent": BROWSER_UA, "Accept": "*/*"},
            )
            if hit.status_code == 200:  # 404 while the collector does not know the id yet
                break
            assert time.monotonic() < deadline, hit.status_code
            time.sleep(0.3)
        deadline = time.monotonic() + 20
        while True:
            answer = api.get(
                "/api/v1/reports/summary",
                params={
                    "start": days[2],
                    "end": days[2] + "T23:59:59Z",
                    "group_by": "tracker,line_item,placement",
                },
            )
            rows = {r["tracker_id"]: r for r in answer.json()["rows"]}
            if 90531 in rows:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        row = rows[90531]
        assert (row["tracker_name"], row["imps"]) == ("Old banner", 1)
        assert (row["line_item_id"], row["placement_id"]) == (line_item, placement)
