"""The redirect policy end to end: real collectors (one per ADTRACK_REDIRECT_POLICY value) on a
migrated SQLite catalogue, real HTTP requests, the local event log.

The whole matrix: policy (the server's, and advertisers that override it) x tracker (active
impression / click tracker, inactive, unknown id, missing id, wrong kind) x target (inside the
advertiser's landing domains, outside, with a user name): status, Location, whether an event
was stored, and the refusals by reason in the metrics.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from adtrack.collector.responses import PIXEL_GIF
from tests.support.collector import (
    Catalogue,
    RawResponse,
    ThreadCollector,
    request,
    settings_for,
    start_thread_collector,
    wait_for_events,
)

POLICIES = ("trackers", "allow-list", "open")
ALLOWED = "https://www.shop.example/p?a=1&b=2"  # inside *.shop.example
OUTSIDE = "https://elsewhere.example/x"
USERINFO = "https://www.shop.example@evil.example/"
TARGETS = (ALLOWED, OUTSIDE, USERINFO)
DOMAINS = ["shop.example", "*.shop.example", "xn--bcher-kva.example"]
CASES = ("active", "inactive", "unknown", "missing", "wrong_kind")
UNKNOWN_ID = 987_001
_cb = itertools.count(1)


@dataclass
class Advertiser:
    override: str | None  # its redirect policy override
    imp: int
    click: int
    inactive_imp: int
    inactive_click: int
    landing: str  # its click trackers' landing page


@dataclass
class Bed:
    catalogue: Catalogue
    advertisers: dict[str | None, Advertiser]  # by override
    collectors: dict[str, ThreadCollector]  # by server policy


def _advertiser(cat: Catalogue, override: str | None, publisher: int) -> Advertiser:
    name = override or "default"
    adv = cat.advertiser(
        f"Adv {name}",
        landing_domains=DOMAINS,
        redirect_policy=override,
    )
    li = cat.line_item(adv)
    landing = f"https://landing-{name}.example/"

    def tracker(kind: str, state: str) -> int:
        extra = {"landing_page_url": landing} if kind == "click" else {}
        return cat.tracker(kind, adv, li, publisher, state=state, **extra)

    return Advertiser(
        override,
        tracker("impression", "active"),
        tracker("click", "active"),
        tracker("impression", "inactive"),
        tracker("click", "inactive"),
        landing,
    )


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    tmp: Path = tmp_path_factory.mktemp("redirect-policy")
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine: Engine = db.make_engine(url)
    cat = Catalogue(engine)
    publisher = cat.publisher()
    cat.payment_rule(publisher, is_base=True)
    advertisers = {
        override: _advertiser(cat, override, publisher) for override in (None, *POLICIES)
    }
    collectors: dict[str, ThreadCollector] = {}
    try:
        for policy in POLICIES:
            settings = settings_for(tmp / policy, url, ADTRACK_REDIRECT_POLICY=policy)
            collectors[policy] = start_thread_collector(settings, engine, poll_interval=0.1)
        yield Bed(cat, advertisers, collectors)
    finally:
        for collector in collectors.values():
            collector.stop()
        engine.dispose()


def _query_id(adv: Advertiser, endpoint: str, case: str) -> str:
    impression = endpoint == "/imptr"
    if case == "active":
        return f"id={adv.imp if impression else adv.click}&"
    if case == "inactive":
        return f"id={adv.inactive_imp if impression else adv.inactive_click}&"
    if case == "unknown":
        return f"id={UNKNOWN_ID}&"
    if case == "wrong_kind":
        return f"id={adv.click if impression else adv.imp}&"
    return ""  # missing


@dataclass(frozen=True)
class Expected:
    status: int
    location: str | None
    stored: bool
    refusal: str | None  # the metric reason, if the redir was not followed


_REJECT = {
    "inactive": "inactive_tracker",
    "unknown": "unknown_tracker",
    "missing": "missing_id",
    "wrong_kind": "wrong_tracker_type",
}


def expected(server: str, adv: Advertiser, endpoint: str, case: str, target: str) -> Expected:
    """What the documented policy says, written out independently of the collector's code."""
    known = case in ("active", "inactive", "wrong_kind")  # the id names a tracker
    policy = (adv.override or server) if known else server
    if target == USERINFO:
        refusal: str | None = "userinfo"
    elif policy == "open":
        refusal = None
    elif case != "active":
        refusal = _REJECT[case]
    elif policy == "allow-list" and target != ALLOWED:
        refusal = "not_allowed_domain"
    else:
        refusal = None
    stored = case == "active"
    if refusal is None:
        return Expected(302, target, stored, None)
    if endpoint == "/imptr":
        return Expected(200, None, stored, refusal)
    if case in ("unknown", "wrong_kind"):
        return Expected(404, None, stored, refusal)
    if case == "missing":
        return Expected(400, None, stored, refusal)
    return Expected(302, adv.landing, stored, refusal)  # active or inactive click tracker


