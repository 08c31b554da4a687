"""End-to-end benchmark: the whole ``adtrack serve`` on one core against nginx on the same core.

Starts, on free loopback ports, each pinned to core 0 with ``taskset`` (so every process of
adtrack — the main process with the API, its collector processes and its aggregator process,
which inherit the pinning — shares one core, as on the smallest host):

* nginx (Debian ``nginx-light``): 1 worker, ``empty_gif``, ``access_log`` on;
* ``adtrack serve`` with its defaults on a temporary data dir (SQLite, local event log,
  ``--workers auto``, which is one collector on one core).

wrk runs on core 1 with the same command against both: a realistic tag URL (a fresh
``cachebuster`` per request, ``ancost``, an un-encoded ``redir`` last) with a browser user agent
and referrer. Per round it prints requests/s, p50/p99 latency and CPU per request of each, and
for adtrack the **catch-up time**: from the end of the load until the report
(``/api/v1/reports/summary``) holds every event the collectors answered (read from their
``/metrics``), and the CPU per event of each kind of adtrack process (collector, aggregator,
API) from the start of the load until the report holds it all, so the aggregator's whole cost
is counted. The summary prints medians over rounds and the ratio adtrack/nginx of each round's
back-to-back runs.

Usage::

    .venv/bin/python bench/pipeline.py [--duration 10] [--rounds 3] [--connections 64]
        [--endpoint imptr|clktrb]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _support import HOST, cpu_seconds, free_port, socket_errors, stop_process, wrk_summary
from tracking import ENDPOINTS, WRK_SCRIPT, Nginx, ensure_tools, make_catalogue

ADTRACK_CORE = "0"
WRK_CORE = "1"
_TOKEN = re.compile(r"^adtrack: admin token: (\S+)\s*$", re.M)
_EVENTS = re.compile(r"^adtrack_collector_events_total\{[^}]*\} (\S+)$", re.M)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (read from /proc)."""
    found = [pid]
    for current in found:
        try:
            tasks = Path(f"/proc/{current}/task").iterdir()
            for task in tasks:
                children = (task / "children").read_text().split()
                found.extend(int(child) for child in children)
        except FileNotFoundError:
            continue
    return found


def role(pid: int) -> str:
    """What an adtrack process does, from its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return "gone"
    if b"adtrack.collector.pool" in cmdline:
        return "collector"
    if b"adtrack.aggregator.process" in cmdline:
        return "aggregator"
    return "api"


def cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds used so far by ``pid``'s process tree, by :func:`role`."""
    totals = {"collector": 0.0, "aggregator": 0.0, "api": 0.0}
    for member in process_tree(pid):
        kind = role(member)
        with contextlib.suppress(FileNotFoundError):
            if kind in totals:
                totals[kind] += cpu_seconds(member)
    return totals


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            total += cpu_seconds(member)
    return total


def pin(pid: int, core: str) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True, capture_output=True)


