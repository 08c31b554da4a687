"""Catalogue-scale benchmark: a collector serving a catalogue of 100,000 trackers while a
trafficker edits it.

Builds a catalogue of ``--trackers`` trackers (100 advertisers with 10 line items each, 100
publishers with a base rule and a conditional rule each, 100 trackers per line item) in a
temporary SQLite database (or a throw-away PostgreSQL one with ``--database postgresql``), then:

* **start-up**: starts ``python -m adtrack.collector`` (pinned to core ``--server-cpu``) and
  times it until it answers a pixel of the catalogue; its RSS then, against a collector on a
  10-tracker catalogue (the difference over the tracker count: memory per tracker);
* **cost per change**: the CPU time a tracker cache (in this process) spends applying one
  change of each kind the trafficker below makes, against a full load;
* **pixel latency**: the same wrk command (pinned to ``--client-cpu``; a fresh cachebuster per
  request, a browser user agent) against the running collector, in rounds of three runs back to
  back: *quiet* (no catalogue change), *changes* (one catalogue change a second through the
  catalogue service: a tracker renamed, a line item repriced (including the hit tracker's, so
  its tag plan is rebuilt), a tracker created, a tracker deactivated/reactivated), and *full
  reloads* (one change a second written without change-log rows, which makes every collector
  reload the whole catalogue, as before incremental apply). Prints requests/s and p50/p99 of
  each run and, per round, p99(changes)/p99(quiet) and p99(full reloads)/p99(quiet); the
  summary gives their medians. ``applied`` says whether the collector's
  ``adtrack_collector_catalogue_version`` had reached the last version 2.5 s after the run
  (the 2-second promise); before the next run the benchmark waits until it has.

Usage::

    .venv/bin/python bench/catalogue.py [--trackers 100000] [--duration 10] [--rounds 3]
        [--connections 32] [--database sqlite|postgresql] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from _support import (
    HOST,
    WRK_DONE,
    WRK_HEADERS,
    create_database,
    drop_database,
    free_port,
    new_database_name,
    stop_process,
    wrk_summary,
)
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.services.catalogue import CatalogueService

ADVERTISERS = 100
LINE_ITEMS_PER_ADVERTISER = 10
PUBLISHERS = 100

WRK_SCRIPT = (
    WRK_HEADERS
    + """-- a fresh cachebuster per request, as real tags send (CB in the URL is replaced)
