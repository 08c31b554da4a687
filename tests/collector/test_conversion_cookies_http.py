"""Conversion cookies over real HTTP (the bare collector and the main port's ASGI transport): an
advertiser that sets them gets a cookie with each valid click's and impression's token; its
browser pixel (``/px``) attributes from them post-click (the click wins) or post-view, within the
pixel's windows and as its trigger type allows; ``Sec-GPC``/``DNT`` neither get a cookie nor
have one read; an advertiser that does not set them gets none and its pixel reads none; turning
the setting off applies within the catalogue poll."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import tables as t
from adtrack.collector import conversions as conversions_module
from adtrack.collector.responses import PIXEL_GIF
from tests.support.collector import (
    BROWSER,
    Catalogue,
    basic_catalogue,
    read_events,
)
from tests.support.tracking_endpoints import TRANSPORTS, serve_tracking

SECRET = "a secret of the conversion cookie tests, 32+ characters"
MINUTE_NS = 60 * 10**9
_cb = itertools.count(1)


@dataclass
class Env:
    url: str
    log_dir: Path
    cat: Catalogue
    advertiser: int  # sets conversion cookies
    click: int  # its click tracker (a landing page without the token macro)
    imp: int  # its impression tracker
    hybrid: int  # its pixels: hybrid (click 60 min, view 10 min; revenues 20 and 4)
    click_pixel: int  # trigger type click
    view_pixel: int  # trigger type view
    plain_advertiser: int  # sets none
    plain_click: int
    plain_pixel: int

    def get(self, target: str, **headers: str) -> httpx.Response:
        with httpx.Client(base_url=self.url, headers={**BROWSER, **headers}) as client:
            return client.get(target)

    def hit(
        self, path: str, tracker: int, extra: str = "", **headers: str
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """A hit (``extra``: more of its query), and its event."""
        cachebuster = f"c{next(_cb)}"
        answer = self.get(f"{path}?id={tracker}{extra}&cachebuster={cachebuster}", **headers)
        assert answer.status_code in (200, 302)
        [event] = [e for e in read_events(self.log_dir) if e["cachebuster"] == cachebuster]
        return answer, event

    def px(self, pixel: int, cookies: dict[str, str], **headers: str) -> dict[str, Any]:
        """The conversion a browser pixel records with these cookies."""
        order = f"o{next(_cb)}"
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        if cookie:
            headers = {"Cookie": cookie, **headers}
        answer = self.get(f"/px?id={pixel}&order_id={order}", **headers)
        assert answer.status_code == 200 and answer.content == PIXEL_GIF
        [conversion] = [e for e in read_events(self.log_dir) if e["order_id"] == order]
        return conversion


def set_cookie(answer: httpx.Response) -> SimpleCookie | None:
    raw = answer.headers.get_list("set-cookie")
    if not raw:
        return None
    assert len(raw) == 1
    jar: SimpleCookie = SimpleCookie()
    jar.load(raw[0])
    return jar


def _catalogue(engine: Engine) -> dict[str, Any]:
    cat = Catalogue(engine)
    basic = basic_catalogue(cat)
    cat.update(t.advertisers, basic.advertiser, conversion_cookies=True)
    plain = cat.advertiser("Plain")
    plain_li = cat.line_item(plain)
    return {
        "cat": cat,
        "advertiser": basic.advertiser,
        "click": cat.tracker(
            "click",
            basic.advertiser,
            basic.line_item,
            basic.publisher,
            placement_id=basic.placement,
            landing_page_url="https://shop.example/",
        ),
        "imp": cat.tracker("impression", basic.advertiser, basic.line_item, basic.publisher),
        "hybrid": cat.conversion_pixel(
            basic.advertiser,
            trigger_type="hybrid",
            post_click_window_minutes=60,
            post_view_window_minutes=10,
            post_click_revenue_micros=20_000_000,
            post_view_revenue_micros=4_000_000,
        ),
        "click_pixel": cat.conversion_pixel(basic.advertiser, trigger_type="click"),
        "view_pixel": cat.conversion_pixel(basic.advertiser, trigger_type="view"),
        "plain_advertiser": plain,
        "plain_click": cat.tracker(
            "click", plain, plain_li, basic.publisher, landing_page_url="https://plain.example/"
        ),
        "plain_pixel": cat.conversion_pixel(plain, trigger_type="hybrid"),
    }


@pytest.fixture(params=TRANSPORTS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    with serve_tracking(request.param, tmp_path, _catalogue, SECRET) as served:
        yield Env(served.url, served.log_dir, **served.catalogue)


def test_valid_clicks_and_impressions_set_the_advertisers_cookies(env: Env) -> None:
    click, click_event = env.hit("/clktrb", env.click)
    imp, _ = env.hit("/imptr", env.imp)
    script, _ = env.hit("/imptr", env.imp, "&t=1")  # the JavaScript tag's answer
    for answer, name, max_age in (
        (click, f"adt_c{env.advertiser}", str(90 * 86_400)),
        (imp, f"adt_i{env.advertiser}", str(30 * 86_400)),
        (script, f"adt_i{env.advertiser}", str(30 * 86_400)),
    ):
        jar = set_cookie(answer)
        assert jar is not None and list(jar) == [name]
        morsel = jar[name]
        assert morsel["max-age"] == max_age and morsel["path"] == "/"
        assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "None"
        assert len(morsel.value) > 40 and click_event["event_id"] not in morsel.value
    assert click.headers["location"] == "https://shop.example/"
    # the same click twice: two tokens (a cookie is never a cached answer)
    again, _ = env.hit("/clktrb", env.click)
    first, second = set_cookie(click), set_cookie(again)
    assert first is not None and second is not None
    assert first[f"adt_c{env.advertiser}"].value != second[f"adt_c{env.advertiser}"].value


def test_no_cookie_for_privacy_signals_invalid_traffic_or_another_advertiser(env: Env) -> None:
    for headers in ({"Sec-GPC": "1"}, {"DNT": "1"}):
        answer, event = env.hit("/clktrb", env.click, **headers)
        assert set_cookie(answer) is None and event["invalid"] is False
    bot, event = env.hit("/imptr", env.imp, **{"User-Agent": "Googlebot/2.1"})
    assert set_cookie(bot) is None and event["invalid_reason"] == "bot"
    plain, _ = env.hit("/clktrb", env.plain_click)
    assert set_cookie(plain) is None


def _cookies(env: Env, *answers: httpx.Response) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for answer in answers:
        jar = set_cookie(answer)
        assert jar is not None
        cookies.update((name, morsel.value) for name, morsel in jar.items())
    return cookies


def test_px_attributes_post_click_then_post_view_from_the_cookies(env: Env) -> None:
    click, click_event = env.hit("/clktrb", env.click)
    imp, imp_event = env.hit("/imptr", env.imp)
    both = _cookies(env, click, imp)
    post_click = env.px(env.hybrid, both)
    assert (post_click["attribution"], post_click["attribution_reason"]) == ("post_click", None)
    assert post_click["source_event_id"] == click_event["event_id"]
    assert post_click["tracker_id"] == env.click and post_click["placement_id"] is not None
    assert post_click["booked_revenue_micros"] == 20_000_000
    view_only = {k: v for k, v in both.items() if k.startswith("adt_i")}
    post_view = env.px(env.hybrid, view_only)
    assert (post_view["attribution"], post_view["attribution_reason"]) == ("post_view", None)
    assert post_view["source_event_id"] == imp_event["event_id"]
    assert post_view["source_ts"] == imp_event["ts"]
    assert (post_view["tracker_id"], post_view["line_item_id"]) == (
        env.imp,
        imp_event["line_item_id"],
    )
    assert post_view["booked_revenue_micros"] == 4_000_000 and post_view["invalid"] is False
    # the pixel's trigger type decides which it may take
    assert env.px(env.view_pixel, both)["attribution"] == "post_view"
    assert env.px(env.click_pixel, both)["attribution"] == "post_click"
    view_refused = env.px(env.click_pixel, view_only)
    assert (view_refused["attribution"], view_refused["attribution_reason"]) == (
        None,
        "trigger_type",
    )
    assert view_refused["source_event_id"] == imp_event["event_id"]


def test_the_windows_decide_with_the_clock(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = _cookies(env, env.hit("/clktrb", env.click)[0], env.hit("/imptr", env.imp)[0])
    now_ns = time.time_ns()
    # 30 minutes on: the click (60 min) still attributes; without it the impression (10 min)
    # is out of its window
    monkeypatch.setattr(conversions_module, "_time_ns", lambda: now_ns + 30 * MINUTE_NS)
    assert env.px(env.hybrid, cookies)["attribution"] == "post_click"
    late_view = env.px(env.hybrid, {k: v for k, v in cookies.items() if k.startswith("adt_i")})
    assert (late_view["attribution"], late_view["attribution_reason"]) == (None, "out_of_window")
    # 2 hours on: both out of their windows; the click's reason (tried first) is kept
    monkeypatch.setattr(conversions_module, "_time_ns", lambda: now_ns + 120 * MINUTE_NS)
    late = env.px(env.hybrid, cookies)
    assert (late["attribution"], late["attribution_reason"]) == (None, "out_of_window")
    assert late["booked_revenue_micros"] == 0


def test_cookies_are_not_read_for_privacy_signals_or_another_advertisers_pixel(env: Env) -> None:
    cookies = _cookies(env, env.hit("/clktrb", env.click)[0])
    assert env.px(env.hybrid, cookies, **{"Sec-GPC": "1"})["attribution_reason"] == "no_token"
    assert env.px(env.hybrid, cookies, DNT="1")["attribution_reason"] == "no_token"
    # another advertiser's pixel reads only its own advertiser's cookies (it sets none)
    assert env.px(env.plain_pixel, cookies)["attribution_reason"] == "no_token"
    # a made-up cookie is refused with its reason
    forged = env.px(env.hybrid, {f"adt_c{env.advertiser}": "A" * 110})
    assert (forged["attribution"], forged["attribution_reason"]) == (None, "forged")
    # a browser pixel with no token and no cookie has no token
    assert env.px(env.hybrid, {})["attribution_reason"] == "no_token"


def test_turning_the_setting_off_stops_setting_and_reading_within_the_poll(env: Env) -> None:
    cookies = _cookies(env, env.hit("/clktrb", env.click)[0])
    env.cat.update(t.advertisers, env.advertiser, conversion_cookies=False)
    deadline = time.monotonic() + 10
    while set_cookie(env.hit("/clktrb", env.click)[0]) is not None:
        assert time.monotonic() < deadline, "the collector still sets the cookie"
        time.sleep(0.1)
    assert env.px(env.hybrid, cookies)["attribution_reason"] == "no_token"
    assert set_cookie(env.hit("/imptr", env.imp)[0]) is None
