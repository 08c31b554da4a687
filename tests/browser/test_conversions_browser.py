"""Conversions in a real browser against a real ``adtrack serve``, its tracking host on HTTPS
(a throw-away certificate, as conversion cookies need) and the publisher's and the
advertiser's pages on sites of their own:

- an exported click anchor on a publisher's page, clicked: the landing page gets the click's
  token and passes it to the browser pixel (``/px``): a post-click conversion of that click;
- an advertiser with conversion cookies: an exported impression pixel on a publisher's page,
  then the browser pixel on the advertiser's page: a post-view conversion of that impression;
- with ``Sec-GPC: 1`` no cookie is set, and the same pixel attributes nothing.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.api_fixtures import create_chain, created
from tests.support.collector import BROWSER_UA
from tests.support.net import LOOPBACK, free_port
from tests.support.server import AdtrackServer, start_adtrack_server
from tests.support.tls_proxy import TlsProxy

TRACKING_HOST = "track.test"
PUBLISHER = "news.test"
ADVERTISER = "shop.test"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsProxy]:
    folder = tmp_path_factory.mktemp("tls")
    proxy = TlsProxy(folder, free_port(), (TRACKING_HOST,))
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def tracking_url(tls: TlsProxy) -> str:
    return f"https://{TRACKING_HOST}:{tls.port}"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tls: TlsProxy, tracking_url: str
) -> Iterator[AdtrackServer]:
    started = start_adtrack_server(
        tmp_path_factory.mktemp("conversions"),
        env={"ADTRACK_PUBLIC_URL": tracking_url, "ADTRACK_AGGREGATOR_POLL_SECONDS": "0.1"},
        tracking_port=tls.target_port,
    )
    started.wait_for_tracking()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def api(server: AdtrackServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


class Sites:
    """The publisher's and the advertiser's pages, on this machine behind HTTPS of their own
    (``https://news.test:<port>/...``, ``https://shop.test:<port>/...``: two sites)."""

    def __init__(self, folder: Path) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.tls = TlsProxy(folder, self.server.server_address[1], ("news.test", "shop.test"))

    def add(self, site: str, path: str, body: str) -> str:
        """Serve ``body`` at ``path`` (unique across both sites); its URL on ``site``."""
        self.pages[path] = (
            '<!doctype html><html><head><meta charset="utf-8"><title>Page</title></head>'
            f"<body>{body}</body></html>"
        ).encode()
        return f"https://{site}:{self.tls.port}{path}"

    def close(self) -> None:
        self.tls.close()
        self.server.shutdown()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    served = Sites(tmp_path_factory.mktemp("sites"))
    try:
        yield served
    finally:
        served.close()


def open_context(browser: Browser, profile: Path, **options: Any) -> BrowserContext:
    """Chromium with a profile of its own in ``profile`` whose visitor allows third-party
    cookies (the setting "Allow third-party cookies"; Chromium's own default, like an Incognito
    window, blocks them, and so does a Playwright context). It says it is a desktop Chrome
    (headless Chromium's own agent is a bot's, which gets no cookie and whose conversions are
    invalid) and finds every ``*.test`` host on this machine."""
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(
        json.dumps({"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}})
    )
    context = browser.browser_type.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP *.test 127.0.0.1"],
        user_agent=BROWSER_UA,
        ignore_https_errors=True,
        **options,
    )
    context.set_default_timeout(15_000)
    return context


def new_chain(api: httpx.Client, suffix: str, *, cookies: bool) -> dict[str, Any]:
    chain = create_chain(api, suffix=suffix)
    advertiser = chain["advertiser"]["id"]
    if cookies:
        answer = api.patch(f"/api/v1/advertisers/{advertiser}", json={"conversion_cookies": True})
        assert answer.status_code == 200 and answer.json()["conversion_cookies"] is True
    chain["pixel"] = created(
        api,
        "conversion-pixels",
        {
            "name": f"Purchase{suffix}",
            "advertiser_id": advertiser,
            "trigger_type": "hybrid",
            "post_click_revenue": 30,
            "post_view_revenue": 3,
        },
    )
    return chain


def export(api: httpx.Client, kind: str, tracker_id: int, tag_format: str) -> str:
    answer = api.post(
        "/api/v1/trackers/export",
        json={f"{kind}_tracker_ids": [tracker_id], "format": tag_format},
    )
    assert answer.status_code == 200, answer.text
    tag: str = answer.json()["tags"][0]["tag"]
    return tag


def conversion(api: httpx.Client, order_id: str) -> dict[str, Any]:
    """The conversions feed's row of ``order_id``, once the aggregator has archived it."""
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
        "format": "jsonl",
    }
    deadline = time.monotonic() + 20
    while True:
        feed = api.get("/api/v1/feeds/conversions", params=window)
        assert feed.status_code == 200, feed.text
        rows = [json.loads(line) for line in feed.text.splitlines()]
        found = [row for row in rows if row["order_id"] == order_id]
        if found:
            [row] = found
            return row
        assert time.monotonic() < deadline, f"no conversion {order_id} in the feed"
        time.sleep(0.3)


def pixel_script(tracking_url: str, pixel_id: int, order_id: str) -> str:
    """The advertiser's page passing the click token it landed with (if any) to ``/px``."""
    return (
        "<script>var t = new URLSearchParams(location.search).get('sspdata');"
        f"var u = '{tracking_url}/px?id={pixel_id}&order_id={order_id}';"
        "if (t) { u += '&sspdata=' + encodeURIComponent(t); }"
        "var i = new Image(1, 1); i.id = 'px'; i.src = u; document.body.appendChild(i);"
        "</script>"
    )


def wait_for_tracker(api: httpx.Client, tracking_url: str, path: str, tracker_id: int) -> None:
    """Until the collector knows a new tracker (its next catalogue poll)."""
    deadline = time.monotonic() + 10
    with httpx.Client(verify=False) as client:
        while True:
            answer = client.head(
                f"{tracking_url.replace(TRACKING_HOST, '127.0.0.1')}{path}?id={tracker_id}",
                headers={"User-Agent": BROWSER_UA},
            )
            if answer.status_code != 404:
                return
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_a_clicked_anchor_lands_with_its_token_and_the_pixel_counts_post_click(
    browser: Browser, api: httpx.Client, tracking_url: str, sites: Sites, tmp_path: Path
) -> None:
    chain = new_chain(api, "-click", cookies=False)
    landing = sites.add(
        ADVERTISER, "/landing", pixel_script(tracking_url, chain["pixel"]["id"], "B-1")
    )
    tracker = created(
        api,
        "click-trackers",
        {
            "name": "Spring click",
            "line_item_id": chain["line_item"]["id"],
            "publisher_id": chain["publisher"]["id"],
            "placement_id": chain["placement"]["id"],
            "landing_page_url": landing + "?sspdata=${SSP_DATA}",
        },
    )
    anchor = export(api, "click", tracker["id"], "anchor")
    assert f'<a href="{tracking_url}/clktrb?id={tracker["id"]}">' in anchor
    wait_for_tracker(api, tracking_url, "/clktrb", tracker["id"])
    article = sites.add(PUBLISHER, "/article", anchor)
    context = open_context(browser, tmp_path)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(article)
        with page.expect_response(re.compile(r"/px\?")) as pixel:
            page.click("a")
        assert pixel.value.status == 200
        assert page.url.startswith(landing + "?sspdata=")
        assert "SSP_DATA" not in page.url
        # no cookie: the advertiser does not set them
        assert not [c for c in context.cookies() if c["name"].startswith("adt_")]
    finally:
        context.close()
    row = conversion(api, "B-1")
    assert (row["attribution"], row["attribution_reason"]) == ("post_click", None)
    assert row["tracker_id"] == tracker["id"]
    assert row["line_item_id"] == chain["line_item"]["id"]
    assert row["tag_id"] == chain["placement"]["id"]
    assert row["revenue_value"] == "30.000000" and row["invalid"] is False


def test_an_impression_then_the_pixel_counts_post_view_from_the_cookie(
    browser: Browser, api: httpx.Client, tracking_url: str, sites: Sites, tmp_path: Path
) -> None:
    chain = new_chain(api, "-view", cookies=True)
    tracker = chain["impression_tracker"]
    tag = export(api, "impression", tracker["id"], "pixel")
    assert f"{tracking_url}/imptr?id={tracker['id']}" in tag
    wait_for_tracker(api, tracking_url, "/imptr", tracker["id"])
    article = sites.add(PUBLISHER, "/story", f"<p>Story</p>{tag}")
    thanks = sites.add(
        ADVERTISER, "/thanks", pixel_script(tracking_url, chain["pixel"]["id"], "V-1")
    )
    context = open_context(browser, tmp_path)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        with page.expect_response(re.compile(r"/imptr\?")) as impression:
            page.goto(article)
        assert impression.value.status == 200
        cookies = [c for c in context.cookies() if c["name"].startswith("adt_")]
        assert [(c["name"], c["domain"]) for c in cookies] == [
            (f"adt_i{chain['advertiser']['id']}", TRACKING_HOST)
        ]
        assert cookies[0]["secure"] and cookies[0]["httpOnly"]
        assert cookies[0]["sameSite"] == "None"
        with page.expect_response(re.compile(r"/px\?")) as pixel:
            page.goto(thanks)
        assert pixel.value.status == 200
    finally:
        context.close()
    row = conversion(api, "V-1")
    assert (row["attribution"], row["attribution_reason"]) == ("post_view", None)
    assert row["tracker_id"] == tracker["id"]
    assert row["line_item_id"] == chain["line_item"]["id"]
    assert row["revenue_value"] == "3.000000"
    assert row["click_event_id"]  # the impression's


def test_sec_gpc_gets_no_cookie_and_the_pixel_attributes_nothing(
    browser: Browser, api: httpx.Client, tracking_url: str, sites: Sites, tmp_path: Path
) -> None:
    chain = new_chain(api, "-gpc", cookies=True)
    tracker = chain["impression_tracker"]
    tag = export(api, "impression", tracker["id"], "pixel")
    wait_for_tracker(api, tracking_url, "/imptr", tracker["id"])
    article = sites.add(PUBLISHER, "/private", f"<p>Story</p>{tag}")
    thanks = sites.add(
        ADVERTISER, "/private-thanks", pixel_script(tracking_url, chain["pixel"]["id"], "G-1")
    )
    context = open_context(browser, tmp_path, extra_http_headers={"Sec-GPC": "1"})
    try:
        page = context.pages[0] if context.pages else context.new_page()
        with page.expect_response(re.compile(r"/imptr\?")) as impression:
            page.goto(article)
        assert impression.value.status == 200
        assert not [c for c in context.cookies() if c["name"].startswith("adt_")]
        with page.expect_response(re.compile(r"/px\?")) as pixel:
            page.goto(thanks)
        assert pixel.value.status == 200
    finally:
        context.close()
    row = conversion(api, "G-1")
    assert (row["attribution"], row["attribution_reason"]) == (None, "no_token")
    assert row["revenue_value"] == "0.000000"
