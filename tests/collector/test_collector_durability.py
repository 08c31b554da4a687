"""Never lose an answered event: ``kill -9`` of a real collector process under load, and 503
(never a pixel) while the event store cannot take writes, with recovery when it is back."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.runner import Aggregator
from adtrack.collector.responses import PIXEL_GIF
from adtrack.domain.click_tokens import ClickTokens
from tests.support.collector import (
    BROWSER,
    Catalogue,
    CollectorProcess,
    RawClient,
    basic_catalogue,
    read_events,
    request,
    settings_for,
    start_thread_collector,
)


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["interval", "always"])
def test_kill_9_loses_no_answered_event(tmp_path: Path, fsync: str) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    engine.dispose()
    env = {
        "ADTRACK_DATA_DIR": str(tmp_path / "data"),
        "ADTRACK_DATABASE_URL": url,
        "ADTRACK_FSYNC": fsync,
    }
    log_dir = tmp_path / "data" / "eventlog"
    collector = CollectorProcess(env, tmp_path / "collector.log").start()

    def one_hit(conn: RawClient, key: str, n: int) -> bool:
        path, tracker = ("/imptr", basic.imp) if n % 2 else ("/clktrb", basic.click)
        return conn.get(f"{path}?id={tracker}&cachebuster={key}").status in (200, 302)

    answered = answered_until_killed(collector, one_hit, workers=6, wanted=500, settle=0.3)

    # restart: the new process serves, and every answered event is in the log exactly once
    restarted = CollectorProcess(env, tmp_path / "collector2.log").start()
    try:
        assert request(restarted.port, f"/imptr?id={basic.imp}&cachebuster=after").status == 200
    finally:
        restarted.stop()
    events = read_events(log_dir)
    by_cb = Counter(e["cachebuster"] for e in events)
    missing = [cb for cb in answered if by_cb[cb] == 0]
    assert missing == [], f"{len(missing)} answered events lost, e.g. {missing[:5]}"
    assert all(by_cb[cb] == 1 for cb in answered)
    assert by_cb["after"] == 1
    assert len({e["event_id"] for e in events}) == len(events)


def test_503_while_the_store_cannot_write_then_recovery(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(settings_for(tmp_path, url), engine, fsync="always")
    log_dir = collector.log_dir
    try:
        port = collector.port
        assert request(port, f"/imptr?id={basic.imp}&cachebuster=ok1").body == PIXEL_GIF
        before = [e["cachebuster"] for e in read_events(log_dir)]
        assert before == ["ok1"]

        # the store goes away: its folder is removed and a file stands in its place
        shutil.rmtree(log_dir)
        log_dir.write_text("not a folder")
        statuses = []
        for n in range(5):
            resp = request(port, f"/imptr?id={basic.imp}&cachebuster=lost{n}")
            statuses.append(resp.status)
            assert resp.body != PIXEL_GIF
            assert resp.headers.get("retry-after") == "1"
        click = request(port, f"/clktrb?id={basic.click}&cachebuster=retry-me")
        assert statuses == [503] * 5 and click.status == 503
        # what records nothing still answers normally
        assert request(port, f"/imptr?id={basic.imp}", method="HEAD").status == 200
        assert request(port, "/imptr?id=9999").status == 200
        assert request(port, "/healthz").status == 200

        # the store is back: the collector recovers by itself
        log_dir.unlink()
        deadline = time.monotonic() + 10
        while request(port, f"/imptr?id={basic.imp}&cachebuster=probe").status != 200:
            assert time.monotonic() < deadline, "no recovery"
            time.sleep(0.1)
        assert request(port, f"/imptr?id={basic.imp}&cachebuster=ok2").status == 200
        # the click that got a 503 is retried: not a duplicate
        assert request(port, f"/clktrb?id={basic.click}&cachebuster=retry-me").status == 302
        events = read_events(log_dir)
        cbs = [e["cachebuster"] for e in events]
        assert "ok2" in cbs and "retry-me" in cbs
        assert not any(cb.startswith("lost") for cb in cbs)
        (retry,) = [e for e in events if e["cachebuster"] == "retry-me"]
        assert retry["invalid"] is False
        metrics = request(port, "/metrics").body.decode()
        unavailable = re.search(r"^adtrack_collector_unavailable_total (\S+)$", metrics, re.M)
        assert unavailable is not None and float(unavailable.group(1)) >= 6
    finally:
        collector.stop()
        engine.dispose()


def test_pending_answers_are_written_before_a_clean_shutdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    basic = basic_catalogue(Catalogue(engine))
    collector = start_thread_collector(settings_for(tmp_path, url), engine)
    with RawClient(collector.port) as conn:
        resp = conn.get(f"/imptr?id={basic.imp}&cachebuster=last", headers=BROWSER)
        assert resp.status == 200
    collector.stop()
    engine.dispose()
    assert [e["cachebuster"] for e in read_events(collector.log_dir)] == ["last"]


@pytest.mark.slow
def test_kill_9_loses_no_answered_conversion_and_each_counts_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    cat = Catalogue(engine)
    basic = basic_catalogue(cat)
    pixel = cat.conversion_pixel(basic.advertiser, min_minutes_per_conversion=0)
    secret = "the secret of the conversion durability test, 32+ characters"
    env = {
        "ADTRACK_DATA_DIR": str(tmp_path / "data"),
        "ADTRACK_DATABASE_URL": url,
        "ADTRACK_FSYNC": "interval",
        "ADTRACK_TOKEN_SECRET": secret,
    }
    tokens = ClickTokens(secret.encode())
    ids = ClickTokens.click_ids(
        basic.click, basic.advertiser, basic.line_item, basic.publisher, None, None
    )
    token = tokens.make(time.time_ns() // 1000, False, ids, b"the-click").decode()
    log_dir = tmp_path / "data" / "eventlog"
    collector = CollectorProcess(env, tmp_path / "collector.log").start()

    def one_order(conn: RawClient, order: str, n: int) -> bool:
        return conn.get(f"/sspx?id={pixel}&sspdata={token}&order_id={order}").status == 200

    answered = answered_until_killed(collector, one_order, workers=4, wanted=300, settle=0.2)

    conversions = [e for e in read_events(log_dir) if e["imp_type"] == 11]
    by_order = Counter(e["order_id"] for e in conversions)
    assert [o for o in answered if by_order[o] != 1] == []
    assert all(e["attribution"] == "post_click" for e in conversions)

    # each is counted once, also when the log is read again from its start
    async def aggregate() -> None:
        aggregator = Aggregator(
            LocalEventLogReader(log_dir, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        while await aggregator.run_once(max_records=100):
            pass
        await aggregator.reset()
        while await aggregator.run_once(max_records=64):
            pass

    asyncio.run(aggregate())
    with engine.connect() as conn:
        total = conn.execute(select(func.sum(t.rollup_hourly.c.conversions))).scalar()
    engine.dispose()
    assert total == len(conversions) >= len(answered)


def answered_until_killed(
    collector: CollectorProcess,
    one: Callable[[RawClient, str, int], bool],
    *,
    workers: int,
    wanted: int,
    settle: float,
) -> list[str]:
    """Send requests from ``workers`` threads (``one(conn, key, n)``: whether the request with
    the unique ``key`` was answered as recorded) until ``wanted`` were answered, then SIGKILL
    the collector mid-traffic; the keys answered before it died."""
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        try:
            with RawClient(collector.port, timeout=5) as conn:
                while not stop.is_set():
                    n += 1
                    key = f"w{worker}-{n}"
                    if one(conn, key, n):
                        with lock:
                            answered.append(key)
        except (OSError, ConnectionError):
            return  # the server died under us: that request was never answered

    threads = [threading.Thread(target=client, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(answered) < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)
    collector.kill()  # SIGKILL mid-traffic
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(answered) >= wanted, collector.output()
    return answered