class Server:
    """``adtrack serve`` with its defaults, pinned to one core from its start."""

    def __init__(self, workdir: Path) -> None:
        self.data_dir = workdir / "adtrack"
        self.data_dir.mkdir()
        database_url = f"sqlite:///{self.data_dir / 'adtrack.db'}"
        self.ids = make_catalogue(database_url)
        self.port, self.tracking_port = free_port(), free_port()
        env = {
            **os.environ,
            "ADTRACK_DATA_DIR": str(self.data_dir),
            "ADTRACK_DATABASE_URL": database_url,
            "ADTRACK_EVENT_LOG": "local",
        }
        self.log_path = self.data_dir / "serve.log"
        adtrack = Path(sys.executable).with_name("adtrack")
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                ADTRACK_CORE,
                str(adtrack),
                "serve",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--tracking-port",
                str(self.tracking_port),
            ],
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            found = _TOKEN.search(self.log_path.read_text(errors="replace"))
            if found and self._ready():
                self.token = found.group(1)
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("adtrack serve did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            for port in (self.port, self.tracking_port):
                urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2).close()
        except OSError:
            return False
        return True

    def answered_events(self) -> int:
        url = f"http://{HOST}:{self.tracking_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        return sum(int(float(value)) for value in _EVENTS.findall(text))

    def reported_events(self) -> int:
        today = datetime.now(UTC).date()
        span = f"start={today - timedelta(days=1)}&end={today + timedelta(days=2)}"
        request = urllib.request.Request(
            f"http://{HOST}:{self.port}/api/v1/reports/summary?{span}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            totals = json.load(resp)["totals"]
        return int(totals["imps"]) + int(totals["clicks"])

    def catch_up(self, expected: int, timeout: float = 60.0) -> float | None:
        """Seconds until the report holds ``expected`` events (None: not within ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.reported_events() >= expected:
                return time.monotonic() - started
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="imptr")
    args = parser.parse_args()
    ensure_tools()
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 cores (one for the servers, one for wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="adtrack-pipeline-") as tmp:
        workdir = Path(tmp)
        script = workdir / "wrk.lua"
        script.write_text(WRK_SCRIPT)
        nginx = Nginx(workdir)
        server = Server(workdir)
        rows: list[dict[str, Any]] = []
        try:
            pin(nginx.process.pid, ADTRACK_CORE)
            pin(nginx.worker_pid, ADTRACK_CORE)
            path = ENDPOINTS[args.endpoint].format(**server.ids)
            print(
                f"load average at the start: {' '.join(map(str, os.getloadavg()))}\n"
                f"wrk -t1 -c{args.connections} -d{args.duration}s on core {WRK_CORE}; nginx "
                f"(1 worker, empty_gif + access_log) and adtrack serve (all its processes) "
                f"on core {ADTRACK_CORE}; {args.endpoint}",
                flush=True,
            )
            for rnd in range(1, args.rounds + 1):
                ref = _with_cpu(nginx.worker_pid, f"http://{HOST}:{nginx.port}{path}", args, script)
                before = server.answered_events()
                cpu_before = cpu_by_role(server.process.pid)
                ours = _with_cpu(
                    server.process.pid,
                    f"http://{HOST}:{server.tracking_port}{path}",
                    args,
                    script,
                )
                answered = server.answered_events()
                caught_up = server.catch_up(answered)
                cpu_after = cpu_by_role(server.process.pid)
                per_event = {
                    kind: (cpu_after[kind] - cpu_before[kind]) * 1e6 / max(1, answered - before)
                    for kind in cpu_after
                }
                row = {
                    "round": rnd,
                    "nginx_rps": ref["requests"] * 1e6 / ref["duration_us"],
                    "adtrack_rps": ours["requests"] * 1e6 / ours["duration_us"],
                    "nginx_p99_ms": ref["p99_us"] / 1000,
                    "adtrack_p50_ms": ours["p50_us"] / 1000,
                    "adtrack_p99_ms": ours["p99_us"] / 1000,
                    "nginx_cpu_us": ref["cpu_us"],
                    "adtrack_cpu_us": ours["cpu_us"],
                    "answered": answered - before,
                    "collector_us": per_event["collector"],
                    "aggregator_us": per_event["aggregator"],
                    "api_us": per_event["api"],
                    "catch_up_s": caught_up,
                    "errors": socket_errors(ours) + ours["non_2xx_3xx"] + ref["non_2xx_3xx"],
                }
                row["ratio"] = row["adtrack_rps"] / row["nginx_rps"]
                rows.append(row)
                print(
                    f"  round {rnd}: nginx {row['nginx_rps']:8.0f} req/s p99 "
                    f"{row['nginx_p99_ms']:.2f} ms cpu {row['nginx_cpu_us']:.1f} us/req | "
                    f"adtrack {row['adtrack_rps']:8.0f} req/s p50 {row['adtrack_p50_ms']:.2f} "
                    f"p99 {row['adtrack_p99_ms']:.2f} ms cpu {row['adtrack_cpu_us']:.1f} us/req"
                    f" | ratio {row['ratio']:.2f} | {row['answered']} events, in the report "
                    + (
                        f"{caught_up:.2f} s after the load"
                        if caught_up is not None
                        else "NOT within 60 s"
                    )
                    + f" | cpu per event until then: collector {row['collector_us']:.1f} "
                    f"aggregator {row['aggregator_us']:.1f} api {row['api_us']:.1f} us"
                    + f" | errors {row['errors']}",
                    flush=True,
                )
        finally:
            server.stop()
            nginx.stop()

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    catch_ups = [r["catch_up_s"] for r in rows]
    print(
        "\n== summary (medians over rounds)\n"
        f"ratio (req/s adtrack / nginx) {median('ratio'):.2f}; "
        f"cpu ratio {median('nginx_cpu_us') / median('adtrack_cpu_us'):.2f}; "
        f"adtrack p50 {median('adtrack_p50_ms'):.2f} ms p99 {median('adtrack_p99_ms'):.2f} ms; "
        f"nginx p99 {median('nginx_p99_ms'):.2f} ms; "
        f"cpu per event: collector {median('collector_us'):.1f} us, aggregator "
        f"{median('aggregator_us'):.1f} us, api {median('api_us'):.1f} us; "
        "catch-up "
        + (
            f"{statistics.median(c for c in catch_ups if c is not None):.2f} s (max "
            f"{max(c for c in catch_ups if c is not None):.2f} s)"
            if all(c is not None for c in catch_ups)
            else "FAILED in some round"
        )
    )
    print(f"load average at the end: {' '.join(map(str, os.getloadavg()))}")
    ok = all(r["errors"] == 0 and r["catch_up_s"] is not None for r in rows)
    return 0 if ok else 1


def _with_cpu(pid: int, url: str, args: argparse.Namespace, script: Path) -> dict[str, Any]:
    """One wrk run (on its own core) and the CPU per request of ``pid``'s process tree."""
    subprocess.run(["sync"], check=True)  # no write-back of an earlier run's files during this
    before = tree_cpu_seconds(pid)
    summary = wrk_summary(
        "wrk",
        script,
        url,
        threads=1,
        connections=args.connections,
        duration=args.duration,
        prefix=("taskset", "-c", WRK_CORE),
    )
    summary["cpu_us"] = (tree_cpu_seconds(pid) - before) * 1e6 / max(1, summary["requests"])
    return summary


if __name__ == "__main__":
    sys.exit(main())
