"""The tracking endpoints on the main port: the same core behind a thin ASGI transport, served
by uvicorn over real HTTP."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.asgi import TrackingASGIApp, tracking_routes
from adtrack.collector.core import TrackingCore
from adtrack.collector.hits import RecentHits
from adtrack.collector.responses import PIXEL_GIF
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.collector.viewability import VIEW_SCRIPT, VIEW_SCRIPT_VERSION
from adtrack.domain.click_tokens import ClickTokens
from tests.support.collector import BROWSER, Basic, Catalogue, basic_catalogue, read_events
from tests.support.net import LOOPBACK, free_port, wait_for_port
from tests.support.viewability import script_token, token_fields

CLICK_TOKENS = ClickTokens(b"a secret of these tests, 32 bytes")


@dataclass
class Served:
    url: str
    basic: Basic
    log_dir: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    log_dir = tmp_path / "eventlog"
    writer = LocalEventLogWriter(log_dir, fsync="always")
    core = TrackingCore(cache, hits=RecentHits(), click_tokens=CLICK_TOKENS)
    app = Starlette(routes=tracking_routes(TrackingASGIApp(core, writer)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(LOOPBACK, port, 15)
    try:
        yield Served(f"http://{LOOPBACK}:{port}", basic, log_dir)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def test_same_answers_and_events_as_the_collector(served: Served) -> None:
    b = served.basic
    with httpx.Client(base_url=served.url, headers=BROWSER) as client:
        pixel = client.get(f"/imptr?id={b.imp}&cachebuster=a1&ancost=0.5")
        assert pixel.status_code == 200 and pixel.content == PIXEL_GIF
        assert pixel.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        assert pixel.headers["pragma"] == "no-cache"
        assert pixel.headers["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
        script = client.get(f"/imptr?id={b.imp}&cachebuster=a2&t=1")
        assert script.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        token = script_token(script.content).decode()
        # its beacons, and the measurement script, on this port too
        assert client.get(f"/viewtr?state=measured&token={token}").status_code == 204
        assert client.post(f"/viewtr?state=viewable&token={token}").status_code == 204
        forged = client.get(f"/viewtr?state=viewable&token={token[:-2]}AA")
        assert forged.status_code == 204
        script_file = client.get(f"/v.js?v={VIEW_SCRIPT_VERSION.decode()}")
        assert script_file.content == VIEW_SCRIPT
        assert script_file.headers["cache-control"] == "public, max-age=31536000, immutable"
        # the raw (un-encoded) redir reaches the app as sent
        redirect = client.get(
            httpx.URL(
                served.url + f"/clktrb?id={b.click}&cachebuster=a3"
                "&redir=https://shop.example/x?y=1&z=2"
            )
        )
        assert redirect.status_code == 302
        assert redirect.headers["location"] == "https://shop.example/x?y=1&z=2"
        alias = client.get("/clktr?code=clk-code&cachebuster=a4")
        assert alias.status_code == 302
        assert alias.headers["location"] == "https://advertiser.example/landing?x=1"
        head = client.head(f"/imptr?id={b.imp}&cachebuster=a5")
        assert head.status_code == 200 and head.content == b""
        unknown = client.get("/imptr?id=999")
        assert unknown.status_code == 200 and unknown.content == PIXEL_GIF
        assert client.get("/clktrb?id=999").status_code == 404  # no such click tracker
        # the same redirect policy as the collector port: no redir for an unknown id
        stray = client.get(httpx.URL(served.url + "/imptr?id=999&redir=https://evil.example/"))
        assert stray.status_code == 200 and "location" not in stray.headers
        page = client.get(f"/clktrb?id={b.click}&cachebuster=a6&redir=https://a@b.example/")
        assert page.status_code == 302  # a redir with a user name: the landing page instead
        assert page.headers["location"] == "https://advertiser.example/landing?x=1"
        assert client.post(f"/imptr?id={b.imp}").status_code == 405
    stored = read_events(served.log_dir)
    events = {e["cachebuster"]: e for e in stored if e["view_state"] is None}
    beacons = [e for e in stored if e["view_state"] is not None]
    assert sorted(events) == ["a1", "a2", "a3", "a4", "a6"]
    assert events["a1"]["media_cost_micros"] == 500_000 and events["a1"]["ancost_used"]
    assert events["a3"]["redirect_url"] == "https://shop.example/x?y=1&z=2"
    assert events["a3"]["imp_type"] == 10 and events["a1"]["imp_type"] == 9
    assert token_fields(token.encode())[:2] == [events["a2"]["event_id"], events["a2"]["ts"]]
    assert [(b["view_state"], b["impression_event_id"]) for b in beacons] == [
        ("measured", events["a2"]["event_id"]),
        ("viewable", events["a2"]["event_id"]),
    ]


def test_503_when_the_store_cannot_write(served: Served) -> None:
    b = served.basic
    with httpx.Client(base_url=served.url, headers=BROWSER) as client:
        assert client.get(f"/imptr?id={b.imp}&cachebuster=ok").status_code == 200
        shutil.rmtree(served.log_dir)
        served.log_dir.write_text("in the way")
        failed = client.get(f"/imptr?id={b.imp}&cachebuster=lost")
        assert failed.status_code == 503 and failed.headers["retry-after"] == "1"
        served.log_dir.unlink()
        deadline = time.monotonic() + 10
        while client.get(f"/imptr?id={b.imp}&cachebuster=back").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    cbs = [e["cachebuster"] for e in read_events(served.log_dir)]
    assert "back" in cbs and "lost" not in cbs


def test_a_click_token_on_the_main_port(served: Served) -> None:
    b = served.basic
    with httpx.Client(base_url=served.url, headers=BROWSER) as client:
        redirect = client.get(
            httpx.URL(
                served.url + f"/clktrb?id={b.click}&cachebuster=t1"
                "&redir=https://shop.example/x?t=[SSP_DATA]"
            )
        )
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith("https://shop.example/x?t=") and "SSP_DATA" not in location
    token = location.removeprefix("https://shop.example/x?t=")
    [event] = [e for e in read_events(served.log_dir) if e["cachebuster"] == "t1"]
    click = CLICK_TOKENS.read(token, time.time_ns() // 1000)
    assert (click.event_id, click.tracker_id) == (event["event_id"], b.click)
    assert event["redirect_url"] == "https://shop.example/x?t=[SSP_DATA]"
