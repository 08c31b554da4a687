"""Server-side postbacks (``GET /sspx``) over real HTTP, on the tracking port (the bare
collector) and on the main port (the ASGI transport under uvicorn): a click whose landing page
has ``${SSP_DATA}`` hands out a token, a postback with it records a conversion attributed to
that click; tokens that do not read, another advertiser's click, a view pixel and a click out of
the pixel's window are recorded unattributed with their reason; refusals name the parameter and
record nothing; a conversion the log cannot hold is answered 503. The browser pixel (``/px``)
attributes the same way and always answers its image or script."""

from __future__ import annotations

import base64
import html
import itertools
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from adtrack.bootstrap import build_catalogue
from adtrack.collector import conversions as conversions_module
from adtrack.collector.responses import PIXEL_GIF, TRACKING_SCRIPT
from adtrack.services.exports import ExportService
from tests.support.collector import (
    BROWSER,
    Basic,
    Catalogue,
    basic_catalogue,
    read_events,
    settings_for,
)
from tests.support.prometheus import metric_total
from tests.support.tracking_endpoints import TRANSPORTS, serve_tracking

SECRET = "a secret of the conversion tests, at least 32 characters"
LANDING = "https://shop.example/thanks?sspdata=${SSP_DATA}"
DAY_MICROS = 86_400_000_000
_cb = itertools.count(1)


@dataclass
class Env:
    url: str
    log_dir: Path
    cat: Catalogue
    basic: Basic
    click: int  # a click tracker with the macro in its landing page, placement and rule
    rule: int
    pixel: int  # click pixel, code "buy", revenue 25
    view_pixel: int  # trigger type view
    short_pixel: int  # post-click window of 1 minute
    other_pixel: int  # another advertiser's
    other_advertiser: int

    def get(self, target: str, method: str = "GET") -> httpx.Response:
        with httpx.Client(base_url=self.url, headers=BROWSER) as client:
            return client.request(method, target)

    def token(self) -> tuple[str, dict[str, Any]]:
        """A click's token and the click's event."""
        cachebuster = f"c{next(_cb)}"
        answer = self.get(f"/clktrb?id={self.click}&cachebuster={cachebuster}")
        assert answer.status_code == 302
        [token] = parse_qs(urlsplit(answer.headers["location"]).query)["sspdata"]
        [event] = [e for e in self.events() if e["cachebuster"] == cachebuster]
        return token, event

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.log_dir)

    def conversions(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["imp_type"] == 11]

    def convert(self, query: str) -> tuple[httpx.Response, dict[str, Any] | None]:
        """One postback: its answer and the conversion it recorded (None: none)."""
        before = len(self.conversions())
        answer = self.get("/sspx?" + query)
        after = self.conversions()
        assert len(after) - before in (0, 1)
        return answer, (after[-1] if len(after) > before else None)


def _catalogue(engine: Engine) -> dict[str, Any]:
    cat = Catalogue(engine)
    basic = basic_catalogue(cat)
    rule = cat.payment_rule(basic.publisher, pricing_type="cpc", cost_cpc_micros=100_000)
    click = cat.tracker(
        "click",
        basic.advertiser,
        basic.line_item,
        basic.publisher,
        placement_id=basic.placement,
        payment_rule_id=rule,
        landing_page_url=LANDING,
    )
    other = cat.advertiser("Other")
    return {
        "cat": cat,
        "basic": basic,
        "click": click,
        "rule": rule,
        "pixel": cat.conversion_pixel(
            basic.advertiser, code="buy", post_click_revenue_micros=25_000_000
        ),
        "view_pixel": cat.conversion_pixel(basic.advertiser, trigger_type="view"),
        "short_pixel": cat.conversion_pixel(basic.advertiser, post_click_window_minutes=1),
        "other_pixel": cat.conversion_pixel(other),
        "other_advertiser": other,
    }


