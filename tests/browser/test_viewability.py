"""Viewability (MRC) in a real browser against a real ``adtrack serve``: exported JavaScript tags
on a publisher's page (another origin), counted through the collector, the aggregator and the
report API.

- a creative that stays in view 1.5 s is viewable (and measured), also when the tag measures an
  element it names by id;
- one scrolled out of view after 0.4 s, and one below the fold never scrolled to, are measured
  but not viewable;
- one in a background tab (opened without focus, as a browser opens a link in the background)
  is not viewable;
- the same beacon sent again by HTTP counts once.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.api_fixtures import create_chain, created
from tests.support.collector import BROWSER_UA
from tests.support.net import LOOPBACK, free_port
from tests.support.server import AdtrackServer, start_adtrack_server

CREATIVE = "width:300px;height:250px;background:#c33"  # an IAB medium rectangle
COUNTED = ("imps", "view_measured_imps", "viewable_imps")


class Publisher:
    """The publisher's pages, served from an origin of their own."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, name: str, body: str) -> str:
        self.pages[f"/{name}"] = (
            '<!doctype html><html><head><meta charset="utf-8"><title>News</title>'
            "<style>body{margin:0}</style></head><body>" + body + "</body></html>"
        ).encode()
        return f"http://{LOOPBACK}:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdtrackServer]:
    tracking_port = free_port()
    started = start_adtrack_server(
        tmp_path_factory.mktemp("viewability"),
        env={
            "ADTRACK_PUBLIC_URL": f"http://{LOOPBACK}:{tracking_port}",
            "ADTRACK_AGGREGATOR_POLL_SECONDS": "0.1",
        },
        tracking_port=tracking_port,
    )
    started.wait_for_tracking()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def chrome(browser: Browser) -> Iterator[Browser]:
    """Chromium saying it is a desktop Chrome: headless Chromium's own user agent
    ("HeadlessChrome") is a bot's, whose impressions are invalid and never measured. Set for the
    whole browser, so tabs opened outside Playwright's contexts say it too."""
    launched = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--user-agent={BROWSER_UA}"]
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(chrome: Browser) -> Iterator[Page]:
    context = chrome.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def publisher() -> Iterator[Publisher]:
    pages = Publisher()
    try:
        yield pages
    finally:
        pages.close()


