"""Invalid traffic end to end over real HTTP: a collector on a free loopback port that trusts
``X-Forwarded-For``, a migrated SQLite catalogue, the local event log. Each reason is recorded
and counted; a browser from an ordinary address stays valid."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adtrack.adapters.sql import db
from adtrack.collector.privacy import truncate_ip
from adtrack.collector.responses import PIXEL_GIF
from tests.support.collector import (
    BROWSER,
    BROWSER_UA,
    Basic,
    Catalogue,
    ThreadCollector,
    basic_catalogue,
    request,
    settings_for,
    start_thread_collector,
)
from tests.support.prometheus import metric_total

_cb = itertools.count(1)
AWS = "52.94.76.1"  # AWS us-west-2 (the providers' published ranges)
AWS_V6 = "2600:1f18::1"
ORDINARY = "81.2.69.160"  # an ISP's address, in no cloud provider's ranges


@dataclass
class Env:
    collector: ThreadCollector
    basic: Basic

    def hit(
        self, path: str, headers: dict[str, str], cachebuster: str | None = None
    ) -> dict[str, Any]:
        """One hit of the basic tracker; its stored event."""
        cachebuster = cachebuster or f"ivt{next(_cb)}"
        tracker = self.basic.imp if path == "/imptr" else self.basic.click
        response = request(
            self.collector.port, f"{path}?id={tracker}&cachebuster={cachebuster}", headers=headers
        )
        assert response.status == (200 if path == "/imptr" else 302)
        if path == "/imptr":
            assert response.body == PIXEL_GIF
        return [e for e in self.collector.events() if e["cachebuster"] == cachebuster][-1]

    def events_counted(self, verdict: str) -> float:
        metrics = request(self.collector.port, "/metrics").body.decode()
        return metric_total(metrics, "adtrack_collector_events_total", verdict=verdict)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("collector-ivt")
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(settings_for(tmp, url), engine, trust_forwarded_for=True)
    try:
        yield Env(collector, basic)
    finally:
        collector.stop()
        engine.dispose()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        # not a browser, app web view or known SDK
        ({"User-Agent": "Mozilla/5.0", "X-Forwarded-For": ORDINARY}, "non_browser"),
        ({"User-Agent": "Deno/1.40.0", "X-Forwarded-For": ORDINARY}, "non_browser"),
        ({"X-Forwarded-For": ORDINARY}, "non_browser"),  # no user agent at all
        # known bots and spiders
        (
            {
                "User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0; "
                "+http://www.bing.com/bingbot.htm)",
                "X-Forwarded-For": ORDINARY,
            },
            "bot",
        ),
        ({"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, "bot"),
        # a browser's user agent from a data centre (the last X-Forwarded-For entry counts)
        ({**BROWSER, "X-Forwarded-For": AWS}, "datacentre"),
        ({**BROWSER, "X-Forwarded-For": f"{ORDINARY}, {AWS}"}, "datacentre"),
        ({**BROWSER, "X-Forwarded-For": AWS_V6}, "datacentre"),
        # a bot's verdict wins over its address
        ({"User-Agent": "curl/8.5.0", "X-Forwarded-For": AWS}, "bot"),
        # a browser from an ordinary address, or from Cloudflare WARP / iCloud Private Relay
        ({**BROWSER, "X-Forwarded-For": ORDINARY}, None),
        ({**BROWSER, "X-Forwarded-For": "104.28.0.1"}, None),
        ({**BROWSER, "X-Forwarded-For": f"{AWS}, {ORDINARY}"}, None),
        ({**BROWSER}, None),  # loopback
    ],
)
def test_each_reason_is_recorded_and_counted(
    env: Env, headers: dict[str, str], reason: str | None
) -> None:
    verdict = reason or "valid"
    before = env.events_counted(verdict)
    event = env.hit("/imptr", headers)
    assert event["invalid"] is (reason is not None)
    assert event["invalid_reason"] == reason
    assert env.events_counted(verdict) == before + 1


def test_the_full_address_is_judged_and_the_truncated_one_kept(env: Env) -> None:
    event = env.hit("/imptr", {**BROWSER, "X-Forwarded-For": AWS})
    assert event["invalid_reason"] == "datacentre"
    assert event["ip"] == truncate_ip(AWS) == "52.94.76.0"
    assert event["user_agent"] == BROWSER_UA
    # with a privacy signal nothing is kept, but the verdict still stands
    event = env.hit("/imptr", {**BROWSER, "X-Forwarded-For": AWS, "Sec-GPC": "1"})
    assert event["invalid_reason"] == "datacentre" and event["ip"] is None


def test_an_invalid_click_does_not_make_the_next_one_a_duplicate(env: Env) -> None:
    cachebuster = f"ivt{next(_cb)}"
    event = env.hit("/clktrb", {**BROWSER, "X-Forwarded-For": AWS}, cachebuster)
    assert event["invalid_reason"] == "datacentre"
    event = env.hit("/clktrb", {**BROWSER, "X-Forwarded-For": ORDINARY}, cachebuster)
    assert event["invalid"] is False
    event = env.hit("/clktrb", {**BROWSER, "X-Forwarded-For": ORDINARY}, cachebuster)
    assert event["invalid_reason"] == "duplicate_click"


def test_without_trust_the_forwarded_address_is_ignored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(settings_for(tmp_path, url), engine)
    try:
        event = Env(collector, basic).hit("/imptr", {**BROWSER, "X-Forwarded-For": AWS})
        assert event["invalid"] is False and event["ip"] == "127.0.0.0"
    finally:
        collector.stop()
        engine.dispose()


def test_the_data_centre_check_can_be_turned_off(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    settings = settings_for(tmp_path, url, ADTRACK_IVT_DATACENTRE="0")
    collector = start_thread_collector(settings, engine, trust_forwarded_for=True)
    try:
        event = Env(collector, basic).hit("/imptr", {**BROWSER, "X-Forwarded-For": AWS})
        assert event["invalid"] is False and event["ip"] == "52.94.76.0"
    finally:
        collector.stop()
        engine.dispose()
