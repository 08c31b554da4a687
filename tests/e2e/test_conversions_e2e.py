"""Conversions end to end through a real ``adtrack serve``: a click tracker with ``${SSP_DATA}``
in its landing page hands the visitor a token, the advertiser's server posts it back to
``/sspx`` with an order id, the aggregator counts the conversion once, post-click, for the
click's line item and placement, and the report shows it with exact money; the same order again
and a forged token count nothing; a postback's value overrides the pixel's revenue."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.api_fixtures import create_chain
from tests.support.collector import BROWSER

pytestmark = [pytest.mark.slow]

MICRO = Decimal("0.000001")
SECRET = "the conversions end-to-end test's token secret"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def report(api: httpx.Client, **params: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    answer = api.get(
        "/api/v1/reports",
        params={
            "start": str(today - timedelta(days=1)),
            "end": str(today + timedelta(days=2)),
            "interval": "cumulative",
            **params,
        },
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_postback_counts_once_for_the_clicks_line_item_and_placement(
    adtrack_server_factory: ServerFactory,
) -> None:
    server = adtrack_server_factory(env={"ADTRACK_TOKEN_SECRET": SECRET})
    server.wait_for_tracking()
    with server.client() as api:
        chain = create_chain(api)
        tracker = api.post(
            "/api/v1/click-trackers",
            json={
                "name": "Spring with token",
                "line_item_id": chain["line_item"]["id"],
                "publisher_id": chain["publisher"]["id"],
                "placement_id": chain["placement"]["id"],
                "landing_page_url": "https://shop.example/thanks?sspdata=${SSP_DATA}",
            },
        )
        assert tracker.status_code == 201, tracker.text
        pixel = api.post(
            "/api/v1/conversion-pixels",
            json={
                "advertiser_id": chain["advertiser"]["id"],
                "name": "Purchase",
                "code": "buy",
                "post_click_revenue": 25,
            },
        )
        assert pixel.status_code == 201, pixel.text
        pixel_id = pixel.json()["id"]

        with httpx.Client(base_url=server.tracking_url, headers=BROWSER, timeout=10) as hits:

            def click(n: int) -> str:
                answer = hits.get(f"/clktrb?id={tracker.json()['id']}&cachebuster=k{n}")
                assert answer.status_code == 302, answer.text
                [token] = parse_qs(urlsplit(answer.headers["location"]).query)["sspdata"]
                return token

            def postback(query: str) -> httpx.Response:
                return hits.get(f"/sspx?{query}")

            deadline = time.monotonic() + 10
            while postback("code=buy&order_id=probe").status_code == 404:  # the next poll
                assert time.monotonic() < deadline
                time.sleep(0.2)
            first, second = click(1), click(2)
            clicked = datetime.now(UTC)
            answers = [
                postback(f"id={pixel_id}&sspdata={first}&order_id=A-1"),
                postback(f"id={pixel_id}&sspdata={second}&order_id=A-1"),  # the same order
                postback(f"id={pixel_id}&sspdata={first[:-4]}AAAA&order_id=A-2"),  # forged
                postback(f"code=buy&sspdata={second}&order_id=A-3&value=40.5"),
            ]
            assert [a.status_code for a in answers] == [200] * 4
            assert {a.text for a in answers} == {"conversion recorded\n"}

        def counted() -> bool:
            return int(report(api)["totals"]["conversions"]) >= 2

        wait_until(counted, 20.0, "two conversions in the report")
        time.sleep(1.0)  # (anything counted late would show now)
        by_place = report(api, group_by="line_item,placement,imp_type", imp_type="11")
        [row] = by_place["rows"]
        assert (row["line_item_id"], row["placement_id"]) == (
            chain["line_item"]["id"],
            chain["placement"]["id"],
        )
        assert row["imp_type"] == "11 Conversion"
        assert (row["imps"], row["clicks"], row["media_cost"]) == (0, 0, "0.000000")
        assert row["conversions"] == row["post_click_conversions"] == 2
        assert row["post_view_conversions"] == 0
        assert row["conversion_revenue"] == "65.500000"  # 25 (the pixel's) + 40.5 (the value)
        totals = report(api, group_by="line_item")["totals"]
        assert totals["clicks"] == 2 and totals["conversions"] == 2
        assert totals["conversion_rate"] == "1.000000"
        cost = Decimal(totals["media_cost"])
        assert totals["cpa"] == str((cost / 2).quantize(MICRO, rounding=ROUND_HALF_UP))
        expected_roas = None if not cost else str((Decimal("65.5") / cost).quantize(MICRO))
        assert totals["roas"] == expected_roas

        # the conversions feed: every conversion, counted or not, with its click and delay
        window = {
            "start": (clicked - timedelta(hours=1)).isoformat(),
            "end": (clicked + timedelta(hours=1)).isoformat(),
        }
        feed = api.get("/api/v1/feeds/conversions", params={**window, "format": "jsonl"})
        assert feed.status_code == 200, feed.text
        listed = [json.loads(line) for line in feed.text.splitlines()]
        assert sorted(row["order_id"] for row in listed) == ["A-1", "A-1", "A-2", "A-3", "probe"]
        rows = {(row["order_id"], row["attribution_reason"]): row for row in listed}
        counted_a1 = rows["A-1", None]
        assert rows["A-1", "duplicate_order"]["attribution"] is None
        assert counted_a1["attribution"] == "post_click"
        assert counted_a1["tag_id"] == chain["placement"]["id"]
        assert counted_a1["line_item_id"] == chain["line_item"]["id"]
        assert counted_a1["click_event_id"] and float(counted_a1["delay_seconds"]) >= 0
        rows = {row["order_id"]: row for row in listed if row["order_id"] != "A-1"}
        assert rows["A-2"]["attribution_reason"] == "forged"
        assert rows["probe"]["attribution_reason"] == "no_token"
        assert (rows["A-3"]["revenue_value"], rows["A-3"]["value_given"]) == ("40.500000", True)
        csv_feed = api.get("/api/v1/feeds/conversions", params=window)
        assert csv_feed.status_code == 200
        lines = list(csv.DictReader(io.StringIO(csv_feed.text)))
        assert sorted(r["attribution_reason"] for r in lines) == sorted(
            ["", "duplicate_order", "forged", "no_token", ""]
        )
        assert 'filename="conversions-' in csv_feed.headers["content-disposition"]
