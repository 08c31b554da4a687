"""Collector building blocks without a server: query parsing, ancost, privacy, invalid traffic,
pre-built answers, live hits, event ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pytest import MonkeyPatch

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.collector import core as core_module
from adtrack.collector.ancost import ANCOST_MAX_MICROS, parse_ancost
from adtrack.collector.core import EventIds, RequestView, TrackingCore
from adtrack.collector.hits import HitInfo, RecentHit, RecentHits, default_hits, recent_hits
from adtrack.collector.http_protocol import EventBatcher, _Slot
from adtrack.collector.invalid_traffic import (
    BotDetector,
    DuplicateClicks,
    is_prefetch,
    usable_cachebuster,
)
from adtrack.collector.privacy import opted_out, truncate_ip
from adtrack.collector.query import (
    RedirStatus,
    parse_query,
    parse_query_general,
    safe_redirect_target,
)
from adtrack.collector.records import MAX_REFERRER_BYTES, RecordFragments, tracker_fragment
from adtrack.collector.responses import PIXEL_GIF, AnswerKind, RawResponses, asgi_parts
from adtrack.collector.tracker_tables import CachedTracker
from adtrack.domain.events import Event
from adtrack.domain.model import LineItem, PaymentRule, PricingType, RevenueType
from adtrack.domain.pricing import PricingPlan, epoch_micros
from tests.support.events import record_fields

# ---- query: redir ----


def test_unencoded_redir_takes_everything_to_the_end() -> None:
    q = parse_query(b"id=7&cachebuster=9&redir=https://shop.example/a?b=c&d=e%20f&x=?=%")
    assert q.id == "7" and q.cachebuster == "9"
    assert q.redirect == b"https://shop.example/a?b=c&d=e%20f&x=?=%"
    assert q.redir_status == RedirStatus.OK


def test_parameters_after_an_unencoded_redir_belong_to_the_target() -> None:
    q = parse_query(b"id=7&redir=http://shop.example/p&ancost=1.5&cachebuster=3")
    assert q.redirect == b"http://shop.example/p&ancost=1.5&cachebuster=3"
    assert q.ancost is None and q.cachebuster is None


def test_encoded_redir_is_decoded_once() -> None:
    q = parse_query(b"id=7&redir=https%3A%2F%2Fshop.example%2Fa%3Fb%3Dc%26d%3De%2520f")
    assert q.redirect == b"https://shop.example/a?b=c&d=e%20f"  # %2520 -> %20, not a space
    assert q.redir_status == RedirStatus.OK


def test_encoded_redir_not_in_last_position_is_ignored_but_later_parameters_count() -> None:
    q = parse_query(b"id=7&redir=https%3A%2F%2Fshop.example%2F&cachebuster=42&ancost=1")
    assert q.redirect is None
    assert q.redir_status == RedirStatus.NOT_LAST
    assert q.cachebuster == "42" and q.ancost == "1" and q.id == "7"


def test_redir_first_or_alone() -> None:
    assert parse_query(b"redir=https://a.example/").redirect == b"https://a.example/"
    q = parse_query(b"redir=https://a.example/?id=5")
    assert q.id is None  # inside the target
    assert parse_query(b"id=1&redir=").redir_status == RedirStatus.ABSENT


def test_a_parameter_merely_ending_in_redir_is_not_redir() -> None:
    q = parse_query(b"id=1&noredir=https://a.example/")
    assert q.redirect is None and q.redir_status == RedirStatus.ABSENT


def test_unsafe_redirect_targets_are_refused() -> None:
    for target in (
        b"javascript:alert(1)",
        b"javascript%3Aalert(1)",
        b"data:text/html,hi",
        b"ftp://files.example/x",
        b"https%3A%2F%2Fa.example%2F%0D%0ASet-Cookie%3A%20x%3D1",
        b"https://",
        b"https:///path",
        b"http://:80/",
        b"https://a.example:8x/",
        b"//a.example/",
        b"[REDIRECT_URL]",
    ):
        q = parse_query(b"id=1&redir=" + target)
        assert q.redirect is None, target
        assert q.redir_status == RedirStatus.REFUSED, target


def test_targets_with_a_user_name_are_refused_in_every_disguise() -> None:
    for target in (
        b"https://user:pw@a.example/",
        b"https://good.example@evil.example/",
        b"HTTPS://good.example@evil.example",
        b"https://good.example\\@evil.example/",
        b"https://good.example\\evil.example/",
        b"https://good.example%40evil.example/",
        b"https://good.example%5C@evil.example/",
        b"https://good.example%5cevil.example/",
        b"https://good.example:443@evil.example/",
        b"https://good.example@evil.example?x=1",
        b"https://good.example@evil.example#frag",
    ):
        q = parse_query(b"id=1&redir=" + target)
        assert q.redirect is None, target
        assert q.redir_status == RedirStatus.USERINFO, target
    # percent-encoded as a whole (the value is decoded once): the same refusal
    q = parse_query(b"id=1&redir=https%3A%2F%2Fgood.example%40evil.example%2F")
    assert (q.redirect, q.redir_status) == (None, RedirStatus.USERINFO)
    # "@" after the host (path, query, fragment) is not a user name
    for target in (b"https://a.example/@x", b"https://a.example?u=a@b", b"https://a.example#@x"):
        assert parse_query(b"id=1&redir=" + target).redirect == target


def test_safe_targets_are_reencoded_to_plain_ascii() -> None:
    assert safe_redirect_target(b"HTTPS://A.example/x") == b"HTTPS://A.example/x"
    assert safe_redirect_target(b"https://[::1]:8443/x") == b"https://[::1]:8443/x"
    assert safe_redirect_target(b"https://a.example/p@q?r=s@t") == b"https://a.example/p@q?r=s@t"
    assert safe_redirect_target("https://é.example/a b".encode()) == (
        b"https://%C3%A9.example/a%20b"
    )
    assert safe_redirect_target(b"https://a.example/\r\nX: y") is None
    assert safe_redirect_target(b"https://a.example/\x00") is None


# ---- query: other parameters ----


def test_first_occurrence_wins_and_values_are_decoded() -> None:
    q = parse_query(b"id=1&id=2&cachebuster=a%20b&code=x%2Fy&t=1&t=2&other=zzz")
    assert (q.id, q.cachebuster, q.code, q.t) == ("1", "a b", "x/y", "1")


def test_overlong_values_are_cut_to_the_column_size() -> None:
    q = parse_query(b"id=1&cachebuster=" + b"x" * 1000)
    assert q.cachebuster == "x" * 255


def test_garbage_never_raises() -> None:
    for raw in (b"", b"&&&", b"=", b"id", b"id=&code=", b"%", b"%zz=%zz", b"\xff\xfe=\xff"):
        parse_query(raw)


_PIECES = st.sampled_from(
    [
        b"id=1",
        b"id=12",
        b"id=x",
        b"code=c1",
        b"cachebuster=123",
        b"cachebuster=%41",
        b"cachebuster=",
        b"ancost=0.5",
        b"ancost=-1",
        b"t=1",
        b"t=2",
        b"redir=https://a.example/p?x=1&y=2",
        b"redir=https%3A%2F%2Fa.example%2F",
        b"redir=javascript:x",
        b"redir=",
        b"x=1",
        b"",
        b"&",
        b"=",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.lists(_PIECES, max_size=6).map(b"&".join),
        st.binary(max_size=80),
        st.text(alphabet="idcoderachbustnt=&%?:/.1234567890abcxyz", max_size=60).map(str.encode),
    )
)
def test_fast_path_agrees_with_the_general_parser(query: bytes) -> None:
    assert parse_query(query) == parse_query_general(query)


# ---- ancost ----


def test_ancost_valid_values() -> None:
    assert parse_ancost("0") == 0
    assert parse_ancost("2") == 2_000_000
    assert parse_ancost("0.15") == 150_000
    assert parse_ancost(".5") == 500_000
    assert parse_ancost("3.") == 3_000_000
    assert parse_ancost("999999.999999") == ANCOST_MAX_MICROS
    assert parse_ancost("1.5000000") == 1_500_000  # trailing zeros beyond micros are exact
    assert parse_ancost("000012.000001") == 12_000_001


def test_ancost_invalid_values() -> None:
    for raw in (
        "-1",
        "+1",
        "NaN",
        "nan",
        "inf",
        "Infinity",
        "1e3",
        "1,5",
        "1.2.3",
        ".",
        "",
        " 1",
        "1000000",
        "999999.9999991",
        "0.0000001",
        "[ANCOST]",
        "١٢",  # non-ASCII digits
        "9" * 50,
    ):
        assert parse_ancost(raw) is None, raw


# ---- privacy ----


def test_ip_truncation() -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
    assert truncate_ip("2001:db8:1:2:3:4:5:6") == "2001:db8:1::"
    assert truncate_ip("::ffff:198.51.100.9") == "198.51.100.0"
    assert truncate_ip("fe80::1%eth0") == "fe80::"
    assert truncate_ip("not an ip") is None
    assert truncate_ip(None) is None


def test_privacy_signals() -> None:
    assert opted_out(b"1", None)
    assert opted_out(None, b"1")
    assert opted_out(b" 1 ", b"0")
    assert not opted_out(b"0", b"0")
    assert not opted_out(None, None)


# ---- invalid traffic ----


def test_bots_by_user_agent_with_cache() -> None:
    bots = BotDetector(max_entries=2)
    assert bots.reason("Googlebot/2.1 (+http://www.google.com/bot.html)") == "bot"
    assert bots.reason("curl/8.5.0") == "bot"
    assert bots.reason("") == "non_browser"
    assert bots.reason(None) == "non_browser"
    browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
    assert bots.reason(browser) is None
    assert bots.classify(browser.encode())[:2] == (browser, None)
    # the record's user_agent (the fields derived from it follow from collector/visitor.py)
    assert bots.classify(browser.encode())[2] == b"," + orjson.dumps(browser)
    assert bots.classify(None)[:2] == (None, "non_browser")
    for i in range(10):  # the cache stays bounded
        bots.classify(f"agent {i}".encode())
    assert len(bots._raw) <= 2 and len(bots._cache) <= 2
    # the oldest entries go first, and a forgotten user agent is judged again, the same way
    assert list(bots._raw) == [b"agent 8", b"agent 9"]
    assert bots.classify(b"Googlebot/2.1")[:2] == ("Googlebot/2.1", "bot")
    assert list(bots._raw) == [b"agent 9", b"Googlebot/2.1"]


def test_referrer_fragments_are_cut_and_cached_within_bounds() -> None:
    fragments = RecordFragments()
    page = b"https://publisher.example/article/42?q=caf\xc3\xa9"
    text, fragment = fragments.referrer(page)
    assert text == "https://publisher.example/article/42?q=caf\u00e9"
    assert fragment == b"," + orjson.dumps(text)
    assert fragments.referrer(page) is fragments.referrer_cache[page]  # the second hit is cached
    # a long referrer is cut to MAX_REFERRER_BYTES (invalid UTF-8 replaced) and not cached
    long_page = b"https://publisher.example/" + b"a" * 5000 + b"\xff"
    text, fragment = fragments.referrer(long_page)
    assert text == long_page[:MAX_REFERRER_BYTES].decode()
    assert orjson.loads(b"[" + fragment[1:] + b"]") == [text]
    assert long_page not in fragments.referrer_cache
    assert fragments.referrer(b"\xff/x")[0] == "\ufffd/x"
    for i in range(5000):  # bounded: cleared when full
        fragments.referrer(b"https://p.example/%d" % i)
    assert 0 < len(fragments.referrer_cache) <= 4096


def test_prefetch_headers() -> None:
    assert is_prefetch(b"prefetch")
    assert is_prefetch(b"prefetch;prerender")
    assert is_prefetch(b"Preview")
    assert not is_prefetch(b"")
    assert not is_prefetch(None)
    assert not is_prefetch(b"navigate")


def test_duplicate_clicks_window_memory_and_macros() -> None:
    now = [1000.0]
    dup = DuplicateClicks(window_seconds=10, max_entries=3, clock=lambda: now[0])
    assert not dup.check_and_remember(1, "cb1")
    assert dup.check_and_remember(1, "cb1")
    assert not dup.check_and_remember(2, "cb1")  # another tracker
    now[0] += 10.5  # the window passed
    assert not dup.check_and_remember(1, "cb1")
    for i in range(10):
        dup.check_and_remember(3, f"x{i}")
    assert len(dup) <= 3
    assert not dup.check_and_remember(1, "[CACHEBUSTER]")
    assert not dup.check_and_remember(1, "[CACHEBUSTER]")  # unreplaced macro: no identity
    assert not dup.check_and_remember(1, None)
    dup.check_and_remember(4, "z")
    dup.forget(4, "z")
    assert not dup.check_and_remember(4, "z")
    assert not usable_cachebuster("${CACHEBUSTER}") and usable_cachebuster("12345")


# ---- answers ----


def test_raw_answers_carry_no_cache_headers_and_right_lengths() -> None:
    responses = RawResponses()
    pixel = responses.get(AnswerKind.PIXEL)
    head, _, body = pixel.partition(b"\r\n\r\n")
    assert body == PIXEL_GIF and len(PIXEL_GIF) == 43
    assert b"Content-Type: image/gif" in head
    assert b"Cache-Control: no-cache, no-store, must-revalidate" in head
    assert b"Pragma: no-cache" in head
    assert b"Expires: Thu, 01 Jan 1970 00:00:00 GMT" in head
    assert b"Content-Length: 43" in head
    assert b"Date: " in head
    head_only = responses.get(AnswerKind.PIXEL, head_only=True)
    assert head_only == head + b"\r\n\r\n"
    redirect = responses.redirect(b"https://a.example/x?y=1")
    assert redirect.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"Location: https://a.example/x?y=1\r\n" in redirect
    assert b"Content-Length: 0" in redirect
    unavailable = responses.get(AnswerKind.UNAVAILABLE)
    assert unavailable.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in unavailable
    status, headers, body = asgi_parts(AnswerKind.REDIRECT, b"https://a.example/")
    assert status == 302 and (b"location", b"https://a.example/") in headers


def test_date_header_follows_the_clock() -> None:
    responses = RawResponses()
    responses.tick(0)
    assert b"Date: Thu, 01 Jan 1970 00:00:00 GMT" in responses.get(AnswerKind.PIXEL)
    responses.tick(86_400)
    assert b"Date: Fri, 02 Jan 1970 00:00:00 GMT" in responses.get(AnswerKind.PIXEL)


# ---- live hits, event ids ----


def _info(tracker: int, n: int) -> HitInfo:
    return HitInfo(f"e{n}", n, 9, tracker, None, None, n, False, None, "ua", None)


def test_recent_hits_are_bounded_and_newest_first() -> None:
    hits = RecentHits(per_tracker=3, max_trackers=2)
    hits.add_stored([_info(1, n) for n in range(5)])  # one tracker's batch: extended at once
    hits.add(1, RecentHit(99, "rejected:inactive_tracker", 0, False, None, None, None))
    got = hits.recent(1, 10)
    assert [h.ts for h in got] == [99, 4, 3]
    assert got[1].verdict == "valid" and got[1].event_id == "e4"
    hits.add_stored([_info(2, 1)])
    hits.add_stored([_info(3, 1)])  # a third tracker: the oldest ring goes
    assert hits.recent(1) == []
    assert [h.ts for h in hits.recent(3)] == [1]


def test_recent_hits_split_a_mixed_batch_by_tracker_in_order() -> None:
    hits = RecentHits(per_tracker=3)
    hits.add_stored([_info(1, 1), _info(2, 2), _info(1, 3), _info(1, 4), _info(1, 5)])
    assert [h.ts for h in hits.recent(1)] == [5, 4, 3]
    assert [h.ts for h in hits.recent(2)] == [2]
    hits.add_stored([])
    assert [h.ts for h in hits.recent(1)] == [5, 4, 3]


def test_event_ids_are_unique_per_process_and_generator() -> None:
    a, b = EventIds(), EventIds()
    ids = {a() for _ in range(1000)} | {b() for _ in range(1000)}
    assert len(ids) == 2000
    assert all(len(i) <= 40 for i in ids)  # fits events.event_id


# ---- the event record ------------------------------------------------------------------


# The publisher's base rule of the tracker _record_core builds: 2.00 CPM.
_BASE_RULE = PaymentRule(
    id=8,
    publisher_id=4,
    name="base",
    is_base=True,
    pricing_type=PricingType.CPM,
    cost_cpm_micros=2_000_000,
)


def _record_core(
    max_tag_plans: int = 4096, rules: list[PaymentRule] | None = None
) -> tuple[TrackingCore, CachedTracker]:
    plan = PricingPlan(
        line_item=LineItem(
            id=3,
            advertiser_id=2,
            name="li",
            revenue_type=RevenueType.CPM,
            revenue_value_micros=5_000_000,
        ),
        tracker_rule=None,
        publisher_rules=[_BASE_RULE] if rules is None else rules,
        advertiser_id=2,
        line_item_id=3,
    )
    tracker = CachedTracker(
        id=1,
        imp_type=9,
        code=None,
        active=True,
        advertiser_id=2,
        line_item_id=3,
        publisher_id=4,
        placement_id=None,
        landing_page=None,
        plan=plan,
        record_fragment=tracker_fragment(9, 1, 2, 3, 4, None),
    )

    class OneTracker:
        def by_id(self, tracker_id: int) -> CachedTracker | None:
            return tracker if tracker_id == 1 else None

        def __len__(self) -> int:
            return 1

        version = 1
        generation = 0

    core = TrackingCore(
        OneTracker(),  # type: ignore[arg-type]
        hits=RecentHits(),
        max_tag_plans=max_tag_plans,
    )
    return core, tracker


@settings(max_examples=200, deadline=None)
@given(
    cachebuster=st.one_of(st.none(), st.text(max_size=40)),
    user_agent=st.one_of(st.none(), st.binary(max_size=60)),
    referrer=st.one_of(st.none(), st.binary(max_size=60)),
    ancost=st.sampled_from([None, "0.5", "bad"]),
    redir=st.sampled_from([None, 'https://a.example/p?x="1"&y=é']),
    dnt=st.booleans(),
    ip=st.sampled_from([None, "203.0.113.9", "2001:db8::1", "not-an-ip"]),
)
def test_the_record_is_the_json_of_an_event(
    cachebuster: str | None,
    user_agent: bytes | None,
    referrer: bytes | None,
    ancost: str | None,
    redir: str | None,
    dnt: bool,
    ip: str | None,
) -> None:
    core, tracker = _record_core()
    query = "id=1"
    if cachebuster is not None:
        query += "&cachebuster=" + quote(cachebuster, safe="")
    if ancost is not None:
        query += "&ancost=" + ancost
    if redir is not None:
        query += "&redir=" + redir
    view = RequestView(
        "GET",
        "/imptr",
        query.encode(),
        user_agent,
        referrer,
        None,
        None,
        b"1" if dnt else None,
        ip,
        None,
    )
    outcome = core.handle(view)
    assert outcome.record is not None and outcome.event is not None
    Event.from_bytes(outcome.record)  # the aggregator's decoder accepts it
    data = record_fields(outcome.record)  # format 1, every field of Event in order
    event = SimpleNamespace(**data)
    assert event.event_id == outcome.event.event_id and event.tracker_id == 1
    assert (event.imp_type, event.advertiser_id, event.line_item_id) == (9, 2, 3)
    assert (event.publisher_id, event.placement_id) == (4, None)
    assert event.cachebuster == (None if cachebuster is None else cachebuster[:255])
    assert event.ancost_used is (ancost == "0.5")
    assert event.media_cost_micros == (500_000 if ancost == "0.5" else 2_000)
    assert event.payment_rule_id == (None if ancost == "0.5" else 8)
    assert event.booked_revenue_micros == 5_000 and event.revenue_type == "cpm"
    if dnt:
        assert (event.ip, event.user_agent, event.referrer) == (None, None, None)
    else:
        assert event.ip == truncate_ip(ip)
        assert event.user_agent == (user_agent.decode("utf-8", "replace") if user_agent else None)
        assert event.referrer == (referrer.decode("utf-8", "replace") if referrer else None)
    assert event.invalid is (event.invalid_reason is not None)
    # (the addresses drawn are in no data centre, and a hit is neither prefetch nor a click)
    assert event.invalid_reason == core.bots.reason(
        user_agent.decode("utf-8", "replace") if user_agent else None
    )
    expected_redirect = None if redir is None else safe_redirect_target(redir.encode())
    assert event.redirect_url == (None if expected_redirect is None else expected_redirect.decode())


def test_the_process_wide_ring_is_what_recent_hits_reads() -> None:
    tracker_id = 987_654_321  # no test uses it
    default_hits().add(tracker_id, RecentHit(1, "valid", 0, False, None, None, None))
    assert [hit.ts for hit in recent_hits(tracker_id)] == [1]


# ---- tag plans: a known tag is answered and recorded exactly as the general path would ----

_TAG_PIECES = st.sampled_from(
    [
        b"ancost=0.5",
        b"ancost=bad",
        b"ancost=",
        b"t=1",
        b"t=2",
        b"code=x",
        b"x=1",
        b"redir=https://a.example/p?x=1",  # an un-encoded target: the cachebuster is in it
        b"redir=https%3A%2F%2Fa.example%2Fq",
        b"redir=javascript:alert(1)",
        b"redir=",
        b"cachebuster",
        b"cachebuster=first",
        b"",
    ]
)


def _comparable(outcome: object) -> tuple[object, ...]:
    """An outcome without what differs from hit to hit anyway (event id and time, and so the
    t=1 script's token)."""
    kind, location, record, info, lookup, body, view_state, verdict, set_cookie = outcome  # type: ignore[misc]
    data = None if record is None else {**record_fields(record), "event_id": 0, "ts": 0}
    hit = None if info is None else info._replace(event_id="", ts=0)
    return (
        kind,
        location,
        data,
        hit,
        lookup,
        body is None,
        view_state,
        verdict,
        set_cookie is None,
    )


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(["/imptr", "/clktrb"]),
    before=st.lists(_TAG_PIECES, max_size=3),
    after=st.lists(_TAG_PIECES, max_size=3),
    first=st.text(max_size=12),
    second=st.one_of(st.text(max_size=12), st.binary(max_size=300).map(quote)),
    method=st.sampled_from(["GET", "HEAD"]),
    name=st.sampled_from([b"cachebuster", b"xcachebuster"]),  # the second is no cachebuster
)
# the boundaries of the split, always tried: a target that holds the cachebuster, an earlier
# bare "cachebuster" (which wins), a parameter name that merely ends in "cachebuster"
@example("/imptr", [b"redir=https://a.example/p?x=1"], [], "a", "b", "GET", b"cachebuster")
@example("/imptr", [b"cachebuster"], [], "a", "b", "GET", b"cachebuster")
@example("/imptr", [], [], "a", "b", "GET", b"xcachebuster")
def test_a_known_tag_is_handled_as_the_general_path_would(
    path: str,
    before: list[bytes],
    after: list[bytes],
    first: str,
    second: str,
    method: str,
    name: bytes,
) -> None:
    def query(cachebuster: str) -> bytes:
        pieces = [b"id=1", *before, name + b"=" + quote(cachebuster).encode(), *after]
        return b"&".join(pieces)

    def view(cachebuster: str) -> RequestView:
        return RequestView(method, path, query(cachebuster), b"Mozilla/5.0", None, None, None,
                           None, "203.0.113.9", None)  # fmt: skip

    warm, _ = _record_core()
    warm.handle(view(first))  # the tag's plan, made from another cachebuster
    fresh, _ = _record_core(max_tag_plans=0)  # the general path every time
    assert _comparable(warm.handle(view(second))) == _comparable(fresh.handle(view(second)))
    for attribute in ("requests", "redir", "rejected", "invalid_ancost"):
        # the warm core saw two hits, the fresh one one: the same counts, twice
        warm_count = getattr(warm.metrics, attribute)
        fresh_count = getattr(fresh.metrics, attribute)
        if isinstance(fresh_count, int):
            assert warm_count == 2 * fresh_count
        else:
            assert warm_count == {key: 2 * value for key, value in fresh_count.items()}