local head, tail = string.match(wrk.path, "^(.-)CB(.*)$")
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, head .. counter .. tail)
end
"""
    + WRK_DONE
)


# ---- the catalogue --------------------------------------------------------------------------


def make_catalogue(database_url: str, trackers: int) -> dict[str, int]:
    """``trackers`` trackers over 100 advertisers x 10 line items and 100 publishers, with
    bulk inserts; the ids the benchmark hits and edits."""
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    now = datetime.now(UTC)
    stamp = {"created_at": now, "last_modified": now, "state": "active"}
    with engine.begin() as conn:
        conn.execute(
            insert(t.advertisers),
            [{"name": f"Advertiser {n}", **stamp} for n in range(ADVERTISERS)],
        )
        advertisers = [r.id for r in conn.execute(select(t.advertisers.c.id))]
        conn.execute(
            insert(t.line_items),
            [
                {
                    "name": f"LI {a}-{n}",
                    "advertiser_id": a,
                    "revenue_type": "cpm",
                    "revenue_value_micros": 2_000_000,
                    **stamp,
                }
                for a in advertisers
                for n in range(LINE_ITEMS_PER_ADVERTISER)
            ],
        )
        line_items = [
            (r.id, r.advertiser_id)
            for r in conn.execute(select(t.line_items.c.id, t.line_items.c.advertiser_id))
        ]
        conn.execute(
            insert(t.publishers), [{"name": f"Publisher {n}", **stamp} for n in range(PUBLISHERS)]
        )
        publishers = [r.id for r in conn.execute(select(t.publishers.c.id))]
        rule = {"revshare_ppm": 0, "cost_cpm_micros": 0, "cost_cpc_micros": 0, **stamp}
        rule_rows = []
        for p in publishers:
            rule_rows.append(
                {
                    **rule,
                    "name": "Base",
                    "publisher_id": p,
                    "is_base": True,
                    "pricing_type": "revshare",
                    "revshare_ppm": 500_000,
                    "priority": 5,
                }
            )
            rule_rows.append(
                {
                    **rule,
                    "name": "CPM",
                    "publisher_id": p,
                    "is_base": False,
                    "pricing_type": "cpm",
                    "cost_cpm_micros": 1_000_000,
                    "priority": 3,
                }
            )
        conn.execute(insert(t.payment_rules), rule_rows)
        rows = []
        for n in range(trackers):
            li, adv = line_items[n % len(line_items)]
            click = n % 10 == 9
            rows.append(
                {
                    "tracker_type": "click" if click else "impression",
                    "name": f"Tracker {n}",
                    "code": f"T{n}",
                    "advertiser_id": adv,
                    "line_item_id": li,
                    "publisher_id": publishers[n % len(publishers)],
                    "landing_page_url": "https://advertiser.example/landing" if click else None,
                    **stamp,
                }
            )
            if len(rows) == 10_000:
                conn.execute(insert(t.trackers), rows)
                rows = []
        if rows:
            conn.execute(insert(t.trackers), rows)
        conn.execute(insert(t.catalogue_version).values(id=1, version=1, changed_at=now))
        first = conn.execute(
            select(t.trackers.c.id, t.trackers.c.line_item_id)
            .where(t.trackers.c.tracker_type == "impression")
            .order_by(t.trackers.c.id)
        ).first()
        assert first is not None
    engine.dispose()
    return {"imp": int(first.id), "line_item": int(first.line_item_id)}


class Trafficker:
    """One catalogue change a second, on a thread, through the catalogue service (``recorded``)
    or as a bare version bump without change-log rows (every collector reloads everything)."""

    def __init__(self, engine: Engine, ids: dict[str, int], *, recorded: bool) -> None:
        self.engine = engine
        self.ids = ids
        self.recorded = recorded
        self.service = CatalogueService(partial(SqlUnitOfWork, engine))
        self.changes = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Trafficker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        # lowest priority: the trafficker shares wrk's core, and wrk must not wait for it (in
        # production the edits come from the API process, elsewhere)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            while not self.stop.wait(1.0):
                self._change()
                self.changes += 1
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    def _change(self) -> None:
        n = self.changes
        if not self.recorded:
            with self.engine.begin() as conn:
                conn.execute(
                    update(t.catalogue_version).values(version=t.catalogue_version.c.version + 1)
                )
            return
        s, ids = self.service, self.ids
        step = n % 4
        if step == 0:
            s.trackers.update(ids["imp"] + 1 + n % 50, {"name": f"Renamed {n}"})
        elif step == 1:  # the hit tracker's line item: its tag plan must be rebuilt
            s.line_items.update(ids["line_item"], {"revenue_value_micros": (2 + n % 5) * 10**6})
        elif step == 2:
            s.trackers.create(
                {
                    "name": f"New {n}",
                    "tracker_type": "impression",
                    "line_item_id": ids["line_item"],
                    "publisher_id": 1 + n % PUBLISHERS,
                }
            )
        else:
            target = ids["imp"] + 100 + n % 50
            state = s.trackers.get(target).state.value
            s.trackers.update(target, {"state": "inactive" if state == "active" else "active"})


CHANGE_KINDS = ("tracker renamed", "line item repriced", "tracker created", "tracker toggled")


def apply_costs(engine: Engine, ids: dict[str, int], repeat: int = 5) -> dict[str, float]:
    """Milliseconds of CPU a collector's cache spends on one change of each kind (median of
    ``repeat``), and on a full load: measured in this process, on this thread's CPU clock, so
    other work on the machine hardly shows."""
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    trafficker = Trafficker(engine, ids, recorded=True)
    costs: dict[str, list[float]] = {kind: [] for kind in CHANGE_KINDS}
    for n in range(repeat * len(CHANGE_KINDS)):
        trafficker.changes = n
        trafficker._change()
        started = time.thread_time()
        assert cache.refresh_if_changed()
        costs[CHANGE_KINDS[n % len(CHANGE_KINDS)]].append(time.thread_time() - started)
    assert cache.reloads == 1, "a change was not applied incrementally"
    loads = []
    for _ in range(3):
        started = time.thread_time()
        cache.load()
        loads.append(time.thread_time() - started)
    out = {kind: statistics.median(values) * 1000 for kind, values in costs.items()}
    out["full load"] = statistics.median(loads) * 1000
    return out


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(t.catalogue_version.c.version)).scalar_one())


# ---- the collector --------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Collector:
    def __init__(self, data_dir: Path, database_url: str, cpu: int, imp: int) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "ADTRACK_DATA_DIR": str(data_dir),
            "ADTRACK_DATABASE_URL": database_url,
            "ADTRACK_EVENT_LOG": "local",
        }
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(cpu),
                sys.executable,
                "-m",
                "adtrack.collector",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=(data_dir / "collector.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        url = f"http://{HOST}:{self.port}/imptr?id={imp}&cachebuster=start"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the collector exited") from None
                time.sleep(0.02)
        self.startup_seconds = time.monotonic() - started
        time.sleep(1.0)  # let the loader's garbage go
        self.rss_kib = rss_kib(self.process.pid)

    def catalogue_version(self) -> int:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        found = re.search(r"^adtrack_collector_catalogue_version (\S+)$", text, re.M)
        return int(float(found.group(1))) if found else -1

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 20)


@contextmanager
def database(kind: str, workdir: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.db'}"
        return
    pg_name = new_database_name()
    try:
        yield create_database(pg_name)
    finally:
        drop_database(pg_name)


# ---- the runs -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trackers", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    # this process (wrk's parent and the trafficker) stays off the collector's core
    os.sched_setaffinity(0, {args.client_cpu})
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="adtrack-bench-catalogue-") as tmp:
        workdir = Path(tmp)
        script = workdir / "bench.lua"
        script.write_text(WRK_SCRIPT)
        with (
            database(args.database, workdir, "small") as small_url,
            database(args.database, workdir, "big") as big_url,
        ):
            t0 = time.monotonic()
            small_ids = make_catalogue(small_url, 10)
            ids = make_catalogue(big_url, args.trackers)
            print(f"catalogues built in {time.monotonic() - t0:.1f}s", flush=True)
            (workdir / "small").mkdir()
            (workdir / "big").mkdir()
            small = Collector(workdir / "small", small_url, args.server_cpu, small_ids["imp"])
            small.stop()
            collector = Collector(workdir / "big", big_url, args.server_cpu, ids["imp"])
            per_tracker = (collector.rss_kib - small.rss_kib) * 1024 / (args.trackers - 10)
            results["startup_seconds"] = collector.startup_seconds
            results["rss_mib"] = collector.rss_kib / 1024
            results["rss_small_mib"] = small.rss_kib / 1024
            results["bytes_per_tracker"] = per_tracker
            print(
                f"start-up with {args.trackers} trackers: {collector.startup_seconds:.2f}s "
                f"(10 trackers: {small.startup_seconds:.2f}s); RSS {collector.rss_kib / 1024:.0f} "
                f"MiB (10 trackers: {small.rss_kib / 1024:.0f} MiB): {per_tracker:.0f} B/tracker",
                flush=True,
            )
            engine = db.make_engine(big_url)
            costs = apply_costs(engine, ids)
            results["apply_cpu_ms"] = costs
            print(
                "CPU per change in the collector's cache: "
                + ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in costs.items()),
                flush=True,
            )
            url = f"http://{HOST}:{collector.port}/imptr?id={ids['imp']}&cachebuster=CB&t=0"
            ratios: dict[str, list[float]] = {"changes": [], "full reloads": []}
            try:
                run_wrk_cmd = partial(
                    wrk_summary,
                    str(workdir / "wrk"),
                    script,
                    url,
                    threads=1,
                    connections=args.connections,
                    duration=args.duration,
                )
                (workdir / "wrk").write_text(
                    f'#!/bin/sh\nexec taskset -c {args.client_cpu} wrk "$@"\n'
                )
                (workdir / "wrk").chmod(0o755)
                for rnd in range(args.rounds):
                    p99: dict[str, float] = {}
                    for mode in ("quiet", "changes", "full reloads"):
                        if mode == "quiet":
                            summary = run_wrk_cmd()
                            changes = 0
                        else:
                            with Trafficker(engine, ids, recorded=mode == "changes") as tr:
                                summary = run_wrk_cmd()
                            changes = tr.changes
                        # every change applied within the 2-second promise (with a poll's
                        # slack)? Then wait for a backlog of full reloads to clear, so it does
                        # not spill into the next run.
                        time.sleep(2.5)
                        applied = collector.catalogue_version() == current_version(engine)
                        deadline = time.monotonic() + 120
                        while collector.catalogue_version() != current_version(engine):
                            if time.monotonic() > deadline:
                                raise RuntimeError("the collector stopped applying changes")
                            time.sleep(0.5)
                        run = {
                            "round": rnd,
                            "mode": mode,
                            "rps": summary["requests"] / (summary["duration_us"] / 1e6),
                            "p50_ms": summary["p50_us"] / 1000,
                            "p99_ms": summary["p99_us"] / 1000,
                            "max_ms": summary["max_us"] / 1000,
                            "non_2xx_3xx": summary["non_2xx_3xx"],
                            "changes": changes,
                            "applied": applied,
                        }
                        results["runs"].append(run)
                        p99[mode] = run["p99_ms"]
                        print(
                            f"round {rnd} {mode:>12}: {run['rps']:8.0f} req/s  p50 "
                            f"{run['p50_ms']:6.2f} ms  p99 {run['p99_ms']:7.2f} ms  max "
                            f"{run['max_ms']:7.2f} ms  changes {changes}  applied {applied}",
                            flush=True,
                        )
                    for mode in ratios:
                        ratios[mode].append(p99[mode] / p99["quiet"])
            finally:
                collector.stop()
                engine.dispose()
    for mode, values in ratios.items():
        results[f"p99_ratio_{mode.replace(' ', '_')}"] = statistics.median(values)
        print(
            f"p99 with {mode} / quiet: median {statistics.median(values):.2f} "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
