"""Helpers for the collector tests: catalogue rows written with SQLAlchemy Core, a collector
running in a background thread (real HTTP on a free loopback port), a collector subprocess, a raw
HTTP/1.1 client, and event log records: written like the collector does and read back."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import uvloop
from sqlalchemy import Engine, insert, select, update

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.hits import RecentHits
from adtrack.collector.listener import CollectorServer, build_core, start_collector
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.config import Settings
from tests.support.events import AN_IMPRESSION, record_fields
from tests.support.net import LOOPBACK, free_port, wait_for_port
from tests.support.process import stop_process

T = TypeVar("T")

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
BROWSER = {"User-Agent": BROWSER_UA}


def now() -> datetime:
    return datetime.now(UTC)


# ---- catalogue rows ----


class Catalogue:
    """Inserts/updates catalogue rows and bumps ``catalogue_version`` like the service does."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert(self, table: Any, values: Mapping[str, Any]) -> int:
        stamp = now()
        row = {"created_at": stamp, "last_modified": stamp, **values}
        with self.engine.begin() as conn:
            result = conn.execute(insert(table).values(**row))
            self._bump(conn)
            return int(result.inserted_primary_key[0])

    def _bump(self, conn: Any) -> None:
        version = conn.execute(
            select(t.catalogue_version.c.version).where(t.catalogue_version.c.id == 1)
        ).scalar()
        if version is None:
            conn.execute(insert(t.catalogue_version).values(id=1, version=1, changed_at=now()))
        else:
            conn.execute(
                update(t.catalogue_version)
                .where(t.catalogue_version.c.id == 1)
                .values(version=version + 1, changed_at=now())
            )

    def update(self, table: Any, row_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(table).where(table.c.id == row_id).values(last_modified=now(), **values)
            )
            self._bump(conn)

    def insert_silently(self, table: Any, **values: Any) -> int:
        """Insert WITHOUT bumping the version (what an unnoticed change looks like)."""
        stamp = now()
        row = {"created_at": stamp, "last_modified": stamp, **values}
        with self.engine.begin() as conn:
            return int(conn.execute(insert(table).values(**row)).inserted_primary_key[0])

    def advertiser(self, name: str = "Adv", **kw: Any) -> int:
        return self._insert(t.advertisers, {"name": name, "state": "active", **kw})

    def publisher(self, name: str = "Pub", **kw: Any) -> int:
        return self._insert(t.publishers, {"name": name, "state": "active", **kw})

    def placement(self, publisher_id: int, name: str = "Placement", **kw: Any) -> int:
        return self._insert(
            t.placements, {"name": name, "publisher_id": publisher_id, "state": "active", **kw}
        )

    def line_item(
        self,
        advertiser_id: int,
        *,
        revenue_type: str = "none",
        revenue_value_micros: int = 0,
        **kw: Any,
    ) -> int:
        return self._insert(
            t.line_items,
            {
                "name": "LI",
                "advertiser_id": advertiser_id,
                "state": "active",
                "revenue_type": revenue_type,
                "revenue_value_micros": revenue_value_micros,
                **kw,
            },
        )

    def payment_rule(
        self,
        publisher_id: int,
        *,
        pricing_type: str = "revshare",
        is_base: bool = False,
        advertiser_ids: tuple[int, ...] = (),
        line_item_ids: tuple[int, ...] = (),
        **kw: Any,
    ) -> int:
        rule_id = self._insert(
            t.payment_rules,
            {
                "name": "Rule",
                "publisher_id": publisher_id,
                "state": "active",
                "is_base": is_base,
                "pricing_type": pricing_type,
                "revshare_ppm": 0,
                "cost_cpm_micros": 0,
                "cost_cpc_micros": 0,
                "priority": 5,
                **kw,
            },
        )
        rows = [
            {"payment_rule_id": rule_id, "kind": "advertiser", "object_id": i}
            for i in advertiser_ids
        ]
        rows += [
            {"payment_rule_id": rule_id, "kind": "line_item", "object_id": i} for i in line_item_ids
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(t.payment_rule_filters), rows)
                self._bump(conn)
        return rule_id

    def tracker(
        self,
        tracker_type: str,
        advertiser_id: int,
        line_item_id: int,
        publisher_id: int,
        **kw: Any,
    ) -> int:
        return self._insert(
            t.trackers,
            {
                "tracker_type": tracker_type,
                "name": f"{tracker_type} tracker",
                "state": "active",
                "advertiser_id": advertiser_id,
                "line_item_id": line_item_id,
                "publisher_id": publisher_id,
                **kw,
            },
        )


@dataclass
class Basic:
    """A small catalogue: one advertiser/line item/publisher/placement, a base rule, and one
    impression and one click tracker."""

    advertiser: int
    line_item: int
    publisher: int
    placement: int
    base_rule: int
    imp: int
    click: int