def test_a_tag_plan_is_dropped_when_the_cache_moves_on() -> None:
    core, tracker = _record_core()
    hit = RequestView("GET", "/imptr", b"id=1&cachebuster=1", b"Mozilla/5.0")
    assert core.handle(hit).record is not None
    assert len(core._tag_plans) == 1
    inactive = CachedTracker(
        **{**{f: getattr(tracker, f) for f in tracker.__slots__}, "active": False}
    )
    core.cache.by_id = lambda tracker_id: inactive  # type: ignore[method-assign]
    assert core.handle(hit).record is not None  # the same generation: the plan still holds
    core.cache.generation += 1  # type: ignore[attr-defined]
    outcome = core.handle(hit)
    assert outcome.record is None and core.metrics.rejected == {"inactive_tracker": 1}


def test_a_tag_plan_reprices_when_a_rule_starts_or_ends(monkeypatch: MonkeyPatch) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = start + timedelta(hours=1)
    promo = PaymentRule(
        id=9,
        publisher_id=4,
        name="promo",
        pricing_type=PricingType.CPM,
        cost_cpm_micros=7_000_000,
        start_date=start,
        end_date=end,
    )
    core, _ = _record_core(rules=[_BASE_RULE, promo])
    hit = RequestView("GET", "/imptr", b"id=1&cachebuster=1", b"Mozilla/5.0")
    seen = []
    for at in (start - timedelta(microseconds=1), start, end - timedelta(microseconds=1), end):
        monkeypatch.setattr(core_module, "_time_ns", lambda at=at: epoch_micros(at) * 1000)
        record = core.handle(hit).record
        assert record is not None
        event = record_fields(record)
        seen.append((event["payment_rule_id"], event["media_cost_micros"]))
    assert len(core._tag_plans) == 1  # one tag, priced again at each boundary
    assert seen == [(8, 2_000), (9, 7_000), (9, 7_000), (8, 2_000)]


