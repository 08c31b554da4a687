"""One collector process on NATS JetStream against the same collector on the local event log.

Starts, on this machine and on free loopback ports:

* its own ``nats-server -js`` (file store in a temporary folder);
* two collector processes (``python -m adtrack.collector``, 1 worker each) on one SQLite
  catalogue: one with ``ADTRACK_EVENT_LOG=local`` (``ADTRACK_FSYNC=interval``, the default), one
  with ``ADTRACK_EVENT_LOG=nats://...`` and a stream of its own. Both are pinned to the same core
  (``taskset -c <collector core>``); wrk and nats-server run on the other one.

Then drives them with the same wrk command as ``bench/tracking.py`` (``/imptr`` with a fresh
cachebuster per request, ``ancost`` and an un-encoded ``redir`` last, a browser user agent),
alternating local and JetStream for several rounds, and prints requests/s, p50/p99 latency and
CPU time per request of the collector (and of nats-server) for each run, and the ratio
JetStream/local (median over rounds of the ratio of two back-to-back runs; the same for CPU per
request, which does not depend on what else the machine is doing).

After each run it checks the log: the events added to it (local segments, or the events inside
the stream's messages) must equal the events the collector reports as answered (``/metrics``),
and wrk's count must match within the requests in flight when wrk stopped.

Usage::

    .venv/bin/python bench/jetstream.py [--duration 10] [--rounds 3] [--connections 64]
        [--collector-core 0] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _support import HOST, cpu_seconds, free_port, socket_errors, wrk_summary
from adtrack.adapters.eventlog.nats_reader import NatsEventLogReader
from adtrack.adapters.eventlog.nats_stream import StreamSpec
from tracking import (
    ENDPOINTS,
    WRK_SCRIPT,
    Collector,
    _which,
    wait_for_port,
)


class NatsServer:
    def __init__(self, workdir: Path, core: int) -> None:
        binary = _which("nats-server")
        if binary is None:
            raise SystemExit("nats-server is not installed")
        self.port = free_port()
        self.url = f"nats://{HOST}:{self.port}"
        store = workdir / "nats"
        store.mkdir()
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(core),
                binary,
                "-a",
                HOST,
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(store),
            ],
            stdout=(store / "nats.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


class PinnedCollector(Collector):
    """``bench/tracking.py``'s collector, pinned to one core, on the local log or JetStream."""

    def __init__(self, workdir: Path, name: str, core: int, nats: NatsServer | None) -> None:
        self.spec: StreamSpec | None = None
        self.counted_to: dict[str, int] = {}  # where the counting reader got to, per partition
        env: dict[str, str] = {}
        if nats is not None:
            stream = f"ADTRACK_BENCH_{secrets.token_hex(4).upper()}"
            self.spec = StreamSpec(servers=(nats.url,), stream=stream, subject=f"bench.{stream}")
            env = {
                "ADTRACK_EVENT_LOG": nats.url,
                "ADTRACK_NATS_STREAM": stream,
                "ADTRACK_NATS_SUBJECT": self.spec.subject,
            }
        super().__init__(
            workdir, "interval", name=name, env=env, command_prefix=["taskset", "-c", str(core)]
        )

    def new_records(self) -> int:
        if self.spec is None:
            return super().new_records()
        return asyncio.run(self._stream_records())

    async def _stream_records(self) -> int:
        """The events inside the stream's messages not counted yet (a reader of its own)."""
        assert self.spec is not None
        reader = NatsEventLogReader(self.spec, consumer="bench-count", fetch_wait=0.3)
        reader.restore(self.counted_to)
        count = 0
        try:
            while True:
                batch = await reader.read(50_000)
                if not batch.records:
                    self.counted_to = reader.positions
                    return count
                count += len(batch.records)
        finally:
            await reader.close()


