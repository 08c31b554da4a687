"""Scale-out benchmark: 2 collector processes on NATS JetStream and PostgreSQL, driven by wrk.

Starts, on this machine (needs the local PostgreSQL on 127.0.0.1:5432 and NATS JetStream on
127.0.0.1:4222, see ``scripts/ensure_services.sh``, and ``wrk``):

* a throw-away PostgreSQL database with a small catalogue and a JetStream stream of its own;
* ``adtrack collector --workers 2`` (two collector processes sharing one port) and
  ``adtrack aggregator`` (``--aggregators N`` of them) with ``ADTRACK_EVENT_LOG=nats://...``.

Then runs wrk against ``/imptr`` (URL with ``ancost`` and an un-encoded ``redir`` last, like
``bench/tracking.py``) and prints requests/s and p50/p99 latency. Meanwhile a probe sends one
impression of a separate tracker every 200 ms and watches the hourly rollups (what reports
read): the time from the probe's answer to its count showing in the rollups is the
**end-to-end lag** (p50/p99/max printed).

After the run it checks the counts: the rollups must hold exactly as many impressions as the
stream holds events (every event made durable is counted once); the stream must hold what wrk
counted as answered plus the probes, give or take the requests in flight when wrk stopped (at
most one per connection); and wrk must have seen no error answers.

Usage::

    .venv/bin/python bench/scaleout.py                      # 10 s at 64 connections
    .venv/bin/python bench/scaleout.py --soak 600           # the 10-minute soak
    .venv/bin/python bench/scaleout.py --duration 20 --connections 128 --aggregators 2 \\
        --json results.json
    .venv/bin/python bench/scaleout.py --backlog 200000 --aggregators 2   # aggregation only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats
from sqlalchemy import Engine, func, select

from _support import (
    BROWSER_UA,
    HOST,
    SAMPLE_EVENT,
    WRK_DONE,
    WRK_HEADERS,
    add_catalogue,
    add_row,
    cpu_seconds,
    create_database,
    drop_database,
    free_port,
    machine_busy_seconds,
    new_database_name,
    socket_errors,
    wrk_summary,
)
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t

NATS_URL = "nats://127.0.0.1:4222"
PATH = "/imptr?id={id}&cachebuster=4711&ancost=0.35&redir=https://example.com/a?b=c&d=e"
WRK_SCRIPT = WRK_HEADERS + WRK_DONE


def adtrack() -> list[str]:
    script = Path(sys.executable).with_name("adtrack")
    return [str(script)] if script.exists() else [sys.executable, "-m", "adtrack.cli.main"]


# ---- set-up -------------------------------------------------------------------------------------


def make_catalogue(engine: Engine) -> tuple[int, int]:
    """An advertiser, line item, publisher, placement, base rule; a load and a probe tracker."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        adv, li, pub = add_catalogue(
            conn,
            now,
            revenue_value_micros=4_000_000,
            pricing_type="cpm",
            revshare_ppm=0,
            cost_cpm_micros=2_000_000,
        )
        plc = add_row(
            conn, t.placements, now, name="Bench placement", publisher_id=pub, state="active"
        )
        trackers = [
            add_row(
                conn,
                t.trackers,
                now,
                tracker_type="impression",
                name=name,
                state="active",
                advertiser_id=adv,
                line_item_id=li,
                publisher_id=pub,
                placement_id=plc,
            )
            for name in ("Bench load", "Bench probe")
        ]
    return trackers[0], trackers[1]


