"""End to end: every exported tag, with its placeholders filled the way the chosen ad server
fills them, loaded over real HTTP against a running ``adtrack serve``, is counted in
``GET /api/v1/reports/summary`` — the point of the export feature.

How each ad server fills the placeholders (see ``domain/macro_presets.py`` for the sources):

- cache-buster: a random unsigned integer (all four);
- ``[ANCOST]``: no ad server has a per-event cost macro, so the trafficker writes the cost by hand
  (here ``0.0025`` per event);
- redirect: generic ``[REDIRECT_URL]`` — the landing page, un-encoded (the original platform's
  rule); GAM ``%%DEST_URL%%`` — the un-escaped destination URL; Xandr ``${CLICK_URL}`` — Xandr's
  un-encoded click-tracking URL; CM360 ``%u`` — here percent-encoded, to cover encoded targets.

Secure pixels are https: TLS ends at the reverse proxy in front of adtrack, so the test loads
them over http on the same host and port.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest

from adtrack.domain.macro_presets import PRESETS, Macro, Preset
from tests.support.net import free_port
from tests.support.server import AdtrackServer
from tests.support.smtp import SmtpServer

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
ANCOST = Decimal("0.0025")
LANDING = "https://shop.example/spring?utm_source=adtrack&a=1&b=%7Ex"
FILLED_REDIRECT: dict[Preset, tuple[str, str]] = {
    # preset: (what the ad server writes into the tag, where the click must land)
    Preset.GENERIC: (LANDING, LANDING),
    Preset.GAM: (LANDING + "&gclid=1", LANDING + "&gclid=1"),
    Preset.XANDR: (
        "https://nym1-ib.adnxs.com/click?e=wqT_3QKx&s=1&referrer=x.example/",
        "https://nym1-ib.adnxs.com/click?e=wqT_3QKx&s=1&referrer=x.example/",
    ),
    Preset.CM360: (quote(LANDING, safe=""), LANDING),
}
FORMATS = {"impression": ("javascript", "pixel", "url"), "click": ("url", "anchor")}


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)

    handle_startendtag = handle_starttag


def tag_url(tag: str) -> str:
    if tag.startswith("http"):
        return tag
    parser = _Urls()
    parser.feed(tag)
    [url] = parser.urls
    return url


def fill(url: str, preset: Preset, macros: set[Macro], rng: random.Random) -> str:
    spelled = PRESETS[preset]
    if Macro.CACHEBUSTER in macros:
        url = url.replace(spelled.placeholder(Macro.CACHEBUSTER), str(rng.randrange(2**32)))
    if Macro.ANCOST in macros:
        url = url.replace(spelled.placeholder(Macro.ANCOST), str(ANCOST))
    if Macro.REDIRECT_URL in macros:
        url = url.replace(spelled.placeholder(Macro.REDIRECT_URL), FILLED_REDIRECT[preset][0])
    return url


def over_http(url: str, server: AdtrackServer) -> str:
    parts = urlsplit(url)
    assert parts.netloc == f"{server.host}:{server.tracking_port}", url
    return urlunsplit(("http", parts.netloc, parts.path, parts.query, parts.fragment))


def create(client: httpx.Client, path: str, body: dict[str, Any]) -> int:
    answer = client.post(f"/api/v1/{path}", json=body)
    assert answer.status_code == 201, answer.text
    object_id: int = answer.json()["id"]
    return object_id


def summary(client: httpx.Client, **params: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    answer = client.get(
        "/api/v1/reports/summary",
        params={
            "start": (today - timedelta(days=1)).isoformat(),
            "end": (today + timedelta(days=2)).isoformat(),
            **params,
        },
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


@pytest.mark.slow
def test_every_exported_tag_is_counted(adtrack_server_factory: Any) -> None:
    tracking_port = free_port()
    server: AdtrackServer = adtrack_server_factory(
        env={"ADTRACK_PUBLIC_URL": f"http://127.0.0.1:{tracking_port}"},
        tracking_port=tracking_port,
    )
    if not server.tracking_ready:
        pytest.skip("the collector does not listen on --tracking-port yet (serve wiring)")
    rng = random.Random(4)
    with server.client() as api, httpx.Client(timeout=10, follow_redirects=False) as browser:
        advertiser = create(api, "advertisers", {"name": "Acme"})
        line_item = create(api, "line-items", {"name": "Spring", "advertiser_id": advertiser})
        publisher = create(api, "publishers", {"name": "Daily News"})
        base = {"line_item_id": line_item, "publisher_id": publisher}
        imp_id = create(api, "impression-trackers", {**base, "name": "Imp", "code": "IMP-1"})
        click_id = create(
            api,
            "click-trackers",
            {**base, "name": "Clk", "code": "CLK-1", "landing_page_url": "https://acme.example/"},
        )

        expected = {"impression": 0, "click": 0}
        priced = 0
        cases = [
            (preset, macros, use_code, tracker_type, fmt)
            for preset in Preset
            for macros in (set(Macro), set())
            for use_code in (False, True)
            for tracker_type, formats in FORMATS.items()
            for fmt in formats
        ]
        for preset, macros, use_code, tracker_type, fmt in cases:
            ids = {"impression": [imp_id], "click": [click_id]}
            body = {
                "impression_tracker_ids": ids["impression"] if tracker_type == "impression" else [],
                "click_tracker_ids": ids["click"] if tracker_type == "click" else [],
                "format": fmt,
                "macros": sorted(m.value for m in macros),
                "preset": preset.value,
                "use_code": use_code,
            }
            answer = api.post("/api/v1/trackers/export", json=body)
            assert answer.status_code == 200, answer.text
            [row] = answer.json()["tags"]
            url = over_http(fill(tag_url(row["tag"]), preset, macros, rng), server)
            hit = browser.get(url, headers={"User-Agent": BROWSER_UA, "Accept": "*/*"})
            context = f"{preset.value} {fmt} {sorted(macros)} use_code={use_code}: {url}"
            if Macro.REDIRECT_URL in macros:
                assert hit.status_code == 302, (context, hit.text)
                assert hit.headers["location"] == FILLED_REDIRECT[preset][1], context
            elif tracker_type == "click":
                assert hit.status_code == 302, context
                assert hit.headers["location"] == "https://acme.example/", context
            else:
                assert hit.status_code == 200, (context, hit.text)
            expected[tracker_type] += 1
            priced += Macro.ANCOST in macros
        assert expected == {"impression": 48, "click": 32}

        deadline = time.monotonic() + 15
        while True:
            totals = summary(api)["totals"]
            if (totals["imps"], totals["clicks"]) == (expected["impression"], expected["click"]):
                break
            assert time.monotonic() < deadline, (totals, expected)
            time.sleep(0.2)
        assert totals["invalid_imps"] == 0 and totals["invalid_clicks"] == 0
        # the base rule is revshare 0, so the media cost is exactly the ancost sent
        assert Decimal(str(totals["media_cost"])) == ANCOST * priced
        per_tracker = summary(api, group_by="tracker")["rows"]
        counted = {
            int(r.get("tracker_id", r.get("tracker", 0))): r["imps"] + r["clicks"]
            for r in per_tracker
        }
        assert counted == {imp_id: expected["impression"], click_id: expected["click"]}


def test_a_running_server_emails_an_export(
    adtrack_server_factory: Any, smtp_server: SmtpServer
) -> None:
    # The server's own background worker (started by the app's lifespan) does the sending.
    server: AdtrackServer = adtrack_server_factory(
        env={
            "ADTRACK_PUBLIC_URL": "https://track.example.com",
            "ADTRACK_SMTP_URL": smtp_server.url,
            "ADTRACK_SMTP_FROM": "tags@track.example.com",
        }
    )
    with server.client() as api:
        advertiser = create(api, "advertisers", {"name": "Acme"})
        line_item = create(api, "line-items", {"name": "Spring", "advertiser_id": advertiser})
        publisher = create(api, "publishers", {"name": "Daily News"})
        imp_id = create(
            api,
            "impression-trackers",
            {"line_item_id": line_item, "publisher_id": publisher, "name": "Imp"},
        )
        answer = api.post(
            "/api/v1/trackers/export",
            json={
                "impression_tracker_ids": [imp_id],
                "macros": ["CACHEBUSTER"],
                "delivery": "email",
                "emails": ["ops@agency.example"],
            },
        )
        assert answer.status_code == 202, answer.text
        [message] = smtp_server.wait_for_messages(1, timeout=15)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        assert (
            f'<img src="https://track.example.com/imptr?id={imp_id}&cachebuster=[CACHEBUSTER]&t=2"'
            in body.get_content()
        )
        deadline = time.monotonic() + 10
        while (status := api.get(answer.headers["location"]).json())["status"] != "sent":
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
