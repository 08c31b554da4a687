"""Country, device type, OS and browser of events, end to end over real HTTP: collectors on
loopback ports (the fast listener, and the ASGI transport of the main port under uvicorn), a
migrated SQLite catalogue, the events read back from the local event log as stored.

The client address comes from ``X-Forwarded-For`` (the collector's flag, or
``ADTRACK_TRUST_FORWARDED_FOR``), the only way a test on loopback can send from 8.8.8.8."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.asgi import TrackingASGIApp, tracking_routes
from adtrack.collector.hits import RecentHits
from adtrack.collector.listener import build_core
from adtrack.collector.tracker_cache import TrackerCache
from tests.support.collector import (
    BROWSER,
    BROWSER_UA,
    Basic,
    Catalogue,
    ThreadCollector,
    basic_catalogue,
    read_events,
    request,
    settings_for,
    start_thread_collector,
)
from tests.support.geoip import write_country_mmdb
from tests.support.net import LOOPBACK, free_port, wait_for_port

_cb = itertools.count(1)

WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAMSUNG_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "85.0.4183.93/6.0 TV Safari/537.36"
)
ROKU = "Roku/DVP-9.10 (519.10E04111A)"
FIRE_TV = (
    "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)

# (address sent in X-Forwarded-For, truncated address stored, country)
ADDRESSES = [
    ("8.8.8.8", "8.8.8.0", "US"),  # ARIN
    ("193.0.6.139", "193.0.6.0", "NL"),  # RIPE NCC
    ("202.12.29.205", "202.12.29.0", "AU"),  # APNIC
    ("200.160.2.3", "200.160.2.0", "BR"),  # LACNIC
    ("196.216.2.1", "196.216.2.0", "ZA"),  # AFRINIC
    ("2001:4860:4860::8888", "2001:4860:4860::", "US"),  # IPv6
    ("2001:67c:2e8::1", "2001:67c:2e8::", "NL"),
    ("::ffff:193.0.6.139", "193.0.6.0", "NL"),  # IPv4-mapped IPv6: as IPv4
    ("10.20.30.40", "10.20.30.0", None),  # private
    ("192.168.1.7", "192.168.1.0", None),
    ("127.0.0.1", "127.0.0.0", None),  # loopback
    ("::1", "::", None),
    ("169.254.1.1", "169.254.1.0", None),  # link-local
    ("fe80::1", "fe80::", None),
    ("100.64.1.1", "100.64.1.0", None),  # shared (CGNAT)
    ("not-an-address", None, None),
]


def unique_cb() -> str:
    return f"visitor{next(_cb)}"


@dataclass
class Env:
    collector: ThreadCollector
    basic: Basic

    def hit(
        self,
        path: str = "/imptr",
        *,
        forwarded_for: str | None = None,
        user_agent: str = BROWSER_UA,
        **headers: str,
    ) -> dict[str, Any]:
        """One hit, and its event as stored."""
        cb = unique_cb()
        tracker = self.basic.imp if path == "/imptr" else self.basic.click
        sent = {"User-Agent": user_agent, **headers}
        if forwarded_for is not None:
            sent["X-Forwarded-For"] = forwarded_for
        answer = request(self.collector.port, f"{path}?id={tracker}&cachebuster={cb}", headers=sent)
        assert answer.status in (200, 302), answer
        [event] = [e for e in self.collector.events() if e["cachebuster"] == cb]
        return event


def _collector(tmp: Path, *, trust_flag: bool = False, **env: str) -> tuple[Env, Engine]:
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(
        settings_for(tmp, url, **env), engine, trust_forwarded_for=trust_flag
    )
    return Env(collector, basic), engine


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A collector started with --trust-forwarded-for."""
    env, engine = _collector(tmp_path_factory.mktemp("visitor-trusting"), trust_flag=True)
    try:
        yield env
    finally:
        env.collector.stop()
        engine.dispose()


# ---- country ----


@pytest.mark.parametrize(("address", "stored_ip", "country"), ADDRESSES)
def test_country_of_the_full_address(
    trusting: Env, address: str, stored_ip: str | None, country: str | None
) -> None:
    event = trusting.hit(forwarded_for=address)
    assert event["ip"] == stored_ip
    assert event["country"] == country


