"""The tracking endpoints end to end over real HTTP: a collector on a free loopback port, a
migrated SQLite catalogue, the local event log. Every parameter and edge of the issue."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import db
from adtrack.collector.responses import CLICK_PAGE_HTML, PIXEL_GIF
from tests.support.collector import (
    BROWSER,
    BROWSER_UA,
    Basic,
    Catalogue,
    RawClient,
    RawResponse,
    ThreadCollector,
    basic_catalogue,
    request,
    settings_for,
    start_thread_collector,
)
from tests.support.prometheus import metric_total
from tests.support.viewability import script_token, token_fields

_cb = itertools.count(1)


def unique_cb() -> str:
    """A cachebuster no other request in this module uses (to find its event)."""
    return f"cb{next(_cb)}x{id(_cb) % 997}"


@dataclass
class Env:
    collector: ThreadCollector
    catalogue: Catalogue
    basic: Basic
    extra: dict[str, int]

    @property
    def port(self) -> int:
        return self.collector.port

    def get(self, target: str | bytes, **kw: Any) -> RawResponse:
        return request(self.port, target, **kw)

    def events_for(self, cachebuster: str) -> list[dict[str, Any]]:
        return [e for e in self.collector.events() if e["cachebuster"] == cachebuster]

    def one_event(self, cachebuster: str) -> dict[str, Any]:
        events = self.events_for(cachebuster)
        assert len(events) == 1, events
        return events[0]

    def metric(self, name: str, **labels: str) -> float:
        return metric_total(self.get("/metrics").body.decode(), name, **labels)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("collector-http")
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine: Engine = db.make_engine(url)
    cat = Catalogue(engine)
    basic = basic_catalogue(cat)
    extra = _pricing_catalogue(cat, basic)
    collector = start_thread_collector(settings_for(tmp, url), engine)
    try:
        yield Env(collector, cat, basic, extra)
    finally:
        collector.stop()
        engine.dispose()


def _pricing_catalogue(cat: Catalogue, b: Basic) -> dict[str, int]:
    """Trackers covering each pricing type; publisher 2 has a 40 % revshare base rule."""
    ids: dict[str, int] = {}
    # own cpc rule on the basic publisher
    # (its filter matches no line item: it applies only where it is assigned explicitly)
    cpc_rule = cat.payment_rule(
        b.publisher,
        pricing_type="cpc",
        cost_cpc_micros=250_000,
        line_item_filter="include",
        line_item_ids=(999_999,),
    )
    ids["cpc_imp"] = cat.tracker(
        "impression", b.advertiser, b.line_item, b.publisher, payment_rule_id=cpc_rule
    )
    ids["cpc_click"] = cat.tracker(
        "click", b.advertiser, b.line_item, b.publisher, payment_rule_id=cpc_rule
    )
    ids["cpc_rule"] = cpc_rule
    # revshare publisher, cpc line item ($1 per click)
    pub2 = cat.publisher("Pub 2")
    ids["rev_base"] = cat.payment_rule(
        pub2, is_base=True, pricing_type="revshare", revshare_ppm=400_000
    )
    li_cpc = cat.line_item(b.advertiser, revenue_type="cpc", revenue_value_micros=1_000_000)
    ids["rev_click"] = cat.tracker("click", b.advertiser, li_cpc, pub2)
    ids["rev_imp"] = cat.tracker("impression", b.advertiser, li_cpc, pub2)
    # a conditional rule on publisher 3 that only matches line item li_cpm3, priority 9
    pub3 = cat.publisher("Pub 3")
    cat.payment_rule(pub3, is_base=True, pricing_type="cpm", cost_cpm_micros=1_000_000)
    li3 = cat.line_item(b.advertiser, revenue_type="cpm", revenue_value_micros=6_000_000)
    ids["cond_rule"] = cat.payment_rule(
        pub3,
        pricing_type="cpm",
        cost_cpm_micros=3_000_000,
        priority=9,
        line_item_filter="include",
        line_item_ids=(li3,),
    )
    ids["cond_imp"] = cat.tracker("impression", b.advertiser, li3, pub3)
    # an inactive line item books nothing; an ended one neither
    li_off = cat.line_item(
        b.advertiser, revenue_type="cpm", revenue_value_micros=9_000_000, state="inactive"
    )
    ids["li_off_imp"] = cat.tracker("impression", b.advertiser, li_off, b.publisher)
    li_ended = cat.line_item(
        b.advertiser,
        revenue_type="cpm",
        revenue_value_micros=9_000_000,
        end_date=datetime.now(UTC) - timedelta(days=1),
    )
    ids["li_ended_imp"] = cat.tracker("impression", b.advertiser, li_ended, b.publisher)
    # trackers that must be rejected
    ids["inactive_imp"] = cat.tracker(
        "impression", b.advertiser, b.line_item, b.publisher, state="inactive"
    )
    ids["inactive_click"] = cat.tracker(
        "click",
        b.advertiser,
        b.line_item,
        b.publisher,
        state="inactive",
        landing_page_url="https://advertiser.example/inactive",
    )
    ids["plain_click"] = cat.tracker("click", b.advertiser, b.line_item, b.publisher)
    return ids


def no_cache_headers(resp: RawResponse) -> None:
    assert resp.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert resp.headers["pragma"] == "no-cache"
    assert resp.headers["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"


# ---- impressions ----


def test_impression_answers_a_pixel_and_records_every_field(env: Env) -> None:
    cb = unique_cb()
    b = env.basic
    resp = env.get(
        f"/imptr?id={b.imp}&cachebuster={cb}&t=2",
        headers={**BROWSER, "Referer": "https://news.example/article"},
    )
    assert resp.status == 200
    assert resp.headers["content-type"] == "image/gif"
    assert resp.body == PIXEL_GIF
    no_cache_headers(resp)
    event = env.one_event(cb)
    assert event["imp_type"] == 9
    assert event["tracker_id"] == b.imp
    assert (event["advertiser_id"], event["line_item_id"]) == (b.advertiser, b.line_item)
    assert (event["publisher_id"], event["placement_id"]) == (b.publisher, b.placement)
    assert event["payment_rule_id"] == b.base_rule
    assert event["media_cost_micros"] == 2_000  # 2.00 CPM
    assert event["booked_revenue_micros"] == 4_000  # 4.00 CPM line item
    assert event["revenue_type"] == "cpm"
    assert event["ancost_used"] is False
    assert event["ip"] == "127.0.0.0"
    assert event["user_agent"] == BROWSER_UA
    assert event["referrer"] == "https://news.example/article"
    assert event["invalid"] is False and event["invalid_reason"] is None
    assert event["redirect_url"] is None
    assert len(event["event_id"]) > 8
    now_us = datetime.now(UTC).timestamp() * 1e6
    assert now_us - 60e6 < event["ts"] <= now_us + 1e6


def test_default_t_is_a_pixel_and_t1_is_javascript(env: Env) -> None:
    cb = unique_cb()
    resp = env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb}")
    assert resp.body == PIXEL_GIF
    cb2 = unique_cb()
    resp = env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb2}&t=1")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("application/javascript")
    no_cache_headers(resp)
    assert len(env.events_for(cb)) == 1 and len(env.events_for(cb2)) == 1
    # the script hands the measurement script a token of its own impression
    assert token_fields(script_token(resp.body))[:3] == [
        env.one_event(cb2)["event_id"],
        env.one_event(cb2)["ts"],
        env.basic.imp,
    ]


def test_impression_by_code(env: Env) -> None:
    cb = unique_cb()
    assert env.get(f"/imptr?code=imp-code&cachebuster={cb}").status == 200
    assert env.one_event(cb)["tracker_id"] == env.basic.imp


# ---- redir ----


def test_unencoded_redir_with_ampersands_question_marks_equals_and_percents(env: Env) -> None:
    cb = unique_cb()
    target = "https://shop.example/p?q=a%20b&x=1&y=?z=%41"
    resp = env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb}&ancost=0.5&redir={target}")
    assert resp.status == 302
    assert resp.headers["location"] == target
    assert resp.body == b""
    no_cache_headers(resp)
    event = env.one_event(cb)
    assert event["redirect_url"] == target
    assert event["ancost_used"] is True and event["media_cost_micros"] == 500_000


def test_encoded_redir(env: Env) -> None:
    cb = unique_cb()
    resp = env.get(
        f"/clktrb?id={env.basic.click}&cachebuster={cb}"
        "&redir=https%3A%2F%2Fshop.example%2Fp%3Fa%3D1%26b%3D2"
    )
    assert resp.status == 302
    assert resp.headers["location"] == "https://shop.example/p?a=1&b=2"
    assert env.one_event(cb)["redirect_url"] == "https://shop.example/p?a=1&b=2"


def test_redir_not_in_last_position_is_ignored(env: Env) -> None:
    before = env.metric("adtrack_collector_redir_ignored_total", reason="not_last")
    cb = unique_cb()
    resp = env.get(f"/imptr?id={env.basic.imp}&redir=https%3A%2F%2Fa.example%2F&cachebuster={cb}")
    assert resp.status == 200 and resp.body == PIXEL_GIF
    assert env.one_event(cb)["redirect_url"] is None
    assert env.metric("adtrack_collector_redir_ignored_total", reason="not_last") == before + 1


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(document.cookie)",
        "javascript%3Aalert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "https%3A%2F%2Fa.example%2F%0D%0ASet-Cookie%3A%20x%3D1",
        "https:///nohost",
        "ftp://files.example/",
    ],
)
def test_unsafe_redir_is_refused_but_the_event_counts(env: Env, target: str) -> None:
    cb = unique_cb()
    resp = env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb}&redir={target}")
    assert resp.status == 200 and resp.body == PIXEL_GIF
    assert "location" not in resp.headers
    assert env.one_event(cb)["redirect_url"] is None
    # a click with a refused redir goes to the tracker's landing page instead
    cb = unique_cb()
    resp = env.get(f"/clktrb?id={env.basic.click}&cachebuster={cb}&redir={target}")
    assert resp.status == 302
    assert resp.headers["location"] == "https://advertiser.example/landing?x=1"
    assert env.one_event(cb)["redirect_url"] == "https://advertiser.example/landing?x=1"


def test_raw_crlf_in_the_request_line_cannot_inject_a_header(env: Env) -> None:
    with RawClient(env.port) as client:
        client.send(b"GET /imptr?id=1&redir=https://a.example/\r\nX-Injected: y HTTP/1.1\r\n\r\n")
        resp = client.read_response()
    assert resp.status < 500
    assert "x-injected" not in resp.headers
    assert "\r" not in resp.headers.get("location", "") and "\n" not in resp.headers.get(
        "location", ""
    )


# ---- clicks ----


def test_click_goes_to_redir_else_landing_page_else_a_page(env: Env) -> None:
    b, x = env.basic, env.extra
    cb1, cb2, cb3 = unique_cb(), unique_cb(), unique_cb()
    resp = env.get(f"/clktrb?id={b.click}&cachebuster={cb1}&redir=https://a.example/x?y=1&z=2")
    assert resp.status == 302 and resp.headers["location"] == "https://a.example/x?y=1&z=2"
    resp = env.get(f"/clktrb?id={b.click}&cachebuster={cb2}")
    assert resp.status == 302
    assert resp.headers["location"] == "https://advertiser.example/landing?x=1"
    resp = env.get(f"/clktrb?id={x['plain_click']}&cachebuster={cb3}")
    assert resp.status == 200 and resp.body == CLICK_PAGE_HTML
    assert resp.headers["content-type"].startswith("text/html")
    no_cache_headers(resp)
    for cb in (cb1, cb2, cb3):
        assert env.one_event(cb)["imp_type"] == 10


def test_clktr_alias_and_code(env: Env) -> None:
    cb1, cb2 = unique_cb(), unique_cb()
    assert env.get(f"/clktr?id={env.basic.click}&cachebuster={cb1}").status == 302
    assert env.get(f"/clktr?code=clk-code&cachebuster={cb2}").status == 302
    assert env.one_event(cb1)["imp_type"] == 10
    assert env.one_event(cb2)["tracker_id"] == env.basic.click


# ---- rejected requests ----


@pytest.mark.parametrize(
    ("query", "reason", "expect"),
    [
        ("id=987654", "unknown_tracker", "pixel"),
        ("id=abc", "unknown_tracker", "pixel"),
        ("code=no-such-code", "unknown_tracker", "pixel"),
        ("code=clk-code", "unknown_tracker", "pixel"),  # a click tracker's code on /imptr
        ("cachebuster=1", "missing_id", "pixel"),
        ("id={inactive_imp}", "inactive_tracker", "pixel"),
        ("id={click}", "wrong_tracker_type", "pixel"),
        # the default redirect policy never follows a redir for an id that records nothing
        ("id=987654&redir=https://a.example/", "unknown_tracker", "pixel"),
        ("redir=https://a.example/", "missing_id", "pixel"),
        ("id={inactive_imp}&redir=https://a.example/", "inactive_tracker", "pixel"),
    ],
)
def test_unknown_inactive_or_wrong_trackers_answer_but_record_nothing(
    env: Env, query: str, reason: str, expect: str
) -> None:
    query = query.format(click=env.basic.click, **env.extra)
    before = env.metric("adtrack_collector_rejected_total", reason=reason)
    count = len(env.collector.events())
    resp = env.get(f"/imptr?{query}")
    assert expect == "pixel"
    assert resp.status == 200 and resp.body == PIXEL_GIF
    assert "location" not in resp.headers
    no_cache_headers(resp)
    assert len(env.collector.events()) == count
    assert env.metric("adtrack_collector_rejected_total", reason=reason) == before + 1


def test_inactive_click_tracker_still_sends_the_visitor_on(env: Env) -> None:
    count = len(env.collector.events())
    resp = env.get(f"/clktrb?id={env.extra['inactive_click']}")
    assert resp.status == 302 and resp.headers["location"] == "https://advertiser.example/inactive"
    # ... to its own landing page, never to a redir (the default redirect policy)
    resp = env.get(f"/clktrb?id={env.extra['inactive_click']}&redir=https://a.example/next")
    assert resp.status == 302 and resp.headers["location"] == "https://advertiser.example/inactive"
    # an unknown click tracker has nowhere to send the visitor: 404, and no redir followed
    resp = env.get("/clktrb?id=987655&redir=https://a.example/next")
    assert resp.status == 404 and "location" not in resp.headers
    resp = env.get("/clktrb?id=987655")
    assert resp.status == 404
    assert len(env.collector.events()) == count


# ---- pricing and ancost ----


def _priced(env: Env, path: str, tracker: int, ancost: str | None = None) -> dict[str, Any]:
    cb = unique_cb()
    suffix = "" if ancost is None else f"&ancost={ancost}"
    resp = env.get(f"{path}?id={tracker}&cachebuster={cb}{suffix}")
    assert resp.status in (200, 302)
    return env.one_event(cb)


def test_cost_for_each_pricing_type_with_and_without_ancost(env: Env) -> None:
    b, x = env.basic, env.extra
    # cpm base rule (2.00 CPM), cpm line item (4.00 CPM)
    e = _priced(env, "/imptr", b.imp)
    assert (e["payment_rule_id"], e["media_cost_micros"], e["booked_revenue_micros"]) == (
        b.base_rule,
        2_000,
        4_000,
    )
    e = _priced(env, "/clktrb", b.click)
    assert (e["media_cost_micros"], e["booked_revenue_micros"]) == (0, 0)
    # the tracker's own cpc rule (0.25 per click)
    e = _priced(env, "/clktrb", x["cpc_click"])
    assert (e["payment_rule_id"], e["media_cost_micros"]) == (x["cpc_rule"], 250_000)
    e = _priced(env, "/imptr", x["cpc_imp"])
    assert (e["payment_rule_id"], e["media_cost_micros"]) == (x["cpc_rule"], 0)
    # revshare 40 % of a $1 cpc line item
    e = _priced(env, "/clktrb", x["rev_click"])
    assert (e["payment_rule_id"], e["media_cost_micros"], e["booked_revenue_micros"]) == (
        x["rev_base"],
        400_000,
        1_000_000,
    )
    assert e["revenue_type"] == "cpc"
    e = _priced(env, "/imptr", x["rev_imp"])
    assert (e["media_cost_micros"], e["booked_revenue_micros"]) == (0, 0)
    # a matching conditional rule beats the base rule
    e = _priced(env, "/imptr", x["cond_imp"])
    assert (e["payment_rule_id"], e["media_cost_micros"], e["booked_revenue_micros"]) == (
        x["cond_rule"],
        3_000,
        6_000,
    )
    # inactive / ended line items book nothing
    assert _priced(env, "/imptr", x["li_off_imp"])["booked_revenue_micros"] == 0
    assert _priced(env, "/imptr", x["li_ended_imp"])["booked_revenue_micros"] == 0
    # ancost overrides every rule, for impressions and clicks
    for path, tracker in (
        ("/imptr", b.imp),
        ("/clktrb", x["cpc_click"]),
        ("/clktrb", x["rev_click"]),
    ):
        e = _priced(env, path, tracker, ancost="1.234567")
        assert e["media_cost_micros"] == 1_234_567
        assert e["ancost_used"] is True and e["payment_rule_id"] is None
    assert _priced(env, "/clktrb", x["rev_click"], "0.1")["booked_revenue_micros"] == 1_000_000
    e = _priced(env, "/imptr", b.imp, ancost="999999.999999")
    assert e["media_cost_micros"] == 999_999_999_999


@pytest.mark.parametrize(
    "ancost", ["-1", "NaN", "inf", "1e3", "1000000", "0.0000001", "abc", "[ANCOST]", "%20"]
)
def test_invalid_ancost_is_ignored_and_counted(env: Env, ancost: str) -> None:
    before = env.metric("adtrack_collector_invalid_ancost_total")
    e = _priced(env, "/imptr", env.basic.imp, ancost=ancost)
    assert e["ancost_used"] is False
    assert e["payment_rule_id"] == env.basic.base_rule and e["media_cost_micros"] == 2_000
    assert env.metric("adtrack_collector_invalid_ancost_total") == before + 1


def test_empty_ancost_is_absent(env: Env) -> None:
    before = env.metric("adtrack_collector_invalid_ancost_total")
    e = _priced(env, "/imptr", env.basic.imp, ancost="")
    assert e["ancost_used"] is False
    assert env.metric("adtrack_collector_invalid_ancost_total") == before


# ---- invalid traffic ----


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, "bot"),
        ({"User-Agent": "curl/8.5.0"}, "bot"),
        ({}, "non_browser"),  # no user agent at all
        ({**BROWSER, "Purpose": "prefetch"}, "prefetch"),
        ({**BROWSER, "Sec-Purpose": "prefetch;prerender"}, "prefetch"),
    ],
)
def test_invalid_traffic_is_kept_apart(env: Env, headers: dict[str, str], reason: str) -> None:
    before = env.metric("adtrack_collector_events_total", type="impression", verdict=reason)
    cb = unique_cb()
    resp = env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb}", headers=headers)
    assert resp.status == 200 and resp.body == PIXEL_GIF
    event = env.one_event(cb)
    assert event["invalid"] is True and event["invalid_reason"] == reason
    after = env.metric("adtrack_collector_events_total", type="impression", verdict=reason)
    assert after == before + 1


def test_repeated_click_with_the_same_cachebuster_is_a_duplicate(env: Env) -> None:
    cb = unique_cb()
    for _ in range(3):
        assert env.get(f"/clktrb?id={env.basic.click}&cachebuster={cb}").status == 302
    events = env.events_for(cb)
    assert [e["invalid_reason"] for e in events] == [None, "duplicate_click", "duplicate_click"]
    # another tracker, or another cachebuster, is not a duplicate
    env.get(f"/clktrb?id={env.extra['plain_click']}&cachebuster={cb}")
    assert env.events_for(cb)[-1]["invalid_reason"] is None
    # impressions are never duplicates
    cb2 = unique_cb()
    env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb2}")
    env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb2}")
    assert [e["invalid"] for e in env.events_for(cb2)] == [False, False]


# ---- privacy ----


@pytest.mark.parametrize("signal", [{"Sec-GPC": "1"}, {"DNT": "1"}])
def test_privacy_signals_keep_no_ip_ua_or_referrer(env: Env, signal: dict[str, str]) -> None:
    cb = unique_cb()
    headers = {**BROWSER, "Referer": "https://news.example/", **signal}
    assert env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb}", headers=headers).status == 200
    event = env.one_event(cb)
    assert event["ip"] is None and event["user_agent"] is None and event["referrer"] is None
    assert event["invalid"] is False  # the verdict was still made on the real user agent
    cb = unique_cb()
    headers = {"User-Agent": "Googlebot/2.1", **signal}
    env.get(f"/imptr?id={env.basic.imp}&cachebuster={cb}", headers=headers)
    event = env.one_event(cb)
    assert event["invalid_reason"] == "bot" and event["user_agent"] is None


def test_privacy_signals_can_be_ignored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    settings = settings_for(tmp_path, url, ADTRACK_HONOUR_PRIVACY_SIGNALS="0")
    collector = start_thread_collector(settings, engine)
    try:
        headers = {**BROWSER, "DNT": "1", "Sec-GPC": "1"}
        request(collector.port, f"/imptr?id={basic.imp}&cachebuster=z", headers=headers)
        (event,) = collector.events()
        assert event["ip"] == "127.0.0.0" and event["user_agent"] == BROWSER_UA
    finally:
        collector.stop()
        engine.dispose()


# ---- HTTP behaviour ----


def test_head_answers_like_get_and_records_nothing(env: Env) -> None:
    count = len(env.collector.events())
    cb = unique_cb()
    for target, status in (
        (f"/imptr?id={env.basic.imp}&cachebuster={cb}", 200),
        (f"/imptr?id={env.basic.imp}&cachebuster={cb}&t=1", 200),
        (f"/clktrb?id={env.basic.click}&cachebuster={cb}", 302),
        (f"/imptr?id={env.basic.imp}&redir=https://a.example/", 302),
    ):
        get = env.get(target)
        head = env.get(target, method="HEAD")
        assert head.status == get.status == status
        assert head.body == b""
        # (a t=1 GET's script carries its impression's token: a HEAD, which records no
        # impression, gets the script without one, shorter)
        names = ("content-type", "location", "cache-control")
        if "t=1" not in target:
            names += ("content-length",)
        for name in names:
            assert head.headers.get(name) == get.headers.get(name)
    assert len(env.collector.events()) == count + 4  # only the GETs
    assert len(env.events_for(cb)) == 3  # GET click was recorded once, not the HEAD


def test_other_methods_and_paths(env: Env) -> None:
    count = len(env.collector.events())
    assert env.get(f"/imptr?id={env.basic.imp}", method="POST").status == 405
    assert env.get("/nothing-here").status == 404
    resp = env.get("/healthz")
    assert resp.status == 200 and resp.body == b"ok\n"
    metrics = env.get("/metrics")
    assert metrics.status == 200
    for name in (
        "adtrack_collector_requests_total",
        "adtrack_collector_events_total",
        "adtrack_collector_rejected_total",
        "adtrack_collector_invalid_ancost_total",
        "adtrack_collector_store_latency_seconds_bucket",
        "adtrack_collector_queue_depth",
    ):
        assert name.encode() in metrics.body
    assert len(env.collector.events()) == count


def test_keep_alive_and_pipelined_requests_are_answered_in_order(env: Env) -> None:
    cbs = [unique_cb() for _ in range(5)]
    b = env.basic
    targets = [
        f"/imptr?id={b.imp}&cachebuster={cbs[0]}",
        f"/clktrb?id={b.click}&cachebuster={cbs[1]}&redir=https://a.example/1",
        "/healthz",
        f"/imptr?id=987654&cachebuster={cbs[2]}",  # rejected: answered at once, kept in order
        f"/imptr?id={b.imp}&cachebuster={cbs[3]}&t=1",
        f"/clktrb?id={b.click}&cachebuster={cbs[4]}&redir=https://a.example/2",
    ]
    with RawClient(env.port) as client:
        batch = b"".join(
            f"GET {t} HTTP/1.1\r\nHost: x\r\nUser-Agent: {BROWSER_UA}\r\n\r\n".encode()
            for t in targets
        )
        client.send(batch)
        answers = [client.read_response() for _ in targets]
        # the connection stays usable afterwards
        again = client.get(f"/imptr?id={b.imp}")
    assert [a.status for a in answers] == [200, 302, 200, 200, 200, 302]
    assert answers[1].headers["location"] == "https://a.example/1"
    assert answers[2].body == b"ok\n"
    assert token_fields(script_token(answers[4].body))[0] == env.one_event(cbs[3])["event_id"]
    assert answers[5].headers["location"] == "https://a.example/2"
    assert again.status == 200
    for cb in (cbs[0], cbs[1], cbs[3], cbs[4]):
        assert len(env.events_for(cb)) == 1
    assert env.events_for(cbs[2]) == []


def test_http10_and_connection_close(env: Env) -> None:
    cb = unique_cb()
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as sock:
        sock.sendall(
            f"GET /imptr?id={env.basic.imp}&cachebuster={cb} HTTP/1.0\r\n"
            f"User-Agent: {BROWSER_UA}\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk  # the server closes after answering
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data
    assert data.endswith(PIXEL_GIF)
    with RawClient(env.port) as client:
        resp = client.get(f"/imptr?id={env.basic.imp}", headers={**BROWSER, "Connection": "close"})
        assert resp.headers["connection"] == "close"
        assert client.sock.recv(10) == b""
    assert len(env.events_for(cb)) == 1


def test_garbage_is_a_bad_request_not_a_crash(env: Env) -> None:
    with RawClient(env.port) as client:
        client.send(b"THIS IS NOT HTTP\r\n\r\n")
        assert client.read_response().status == 400
    with RawClient(env.port) as client:
        client.send(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.read_response().status == 414
    assert env.get("/healthz").status == 200


def test_recent_hits_show_the_latest_hits_of_a_tracker(env: Env) -> None:
    cb = unique_cb()
    env.get(
        f"/imptr?id={env.extra['cond_imp']}&cachebuster={cb}&ancost=0.2&redir=https://a.example/h"
    )
    env.get(f"/imptr?id={env.extra['inactive_imp']}")
    ring = env.collector.server.core.hits
    hits = ring.recent(env.extra["cond_imp"], 5)
    assert hits and hits[0].verdict == "valid"
    assert hits[0].ancost_used and hits[0].media_cost_micros == 200_000
    assert hits[0].redirect_url == "https://a.example/h"
    assert hits[0].user_agent == BROWSER_UA
    assert hits[0].event_id == env.one_event(cb)["event_id"]
    rejected = ring.recent(env.extra["inactive_imp"], 5)
    assert rejected and rejected[0].verdict == "rejected:inactive_tracker"
