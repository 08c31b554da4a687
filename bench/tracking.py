"""Tracking-endpoint benchmark: adtrack's collector against nginx ``empty_gif``, with wrk.

Starts, on this machine and on free loopback ports:

* nginx (Debian ``nginx-light``): 1 worker, ``empty_gif``, ``access_log`` on, its own prefix
  and configuration in a temporary folder;
* adtrack's collector: 1 worker process (``python -m adtrack.collector``) on a temporary data
  dir (SQLite catalogue with a few trackers, the local event log with the chosen fsync policy).

Then drives both with the same wrk command (connections, threads, duration, URL with a fresh
``cachebuster`` per request, an ``ancost`` and an un-encoded ``redir=https://example.com/a?b=c&d=e``
last, a browser user agent and a referrer),
alternating nginx and adtrack (each run after a ``sync``), for ``/imptr`` and ``/clktrb``, for
several rounds, and prints
requests/s, p50/p99 latency and CPU time per request of each run, and the ratio adtrack/nginx
(median over rounds of the ratio of two back-to-back runs; and the same for CPU per request,
which does not depend on what else the machine is doing).

After each adtrack run it checks the event log: the records added during the run must equal
the events the collector reports as answered (its ``/metrics``), and wrk's count of answers
must match within the requests still in flight when wrk stopped (at most one per connection).
wrk's own count of non-2xx/3xx answers and socket errors must be zero.

Usage::

    .venv/bin/python bench/tracking.py [--duration 10] [--rounds 3] [--connections 64]
        [--threads 1] [--fsync interval always] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import site
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adtrack
from _support import (
    HOST,
    WRK_DONE,
    WRK_HEADERS,
    add_catalogue,
    add_row,
    cpu_seconds,
    free_port,
    socket_errors,
    stop_process,
    wrk_summary,
)
from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t

ENDPOINTS = {
    "imptr": "/imptr?id={imp}&cachebuster=CB&ancost=0.35&redir=https://example.com/a?b=c&d=e",
    "clktrb": "/clktrb?id={click}&cachebuster=CB&ancost=0.35&redir=https://example.com/a?b=c&d=e",
}

WRK_SCRIPT = (
    WRK_HEADERS
    + """-- a fresh cachebuster per request, as real tags send (CB in the URL is replaced)
local head, tail = string.match(wrk.path, "^(.-)CB(.*)$")
local counter = 0
local prefix = ""
init = function(args)
  math.randomseed(os.time() + tonumber(string.match(tostring({}), "0x(%x+)"), 16) % 1000003)
  prefix = tostring(math.random(1, 2000000000)) .. "-"
end
request = function()
  counter = counter + 1
  return wrk.format(nil, head .. prefix .. counter .. tail)
end
"""
    + WRK_DONE
)
# The same, with a user agent never seen before in each request (a browser's, its Chrome build
# number counting up): what a flood meant to defeat the collector's user-agent cache costs.
WRK_SCRIPT_NEW_AGENTS = WRK_SCRIPT.replace(
    "return wrk.format(nil, head .. prefix .. counter .. tail)",
    'local agent = string.gsub(wrk.headers["User-Agent"], "Chrome/126.0.0.0",\n'
    '    "Chrome/126." .. counter .. "." .. string.sub(prefix, 1, -2))\n'
    "  local headers = {}\n"
    "  for name, value in pairs(wrk.headers) do headers[name] = value end\n"
    '  headers["User-Agent"] = agent\n'
    "  return wrk.format(nil, head .. prefix .. counter .. tail, headers)",
)
if WRK_SCRIPT_NEW_AGENTS == WRK_SCRIPT:  # (the line it replaces has changed)
    raise RuntimeError("WRK_SCRIPT_NEW_AGENTS no longer changes WRK_SCRIPT's request line")

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fastcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {{
        listen {host}:{port} backlog=4096;
        location / {{ empty_gif; }}
    }}
}}
"""


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port}")


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk")) if not _which(tool)]
    if missing:
        print(f"installing {' '.join(missing)} ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "-q", "update"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "-q", "install", "-y", *missing], check=True, env=env)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.path.exists(p)), None
    )