def test_the_last_forwarded_entry_is_the_client(trusting: Env) -> None:
    # what the load balancer appended is last; what the client sent before it is not trusted
    assert trusting.hit(forwarded_for="8.8.8.8, 193.0.6.139")["country"] == "NL"
    assert trusting.hit(forwarded_for="193.0.6.139,8.8.8.8")["country"] == "US"
    assert trusting.hit(forwarded_for="8.8.8.8, 10.0.0.1")["country"] is None


def test_a_known_address_is_cached(trusting: Env) -> None:
    visitor = trusting.collector.server.core.visitor
    trusting.hit(forwarded_for="202.12.29.205")
    cached = visitor.addresses["202.12.29.205"]
    assert trusting.hit(forwarded_for="202.12.29.205")["country"] == "AU"
    assert visitor.addresses["202.12.29.205"] is cached


def test_clicks_record_country_and_device_too(trusting: Env) -> None:
    event = trusting.hit("/clktrb", forwarded_for="193.0.6.139", user_agent=IPHONE_SAFARI)
    assert event["imp_type"] == 10
    assert (event["country"], event["device_type"], event["os"], event["browser"]) == (
        "NL",
        "mobile",
        "iOS",
        "Mobile Safari",
    )


def test_forwarded_for_is_ignored_unless_trusted(tmp_path: Path) -> None:
    env, engine = _collector(tmp_path)
    try:
        event = env.hit(forwarded_for="8.8.8.8")
        assert event["ip"] == "127.0.0.0" and event["country"] is None  # the peer: loopback
    finally:
        env.collector.stop()
        engine.dispose()


def test_trust_forwarded_for_setting_without_the_flag(tmp_path: Path) -> None:
    env, engine = _collector(tmp_path, ADTRACK_TRUST_FORWARDED_FOR="1")
    try:
        event = env.hit(forwarded_for="2001:4860:4860::8888")
        assert event["ip"] == "2001:4860:4860::" and event["country"] == "US"
    finally:
        env.collector.stop()
        engine.dispose()


def test_geoip_db_setting_replaces_the_bundled_data(tmp_path: Path) -> None:
    mmdb = write_country_mmdb(
        tmp_path / "newer.mmdb",
        {
            "8.8.8.0/24": {"country": {"iso_code": "FR"}},
            "2001:4860::/32": {"country": {"iso_code": "CA"}},
        },
    )
    env, engine = _collector(tmp_path, trust_flag=True, ADTRACK_GEOIP_DB=str(mmdb))
    try:
        assert env.hit(forwarded_for="8.8.8.8")["country"] == "FR"
        assert env.hit(forwarded_for="2001:4860:4860::8888")["country"] == "CA"
        assert env.hit(forwarded_for="193.0.6.139")["country"] is None  # not in that file
    finally:
        env.collector.stop()
        engine.dispose()


# ---- device type, OS and browser ----


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (WINDOWS_CHROME, ("desktop", "Windows", "Chrome")),
        (BROWSER_UA, ("desktop", "Linux", "Chrome")),
        (IPHONE_SAFARI, ("mobile", "iOS", "Mobile Safari")),
        (ANDROID_PHONE, ("mobile", "Android", "Chrome Mobile")),
        (IPAD_SAFARI, ("tablet", "iOS", "Mobile Safari")),
        (ANDROID_TABLET, ("tablet", "Android", "Chrome")),
        (SAMSUNG_TV, ("ctv", "Tizen", "Safari")),
        (ROKU, ("ctv", "Roku", "Roku")),
        (FIRE_TV, ("ctv", "Android", "Chrome Mobile")),
    ],
)
def test_device_of_the_user_agent(
    trusting: Env, user_agent: str, expected: tuple[str, str, str]
) -> None:
    event = trusting.hit(forwarded_for="8.8.8.8", user_agent=user_agent)
    assert event["user_agent"] == user_agent
    assert (event["device_type"], event["os"], event["browser"]) == expected
    assert event["invalid"] is False


def test_a_known_user_agent_is_cached(trusting: Env) -> None:
    visitor = trusting.collector.server.core.visitor
    trusting.hit(user_agent=ANDROID_TABLET)
    cached = visitor.user_agents[ANDROID_TABLET.encode()]
    assert trusting.hit(user_agent=ANDROID_TABLET)["device_type"] == "tablet"
    assert visitor.user_agents[ANDROID_TABLET.encode()] is cached