def appends(collector: Collector) -> int:
    """Appends to the event log so far (the collector's batch-size histogram count)."""
    with urllib.request.urlopen(f"http://{HOST}:{collector.port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.search(r"^adtrack_collector_batch_events_count (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


@dataclass
class Run:
    log: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_request: float
    nats_cpu_us_per_request: float
    events_per_append: float
    events_logged: int
    events_answered: int
    check: str


def measure(
    collector: PinnedCollector, nats: NatsServer, log: str, rnd: int, args: argparse.Namespace
) -> Run:
    wrk = _which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed")
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT)
    url = f"http://{HOST}:{collector.port}" + ENDPOINTS["imptr"].format(**collector.ids)
    answered_before = collector.answered_events()
    appends_before = appends(collector)
    os.sync()
    cpu_before = cpu_seconds(collector.process.pid)
    nats_before = cpu_seconds(nats.process.pid)
    res: dict[str, Any] = wrk_summary(
        wrk,
        script,
        url,
        threads=1,
        connections=args.connections,
        duration=args.duration,
        prefix=["taskset", "-c", str(args.load_core)],
    )
    cpu = cpu_seconds(collector.process.pid) - cpu_before
    nats_cpu = cpu_seconds(nats.process.pid) - nats_before
    script.unlink()
    time.sleep(0.3)  # the last answers of requests cut off by wrk's stop
    logged = collector.new_records()
    answered = collector.answered_events() - answered_before
    appended = appends(collector) - appends_before
    errors = res["non_2xx_3xx"] + socket_errors(res)
    slack = logged - res["requests"]
    ok = logged == answered and 0 <= slack <= args.connections and errors == 0
    requests = max(res["requests"], 1)
    return Run(
        log=log,
        round=rnd,
        rps=res["requests"] / (res["duration_us"] / 1e6),
        p50_ms=res["p50_us"] / 1000,
        p99_ms=res["p99_us"] / 1000,
        requests=res["requests"],
        errors=errors,
        cpu_us_per_request=cpu * 1e6 / requests,
        nats_cpu_us_per_request=nats_cpu * 1e6 / requests if log == "jetstream" else 0.0,
        events_per_append=answered / max(appended, 1),
        events_logged=logged,
        events_answered=answered,
        check=("OK" if ok else "MISMATCH")
        + f" (log {logged} = answered {answered}; wrk {res['requests']}, {errors} errors)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--collector-core", type=int, default=0, help="both collectors run here")
    parser.add_argument("--load-core", type=int, default=1, help="wrk and nats-server run here")
    parser.add_argument("--json", type=Path, default=None, help="write all runs as JSON here")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the processes")

    workdir = Path(tempfile.mkdtemp(prefix="adtrack-bench-jetstream-"))
    runs: list[Run] = []
    nats = NatsServer(workdir, args.load_core)
    collectors: dict[str, PinnedCollector] = {}
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s on core {args.load_core} (with "
        f"nats-server), each collector on core {args.collector_core}; {args.rounds} rounds",
        flush=True,
    )
    try:
        collectors["local"] = PinnedCollector(workdir, "local", args.collector_core, None)
        collectors["jetstream"] = PinnedCollector(workdir, "jetstream", args.collector_core, nats)
        for collector in collectors.values():  # warm-up: connections, caches, the stream's files
            measure_args = argparse.Namespace(**{**vars(args), "duration": 2})
            measure(collector, nats, "warm-up", 0, measure_args)
        for rnd in range(1, args.rounds + 1):
            for log, collector in collectors.items():
                run = measure(collector, nats, log, rnd, args)
                runs.append(run)
                print(
                    f"  round {rnd} {log:9s} {run.rps:9.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                    f"p99 {run.p99_ms:6.2f} ms  collector cpu {run.cpu_us_per_request:5.1f} "
                    f"us/req  nats-server cpu {run.nats_cpu_us_per_request:5.1f} us/req  "
                    f"{run.events_per_append:5.1f} events/append  {run.check}",
                    flush=True,
                )
    finally:
        for collector in collectors.values():
            collector.stop()
        nats.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    pairs = [
        (local, js)
        for local in runs
        for js in runs
        if local.log == "local" and js.log == "jetstream" and local.round == js.round
    ]
    summary = {
        "local_rps": statistics.median(p[0].rps for p in pairs),
        "jetstream_rps": statistics.median(p[1].rps for p in pairs),
        "ratio": statistics.median(js.rps / local.rps for local, js in pairs),
        "cpu_ratio": statistics.median(
            local.cpu_us_per_request / js.cpu_us_per_request for local, js in pairs
        ),
        "local_p99_ms": statistics.median(p[0].p99_ms for p in pairs),
        "jetstream_p99_ms": statistics.median(p[1].p99_ms for p in pairs),
        "local_cpu_us": statistics.median(p[0].cpu_us_per_request for p in pairs),
        "jetstream_cpu_us": statistics.median(p[1].cpu_us_per_request for p in pairs),
        "nats_cpu_us": statistics.median(p[1].nats_cpu_us_per_request for p in pairs),
    }
    print(
        "\n== summary (medians over rounds; ratio = JetStream/local of one round's runs)\n"
        f"  local      {summary['local_rps']:9.0f} req/s  p99 {summary['local_p99_ms']:.2f} ms  "
        f"collector {summary['local_cpu_us']:.1f} us/req\n"
        f"  jetstream  {summary['jetstream_rps']:9.0f} req/s  p99 "
        f"{summary['jetstream_p99_ms']:.2f} ms  collector {summary['jetstream_cpu_us']:.1f} "
        f"us/req (+ nats-server {summary['nats_cpu_us']:.1f} us/req)\n"
        f"  ratio      {summary['ratio']:.2f} in requests/s, {summary['cpu_ratio']:.2f} in "
        "collector CPU per request (local/JetStream)"
    )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(
            json.dumps({"runs": [asdict(r) for r in runs], "summary": summary}, indent=2)
        )
    failed = [r for r in runs if not r.check.startswith("OK")]
    for run in failed:
        print(f"EVENT COUNT CHECK FAILED: {run.log} round {run.round}: {run.check}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