def test_duplicate_clicks_use_fixed_memory_and_never_pause() -> None:
    now = [0.0]
    dup = DuplicateClicks(window_seconds=600, max_entries=1_000, clock=lambda: now[0])
    for i in range(50_000):  # far more clicks than it holds
        now[0] += 0.001
        assert not dup.check_and_remember(7, f"cb-{i}")
        assert dup.check_and_remember(7, f"cb-{i}")  # the latest is always remembered
    assert len(dup) <= 1_000
    assert len(dup._table) == 2 * 1_000  # a fingerprint and a time per entry


def test_duplicate_clicks_forget_the_older_entry_of_a_full_bucket() -> None:
    now = [50.0]
    dup = DuplicateClicks(window_seconds=60, max_entries=2, clock=lambda: now[0])  # one bucket
    assert not dup.check_and_remember(1, "a")
    now[0] += 1
    assert not dup.check_and_remember(1, "b")
    now[0] += 1
    assert dup.check_and_remember(1, "a") and dup.check_and_remember(1, "b")
    assert not dup.check_and_remember(1, "c")  # takes the older entry: "a"'s
    assert dup.check_and_remember(1, "b") and dup.check_and_remember(1, "c")
    assert not dup.check_and_remember(1, "a")  # forgotten; now remembered instead of "b"
    assert len(dup) == 2
    now[0] = 111.999  # "c", remembered at 52, is still within the 60 s window...
    assert dup.check_and_remember(1, "c")
    now[0] = 112.0  # ...and from here on it is not
    assert not dup.check_and_remember(1, "c")  # (remembered again, from now)
    assert len(dup) == 1  # "c"; "a", remembered at 52, has expired too
    dup.forget(1, "c")
    assert len(dup) == 0 and not dup.check_and_remember(1, "c")


