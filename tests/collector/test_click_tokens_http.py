"""Click tokens over real HTTP: a collector on a free loopback port, a migrated SQLite
catalogue, the local event log. The ``Location`` of a click whose target asks for a token
carries one that reads back to that click (its event, tracker, line item, placement, payment
rule); without the macro or the parameter the ``Location`` is what it always was."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import db
from adtrack.bootstrap import build_click_tokens
from adtrack.domain.click_tokens import ClickTokens, TokenEvent
from tests.support.collector import (
    Basic,
    Catalogue,
    ThreadCollector,
    basic_catalogue,
    request,
    settings_for,
    start_thread_collector,
)

_cb = itertools.count(1)
LANDING = "https://shop.example/spring?s=${SSP_DATA}&utm=x"


def unique_cb() -> str:
    return f"tok{next(_cb)}"


@dataclass
class Env:
    collector: ThreadCollector
    basic: Basic
    tokens: ClickTokens
    macro_click: int  # landing page with ${SSP_DATA}
    param_click: int  # ssp_data_param "sspdata", landing page without the macro
    inactive_click: int  # inactive, landing page with the macro
    rule: int  # macro_click's payment rule

    def click(
        self, tracker_id: int, redir: str | None = None, **kw: Any
    ) -> tuple[str, dict[str, Any] | None]:
        """The Location of one click and its event (None when nothing was recorded)."""
        cachebuster = unique_cb()
        target = f"/clktrb?id={tracker_id}&cachebuster={cachebuster}"
        if redir is not None:
            target += f"&redir={redir}"  # last, as tags send it
        answer = request(self.collector.port, target, **kw)
        assert answer.status == 302, answer
        events = [e for e in self.collector.events() if e["cachebuster"] == cachebuster]
        assert len(events) <= 1
        return answer.headers["location"], (events[0] if events else None)

    def read(self, token: str) -> TokenEvent:
        return self.tokens.read(token, time.time_ns() // 1000)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("click-tokens")
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine: Engine = db.make_engine(url)
    cat = Catalogue(engine)
    basic = basic_catalogue(cat)
    rule = cat.payment_rule(basic.publisher, pricing_type="cpc", cost_cpc_micros=100_000)
    macro_click = cat.tracker(
        "click",
        basic.advertiser,
        basic.line_item,
        basic.publisher,
        placement_id=basic.placement,
        payment_rule_id=rule,
        landing_page_url=LANDING,
    )
    param_click = cat.tracker(
        "click",
        basic.advertiser,
        basic.line_item,
        basic.publisher,
        landing_page_url="https://shop.example/p#top",
        ssp_data_param="sspdata",
    )
    inactive_click = cat.tracker(
        "click",
        basic.advertiser,
        basic.line_item,
        basic.publisher,
        state="inactive",
        landing_page_url=LANDING,
    )
    settings = settings_for(tmp, url)
    collector = start_thread_collector(settings, engine)
    try:
        yield Env(
            collector,
            basic,
            build_click_tokens(settings),
            macro_click,
            param_click,
            inactive_click,
            rule,
        )
    finally:
        collector.stop()
        engine.dispose()


def only_param(location: str, name: str) -> str:
    [value] = parse_qs(urlsplit(location).query)[name]
    return value


def test_the_landing_page_macro_carries_a_token_of_that_click(env: Env) -> None:
    location, event = env.click(env.macro_click)
    assert event is not None
    assert location.startswith("https://shop.example/spring?s=")
    assert location.endswith("&utm=x")
    token = only_param(location, "s")
    assert "SSP_DATA" not in location and event["event_id"] not in token  # opaque
    click = env.read(token)
    assert click.event_id == event["event_id"]
    assert click.ts_us == event["ts"]
    assert click.invalid is False
    assert (click.tracker_id, click.advertiser_id, click.line_item_id) == (
        env.macro_click,
        env.basic.advertiser,
        env.basic.line_item,
    )
    assert (click.publisher_id, click.placement_id) == (env.basic.publisher, env.basic.placement)
    assert click.payment_rule_id == event["payment_rule_id"] == env.rule
    # the event keeps the target as configured (the macro, re-encoded for the header)
    assert event["redirect_url"] == "https://shop.example/spring?s=$%7BSSP_DATA%7D&utm=x"


def test_every_click_of_a_tag_gets_its_own_token(env: Env) -> None:
    # the same tag (a cached plan) twice: two clicks, two tokens, each reading back to its own
    first, first_event = env.click(env.macro_click)
    second, second_event = env.click(env.macro_click)
    assert first_event is not None and second_event is not None
    assert first != second
    assert env.read(only_param(first, "s")).event_id == first_event["event_id"]
    assert env.read(only_param(second, "s")).event_id == second_event["event_id"]


@pytest.mark.parametrize(
    "redir",
    [
        "https://land.example/a?t=${SSP_DATA}",
        "https://land.example/a?t=[SSP_DATA]",
        "https://land.example/a?t=%24%7BSSP_DATA%7D",
        "https://land.example/a?t=%5bSSP_DATA%5d",
    ],
)
def test_a_redir_macro_in_any_spelling(env: Env, redir: str) -> None:
    location, event = env.click(env.macro_click, redir)
    assert event is not None
    assert location.startswith("https://land.example/a?t=")
    assert env.read(only_param(location, "t")).event_id == event["event_id"]


def test_an_encoded_redir_with_the_macro(env: Env) -> None:
    encoded = quote("https://land.example/b?t=${SSP_DATA}&u=1", safe="")
    location, event = env.click(env.macro_click, encoded)
    assert event is not None
    assert location.startswith("https://land.example/b?t=") and location.endswith("&u=1")
    assert env.read(only_param(location, "t")).event_id == event["event_id"]


def test_every_macro_is_replaced(env: Env) -> None:
    location, event = env.click(
        env.macro_click, "https://land.example/c?a=${SSP_DATA}&b=[SSP_DATA]"
    )
    assert event is not None
    query = parse_qs(urlsplit(location).query)
    assert query["a"] == query["b"]
    assert env.read(query["a"][0]).event_id == event["event_id"]


def test_the_tracker_parameter_is_appended_before_the_fragment(env: Env) -> None:
    location, event = env.click(env.param_click)
    assert event is not None
    assert location.startswith("https://shop.example/p?sspdata=") and location.endswith("#top")
    click = env.read(only_param(location.removesuffix("#top"), "sspdata"))
    assert (click.event_id, click.tracker_id) == (event["event_id"], env.param_click)
    # the rule that priced the click (the publisher's conditional rule beats its base rule)
    assert click.placement_id is None and click.payment_rule_id == event["payment_rule_id"]

    with_query, event = env.click(env.param_click, "https://land.example/d?x=1")
    assert event is not None
    assert with_query.startswith("https://land.example/d?x=1&sspdata=")
    assert env.read(only_param(with_query, "sspdata")).event_id == event["event_id"]


def test_without_macro_or_parameter_the_location_is_unchanged(env: Env) -> None:
    location, event = env.click(env.basic.click)
    assert event is not None
    assert location == "https://advertiser.example/landing?x=1"
    redirected, _ = env.click(env.basic.click, "https://land.example/e?x=%7B1%7D")
    assert redirected == "https://land.example/e?x=%7B1%7D"
    # a tracker without a parameter leaves a redir alone even when another's would take one
    plain, _ = env.click(env.basic.click, "https://land.example/f")
    assert plain == "https://land.example/f"


def test_an_invalid_click_gets_a_token_that_says_so(env: Env) -> None:
    location, event = env.click(env.macro_click, headers={"User-Agent": "curl/8.5.0"})
    assert event is not None and event["invalid"] is True
    assert env.read(only_param(location, "s")).invalid is True


def test_no_click_recorded_no_token_and_no_macro_left(env: Env) -> None:
    location, event = env.click(env.inactive_click)
    assert event is None
    assert location == "https://shop.example/spring?s=&utm=x"
    head = request(
        env.collector.port, f"/clktrb?id={env.macro_click}&cachebuster=h1", method="HEAD"
    )
    assert head.status == 302
    assert head.headers["location"] == "https://shop.example/spring?s=&utm=x"


def test_impressions_do_not_touch_the_macro(env: Env) -> None:
    answer = request(
        env.collector.port,
        f"/imptr?id={env.basic.imp}&cachebuster={unique_cb()}&redir=https://land.example/i?t=[SSP_DATA]",
    )
    assert answer.status == 302
    assert answer.headers["location"] == "https://land.example/i?t=[SSP_DATA]"