def basic_catalogue(cat: Catalogue) -> Basic:
    adv = cat.advertiser()
    li = cat.line_item(adv, revenue_type="cpm", revenue_value_micros=4_000_000)
    pub = cat.publisher()
    plc = cat.placement(pub)
    base = cat.payment_rule(pub, is_base=True, pricing_type="cpm", cost_cpm_micros=2_000_000)
    imp = cat.tracker("impression", adv, li, pub, placement_id=plc, code="imp-code")
    click = cat.tracker(
        "click",
        adv,
        li,
        pub,
        placement_id=plc,
        code="clk-code",
        landing_page_url="https://advertiser.example/landing?x=1",
    )
    return Basic(adv, li, pub, plc, base, imp, click)


# ---- the event log ----


def event_record(
    event_id: str,
    *,
    tracker: int,
    ts: int,
    cachebuster: str,
    cost: int,
    revenue: int,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bytes:
    """A valid impression record as the collector writes it (``event_id`` first): ``ts`` in
    epoch microseconds, ``cost`` and ``revenue`` in micros, advertiser/line item/publisher 1."""
    return AN_IMPRESSION._replace(
        event_id=event_id,
        ts=ts,
        tracker_id=tracker,
        cachebuster=cachebuster,
        media_cost_micros=cost,
        booked_revenue_micros=revenue,
        ip=ip,
        user_agent=user_agent,
    ).to_bytes()


def read_events(log_dir: Path) -> list[dict[str, Any]]:
    """Every record in the local event log under ``log_dir``, decoded."""
    if not log_dir.exists():
        return []
    reader = LocalEventLogReader(log_dir, consumer="test")
    out: list[dict[str, Any]] = []
    while True:
        batch = reader.read_now(10_000)
        if not batch.records:
            return out
        out.extend(record_fields(record) for record in batch.records)


def wait_for_events(log_dir: Path, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(log_dir)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


# ---- a collector in a background thread ----


@dataclass
class ThreadCollector:
    """A collector on its own uvloop in a background thread."""

    settings: Settings
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    server: CollectorServer
    writer: LocalEventLogWriter
    cache: TrackerCache
    stopped: bool = field(default=False)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.settings.event_log_dir

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.log_dir)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def in_loop(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True

        async def shutdown() -> None:
            await self.server.aclose()
            await self.writer.close()

        try:
            self.call(shutdown())
        finally:
            self.cache.stop()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def start_thread_collector(
    settings: Settings,
    engine: Engine,
    *,
    fsync: str = "interval",
    poll_interval: float = 0.5,
    trust_forwarded_for: bool = False,
    **cache_options: Any,
) -> ThreadCollector:
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-collector", daemon=True)
    thread.start()
    cache = TrackerCache(SqlTrackerCatalogue(engine), poll_interval=poll_interval, **cache_options)
    cache.load()
    cache.start()

    async def setup() -> tuple[CollectorServer, LocalEventLogWriter]:
        writer = LocalEventLogWriter(
            settings.event_log_dir, fsync=fsync, fsync_interval_ms=settings.fsync_interval_ms
        )
        # its own live-hits ring: the process-wide one belongs to whatever else runs here
        core = build_core(
            settings, cache, trust_forwarded_for=trust_forwarded_for, hits=RecentHits()
        )
        server = await start_collector(settings, LOOPBACK, 0, writer=writer, cache=cache, core=core)
        return server, writer

    server, writer = asyncio.run_coroutine_threadsafe(setup(), loop).result(30)
    return ThreadCollector(settings, loop, thread, server, writer, cache)


def settings_for(tmp_path: Path, database_url: str, **env: str) -> Settings:
    base = {"ADTRACK_DATA_DIR": str(tmp_path / "data"), "ADTRACK_DATABASE_URL": database_url}
    base.update(env)
    return Settings.from_env(base)


# ---- a collector subprocess ----


class CollectorProcess:
    """``python -m adtrack.collector`` on a free port."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> CollectorProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adtrack.collector",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if not wait_for_port(LOOPBACK, self.port, timeout):
            self.kill()
            raise RuntimeError("collector did not start:\n" + self.output())
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        stop_process(self.process, sig)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


# ---- a raw HTTP/1.1 client ----


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    """Sends exact request bytes over one keep-alive connection and reads whole answers."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def read_response(self, head_only: bool = False) -> RawResponse:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError("connection closed before an answer")
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(rest) < length:
            if not self._fill():
                raise ConnectionError("connection closed inside a body")
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return RawResponse(status, headers, rest[:length])

    def get(
        self,
        target: bytes | str,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> RawResponse:
        if isinstance(target, str):
            target = target.encode("latin-1")
        lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: test"]
        for name, value in (headers if headers is not None else BROWSER).items():
            lines.append(f"{name}: {value}".encode("latin-1"))
        self.send(b"\r\n".join(lines) + b"\r\n\r\n")
        return self.read_response(head_only=method == "HEAD")


def request(port: int, target: bytes | str, **kw: Any) -> RawResponse:
    with RawClient(port) as client:
        return client.get(target, **kw)