class _Answers:
    """A connection as the batcher sees it: counts the answers it is told to write."""

    def __init__(self) -> None:
        self.answered = 0

    def drain(self) -> None:
        self.answered += 1


def _add_hit(batcher: EventBatcher, core: TrackingCore, connection: _Answers, n: int) -> None:
    """A hit with cachebuster ``n``, handed to ``batcher`` as the listener would."""
    outcome = core.handle(RequestView("GET", "/imptr", b"id=1&cachebuster=%d" % n, b"Mozilla/5.0"))
    assert outcome.record is not None
    slot = _Slot(b"answer", False, 0, connection, outcome)  # type: ignore[arg-type]
    batcher.add(slot, outcome.record)


def test_shutdown_waits_for_pending_records_of_a_synchronous_writer(tmp_path: Path) -> None:
    """``wait_idle`` (what a clean shutdown awaits) returns as soon as records waiting for a
    synchronous writer are written and answered, whether or not their write was scheduled."""

    async def scenario(schedule_first: bool) -> int:
        writer = LocalEventLogWriter(tmp_path / str(schedule_first), fsync="interval")
        core, _ = _record_core()
        batcher = EventBatcher(writer, core, RawResponses())
        connection = _Answers()
        for n in range(3):  # fewer than a synchronous batch: they wait for the loop iteration
            _add_hit(batcher, core, connection, n)
        if not schedule_first:
            batcher._scheduled = False  # as if the scheduled write had not been arranged
        await asyncio.wait_for(batcher.wait_idle(), 2.0)
        assert batcher.pending == 0
        await writer.close()
        return connection.answered

    for schedule_first in (True, False):
        assert asyncio.run(scenario(schedule_first)) == 3
        records = LocalEventLogReader(tmp_path / str(schedule_first), consumer="t").read_now(10)
        assert [record_fields(r)["cachebuster"] for r in records.records] == ["0", "1", "2"]


