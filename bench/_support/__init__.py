"""What the benchmarks in ``bench/`` share: loopback ports, wrk, the bench catalogue, a sample
event, and throw-away PostgreSQL databases.

A package rather than a ``bench/*.py`` module, so that ``make bench`` does not run it."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Table, insert

from adtrack.adapters.sql import tables as t
from adtrack.domain.events import Event

HOST = "127.0.0.1"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

# One realistic hit (an impression from a desktop browser on a news page); benchmarks build their
# events from it with ``SAMPLE_EVENT._replace(...)``, so a field added to Event is added here only.
SAMPLE_EVENT = Event(
    event_id="bench-0",
    ts=1_767_225_600_000_000,  # 2026-01-01 00:00 UTC
    imp_type=9,
    tracker_id=1,
    advertiser_id=1,
    line_item_id=1,
    publisher_id=1,
    placement_id=None,
    payment_rule_id=None,
    media_cost_micros=1_250,
    booked_revenue_micros=2_500,
    revenue_type="cpm",
    ancost_used=False,
    cachebuster="482913377",
    ip="203.0.113.0",
    country="US",
    user_agent=BROWSER_UA,
    device_type="desktop",
    os="Windows",
    browser="Chrome",
    referrer="https://news.example.com/articles/2026/01/some-long-article-slug",
    invalid=False,
    invalid_reason=None,
    redirect_url=None,
    view_state=None,
    impression_event_id=None,
)

# The start of a wrk script: a browser's headers.
WRK_HEADERS = (
    '\nwrk.headers["User-Agent"] = "' + BROWSER_UA + '"\n'
    'wrk.headers["Referer"] = "https://publisher.example/article/42"\n'
)

# The end of a wrk script: prints wrk's summary as one JSON line, read by ``wrk_summary`` (no
# per-request Lua here: the hot loop stays in C).
WRK_DONE = """done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "non_2xx_3xx": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all of the machine's cores have spent busy so far (not idle, not waiting)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wrk_summary(
    wrk: str,
    script: Path,
    url: str,
    *,
    threads: int,
    connections: int,
    duration: int,
    prefix: Sequence[str] = (),
) -> dict[str, Any]:
    """Runs wrk with ``script`` (ending in ``WRK_DONE``) against ``url``; its summary.
    ``prefix``: a command wrk runs under (e.g. ``taskset -c 1``)."""
    out = subprocess.run(
        [
            *prefix,
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    return result


def stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send ``sig`` to a process still running, wait ``timeout`` seconds, then kill it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def socket_errors(summary: dict[str, Any]) -> int:
    """wrk's connect, read and write errors and timeouts."""
    return int(
        summary["connect_errors"]
        + summary["read_errors"]
        + summary["write_errors"]
        + summary["timeouts"]
    )


# ---- the catalogue ------------------------------------------------------------------------------


def add_row(conn: Connection, table: Table, now: datetime, **values: Any) -> int:
    """Inserts one catalogue row, created and last modified ``now``; its id."""
    row = insert(table).values(created_at=now, last_modified=now, **values)
    return int(conn.execute(row).inserted_primary_key[0])


def add_catalogue(
    conn: Connection, now: datetime, *, revenue_value_micros: int, **base_rule: Any
) -> tuple[int, int, int]:
    """The bench advertiser with its active CPM line item, the bench publisher with its base
    payment rule (``base_rule``: its pricing), and catalogue version 1; the ids of the
    advertiser, the line item and the publisher."""
    adv = add_row(conn, t.advertisers, now, name="Bench advertiser", state="active")
    li = add_row(
        conn,
        t.line_items,
        now,
        name="Bench line item",
        advertiser_id=adv,
        state="active",
        revenue_type="cpm",
        revenue_value_micros=revenue_value_micros,
    )
    pub = add_row(conn, t.publishers, now, name="Bench publisher", state="active")
    add_row(
        conn,
        t.payment_rules,
        now,
        name="Base",
        publisher_id=pub,
        state="active",
        is_base=True,
        cost_cpc_micros=0,
        priority=5,
        **base_rule,
    )
    conn.execute(insert(t.catalogue_version).values(id=1, version=1, changed_at=now))
    return adv, li, pub


# ---- throw-away PostgreSQL databases (on the local server) --------------------------------------


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(host=HOST, user="postgres", dbname="postgres", autocommit=True)


def new_database_name() -> str:
    return f"adtrack_bench_{secrets.token_hex(4)}"


def database_exists(name: str) -> bool:
    with _admin() as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return found is not None


def create_database(name: str) -> str:
    """Creates database ``name``; its URL."""
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{PG_SERVER}{name}"


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