def redir_ignored(collector: ThreadCollector) -> Counter[str]:
    text = request(collector.port, "/metrics").body.decode()
    found = re.findall(
        r'^adtrack_collector_redir_ignored_total\{reason="(\w+)"\} (\S+)$', text, re.M
    )
    return Counter({reason: int(float(value)) for reason, value in found})


def _check(resp: RawResponse, want: Expected, what: str) -> None:
    assert resp.status == want.status, what
    assert resp.headers.get("location") == want.location, what
    if want.status == 200:
        assert resp.body == PIXEL_GIF, what


@pytest.mark.parametrize("server", POLICIES)
def test_the_redirect_policy_matrix(bed: Bed, server: str) -> None:
    collector = bed.collectors[server]
    before = redir_ignored(collector)
    refusals: Counter[str] = Counter()
    stored: dict[str, str | None] = {}  # cachebuster -> the Location sent
    not_stored: list[str] = []
    for adv in bed.advertisers.values():
        for endpoint, case, target in itertools.product(("/imptr", "/clktrb"), CASES, TARGETS):
            want = expected(server, adv, endpoint, case, target)
            # twice: the first hit builds the tag's plan, the second one reuses it
            for _ in range(2):
                cb = f"rp{next(_cb)}"
                query = f"{_query_id(adv, endpoint, case)}cachebuster={cb}&redir={target}"
                what = f"{server} / advertiser {adv.override} / {endpoint}?{query}"
                _check(request(collector.port, f"{endpoint}?{query}"), want, what)
                if want.stored:
                    stored[cb] = want.location
                else:
                    not_stored.append(cb)
                if want.refusal is not None:
                    refusals[want.refusal] += 1
    events = [
        e
        for e in wait_for_events(collector.log_dir, len(stored))
        if str(e["cachebuster"]).startswith("rp")
    ]
    assert sorted(e["cachebuster"] for e in events) == sorted(stored)
    # each event keeps the Location actually sent (None: a pixel), never a refused target
    assert {e["cachebuster"]: e["redirect_url"] for e in events} == stored
    assert redir_ignored(collector) - before == refusals
    # every reason of the policy shows up somewhere in the matrix
    assert "userinfo" in refusals
    if server != "open":
        assert {"unknown_tracker", "missing_id", "inactive_tracker", "wrong_tracker_type"} <= set(
            refusals
        )


def test_an_advertiser_override_beats_the_server_policy(bed: Bed) -> None:
    # server "open", advertiser "trackers": its inactive tracker does not redirect
    adv = bed.advertisers["trackers"]
    resp = request(bed.collectors["open"].port, f"/imptr?id={adv.inactive_imp}&redir={OUTSIDE}")
    assert resp.status == 200 and "location" not in resp.headers
    # ... while an unknown id (no advertiser) follows the server's "open"
    resp = request(bed.collectors["open"].port, f"/imptr?id={UNKNOWN_ID}&redir={OUTSIDE}")
    assert resp.status == 302 and resp.headers["location"] == OUTSIDE
    # server "trackers", advertiser "allow-list": outside its domains, the landing page
    adv = bed.advertisers["allow-list"]
    resp = request(bed.collectors["trackers"].port, f"/clktrb?id={adv.click}&redir={OUTSIDE}")
    assert resp.status == 302 and resp.headers["location"] == adv.landing
    # server "allow-list", advertiser "open": an inactive tracker still redirects anywhere
    adv = bed.advertisers["open"]
    resp = request(
        bed.collectors["allow-list"].port, f"/clktrb?id={adv.inactive_click}&redir={OUTSIDE}"
    )
    assert resp.status == 302 and resp.headers["location"] == OUTSIDE


@pytest.mark.parametrize(
    "target",
    [
        "https://www.shop.example\\@evil.example/",
        "https://www.shop.example%40evil.example/",
        "https://www.shop.example%5C@evil.example/",
        "https%3A%2F%2Fwww.shop.example%40evil.example%2F",  # encoded as a whole
        "https://user:password@www.shop.example/",
    ],
)
def test_user_names_are_refused_in_every_mode_but_the_event_counts(bed: Bed, target: str) -> None:
    adv = bed.advertisers[None]
    for collector in bed.collectors.values():
        cb = f"ui{next(_cb)}"
        before = redir_ignored(collector)["userinfo"]
        resp = request(collector.port, f"/clktrb?id={adv.click}&cachebuster={cb}&redir={target}")
        assert resp.status == 302 and resp.headers["location"] == adv.landing
        [event] = [e for e in wait_for_events(collector.log_dir, 1) if e["cachebuster"] == cb]
        assert event["redirect_url"] == adv.landing
        assert redir_ignored(collector)["userinfo"] == before + 1