def test_requests_arriving_while_an_append_waits_join_one_batch_that_starts_when_they_stop() -> (
    None
):
    """With an asynchronous writer (JetStream), records that arrive while an append waits for
    its acks are gathered into one next append instead of one append per loop iteration; that
    append starts when the waiting one returns, or as soon as a loop iteration brings no more
    records (the collector would otherwise sit idle). Every answer still waits for its own
    append."""

    class HeldWriter:
        """Appends that return when the test says so."""

        def __init__(self) -> None:
            self.appends: list[list[bytes]] = []
            self.held: list[asyncio.Future[None]] = []

        async def append(self, records: list[bytes]) -> None:
            self.appends.append(list(records))
            held = asyncio.get_running_loop().create_future()
            self.held.append(held)
            await held

    async def iterations(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def scenario() -> list[list[str]]:
        writer = HeldWriter()
        core, _ = _record_core()
        batcher = EventBatcher(writer, core, RawResponses())  # type: ignore[arg-type]
        connection = _Answers()

        def add(n: int) -> None:
            _add_hit(batcher, core, connection, n)

        for n in range(3):  # one loop iteration's requests: appended at once, nothing waits
            add(n)
        await iterations(2)
        assert len(writer.appends) == 1
        add(3)  # while that append waits: one request an iteration, for two iterations...
        await iterations(1)
        add(4)
        await iterations(1)
        assert len(writer.appends) == 1  # ...gathered, not appended one by one
        await iterations(2)  # an iteration without requests: they go, as one append
        assert len(writer.appends) == 2 and connection.answered == 0
        add(5)
        add(6)
        writer.held[0].set_result(None)  # the first append returns: its three are answered
        await iterations(4)
        assert connection.answered == 3
        assert len(writer.appends) == 3
        for held in writer.held[1:]:
            held.set_result(None)
        await asyncio.wait_for(batcher.wait_idle(), 2.0)
        assert connection.answered == 7 and batcher.pending == 0
        return [[record_fields(r)["cachebuster"] for r in batch] for batch in writer.appends]

    batches = asyncio.run(scenario())
    assert batches == [["0", "1", "2"], ["3", "4"], ["5", "6"]]