class Nginx:
    def __init__(self, workdir: Path) -> None:
        self.prefix = workdir / "nginx"
        self.prefix.mkdir()
        self.port = free_port()
        conf = self.prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=self.prefix, host=HOST, port=self.port))
        binary = _which("nginx")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.prefix / "stderr.log").open("wb"),
        )
        wait_for_port(self.port)

    @property
    def worker_pid(self) -> int:
        """The (single) worker process, which does all the serving."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return int(children.read_text().split()[0])

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT, 10)

    def access_log_lines(self) -> int:
        with (self.prefix / "access.log").open("rb") as fh:
            return sum(1 for _ in fh)


def make_catalogue(database_url: str) -> dict[str, int]:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    now = datetime.now(UTC)
    kinds: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("imp", "impression", {}),
        ("click", "click", {"landing_page_url": "https://advertiser.example/landing"}),
    )
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        adv, li, pub = add_catalogue(
            conn,
            now,
            revenue_value_micros=3_000_000,
            pricing_type="revshare",
            revshare_ppm=500_000,
            cost_cpm_micros=0,
        )
        for n in range(5):  # a few trackers, the benchmark hits the first of each kind
            for key, tracker_type, extra in kinds:
                tracker = add_row(
                    conn,
                    t.trackers,
                    now,
                    tracker_type=tracker_type,
                    name=f"{key} {n}",
                    state="active",
                    advertiser_id=adv,
                    line_item_id=li,
                    publisher_id=pub,
                    **extra,
                )
                ids.setdefault(key, tracker)
    engine.dispose()
    return ids


class Collector:
    """One collector process on a data dir of its own (``adtrack-<name>``, default the fsync
    policy), on the local event log unless ``env`` says otherwise, started under
    ``command_prefix`` (e.g. ``taskset -c 0``)."""

    def __init__(
        self,
        workdir: Path,
        fsync: str,
        python: str = sys.executable,
        *,
        name: str = "",
        env: dict[str, str] | None = None,
        command_prefix: Sequence[str] = (),
    ) -> None:
        self.data_dir = workdir / f"adtrack-{name or fsync}"
        self.data_dir.mkdir()
        self.database_url = f"sqlite:///{self.data_dir / 'adtrack.db'}"
        self.ids = make_catalogue(self.database_url)
        self.port = free_port()
        self.env = {
            **os.environ,
            "ADTRACK_DATA_DIR": str(self.data_dir),
            "ADTRACK_DATABASE_URL": self.database_url,
            "ADTRACK_EVENT_LOG": "local",
            "ADTRACK_FSYNC": fsync,
            **(env or {}),
        }
        if python != sys.executable:
            # another build of the same Python version (say, a distribution's PGO build): it
            # imports adtrack and its compiled dependencies from this environment
            source = str(Path(adtrack.__file__).resolve().parents[1])
            self.env["PYTHONPATH"] = os.pathsep.join([source, *site.getsitepackages()])
        self.log_path = self.data_dir / "collector.log"
        self.process = subprocess.Popen(
            [
                *command_prefix,
                python,
                "-m",
                "adtrack.collector",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--log-level",
                "WARNING",
            ],
            env=self.env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        self.reader = LocalEventLogReader(self.data_dir / "eventlog", consumer="bench")

    def new_records(self) -> int:
        count = 0
        while True:
            batch = self.reader.read_now(100_000)
            if not batch.records:
                return count
            count += len(batch.records)

    def answered_events(self) -> int:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(
            int(float(m.group(1)))
            for m in re.finditer(r"^adtrack_collector_events_total\{[^}]*\} (\S+)$", text, re.M)
        )

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 20)


@dataclass
class Run:
    server: str
    endpoint: str
    fsync: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx_3xx: int
    socket_errors: int
    cpu_us_per_request: float = 0.0
    events_logged: int | None = None
    events_answered: int | None = None
    check: str = ""


def run_wrk(url: str, args: argparse.Namespace, script: Path, server_pid: int) -> dict[str, Any]:
    wrk = _which("wrk") or "wrk"
    # Start every run with nothing left to write back: nginx's access log (hundreds of MB per
    # run, never synced) would otherwise be flushed by the kernel during a later run, and an
    # adtrack run with fsync=always would wait behind that flush.
    os.sync()
    cpu_before = cpu_seconds(server_pid)
    result = wrk_summary(
        wrk,
        script,
        url,
        threads=args.threads,
        connections=args.connections,
        duration=args.duration,
    )
    result["cpu_seconds"] = cpu_seconds(server_pid) - cpu_before
    return result


def to_run(server: str, endpoint: str, fsync: str, rnd: int, res: dict[str, Any]) -> Run:
    return Run(
        server=server,
        endpoint=endpoint,
        fsync=fsync,
        round=rnd,
        rps=res["requests"] / (res["duration_us"] / 1e6),
        p50_ms=res["p50_us"] / 1000,
        p99_ms=res["p99_us"] / 1000,
        requests=res["requests"],
        non_2xx_3xx=res["non_2xx_3xx"],
        cpu_us_per_request=res["cpu_seconds"] * 1e6 / max(res["requests"], 1),
        socket_errors=socket_errors(res),
    )


def print_run(run: Run) -> None:
    extra = f"  events={run.events_logged} {run.check}" if run.events_logged is not None else ""
    print(
        f"  round {run.round} {run.server:7s} {run.endpoint:6s} fsync={run.fsync:8s} "
        f"{run.rps:10.0f} req/s  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
        f"cpu {run.cpu_us_per_request:5.1f} us/req  "
        f"n={run.requests} non2xx3xx={run.non_2xx_3xx} sockerr={run.socket_errors}{extra}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--fsync", nargs="+", default=["interval", "always"])
    parser.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS))
    parser.add_argument("--json", type=Path, default=None, help="write all runs as JSON here")
    parser.add_argument(
        "--collector-python",
        default=sys.executable,
        help="interpreter that runs the collector (default: this one); another build of the "
        "same Python version, e.g. /usr/bin/python3.11, uses this environment's packages",
    )
    parser.add_argument(
        "--new-user-agents",
        action="store_true",
        help="a user agent never seen before in every request (defeats the verdict cache)",
    )
    args = parser.parse_args()

    ensure_tools()
    workdir = Path(tempfile.mkdtemp(prefix="adtrack-bench-"))
    script = workdir / "report.lua"
    script.write_text(WRK_SCRIPT_NEW_AGENTS if args.new_user_agents else WRK_SCRIPT)
    runs: list[Run] = []
    failures: list[str] = []
    nginx = Nginx(workdir)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds, "
        f"machine: {os.cpu_count()} cores; nginx 1 worker empty_gif + access_log",
        flush=True,
    )
    try:
        for fsync in args.fsync:
            collector = Collector(workdir, fsync, args.collector_python)
            try:
                print(f"\n== fsync={fsync}", flush=True)
                for rnd in range(1, args.rounds + 1):
                    for endpoint in args.endpoints:
                        path = ENDPOINTS[endpoint].format(**collector.ids)
                        res = run_wrk(
                            f"http://{HOST}:{nginx.port}{path}", args, script, nginx.worker_pid
                        )
                        run = to_run("nginx", endpoint, fsync, rnd, res)
                        runs.append(run)
                        print_run(run)

                        answered_before = collector.answered_events()
                        res = run_wrk(
                            f"http://{HOST}:{collector.port}{path}",
                            args,
                            script,
                            collector.process.pid,
                        )
                        time.sleep(0.3)  # let the last answers of cut-off requests complete
                        run = to_run("adtrack", endpoint, fsync, rnd, res)
                        run.events_logged = collector.new_records()
                        run.events_answered = collector.answered_events() - answered_before
                        slack = run.events_logged - run.requests
                        ok = (
                            run.events_logged == run.events_answered
                            and 0 <= slack <= args.connections
                            and run.non_2xx_3xx == 0
                            and run.socket_errors == 0
                        )
                        run.check = (
                            f"{'OK' if ok else 'MISMATCH'} (log {run.events_logged} = answered "
                            f"{run.events_answered}; wrk saw {run.requests}, {slack} in flight "
                            f"at cut-off)"
                        )
                        if not ok:
                            failures.append(f"fsync={fsync} {endpoint} round {rnd}: {run.check}")
                        runs.append(run)
                        print_run(run)
            finally:
                collector.stop()
    finally:
        nginx.stop()

    print("\n== summary (medians over rounds)")
    print(
        "ratio = adtrack req/s / nginx req/s of the runs of one round (run back to back), median;\n"
        "cpu ratio = nginx CPU per request / adtrack CPU per request (independent of what else\n"
        "the machine is doing), median.\n"
    )
    print(
        f"{'fsync':9s} {'endpoint':8s} {'nginx req/s':>11s} {'adtrack req/s':>13s} "
        f"{'ratio':>6s} {'cpu ratio':>9s} {'nginx p50/p99 ms':>16s} {'adtrack p50/p99 ms':>18s} "
        f"{'cpu us/req n/a':>14s}"
    )
    summary = []
    for fsync in args.fsync:
        for endpoint in args.endpoints:
            pairs = []
            for rnd in range(1, args.rounds + 1):
                pair = [
                    r
                    for r in runs
                    if r.fsync == fsync and r.endpoint == endpoint and r.round == rnd
                ]
                if len(pair) == 2:
                    pairs.append((pair[0], pair[1]))  # (nginx, adtrack)
            if not pairs:
                continue
            ng = [p[0] for p in pairs]
            ad = [p[1] for p in pairs]
            row = {
                "fsync": fsync,
                "endpoint": endpoint,
                "nginx_rps": statistics.median(r.rps for r in ng),
                "adtrack_rps": statistics.median(r.rps for r in ad),
                "ratio": statistics.median(a.rps / n.rps for n, a in pairs),
                "cpu_ratio": statistics.median(
                    n.cpu_us_per_request / a.cpu_us_per_request for n, a in pairs
                ),
                "nginx_p50_ms": statistics.median(r.p50_ms for r in ng),
                "nginx_p99_ms": statistics.median(r.p99_ms for r in ng),
                "adtrack_p50_ms": statistics.median(r.p50_ms for r in ad),
                "adtrack_p99_ms": statistics.median(r.p99_ms for r in ad),
                "nginx_cpu_us": statistics.median(r.cpu_us_per_request for r in ng),
                "adtrack_cpu_us": statistics.median(r.cpu_us_per_request for r in ad),
            }
            summary.append(row)
            print(
                f"{fsync:9s} {endpoint:8s} {row['nginx_rps']:11.0f} {row['adtrack_rps']:13.0f} "
                f"{row['ratio']:6.2f} {row['cpu_ratio']:9.2f} "
                f"{row['nginx_p50_ms']:7.2f}/{row['nginx_p99_ms']:<8.2f} "
                f"{row['adtrack_p50_ms']:8.2f}/{row['adtrack_p99_ms']:<8.2f} "
                f"{row['nginx_cpu_us']:6.1f}/{row['adtrack_cpu_us']:<6.1f}"
            )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\nnginx access_log lines: {nginx.access_log_lines()}")
    if args.json:
        args.json.write_text(
            json.dumps({"runs": [asdict(r) for r in runs], "summary": summary}, indent=2)
        )
    shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print("\nEVENT COUNT CHECK FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nevent count check: OK for every adtrack run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