@pytest.mark.parametrize(
    ("target", "followed"),
    [
        ("https://shop.example/", True),
        ("https://SHOP.Example:8443/x", True),  # case and port do not matter
        ("https://shop.example./x", True),  # nor a trailing dot
        ("https://a.b.shop.example/", True),
        ("https://shop%2Eexample/", True),  # what a browser goes to: shop.example
        ("https://notshop.example/", False),
        ("https://shop.example.evil.example/", False),
        ("https://evil.example/?shop.example", False),
        ("https://evil.example/#@shop.example", False),
        ("https://[::1]/", False),
        ("https://xn--bcher-kva.example/", True),
        ("https://b%C3%BCcher.example/", True),  # IDNA: "bücher.example", the same host
        ("https://B%C3%9CCHER.example/", True),
        ("https://bucher.example/", False),
    ],
)
def test_allow_list_host_matching(bed: Bed, target: str, followed: bool) -> None:
    adv = bed.advertisers["allow-list"]
    resp = request(bed.collectors["trackers"].port, f"/imptr?id={adv.imp}&redir={target}")
    if followed:
        assert resp.status == 302 and resp.headers["location"] == target, target
    else:
        assert resp.status == 200 and "location" not in resp.headers, target
        assert resp.body == PIXEL_GIF


def _advertiser_id_of(bed: Bed, adv: Advertiser) -> int:
    with bed.catalogue.engine.connect() as conn:
        row = conn.execute(t.trackers.select().where(t.trackers.c.id == adv.imp)).first()
    assert row is not None
    return int(row.advertiser_id)


def _eventually(fetch: Any, done: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_landing_domain_changes_reach_the_collector(bed: Bed) -> None:
    adv = bed.advertisers["allow-list"]
    advertiser_id = _advertiser_id_of(bed, adv)
    port = bed.collectors["trackers"].port
    target = "https://new-shop.example/offer"
    query = f"/clktrb?id={adv.click}&cachebuster=same&redir={target}"
    assert request(port, query).headers["location"] == adv.landing
    bed.catalogue.update(t.advertisers, advertiser_id, landing_domains=["new-shop.example"])
    resp = _eventually(lambda: request(port, query), lambda r: r.headers.get("location") == target)
    assert resp.headers["location"] == target
    # and the override itself: back to the server's "trackers", anything goes
    bed.catalogue.update(
        t.advertisers, advertiser_id, landing_domains=["shop.example"], redirect_policy=None
    )
    other = "https://other.example/"
    resp = _eventually(
        lambda: request(port, f"/clktrb?id={adv.click}&cachebuster=same&redir={other}"),
        lambda r: r.headers.get("location") == other,
    )
    assert resp.headers["location"] == other
    bed.catalogue.update(
        t.advertisers,
        advertiser_id,
        landing_domains=DOMAINS,
        redirect_policy="allow-list",
    )
    resp = _eventually(
        lambda: request(port, f"/clktrb?id={adv.click}&redir={other}"),
        lambda r: r.headers.get("location") == adv.landing,
    )
    assert resp.headers["location"] == adv.landing


def test_live_hits_show_why_a_redirect_was_not_followed(bed: Bed) -> None:
    adv = bed.advertisers["allow-list"]
    collector = bed.collectors["trackers"]
    cb = f"lh{next(_cb)}"
    request(collector.port, f"/clktrb?id={adv.click}&cachebuster={cb}&redir={OUTSIDE}")
    request(collector.port, f"/clktrb?id={adv.inactive_click}&redir={ALLOWED}")
    [event] = [e for e in wait_for_events(collector.log_dir, 1) if e["cachebuster"] == cb]
    hits = _eventually(
        lambda: collector.server.core.hits.recent(adv.click, 1),
        lambda hits: hits and hits[0].event_id == event["event_id"],
    )
    assert (hits[0].verdict, hits[0].redirect_refused, hits[0].redirect_url) == (
        "valid",
        "not_allowed_domain",
        adv.landing,
    )
    [rejected] = collector.server.core.hits.recent(adv.inactive_click, 1)
    assert rejected.verdict == "rejected:inactive_tracker"
    assert rejected.redirect_refused == "inactive_tracker"
    assert rejected.redirect_url == adv.landing
