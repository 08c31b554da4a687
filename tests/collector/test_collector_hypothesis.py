"""Generated query strings over real HTTP: never a 5xx, never a lost good event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.sql import db
from tests.support.collector import (
    BROWSER_UA,
    Basic,
    Catalogue,
    RawClient,
    RawResponse,
    ThreadCollector,
    basic_catalogue,
    settings_for,
    start_thread_collector,
)
from tests.support.events import record_fields


@dataclass
class Fuzz:
    collector: ThreadCollector
    basic: Basic
    reader: LocalEventLogReader
    client: RawClient | None = field(default=None)

    def send(self, target: bytes) -> RawResponse:
        """One GET over a kept-alive connection (reopened after the server closed it)."""
        request = (
            b"GET "
            + target
            + b" HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: "
            + BROWSER_UA.encode()
            + b"\r\n\r\n"
        )
        for attempt in range(2):
            if self.client is None:
                self.client = RawClient(self.collector.port)
            try:
                self.client.send(request)
                resp = self.client.read_response()
            except (ConnectionError, OSError):
                self.client.close()
                self.client = None
                if attempt:
                    raise
                continue
            if resp.headers.get("connection") == "close":
                self.client.close()
                self.client = None
            return resp
        raise AssertionError("unreachable")

    def new_events(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        while batch := self.reader.read_now(10_000).records:
            out.extend(record_fields(record) for record in batch)
        return out


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    tmp: Path = tmp_path_factory.mktemp("collector-fuzz")
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(settings_for(tmp, url), engine)
    state = Fuzz(collector, basic, LocalEventLogReader(collector.log_dir, consumer="fuzz"))
    try:
        yield state
    finally:
        if state.client is not None:
            state.client.close()
        collector.stop()
        engine.dispose()


# Bytes a request target may carry on the wire (no space, CR, LF): printable ASCII and UTF-8.
_target_bytes = st.one_of(
    st.binary(max_size=60).map(lambda b: bytes(c for c in b if c > 0x20 and c != 0x7F)),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
        max_size=30,
    ).map(lambda s: s.encode()),
)
_param = st.one_of(
    st.sampled_from([b"id", b"code", b"cachebuster", b"ancost", b"t", b"redir", b"x", b""]),
    _target_bytes,
).flatmap(
    lambda name: st.one_of(
        st.just(name),
        st.tuples(
            st.just(name),
            st.one_of(
                _target_bytes,
                st.sampled_from(
                    [
                        b"1",
                        b"-1",
                        b"NaN",
                        b"1e309",
                        b"999999.9999999",
                        b"https://a.example/p?x=1&y=2",
                        b"https%3A%2F%2Fa.example%2F",
                        b"javascript:alert(1)",
                        b"%0D%0ALocation:%20x",
                        b"%",
                        b"%%",
                        b"[CACHEBUSTER]",
                    ]
                ),
            ),
        ).map(lambda kv: kv[0] + b"=" + kv[1]),
    )
)
_junk = st.lists(_param, max_size=6).map(b"&".join)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from([b"/imptr", b"/clktrb", b"/clktr"]), junk=_junk)
def test_a_known_tracker_first_always_records_exactly_one_event(
    fuzz: Fuzz, path: bytes, junk: bytes
) -> None:
    tracker = fuzz.basic.imp if path == b"/imptr" else fuzz.basic.click
    fuzz.new_events()  # forget anything earlier
    resp = fuzz.send(path + b"?id=" + str(tracker).encode() + b"&" + junk)
    assert resp.status < 500
    events = fuzz.new_events()
    if resp.status in (200, 302):
        assert len(events) == 1, (resp, events)
        assert events[0]["tracker_id"] == tracker
        if resp.status == 302:
            location = resp.headers["location"]
            assert location.lower().startswith(("http://", "https://"))
            assert location == events[0]["redirect_url"]
    else:
        assert resp.status in (400, 414)
        assert events == []


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.one_of(st.sampled_from([b"/imptr", b"/clktrb", b"/clktr", b"/"]), _target_bytes),
    query=st.one_of(_junk, _target_bytes),
)
def test_any_target_never_gets_a_5xx(fuzz: Fuzz, path: bytes, query: bytes) -> None:
    target = (path if path.startswith(b"/") else b"/" + path) + b"?" + query
    resp = fuzz.send(target)
    assert resp.status < 500, (target, resp)
    fuzz.new_events()
