"""Viewability on the bare collector over real HTTP: the t=1 answer's token, the beacons of
/viewtr (GET and POST, each stored as an event of its impression), refused beacons (forged,
garbled, expired, no state: 204, nothing stored, counted), and /v.js served with long caching."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import db
from adtrack.collector.core import TrackingCore
from adtrack.collector.responses import TRACKING_SCRIPT
from adtrack.collector.viewability import VIEW_SCRIPT, VIEW_SCRIPT_VERSION
from adtrack.domain.view_tokens import ViewToken, ViewTokenSigner
from tests.support.collector import (
    BROWSER,
    Basic,
    Catalogue,
    RawResponse,
    ThreadCollector,
    basic_catalogue,
    request,
    settings_for,
    start_thread_collector,
)
from tests.support.prometheus import metric_total
from tests.support.viewability import script_token

DAY_US = 86_400_000_000


@dataclass
class Env:
    collector: ThreadCollector
    basic: Basic

    @property
    def core(self) -> TrackingCore:
        return self.collector.server.core

    def get(self, target: str, **kw: Any) -> RawResponse:
        return request(self.collector.port, target, **kw)

    def impression_token(self) -> tuple[bytes, dict[str, Any]]:
        """A stored t=1 impression's token, and its event."""
        cachebuster = f"imp{time.monotonic_ns()}"
        answer = self.get(f"/imptr?id={self.basic.imp}&cachebuster={cachebuster}&t=1")
        assert answer.status == 200
        (event,) = [e for e in self.collector.events() if e["cachebuster"] == cachebuster]
        return script_token(answer.body), event

    def beacons_of(self, impression_event_id: str) -> list[dict[str, Any]]:
        return [
            e for e in self.collector.events() if e["impression_event_id"] == impression_event_id
        ]

    def metric(self, outcome: str) -> float:
        text = self.get("/metrics").body.decode()
        return metric_total(text, "adtrack_collector_view_beacons_total", outcome=outcome)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("viewability")
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine: Engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(settings_for(tmp, url), engine)
    try:
        yield Env(collector, basic)
    finally:
        collector.stop()
        engine.dispose()


def test_a_beacon_is_stored_as_an_event_of_its_impression(env: Env) -> None:
    token, impression = env.impression_token()
    measured = env.get(f"/viewtr?state=measured&token={token.decode()}")
    viewable = env.get(f"/viewtr?state=viewable&token={token.decode()}", method="POST")
    assert (measured.status, viewable.status) == (204, 204)
    assert measured.body == b"" and "content-length" not in measured.headers
    assert measured.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    beacons = env.beacons_of(impression["event_id"])
    assert [b["view_state"] for b in beacons] == ["measured", "viewable"]
    for beacon in beacons:
        assert beacon["event_id"] != impression["event_id"]
        # keyed exactly like its impression, billing nothing, keeping nothing of the visitor
        for name in (
            "ts",
            "imp_type",
            "tracker_id",
            "advertiser_id",
            "line_item_id",
            "publisher_id",
            "placement_id",
            "payment_rule_id",
            "country",
            "device_type",
            "os",
            "browser",
        ):
            assert beacon[name] == impression[name], name
        assert beacon["device_type"] == "desktop" and beacon["browser"] == "Chrome"
        assert beacon["media_cost_micros"] == beacon["booked_revenue_micros"] == 0
        assert beacon["ip"] is None and beacon["user_agent"] is None and not beacon["invalid"]


def test_refused_beacons_store_nothing_and_are_counted(env: Env) -> None:
    token, impression = env.impression_token()
    payload, _, mac = token.partition(b".")
    forged = ViewTokenSigner(b"not the deployment's secret!").sign(
        ViewToken(impression["event_id"], impression["ts"], env.basic.imp, 1, 1, 1, None, None)
    )
    too_old = env.core.viewability.signer.sign(
        ViewToken("old-one", impression["ts"] - 3 * DAY_US, env.basic.imp, 1, 1, 1, None, None)
    )
    for target, reason in (
        (f"/viewtr?state=measured&token={forged.decode()}", "bad_token"),
        (f"/viewtr?state=measured&token={payload.decode()}.{mac[::-1].decode()}", "bad_token"),
        (f"/viewtr?state=viewable&token={payload.decode()}", "bad_token"),
        ("/viewtr?state=measured&token=%%%", "bad_token"),
        ("/viewtr?state=measured", "no_token"),
        (f"/viewtr?state=seen&token={token.decode()}", "bad_state"),
        (f"/viewtr?token={token.decode()}", "bad_state"),
        (f"/viewtr?state=measured&token={too_old.decode()}", "expired"),
    ):
        before = env.metric(reason)
        assert env.get(target).status == 204, target
        assert env.metric(reason) == before + 1, target
    assert env.beacons_of(impression["event_id"]) == []
    assert env.beacons_of("old-one") == []
    # HEAD answers like GET and stores nothing; other methods are refused
    assert env.get(f"/viewtr?state=measured&token={token.decode()}", method="HEAD").status == 204
    assert env.get(f"/viewtr?state=measured&token={token.decode()}", method="PUT").status == 405
    assert env.beacons_of(impression["event_id"]) == []


def test_an_invalid_impression_gets_no_token(env: Env) -> None:
    bot = {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}
    answer = env.get(f"/imptr?id={env.basic.imp}&cachebuster=bot1&t=1", headers=bot)
    assert answer.status == 200 and answer.body == TRACKING_SCRIPT


def test_the_measurement_script_is_cached_long_under_its_version(env: Env) -> None:
    versioned = env.get(f"/v.js?v={VIEW_SCRIPT_VERSION.decode()}")
    assert versioned.status == 200 and versioned.body == VIEW_SCRIPT
    assert versioned.headers["content-type"] == "application/javascript; charset=utf-8"
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "pragma" not in versioned.headers
    other = env.get("/v.js?v=0123456789ab")
    assert other.body == VIEW_SCRIPT and other.headers["cache-control"] == "public, max-age=300"
    head = env.get(f"/v.js?v={VIEW_SCRIPT_VERSION.decode()}", method="HEAD", headers=BROWSER)
    assert head.headers["content-length"] == str(len(VIEW_SCRIPT))
    assert len(VIEW_SCRIPT) < 4096  # small: a few KB, no dependencies
    # the t=1 answer loads exactly this version
    token_answer = env.get(f"/imptr?id={env.basic.imp}&cachebuster=v1&t=1")
    assert b'"v.js?v=' + VIEW_SCRIPT_VERSION + b'"' in token_answer.body