@pytest.fixture(params=TRANSPORTS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    with serve_tracking(request.param, tmp_path, _catalogue, SECRET) as served:
        yield Env(served.url, served.log_dir, **served.catalogue)


def test_a_postback_with_a_click_token_is_attributed_post_click_to_that_click(env: Env) -> None:
    token, click = env.token()
    answer, conversion = env.convert(f"id={env.pixel}&sspdata={token}&order_id=o-1")
    assert answer.status_code == 200 and answer.text == "conversion recorded\n"
    assert answer.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert conversion is not None
    assert conversion["conversion_pixel_id"] == env.pixel
    assert conversion["order_id"] == "o-1"
    assert (conversion["attribution"], conversion["attribution_reason"]) == ("post_click", None)
    assert conversion["source_event_id"] == click["event_id"]
    assert conversion["source_ts"] == click["ts"] <= conversion["ts"]
    ids = ("tracker_id", "advertiser_id", "line_item_id", "publisher_id", "placement_id")
    assert [conversion[k] for k in ids] == [click[k] for k in ids]
    assert conversion["payment_rule_id"] == click["payment_rule_id"] == env.rule
    assert conversion["booked_revenue_micros"] == 25_000_000  # the pixel's post-click revenue
    assert conversion["media_cost_micros"] == 0 and conversion["invalid"] is False
    assert conversion["ip"] is None and conversion["user_agent"] is None
    assert conversion["event_id"] != click["event_id"]


def test_code_names_the_pixel_and_value_overrides_its_revenue(env: Env) -> None:
    token, _ = env.token()
    answer, conversion = env.convert(f"code=buy&sspdata={token}&value=12.5&order_id=o%202")
    assert answer.status_code == 200 and conversion is not None
    assert conversion["conversion_pixel_id"] == env.pixel
    assert conversion["booked_revenue_micros"] == 12_500_000
    assert conversion["order_id"] == "o 2"
    assert conversion["ancost_used"] is True  # the revenue is the postback's


@pytest.mark.parametrize(
    ("sspdata", "reason"),
    [
        ("", "no_token"),
        ("${SSP_DATA}", "malformed"),
        ("A" * 110, "forged"),
    ],
)
def test_tokens_that_do_not_read_are_recorded_unattributed(
    env: Env, sspdata: str, reason: str
) -> None:
    answer, conversion = env.convert(f"id={env.pixel}&sspdata={sspdata}&value=3")
    assert answer.status_code == 200 and conversion is not None
    assert (conversion["attribution"], conversion["attribution_reason"]) == (None, reason)
    assert conversion["tracker_id"] == conversion["line_item_id"] == 0
    assert conversion["placement_id"] is None and conversion["source_event_id"] is None
    assert conversion["advertiser_id"] == env.basic.advertiser  # the pixel's
    assert conversion["booked_revenue_micros"] == 3_000_000


def test_a_changed_token_is_forged_and_no_sspdata_is_no_token(env: Env) -> None:
    token, _ = env.token()
    # one bit of the sealed bytes flipped, spelled canonically again (changing the text's last
    # characters can spell the same bytes another way, which reads as malformed)
    sealed = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    sealed[-1] ^= 1
    changed = base64.urlsafe_b64encode(bytes(sealed)).decode().rstrip("=")
    _, forged = env.convert(f"id={env.pixel}&sspdata={changed}")
    _, without = env.convert(f"id={env.pixel}&order_id=x")
    assert forged is not None and forged["attribution_reason"] == "forged"
    assert without is not None and without["attribution_reason"] == "no_token"
    assert without["booked_revenue_micros"] == 0  # no revenue without attribution or value


def test_the_clock_decides_expired_and_out_of_window(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, click = env.token()
    now_ns = time.time_ns()
    # two minutes later: out of a 1-minute window, in the 30-day one
    monkeypatch.setattr(conversions_module, "_time_ns", lambda: now_ns + 120 * 10**9)
    _, late = env.convert(f"id={env.short_pixel}&sspdata={token}")
    _, in_time = env.convert(f"id={env.pixel}&sspdata={token}")
    assert late is not None and late["attribution_reason"] == "out_of_window"
    assert late["source_event_id"] == click["event_id"] and late["tracker_id"] == 0
    assert in_time is not None and in_time["attribution"] == "post_click"
    # 91 days later: older than the longest window there is
    monkeypatch.setattr(conversions_module, "_time_ns", lambda: now_ns + 91 * DAY_MICROS * 1000)
    _, expired = env.convert(f"id={env.pixel}&sspdata={token}")
    assert expired is not None
    assert (expired["attribution"], expired["attribution_reason"]) == (None, "expired")


def test_another_advertisers_click_and_a_view_pixel_are_not_post_click(env: Env) -> None:
    token, _ = env.token()
    _, other = env.convert(f"id={env.other_pixel}&sspdata={token}")
    _, view = env.convert(f"id={env.view_pixel}&sspdata={token}")
    assert other is not None and other["attribution_reason"] == "wrong_advertiser"
    assert other["advertiser_id"] == env.other_advertiser and other["line_item_id"] == 0
    assert view is not None and view["attribution_reason"] == "trigger_type"


def test_refusals_name_the_parameter_and_record_nothing(env: Env) -> None:
    token, _ = env.token()
    refusals = {
        f"id=999999&sspdata={token}": (404, "not found\n"),
        "code=nope": (404, "not found\n"),
        "id=abc": (404, "not found\n"),
        f"sspdata={token}": (400, "id or code: a conversion pixel is required\n"),
        f"id={env.pixel}&order_id={'x' * 101}": (400, "order_id: at most 100 characters\n"),
        f"id={env.pixel}&value=1e3": (400, "value: a decimal"),
        f"id={env.pixel}&value=-1": (400, "value: a decimal"),
        f"id={env.pixel}&value=0.0000001": (400, "value: a decimal"),
    }
    before = len(env.conversions())
    for query, (status, body) in refusals.items():
        answer = env.get("/sspx?" + query)
        assert (answer.status_code, answer.text[: len(body)]) == (status, body), query
    assert env.get(f"/sspx?id={env.pixel}&sspdata={token}", method="HEAD").status_code == 200
    assert env.get(f"/sspx?id={env.pixel}", method="POST").status_code == 405
    answer, at_limit = env.convert(f"id={env.pixel}&order_id={'x' * 100}")
    assert answer.status_code == 200 and at_limit is not None
    assert len(env.conversions()) == before + 1


def test_an_inactive_or_deleted_pixel_counts_nothing(env: Env) -> None:
    env.cat.update(t.conversion_pixels, env.short_pixel, state="inactive")
    env.cat.update(t.conversion_pixels, env.other_pixel, deleted_at=datetime.now(UTC))
    deadline = time.monotonic() + 10
    while env.get(f"/sspx?id={env.short_pixel}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    before = len(env.conversions())
    assert env.get(f"/sspx?id={env.short_pixel}").status_code == 404
    assert env.get(f"/sspx?id={env.other_pixel}").status_code == 404
    assert len(env.conversions()) == before


def test_a_new_pixel_is_known_within_the_poll(env: Env) -> None:
    pixel = env.cat.conversion_pixel(env.basic.advertiser, code="lead")
    deadline = time.monotonic() + 10
    while (answer := env.get("/sspx?code=lead")).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert answer.status_code == 200
    assert env.conversions()[-1]["conversion_pixel_id"] == pixel


def test_503_when_the_log_cannot_hold_the_conversion(env: Env) -> None:
    shutil.rmtree(env.log_dir)
    env.log_dir.write_text("in the way")
    try:
        failed = env.get(f"/sspx?id={env.pixel}&order_id=lost")
        assert failed.status_code == 503 and failed.headers["retry-after"] == "1"
    finally:
        env.log_dir.unlink()
    deadline = time.monotonic() + 10
    while env.get(f"/sspx?id={env.pixel}&order_id=back").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    orders = [e["order_id"] for e in env.conversions()]
    assert "back" in orders and "lost" not in orders


def test_the_browser_pixel_attributes_post_click_and_always_answers_its_image(
    env: Env,
) -> None:
    token, click = env.token()
    before = len(env.conversions())
    image = env.get(f"/px?id={env.pixel}&sspdata={token}&order_id=web-1")
    assert image.status_code == 200 and image.content == PIXEL_GIF
    script = env.get(f"/px?code=buy&t=1&sspdata={token}&value=abc")  # a bad value: ignored
    assert script.status_code == 200 and script.content == TRACKING_SCRIPT
    web, scripted = env.conversions()[before:]
    assert (web["attribution"], web["order_id"]) == ("post_click", "web-1")
    assert web["source_event_id"] == click["event_id"]
    assert web["line_item_id"] == click["line_item_id"]
    assert web["placement_id"] == click["placement_id"]
    assert scripted["booked_revenue_micros"] == 25_000_000  # the pixel's revenue applied
    assert web["user_agent"] is None and web["invalid"] is False
    # nothing to record: the page still gets its image
    for query in ("id=999999", "", f"id={env.pixel}&order_id={'x' * 101}"):
        answer = env.get(f"/px?{query}")
        assert (answer.status_code, answer.content) == (200, PIXEL_GIF), query
    assert env.get(f"/px?id={env.pixel}", method="HEAD").status_code == 200
    assert len(env.conversions()) == before + 2


def test_a_bots_browser_conversion_is_invalid(env: Env) -> None:
    token, _ = env.token()
    with httpx.Client(base_url=env.url, headers={"User-Agent": "curl/8.5.0"}) as client:
        assert client.get(f"/px?id={env.pixel}&sspdata={token}").status_code == 200
    conversion = env.conversions()[-1]
    assert (conversion["invalid"], conversion["invalid_reason"]) == (True, "bot")
    assert conversion["attribution"] == "post_click"  # attributed, but never counted


def test_a_prefetched_browser_conversion_is_invalid_as_an_impression_would_be(env: Env) -> None:
    token, _ = env.token()
    headers = {**BROWSER, "Sec-Purpose": "prefetch"}
    with httpx.Client(base_url=env.url, headers=headers) as client:
        assert client.get(f"/px?id={env.pixel}&sspdata={token}").status_code == 200
    conversion = env.conversions()[-1]
    assert (conversion["invalid"], conversion["invalid_reason"]) == (True, "prefetch")


@pytest.fixture
def collector_env(tmp_path: Path) -> Iterator[Env]:
    with serve_tracking("collector", tmp_path, _catalogue, SECRET) as served:
        yield Env(served.url, served.log_dir, **served.catalogue)


def test_conversions_count_in_the_events_metric_once_the_log_holds_them(
    collector_env: Env,
) -> None:
    env = collector_env

    def events(verdict: str) -> float:
        text = env.get("/metrics").text
        return metric_total(
            text, "adtrack_collector_events_total", type="conversion", verdict=verdict
        )

    token, _ = env.token()
    assert env.get(f"/sspx?id={env.pixel}&sspdata={token}").status_code == 200
    assert env.get(f"/px?code=buy&sspdata={token}").status_code == 200
    with httpx.Client(base_url=env.url, headers={"User-Agent": "curl/8.5.0"}) as client:
        assert client.get(f"/px?id={env.pixel}").status_code == 200
    assert env.get("/sspx?id=999999").status_code == 404  # recorded nothing: counts nothing
    assert (events("valid"), events("bot")) == (2, 1)
    unavailable = metric_total(env.get("/metrics").text, "adtrack_collector_unavailable_total")
    shutil.rmtree(env.log_dir)
    env.log_dir.write_text("in the way")
    try:
        assert env.get(f"/sspx?id={env.pixel}").status_code == 503
    finally:
        env.log_dir.unlink()
    text = env.get("/metrics").text
    assert metric_total(text, "adtrack_collector_unavailable_total") == unavailable + 1
    assert (events("valid"), events("bot")) == (2, 1)  # not stored: not counted


def test_the_exported_image_tag_records_a_conversion_once_its_placeholders_are_filled(
    collector_env: Env, tmp_path: Path
) -> None:
    env = collector_env
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'adtrack.db'}")
    engine = db.make_engine(settings.database_url)
    try:
        exports = ExportService(build_catalogue(settings, engine), "https://track.example")
        image = exports.pixel_tags(env.pixel, use_code=True).tags.image
    finally:
        engine.dispose()
    [src] = re.findall(r'<img src="([^"]+)"', image)
    url = urlsplit(html.unescape(src))
    assert (url.scheme, url.netloc, url.path) == ("https", "track.example", "/px")
    token, click = env.token()
    # what the conversion page fills in; the tag host's TLS ends in front of the collector
    query = (
        url.query.replace("[ORDER_ID]", quote("A-1001"))
        .replace("[VALUE]", "49.90")
        .replace("[SSP_DATA]", token)
    )
    before = len(env.conversions())
    answer = env.get(f"{url.path}?{query}")
    assert answer.status_code == 200 and answer.content == PIXEL_GIF
    [conversion] = env.conversions()[before:]
    assert conversion["conversion_pixel_id"] == env.pixel  # named by its code "buy"
    assert (conversion["order_id"], conversion["booked_revenue_micros"]) == ("A-1001", 49_900_000)
    assert (conversion["attribution"], conversion["source_event_id"]) == (
        "post_click",
        click["event_id"],
    )


def test_an_unfilled_placeholder_is_taken_as_absent(env: Env) -> None:
    # a tag pasted as exported: its placeholders were never filled in
    query = "order_id=[ORDER_ID]&value=[VALUE]&sspdata=[SSP_DATA]"
    first, recorded = env.convert(f"id={env.pixel}&{query}")
    assert first.status_code == 200 and recorded is not None
    assert (recorded["order_id"], recorded["ancost_used"]) == (None, False)
    assert recorded["attribution_reason"] == "no_token"
    _, again = env.convert(f"id={env.pixel}&order_id=%5BORDER_ID%5D")  # (encoded: the same)
    assert again is not None and again["order_id"] is None
    answer = env.get(f"/px?id={env.pixel}&order_id=[ORDER_ID]&sspdata=[SSP_DATA]")
    assert answer.status_code == 200
    assert env.conversions()[-1]["order_id"] is None
