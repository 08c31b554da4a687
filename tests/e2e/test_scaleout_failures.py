"""Scale-out failures that must lose nothing: real ``adtrack collector`` and ``adtrack aggregator``
processes on PostgreSQL and NATS JetStream, with parts stopped or killed under traffic.

Every request carries a unique cachebuster, so the tests can check per request: each one answered
2xx/3xx is stored exactly once (raw events) and counted once (rollups); nothing is stored that was
not sent. The PostgreSQL and NATS servers that get stopped are the tests' own (``initdb``/``pg_ctl``
and ``nats-server -js`` on free ports, see ``tests/support/scaleout.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import nats
import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.eventlog.nats_stream import StreamSpec
from adtrack.adapters.eventlog.nats_writer import NatsEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from tests.support import nats as nats_support
from tests.support.collector import Catalogue, basic_catalogue, event_record
from tests.support.raw_events import archived_count
from tests.support.rollup_counts import counted_events
from tests.support.scaleout import (
    AdtrackProcess,
    Closing,
    Load,
    PrivateNats,
    PrivatePostgres,
    processes,
    reported_impressions,
    scaleout_env,
    start_aggregator,
    start_collector,
    stored_cachebusters,
    wait_for_report,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.postgres, pytest.mark.nats]


def assert_exactly_once(load: Load, stored: Counter[str]) -> None:
    """Every request answered 2xx/3xx is stored; each stored once; nothing that was not sent."""
    duplicates = {cachebuster: n for cachebuster, n in stored.items() if n != 1}
    assert not duplicates, f"stored more than once: {list(duplicates.items())[:5]}"
    missing = load.answered_ok() - set(stored)
    assert not missing, f"{len(missing)} answered events are not stored, e.g. {sorted(missing)[:5]}"
    unknown = set(stored) - load.sent()
    assert not unknown, f"stored events nobody sent: {sorted(unknown)[:5]}"


def assert_answered_events_reported_once(
    engine: Engine, tracker: int, load: Load, raw_events_dir: Path
) -> None:
    """Once the rollups have caught up: :func:`assert_exactly_once`, and the reports count each
    stored event once."""
    answered = len(load.answered_ok())
    assert wait_for_report(engine, tracker, answered, timeout=30) >= answered
    time.sleep(0.5)
    stored = stored_cachebusters(engine, tracker, raw_events_dir)
    assert_exactly_once(load, stored)
    assert reported_impressions(engine, tracker) == len(stored)


def test_postgres_stopped_while_collectors_take_traffic(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    with PrivatePostgres() as postgres, processes() as started:
        db.upgrade(postgres.url)
        with Closing(db.make_engine(postgres.url)) as engine:
            tracker = basic_catalogue(Catalogue(engine)).imp
            env = scaleout_env(postgres.url, nats_url, nats_stream_name, tmp_path / "data")
            first, first_port = start_collector(env, tmp_path)
            second, second_port = start_collector(env, tmp_path)
            aggregator = start_aggregator(env, tmp_path)
            started += [first, second, aggregator]
            load = Load([first_port, second_port], tracker, "pg")

            assert load.statuses(load.send(200)) == {200: 200}
            assert wait_for_report(engine, tracker, 200) == 200

            engine.dispose()
            postgres.stop()
            during = load.send(300)
            # Collectors keep answering from their tracker cache and log to JetStream.
            assert load.statuses(during) == {200: 300}
            time.sleep(1.0)  # the aggregator keeps failing meanwhile, and retries
            assert aggregator.running, aggregator.output()
            postgres.start()

            assert wait_for_report(engine, tracker, 500, timeout=60) == 500, aggregator.output()
            stored = stored_cachebusters(engine, tracker, tmp_path / "data" / "raw-events")
            assert_exactly_once(load, stored)
            assert len(stored) == 500 == len(load.sent())
            time.sleep(1.0)  # redeliveries of what was pending during the outage add nothing
            assert reported_impressions(engine, tracker) == 500
        assert "database" in aggregator.output() or "failed" in aggregator.output()


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed-9"]
)
def test_nats_unreachable_collectors_answer_503_and_recover(
    pg_url: str, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """NATS stopped, or killed with SIGKILL (no goodbye to its clients), under traffic: 503 at
    once while it is gone, never 2xx; after it restarts on its store, every answered event is
    in the report once."""
    with PrivateNats() as nats_server, processes() as started:
        db.upgrade(pg_url)
        with Closing(db.make_engine(pg_url)) as engine:
            tracker = basic_catalogue(Catalogue(engine)).imp
            stream = nats_support.unique_stream_name()
            env = scaleout_env(pg_url, nats_server.url, stream, tmp_path / "data")
            collector, port = start_collector(env, tmp_path)
            aggregator = start_aggregator(env, tmp_path)
            started += [collector, aggregator]
            load = Load([port], tracker, "nats")
            assert load.statuses(load.send(100)) == {200: 100}

            load.start()
            time.sleep(0.5)
            nats_server.stop(stop_signal)  # under traffic
            stopped_at = time.monotonic()
            time.sleep(2.0)
            load.stop()
            late = [a for a in load.answers if a.sent > stopped_at + 0.5]
            assert late
            assert load.statuses(late) == {503: len(late)}  # never 2xx for a non-durable event
            assert max(a.answered - a.sent for a in late) < 1.0  # at once, not after a timeout

            nats_server.start()
            assert wait_until(lambda: load.send(1)[0].status == 200, 10), collector.output()
            assert load.statuses(load.send(100)) == {200: 100}

            assert_answered_events_reported_once(
                engine, tracker, load, tmp_path / "data" / "raw-events"
            )


def _event(i: int, tracker: int, ts: int) -> bytes:
    return event_record(
        f"kill9-{i}", tracker=tracker, ts=ts, cachebuster=str(i), cost=250, revenue=1000
    )


async def _fill_stream(spec: StreamSpec, count: int) -> None:
    writer = NatsEventLogWriter(spec)
    ts = time.time_ns() // 1000
    try:
        for start in range(0, count, 1000):
            await writer.append(
                [_event(i, 100 + i % 7, ts) for i in range(start, min(count, start + 1000))]
            )
    finally:
        await writer.close()


async def _messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


def test_aggregators_killed_mid_batch_lose_and_double_count_nothing(
    nats_url: str, nats_stream_name: str, pg_url: str, tmp_path: Path
) -> None:
    """Two aggregators share the log; while there is a backlog they are killed with SIGKILL
    again and again (an aggregator with a backlog is always between reading a batch and
    committing it, and reads ahead). At the end every event is counted exactly once: the
    positions committed with the rollups decide what a restarted one reads again. Needs the
    sink that commits positions by compare-and-set."""
    total = 240_000  # a backlog that outlasts a few kills of aggregators that commit fast
    env = scaleout_env(pg_url, nats_url, nats_stream_name, tmp_path / "data")
    spec = StreamSpec(
        servers=(nats_url,), stream=nats_stream_name, subject=env["ADTRACK_NATS_SUBJECT"]
    )
    db.upgrade(pg_url)
    kills = 0
    with Closing(db.make_engine(pg_url)) as engine, processes() as started:

        def stored() -> int:
            return counted_events(engine)

        # the backlog first: were the aggregators already running, they might keep up with the
        # filling and leave nothing to be killed in the middle of
        asyncio.run(_fill_stream(spec, total))
        # not waiting for them to be ready: a fast aggregator is through a backlog of this
        # size in seconds, and the first kill must land while there is one
        aggregators = [
            AdtrackProcess(["aggregator"], env, tmp_path / f"aggregator-{i}.log").start()
            for i in (1, 2)
        ]
        started += aggregators
        for kill in range(3):
            before = stored()

            def progressed(before: int = before) -> bool:
                return stored() > before

            if not wait_until(progressed, 20) or stored() >= total:
                break  # (no backlog left to be in the middle of)
            # the one running longest: surely past its start-up, inside a batch
            victim = aggregators.pop(0)
            victim.kill()
            kills += 1
            replacement = AdtrackProcess(
                ["aggregator"], env, tmp_path / f"aggregator-restarted-{kill}.log"
            )
            started.append(replacement.start())  # not waiting: the next kill may come first
            aggregators.append(replacement)

        assert wait_until(lambda: stored() >= total, 60), aggregators[0].output()
        time.sleep(2.0)  # anything read twice has had time to be (not) committed
        messages = asyncio.run(_messages(nats_url, nats_stream_name))
        raw = archived_count(engine, tmp_path / "data" / "raw-events")
        with engine.connect() as conn:
            imps = conn.execute(select(func.sum(t.rollup_hourly.c.imps))).scalar_one()
            cost = conn.execute(select(func.sum(t.rollup_hourly.c.media_cost_micros))).scalar_one()
            # The audience rollups are committed in the same transactions: counted once too.
            audience = {
                table.name: conn.execute(select(func.sum(table.c.imps))).scalar_one()
                for table in (
                    t.rollup_geo_hourly,
                    t.rollup_geo_line_item_daily,
                    t.rollup_device_daily,
                    t.rollup_device_line_item_hourly,
                    t.rollup_geo_line_item_monthly,
                    t.rollup_device_line_item_monthly,
                )
            }
        counted = stored()
    assert counted == imps == total == raw
    assert audience == dict.fromkeys(audience, total)
    assert cost == 250 * total
    assert kills > 0
    assert messages == total // 1000  # one message per append of 1000 events


def test_collector_killed_under_load_keeps_every_answered_event(
    nats_url: str, nats_stream_name: str, pg_url: str, tmp_path: Path
) -> None:
    db.upgrade(pg_url)
    with Closing(db.make_engine(pg_url)) as engine, processes() as started:
        tracker = basic_catalogue(Catalogue(engine)).imp
        env = scaleout_env(pg_url, nats_url, nats_stream_name, tmp_path / "data")
        victim, victim_port = start_collector(env, tmp_path)
        survivor, survivor_port = start_collector(env, tmp_path)
        aggregator = start_aggregator(env, tmp_path)
        started += [victim, survivor, aggregator]
        load = Load([victim_port, survivor_port], tracker, "kill9", connections=6).start()
        time.sleep(1.5)
        os.kill(victim.pid, signal.SIGKILL)  # under load
        killed_at = time.monotonic()
        time.sleep(1.0)
        load.stop()
        assert victim.process is not None and victim.process.wait(5) == -signal.SIGKILL

        statuses = load.statuses()
        assert statuses[200] > 100 and statuses[None] > 0  # answers before, refusals after
        assert set(statuses) <= {200, None}
        assert any(a.status == 200 and a.sent > killed_at for a in load.answers)  # survivor
        assert_answered_events_reported_once(
            engine, tracker, load, tmp_path / "data" / "raw-events"
        )
        assert survivor.running and aggregator.running