def impressions(engine: Engine, tracker: int) -> int:
    """Impressions of ``tracker`` in the hourly rollups, valid and invalid."""
    rollup = t.rollup_hourly
    query = select(func.coalesce(func.sum(rollup.c.imps + rollup.c.invalid_imps), 0)).where(
        rollup.c.tracker_id == tracker
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


async def _delete_stream(stream: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@dataclass
class StreamEvents:
    """Counts the events in a stream: a message holds a collector append's events, so they are
    counted by reading them (with a reader of this benchmark's own, resuming where it got to)."""

    stream: str
    subject: str
    counted: int = 0
    counted_to: dict[str, int] = field(default_factory=dict)  # per partition

    def count(self) -> int:
        asyncio.run(self._read())
        return self.counted

    async def _read(self) -> None:
        from adtrack.adapters.eventlog.nats_reader import NatsEventLogReader
        from adtrack.adapters.eventlog.nats_stream import StreamSpec

        spec = StreamSpec(servers=(NATS_URL,), stream=self.stream, subject=self.subject)
        reader = NatsEventLogReader(spec, consumer="bench-count", fetch_wait=0.3)
        reader.restore(self.counted_to)
        try:
            while True:
                batch = await reader.read(50_000)
                if not batch.records:
                    self.counted_to = reader.positions
                    return
                self.counted += len(batch.records)
        finally:
            await reader.close()


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path, ready: str) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*adtrack(), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"adtrack {' '.join(args)} did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_aggregator(env: dict[str, str], workdir: Path, i: int) -> Process:
    log = workdir / f"aggregator-{i}.log"
    return Process(["aggregator"], env, log, "adtrack: aggregator running")


@dataclass
class Bench:
    """A throw-away database with the bench catalogue, a stream of its own, a work folder, the
    adtrack processes' environment, and the processes started (``parts``, stopped at the end)."""

    workdir: Path
    engine: Engine
    stream: str
    subject: str
    env: dict[str, str]
    load_tracker: int
    probe_tracker: int
    parts: list[Process]


@contextlib.contextmanager
def bench(prefix: str, keep_logs: bool) -> Iterator[Bench]:
    db_name = new_database_name()
    db_url = create_database(db_name)
    stream = f"ADTRACK_BENCH_{secrets.token_hex(4).upper()}"
    subject = f"adtrack_bench.{stream.lower()}"
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    parts: list[Process] = []
    engine = None
    try:
        db.upgrade(db_url)
        engine = db.make_engine(db_url)
        load_tracker, probe_tracker = make_catalogue(engine)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADTRACK_")}
        env.update(
            ADTRACK_DATA_DIR=str(workdir / "data"),
            ADTRACK_DATABASE_URL=db_url,
            ADTRACK_EVENT_LOG=NATS_URL,
            ADTRACK_NATS_STREAM=stream,
            ADTRACK_NATS_SUBJECT=subject,
            PYTHONUNBUFFERED="1",
        )
        yield Bench(workdir, engine, stream, subject, env, load_tracker, probe_tracker, parts)
    finally:
        for part in reversed(parts):
            part.stop()
        if engine is not None:
            engine.dispose()
        with contextlib.suppress(Exception):  # the stream may not exist
            asyncio.run(_delete_stream(stream))
        drop_database(db_name)
        if keep_logs:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# ---- the end-to-end lag probe -------------------------------------------------------------------


@dataclass
class Probe:
    """One impression of the probe tracker every ``interval`` s; how long until each is counted."""

    port: int
    tracker: int
    engine: Engine
    interval: float = 0.2
    answered: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _drained: bool = False
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._watch, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, drain_seconds: float = 30.0) -> None:
        self._stop.set()
        self._threads[0].join()
        deadline = time.monotonic() + drain_seconds
        while len(self.lags) < len(self.answered) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._drained = True
        self._threads[1].join()

    def _send(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        path = f"/imptr?id={self.tracker}&cachebuster=probe"
        while not self._stop.is_set():
            try:
                conn.request("GET", path, headers={"User-Agent": BROWSER_UA})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.answered.append(time.monotonic())
                else:
                    self.failures += 1
            except OSError:
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
            self._stop.wait(self.interval)
        conn.close()

    def _watch(self) -> None:
        while not self._drained:
            count = impressions(self.engine, self.tracker)
            now = time.monotonic()
            while len(self.lags) < min(count, len(self.answered)):
                self.lags.append(now - self.answered[len(self.lags)])
            time.sleep(0.02)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


# ---- the run ------------------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    duration_s: float
    connections: int
    collectors: int
    aggregators: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    wrk_requests: int
    wrk_errors: int
    probes: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    stream_events: int
    reported: int
    catch_up_s: float
    check: str


def run(args: argparse.Namespace) -> Result:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (scripts/ensure_services.sh --bench)")
    with bench("adtrack-bench-scaleout-", args.keep) as b:
        engine, workdir = b.engine, b.workdir
        port = free_port()
        b.parts.append(
            Process(
                [
                    "collector",
                    "--host",
                    HOST,
                    "--port",
                    str(port),
                    "--workers",
                    str(args.collectors),
                ],
                b.env,
                workdir / "collector.log",
                "adtrack: collector listening on",
            )
        )
        for i in range(args.aggregators):
            b.parts.append(start_aggregator(b.env, workdir, i))
        script = workdir / "report.lua"
        script.write_text(WRK_SCRIPT)
        url = f"http://{HOST}:{port}" + PATH.format(id=b.load_tracker)
        # warm-up: connections, caches, the stream's first files
        subprocess.run(
            [wrk, "-t1", "-c8", "-d2s", "-s", str(script), url], capture_output=True, check=True
        )
        in_stream = StreamEvents(b.stream, b.subject)
        warm = in_stream.count()

        duration = args.soak or args.duration
        # without aggregators: the collectors' capacity alone (no lag, no report to check)
        probe = Probe(port, b.probe_tracker, engine)
        if args.aggregators:
            probe.start()
        res = wrk_summary(
            wrk,
            script,
            url,
            threads=args.threads,
            connections=args.connections,
            duration=duration,
        )
        ended = time.monotonic()
        if args.aggregators:
            probe.stop()

        # The report's count is sampled from now on, while the stream is counted (reading a
        # long soak's events back takes tens of seconds): the catch-up is when the report
        # first held them all, not when this benchmark finished counting.
        samples: list[tuple[float, int]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                count = impressions(engine, b.load_tracker) + impressions(engine, b.probe_tracker)
                samples.append((time.monotonic(), count))
                sampling.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stream_events = in_stream.count()
        expected = stream_events  # every event made durable, warm-up and probes included
        deadline = time.monotonic() + (120 if args.aggregators else 0)
        while not any(count >= expected for _, count in samples):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        sampling.set()
        sampler.join()
        reached = [at for at, count in samples if count >= expected]
        catch_up = (reached[0] if reached else time.monotonic()) - ended
        time.sleep(1.0)  # anything more arriving would be a double count
        reported = impressions(engine, b.load_tracker) + impressions(engine, b.probe_tracker)

        answered = res["requests"] + len(probe.answered) + warm
        errors = res["non_2xx_3xx"] + socket_errors(res)
        problems = []
        if reported != stream_events and args.aggregators:
            problems.append(f"reported {reported} != {stream_events} events in the stream")
        if not 0 <= stream_events - answered <= args.connections:
            problems.append(f"stream holds {stream_events}, wrk+probes answered {answered}")
        if errors or probe.failures:
            problems.append(f"{errors} wrk errors, {probe.failures} probe failures")
        return Result(
            mode="soak" if args.soak else "short",
            duration_s=res["duration_us"] / 1e6,
            connections=args.connections,
            collectors=args.collectors,
            aggregators=args.aggregators,
            rps=res["requests"] / (res["duration_us"] / 1e6),
            p50_ms=res["p50_us"] / 1000,
            p99_ms=res["p99_us"] / 1000,
            max_ms=res["max_us"] / 1000,
            wrk_requests=res["requests"],
            wrk_errors=errors,
            probes=len(probe.answered),
            lag_p50_ms=statistics.median(probe.lags) * 1000 if probe.lags else float("nan"),
            lag_p99_ms=percentile(probe.lags, 99) * 1000,
            lag_max_ms=max(probe.lags) * 1000 if probe.lags else float("nan"),
            stream_events=stream_events,
            reported=reported,
            catch_up_s=catch_up,
            check="ok" if not problems else "FAILED: " + "; ".join(problems),
        )


def drain(args: argparse.Namespace) -> int:
    """``--backlog N``: N events already in the stream, then ``--aggregators`` aggregator
    processes start; how fast do they empty it into PostgreSQL?"""
    from adtrack.adapters.eventlog.nats_stream import StreamSpec
    from adtrack.adapters.eventlog.nats_writer import NatsEventLogWriter

    with bench("adtrack-bench-drain-", keep_logs=False) as b:
        engine, load_tracker = b.engine, b.load_tracker

        async def fill() -> None:
            writer = NatsEventLogWriter(
                StreamSpec(servers=(NATS_URL,), stream=b.stream, subject=b.subject)
            )
            ts = time.time_ns() // 1000
            try:
                for start in range(0, args.backlog, 1000):
                    await writer.append(
                        [
                            SAMPLE_EVENT._replace(
                                event_id=f"bench-{i}",
                                ts=ts,
                                tracker_id=load_tracker,
                                media_cost_micros=2000,
                                booked_revenue_micros=4000,
                                cachebuster=str(i),
                                referrer="https://publisher.example/article/42",
                            ).to_bytes()
                            for i in range(start, min(args.backlog, start + 1000))
                        ]
                    )
            finally:
                await writer.close()

        asyncio.run(fill())
        started = time.monotonic()
        for i in range(max(1, args.aggregators)):
            b.parts.append(start_aggregator(b.env, b.workdir, i))
        # The rate is taken over the middle of the drain, from 30 % to 90 % of the backlog
        # (or from when the last aggregator is up, if later): not the start, where a late
        # aggregator has not taken its partitions yet, nor the tail, where partitions run dry
        # one by one. CPU over the same window: the aggregators' own, and the whole machine's
        # (the aggregators, PostgreSQL and nats-server share its cores).
        pids = [part.process.pid for part in b.parts]
        window: list[tuple[float, int, float, float]] = []  # (time, reported, aggs cpu, busy)
        for mark in (0.3, 0.9):
            while (reported := impressions(engine, load_tracker)) < mark * args.backlog:
                if time.monotonic() - started > 600:
                    break
                time.sleep(0.02)
            window.append(
                (time.monotonic(), reported, sum(map(cpu_seconds, pids)), machine_busy_seconds())
            )
        while impressions(engine, load_tracker) < args.backlog:
            if time.monotonic() - started > 600:
                break
            time.sleep(0.05)
        done = time.monotonic()
        reported = impressions(engine, load_tracker)
        (t0, n0, agg0, busy0), (t1, n1, agg1, busy1) = window
        events = max(n1 - n0, 1)
        seconds = max(t1 - t0, 1e-9)
        check = "ok" if reported == args.backlog else f"FAILED: {reported:,} reported"
        print(
            f"backlog: {args.backlog:,} events, {max(1, args.aggregators)} aggregator(s)\n"
            f"  drained in {done - started:.1f} s; {events / seconds:,.0f} events/s from 30 % "
            f"to 90 % of the backlog ({events:,} events in {seconds:.2f} s)\n"
            f"  CPU         aggregators {(agg1 - agg0) * 1e6 / events:.2f} us/event "
            f"({(agg1 - agg0) / seconds:.2f} cores); whole machine {(busy1 - busy0) / seconds:.2f} "
            f"of {os.cpu_count()} cores busy\n"
            f"  check       {check}"
        )
        return 0 if reported == args.backlog else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (short run)")
    parser.add_argument("--soak", type=int, default=0, help="a sustained run of this many seconds")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--collectors", type=int, default=2, help="collector processes")
    parser.add_argument(
        "--aggregators", type=int, default=1, help="0: measure the collectors alone"
    )
    parser.add_argument(
        "--backlog", type=int, default=0, help="measure aggregation only: drain N events"
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    if args.backlog:
        return drain(args)
    result = run(args)
    print(
        f"{result.mode}: {result.collectors} collectors, {result.aggregators} aggregator(s), "
        f"{result.connections} connections, {result.duration_s:.0f} s\n"
        f"  throughput  {result.rps:,.0f} requests/s  (wrk: {result.wrk_requests:,} answers, "
        f"{result.wrk_errors} errors)\n"
        f"  latency     p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
        f"max {result.max_ms:.1f} ms\n"
        f"  end-to-end  answered -> in the report: p50 {result.lag_p50_ms:.0f} ms  "
        f"p99 {result.lag_p99_ms:.0f} ms  max {result.lag_max_ms:.0f} ms ({result.probes} probes)\n"
        f"  counts      stream {result.stream_events:,}  reported {result.reported:,}  "
        f"(caught up {result.catch_up_s:.1f} s after the load)\n"
        f"  check       {result.check}"
    )
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    return 0 if result.check == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