@pytest.fixture(scope="module")
def api(server: AdtrackServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


_trackers = iter(range(1, 1000))


def new_tag(api: httpx.Client, view_element: str | None = None) -> tuple[int, str]:
    """A new impression tracker and its exported JavaScript tag."""
    chain = create_chain(api, suffix=f"-v{next(_trackers)}")
    tracker = created(
        api,
        "impression-trackers",
        {
            "name": f"Viewability {chain['advertiser']['name']}",
            "line_item_id": chain["line_item"]["id"],
            "publisher_id": chain["publisher"]["id"],
        },
    )
    body: dict[str, Any] = {"impression_tracker_ids": [tracker["id"]], "format": "javascript"}
    if view_element is not None:
        body["view_element"] = view_element
    answer = api.post("/api/v1/trackers/export", json=body)
    assert answer.status_code == 200, answer.text
    tag: str = answer.json()["tags"][0]["tag"]
    assert "<!-- Viewability measured on" in tag
    return tracker["id"], tag


def counts(api: httpx.Client, tracker_id: int) -> tuple[int, ...]:
    today = datetime.now(UTC).date()
    answer = api.get(
        "/api/v1/reports",
        params={
            "start": today.isoformat(),
            "end": (today + timedelta(days=1)).isoformat(),
            "timezone": "UTC",
            "interval": "cumulative",
            "tracker_id": str(tracker_id),
            "metrics": ",".join(COUNTED),
        },
    )
    assert answer.status_code == 200, answer.text
    totals = answer.json()["totals"]
    return tuple(int(totals[name]) for name in COUNTED)


def wait_for_counts(
    api: httpx.Client, tracker_id: int, expected: tuple[int, int, int], settle: float = 1.0
) -> None:
    """Until the report shows ``expected`` (imps, measured, viewable), and still does a moment
    later (a late beacon would show up by then: the aggregator polls every 0.1 s)."""
    deadline = time.monotonic() + 15
    while counts(api, tracker_id) != expected:
        assert time.monotonic() < deadline, (counts(api, tracker_id), expected)
        time.sleep(0.2)
    time.sleep(settle)
    assert counts(api, tracker_id) == expected


def beacons_of(page: Page) -> list[str]:
    """The beacon URLs ``page`` sends (recorded from now on)."""
    sent: list[str] = []
    page.on(
        "request", lambda request: sent.append(request.url) if "/viewtr?" in request.url else None
    )
    return sent


def test_a_creative_in_view_for_1_5_seconds_is_viewable_and_its_beacons_count_once(
    page: Page, api: httpx.Client, publisher: Publisher
) -> None:
    tracker_id, tag = new_tag(api)
    url = publisher.page("in-view", f'<div style="{CREATIVE}">{tag}</div><p>Story</p>')
    sent = beacons_of(page)
    page.goto(url)
    page.wait_for_timeout(1500)
    page.close()
    wait_for_counts(api, tracker_id, (1, 1, 1))
    assert sorted(u.split("state=")[1].split("&")[0] for u in sent) == ["measured", "viewable"]
    # the same beacons again, by plain HTTP (GET and POST): still counted once
    with httpx.Client() as client:
        for beacon in sent:
            assert client.get(beacon).status_code == 204
            assert client.post(beacon).status_code == 204
    wait_for_counts(api, tracker_id, (1, 1, 1))


def test_a_creative_named_by_id_is_measured_where_it_is(
    page: Page, api: httpx.Client, publisher: Publisher
) -> None:
    # the tag at the end of the page measures the creative above it, which is in view
    tracker_id, tag = new_tag(api, view_element="slot-1")
    url = publisher.page(
        "by-id", f'<div id="slot-1" style="{CREATIVE}"></div><div style="height:3000px"></div>{tag}'
    )
    page.goto(url)
    page.wait_for_timeout(1500)
    page.close()
    wait_for_counts(api, tracker_id, (1, 1, 1))


def test_a_creative_scrolled_out_after_0_4_seconds_is_measured_not_viewable(
    page: Page, api: httpx.Client, publisher: Publisher
) -> None:
    tracker_id, tag = new_tag(api)
    url = publisher.page(
        "scrolled", f'<div style="{CREATIVE}">{tag}</div><div style="height:3000px"></div>'
    )
    page.goto(url)
    page.wait_for_timeout(400)
    page.evaluate("window.scrollTo(0, 2000)")
    page.wait_for_timeout(1500)
    page.close()
    wait_for_counts(api, tracker_id, (1, 1, 0))


def test_a_creative_below_the_fold_never_scrolled_to_is_measured_not_viewable(
    page: Page, api: httpx.Client, publisher: Publisher
) -> None:
    tracker_id, tag = new_tag(api)
    url = publisher.page(
        "below", f'<div style="height:2000px">Story</div><div style="{CREATIVE}">{tag}</div>'
    )
    page.goto(url)
    page.wait_for_timeout(1500)
    page.close()
    wait_for_counts(api, tracker_id, (1, 1, 0))


def test_a_creative_in_a_background_tab_is_not_viewable(
    chrome: Browser, page: Page, api: httpx.Client, publisher: Publisher
) -> None:
    tracker_id, tag = new_tag(api)
    url = publisher.page("background", f'<div style="{CREATIVE}">{tag}</div><p>Story</p>')
    page.goto("about:blank")  # the tab in front
    session = chrome.new_browser_cdp_session()
    target = session.send("Target.createTarget", {"url": url, "background": True})
    try:
        wait_for_counts(api, tracker_id, (1, 1, 0), settle=1.5)
    finally:
        session.send("Target.closeTarget", {"targetId": target["targetId"]})
        session.detach()