def test_no_user_agent_no_device(trusting: Env) -> None:
    cb = unique_cb()
    answer = request(
        trusting.collector.port, f"/imptr?id={trusting.basic.imp}&cachebuster={cb}", headers={}
    )
    assert answer.status == 200
    [event] = [e for e in trusting.collector.events() if e["cachebuster"] == cb]
    assert event["user_agent"] is None
    assert (event["device_type"], event["os"], event["browser"]) == (None, None, None)
    assert event["invalid_reason"] == "non_browser"  # (no user agent: not a browser)


# ---- privacy signals ----


@pytest.mark.parametrize("signal", [{"Sec-GPC": "1"}, {"DNT": "1"}])
def test_privacy_signal_keeps_country_and_device_type_only(
    trusting: Env, signal: dict[str, str]
) -> None:
    event = trusting.hit(
        forwarded_for="193.0.6.139",
        user_agent=IPHONE_SAFARI,
        Referer="https://news.example/a",
        **signal,
    )
    assert (event["ip"], event["user_agent"], event["referrer"]) == (None, None, None)
    assert (event["os"], event["browser"]) == (None, None)
    assert (event["country"], event["device_type"]) == ("NL", "mobile")
    # the same visitor without the signal: everything (both pieces come from the same caches)
    event = trusting.hit(forwarded_for="193.0.6.139", user_agent=IPHONE_SAFARI)
    assert (event["ip"], event["country"]) == ("193.0.6.0", "NL")
    assert (event["device_type"], event["os"], event["browser"]) == (
        "mobile",
        "iOS",
        "Mobile Safari",
    )


def test_privacy_signals_ignored_keep_everything(tmp_path: Path) -> None:
    env, engine = _collector(tmp_path, trust_flag=True, ADTRACK_HONOUR_PRIVACY_SIGNALS="0")
    try:
        event = env.hit(forwarded_for="8.8.8.8", user_agent=IPAD_SAFARI, DNT="1")
        assert (event["ip"], event["country"], event["user_agent"]) == (
            "8.8.8.0",
            "US",
            IPAD_SAFARI,
        )
        assert (event["device_type"], event["os"], event["browser"]) == (
            "tablet",
            "iOS",
            "Mobile Safari",
        )
    finally:
        env.collector.stop()
        engine.dispose()


# ---- the main port's tracking paths (ASGI) ----


def test_main_port_tracking_paths_trust_the_setting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    log_dir = tmp_path / "eventlog"
    settings = settings_for(tmp_path, url, ADTRACK_TRUST_FORWARDED_FOR="1")
    core = build_core(settings, cache, hits=RecentHits())
    app = Starlette(
        routes=tracking_routes(TrackingASGIApp(core, LocalEventLogWriter(log_dir, fsync="always")))
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(LOOPBACK, port, 15)
    try:
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}") as client:
            for cb, address, agent in [
                ("m1", "193.0.6.139", SAMSUNG_TV),
                ("m2", "2001:4860:4860::8888", IPHONE_SAFARI),
            ]:
                answer = client.get(
                    f"/imptr?id={basic.imp}&cachebuster={cb}",
                    headers={"User-Agent": agent, "X-Forwarded-For": address},
                )
                assert answer.status_code == 200
            answer = client.get(
                f"/imptr?id={basic.imp}&cachebuster=m3",
                headers={**BROWSER, "X-Forwarded-For": "8.8.8.8", "Sec-GPC": "1"},
            )
            assert answer.status_code == 200
        events = {e["cachebuster"]: e for e in read_events(log_dir)}
        assert (events["m1"]["country"], events["m1"]["device_type"]) == ("NL", "ctv")
        assert (events["m1"]["os"], events["m1"]["browser"]) == ("Tizen", "Safari")
        assert (events["m2"]["ip"], events["m2"]["country"]) == ("2001:4860:4860::", "US")
        assert events["m2"]["device_type"] == "mobile"
        assert (events["m3"]["ip"], events["m3"]["country"]) == (None, "US")
        assert (events["m3"]["device_type"], events["m3"]["os"]) == ("desktop", None)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()
