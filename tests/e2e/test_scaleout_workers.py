"""Several collector processes: ``adtrack serve --workers N``, ``adtrack collector --workers N``,
and catalogue changes reaching every collector process without a restart."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from tests.conftest import ServerFactory
from tests.support.collector import Catalogue, basic_catalogue
from tests.support.net import LOOPBACK
from tests.support.scaleout import (
    AdtrackProcess,
    Closing,
    Load,
    children_of,
    processes,
    reported_impressions,
    scaleout_env,
    start_aggregator,
    start_collector,
    stored_cachebusters,
    wait_for_report,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing and load: run alone


def workers_of(process_id: int) -> list[int]:
    """Child processes running a collector pool worker."""
    return [
        pid
        for pid in children_of(process_id)
        if b"adtrack.collector.pool" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def test_serve_with_workers_runs_collector_processes_on_the_tracking_port(
    adtrack_server_factory: ServerFactory,
) -> None:
    server = adtrack_server_factory(extra_args=["--workers", "2"])
    assert server.process is not None
    line = (
        f"adtrack: listening on http://{LOOPBACK}:{server.port} "
        f"(tracking on http://{LOOPBACK}:{server.tracking_port})"
    )
    assert wait_until(lambda: line in server.output().splitlines(), 5)
    workers = workers_of(server.process.pid)
    assert len(workers) == 2

    with Closing(db.make_engine(f"sqlite:///{server.data_dir / 'adtrack.db'}")) as engine:
        tracker = basic_catalogue(Catalogue(engine)).imp
    # many short connections, so the kernel spreads them over both workers
    load = Load([server.tracking_port], tracker, "workers", connections=16, pause=0)
    answers = load.send(400)
    assert load.statuses(answers) == {200: 400}
    segments = {p.name.rsplit("-", 1)[0] for p in (server.data_dir / "eventlog").glob("*.seg")}
    assert {f"w{server.process.pid}-1", f"w{server.process.pid}-2"} <= segments  # both wrote

    with server.client() as api:
        today = datetime.now(UTC).date()
        window = {"start": str(today - timedelta(days=1)), "end": str(today + timedelta(days=2))}

        def imps() -> int:
            answer = api.get("/api/v1/reports/summary", params={"tracker_id": tracker, **window})
            assert answer.status_code == 200, answer.text
            return int(answer.json()["totals"]["imps"])

        assert wait_until(lambda: imps() == 400, 10)

        # a worker that dies is replaced; tracking keeps answering meanwhile
        os.kill(workers[0], signal.SIGKILL)
        pid = server.process.pid

        def replaced() -> bool:
            now = workers_of(pid)
            return len(now) == 2 and workers[0] not in now

        assert wait_until(replaced, 20)
        assert load.statuses(load.send(100)) == {200: 100}
        assert wait_until(lambda: imps() == 500, 10)

    remaining = workers_of(server.process.pid)
    server.stop()
    assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in remaining), 10)


@pytest.mark.postgres
@pytest.mark.nats
def test_collector_command_with_workers_on_jetstream_and_postgres(
    nats_url: str, nats_stream_name: str, pg_url: str, tmp_path: Path
) -> None:
    db.upgrade(pg_url)
    with Closing(db.make_engine(pg_url)) as engine, processes() as started:
        tracker = basic_catalogue(Catalogue(engine)).imp
        env = scaleout_env(pg_url, nats_url, nats_stream_name, tmp_path / "data")
        pool = AdtrackProcess(
            ["collector", "--host", LOOPBACK, "--port", "0", "--workers", "2"],
            env,
            tmp_path / "collector.log",
        )
        started.append(pool.start("adtrack: collector listening on"))
        line = next(x for x in pool.output().splitlines() if "adtrack: collector listening" in x)
        assert line.endswith("(2 workers)")
        port = int(line.split(f"http://{LOOPBACK}:")[1].split()[0])  # port 0: one port for all
        assert len(workers_of(pool.pid)) == 2
        started.append(start_aggregator(env, tmp_path))

        load = Load([port], tracker, "pool", connections=6, pause=0)
        assert load.statuses(load.send(300)) == {200: 300}
        assert wait_for_report(engine, tracker, 300) == 300
        raw_events_dir = tmp_path / "data" / "raw-events"
        assert set(stored_cachebusters(engine, tracker, raw_events_dir)) == load.sent()

        pool.stop()
        assert not pool.running
        assert pool.process is not None and pool.process.returncode == 0


@pytest.mark.postgres
@pytest.mark.nats
def test_catalogue_changes_reach_every_collector_within_two_seconds(
    nats_url: str, nats_stream_name: str, pg_url: str, tmp_path: Path
) -> None:
    """A new tracker counts at once everywhere; a deactivated one stops counting everywhere
    within 2 seconds, without restarting anything."""
    db.upgrade(pg_url)
    with Closing(db.make_engine(pg_url)) as engine, processes() as started:
        catalogue = Catalogue(engine)
        basic = basic_catalogue(catalogue)
        env = scaleout_env(pg_url, nats_url, nats_stream_name, tmp_path / "data")
        first, first_port = start_collector(env, tmp_path)
        second, second_port = start_collector(env, tmp_path)
        started += [first, second, start_aggregator(env, tmp_path)]

        created = catalogue.tracker(
            "impression", basic.advertiser, basic.line_item, basic.publisher
        )
        load = Load([first_port, second_port], created, "change", connections=2, pause=0)
        assert load.statuses(load.send(20)) == {200: 20}
        assert wait_for_report(engine, created, 20) == 20  # its very first impressions count

        catalogue.update(t.trackers, created, state="inactive")
        time.sleep(2.0)
        assert load.statuses(load.send(20)) == {200: 20}  # still a pixel: pages never break
        time.sleep(1.0)
        assert reported_impressions(engine, created) == 20  # but nothing billable any more

        catalogue.update(t.trackers, created, state="active")  # and back: counts again
        time.sleep(2.0)
        assert load.statuses(load.send(20)) == {200: 20}
        assert wait_for_report(engine, created, 40) == 40
