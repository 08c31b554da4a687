"""The tracking port under abuse, over real sockets: oversized request heads (431/414/413),
slow and idle clients, the connection cap, clients that pipeline without reading, readiness
(``/readyz``) during an event-log outage, and where ``/metrics`` is served.

Memory and descriptor checks run the collector in a subprocess (``python -m adtrack.collector``)
and read its ``/proc/<pid>``; the rest use a collector on a background thread.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.bootstrap import bootstrap
from adtrack.collector.asgi import TrackingASGIApp
from adtrack.collector.core import TrackingCore
from adtrack.collector.hits import RecentHits
from adtrack.collector.responses import PIXEL_GIF
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.fd_limits import raise_fd_limit
from adtrack.web.app import create_app
from tests.support.collector import (
    BROWSER_UA,
    Basic,
    Catalogue,
    CollectorProcess,
    RawClient,
    ThreadCollector,
    basic_catalogue,
    read_events,
    request,
    settings_for,
    start_thread_collector,
    wait_for_events,
)
from tests.support.net import LOOPBACK, free_port, wait_for_port
from tests.support.prometheus import metric_total

# Measures timing or load: run alone (the serial part of `make test`).
pytestmark = pytest.mark.serial

LIMIT = 16 * 1024  # the default ADTRACK_MAX_HEADER_BYTES


@dataclass
class Env:
    tmp: Path
    url: str
    engine: Engine
    basic: Basic

    def collector(self, **env: str) -> ThreadCollector:
        return start_thread_collector(settings_for(self.tmp, self.url, **env), self.engine)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        yield Env(tmp_path, url, engine, basic_catalogue(Catalogue(engine)))
    finally:
        engine.dispose()


@contextlib.contextmanager
def running(collector: ThreadCollector) -> Iterator[ThreadCollector]:
    try:
        yield collector
    finally:
        collector.stop()


def metric(port: int, name: str, **labels: str) -> float:
    return metric_total(request(port, "/metrics").body.decode(), name, **labels)


def refused(port: int, reason: str) -> float:
    return metric(port, "adtrack_collector_refused_total", reason=reason)


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def head(target: str, *lines: str) -> bytes:
    return ("\r\n".join((f"GET {target} HTTP/1.1", "Host: t", *lines)) + "\r\n\r\n").encode()


# ---- bounded request heads --------------------------------------------------------------------


def test_heads_over_the_limit_are_refused_and_closed(env: Env) -> None:
    with running(env.collector()) as collector:
        port = collector.port
        imp = f"/imptr?id={env.basic.imp}"
        # just under the limit: served (request line + headers, a little below 16 KiB)
        ua = "a" * (LIMIT - 200)
        assert request(port, imp, headers={"User-Agent": ua}).body == PIXEL_GIF
        # over: 431 and closed, whether the header is one value or many lines
        for lines in (
            [f"User-Agent: {'b' * (LIMIT + 10)}"],
            [f"X-Pad-{n}: {'c' * 1000}" for n in range(20)],
        ):
            with socket.create_connection((LOOPBACK, port)) as sock:
                sock.sendall(head(imp, *lines))
                answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
            assert b"Connection: close" in answer
        # a target alone over the limit: 414
        with socket.create_connection((LOOPBACK, port)) as sock:
            sock.sendall(head("/imptr?id=1&x=" + "d" * (LIMIT + 10)))
            assert read_until_closed(sock).startswith(b"HTTP/1.1 414 ")
        # a body is never read: a small one is ignored, a big one is refused with 413
        with RawClient(port) as client:
            client.send(head(imp, "Content-Length: 5")[:-2] + b"\r\nhello")
            assert client.read_response().status == 200
        with socket.create_connection((LOOPBACK, port)) as sock:
            sock.sendall(head(imp, f"Content-Length: {LIMIT * 4}") + b"e" * (LIMIT * 2))
            assert read_until_closed(sock).startswith(b"HTTP/1.1 413 ")
        assert refused(port, "header_too_large") == 2
        assert refused(port, "uri_too_long") == 1
        assert refused(port, "body_too_large") == 1
        assert request(port, "/healthz").status == 200


def test_a_pipelined_request_is_checked_exactly(env: Env) -> None:
    """A request that starts in the same read as the end of the previous one is not counted
    by the per-read check; the callbacks still hold it to the limit."""
    with running(env.collector()) as collector:
        imp = f"/imptr?id={env.basic.imp}"
        first = head(imp + "&cachebuster=first", f"User-Agent: {BROWSER_UA}")
        big = head(
            imp + "&cachebuster=big",
            f"User-Agent: {'u' * (LIMIT // 2)}",
            f"X-More: {'m' * (LIMIT // 2)}",
        )
        with socket.create_connection((LOOPBACK, collector.port)) as sock:
            sock.sendall(first + big)
            answers = read_until_closed(sock)
        assert answers.startswith(b"HTTP/1.1 200 OK")
        assert b"HTTP/1.1 431 " in answers
        assert [e["cachebuster"] for e in wait_for_events(collector.log_dir, 1)] == ["first"]


# ---- slow and idle clients --------------------------------------------------------------------


def test_a_slow_head_is_timed_out_and_an_idle_connection_closed(env: Env) -> None:
    collector = env.collector(
        ADTRACK_HEADER_TIMEOUT_SECONDS="1", ADTRACK_KEEPALIVE_TIMEOUT_SECONDS="2"
    )
    with running(collector):
        port = collector.port
        started = time.monotonic()
        trickle = socket.create_connection((LOOPBACK, port))
        silent = socket.create_connection((LOOPBACK, port))
        with RawClient(port) as idle:
            assert idle.get("/healthz").status == 200
            trickle.sendall(b"GET /imptr?id=1 HTTP/1.1\r\n")
            trickle.settimeout(0.3)
            answer = b""
            while time.monotonic() - started < 8:
                try:
                    trickle.sendall(b"X-Slow: 1\r\n")  # bytes keep coming: no idle timeout
                    chunk = trickle.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                answer += chunk
                if not chunk:
                    break
            timed_out = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert timed_out < 6
            # a connection that never sent a byte is closed after the head timeout too
            assert read_until_closed(silent, 6) == b""
            # the idle keep-alive connection, after the keep-alive timeout
            assert read_until_closed(idle.sock, 8) == b""
            assert time.monotonic() - started >= 2
        trickle.close()
        silent.close()
        assert refused(port, "head_timeout") == 2


# ---- the tracking port's own endpoints --------------------------------------------------------


@pytest.mark.parametrize("where", ["tracking", "main", "off"])
def test_metrics_are_served_here_only_when_configured(env: Env, where: str) -> None:
    with running(env.collector(ADTRACK_METRICS=where)) as collector:
        resp = request(collector.port, "/metrics")
        if where == "tracking":
            assert resp.status == 200 and b"adtrack_collector_requests_total" in resp.body
        else:
            assert resp.status == 404
        assert request(collector.port, "/healthz").status == 200


def test_readiness_follows_the_event_log(env: Env) -> None:
    collector = start_thread_collector(settings_for(env.tmp, env.url), env.engine, fsync="always")
    with running(collector):
        port = collector.port
        ready = request(port, "/readyz")
        assert (ready.status, ready.body) == (200, b"ready\n")
        assert request(port, f"/imptr?id={env.basic.imp}").status == 200
        # the event log's folder goes away (a file in its place): appends fail
        shutil.rmtree(collector.log_dir)
        collector.log_dir.write_text("not a folder")
        assert request(port, f"/imptr?id={env.basic.imp}&cachebuster=lost").status == 503
        not_ready = request(port, "/readyz")
        assert not_ready.status == 503
        assert not_ready.body.startswith(b"not ready: event log unavailable")
        assert request(port, "/readyz", method="HEAD").status == 503
        assert request(port, "/healthz").status == 200  # alive all the same
        # it stays unready while the cause remains (probes retry, fail again)
        time.sleep(1.2)
        assert request(port, "/readyz").status == 503
        # the folder is back: ready again without any tracking request proving it
        collector.log_dir.unlink()
        deadline = time.monotonic() + 10
        while request(port, "/readyz").status != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.1)
        assert request(port, f"/imptr?id={env.basic.imp}&cachebuster=back").status == 200
        assert [e["cachebuster"] for e in read_events(collector.log_dir)] == ["back"]


# ---- subprocess collectors: memory and descriptors ---------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@contextlib.contextmanager
def collector_process(env: Env, **settings: str) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(
        {
            "ADTRACK_DATA_DIR": str(env.tmp / "proc-data"),
            "ADTRACK_DATABASE_URL": env.url,
            **settings,
        },
        env.tmp / "collector.log",
    ).start()
    try:
        # warm up (first answers build caches) before any baseline is taken
        for _ in range(50):
            assert request(proc.port, f"/imptr?id={env.basic.imp}").status == 200
        yield proc
    finally:
        proc.stop()


def pid_of(proc: CollectorProcess) -> int:
    assert proc.process is not None
    return proc.process.pid


class GoodClient(threading.Thread):
    """Keeps asking ``/healthz`` on new connections; records statuses and latencies."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status = request(self.port, "/healthz").status
            except OSError as exc:
                self.errors.append(repr(exc))
                continue
            self.latencies.append(time.monotonic() - started)
            self.statuses.append(status)
            time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.join(15)
        assert self.statuses and set(self.statuses) == {200}, self.statuses[-5:]
        assert not self.errors, self.errors[:3]


def test_a_huge_header_is_refused_quickly_and_costs_no_memory(env: Env) -> None:
    with collector_process(env) as proc:
        pid = pid_of(proc)
        baseline = rss_kib(pid)
        good = GoodClient(proc.port)
        good.start()
        results: list[tuple[bytes, float]] = []

        def flood() -> None:
            started = time.monotonic()
            chunk = b"x" * (1 << 20)
            with socket.create_connection((LOOPBACK, proc.port), timeout=20) as sock:
                sock.sendall(b"GET /imptr?id=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: ")
                with contextlib.suppress(OSError):  # the server closes long before the end
                    for _ in range(96):  # 96 MiB
                        sock.sendall(chunk)
                results.append((read_until_closed(sock, 20), time.monotonic() - started))

        floods = [threading.Thread(target=flood) for _ in range(3)]
        for thread in floods:
            thread.start()
        for thread in floods:
            thread.join(60)
        good.finish()
        assert len(results) == 3
        for answer, elapsed in results:
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
            assert elapsed < 10  # (before: 11.7 s for one, answered 200)
        assert max(good.latencies) < 2.0, max(good.latencies)
        # it read at most one chunk past the limit per connection: memory stays where it was
        assert rss_kib(pid) < baseline + 20 * 1024, (baseline, rss_kib(pid))


def test_two_thousand_slow_connections_do_not_stop_good_requests(env: Env) -> None:
    raise_fd_limit()  # this test process holds the slow sockets
    with collector_process(env, ADTRACK_HEADER_TIMEOUT_SECONDS="2") as proc:
        good = GoodClient(proc.port)
        good.start()
        slow: list[socket.socket] = []
        try:
            for _ in range(2000):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex((LOOPBACK, proc.port))
                slow.append(sock)
            time.sleep(0.3)
            open_ = set(range(len(slow)))
            started = time.monotonic()
            first_line = True
            while open_ and time.monotonic() - started < 15:
                for i in list(open_):
                    try:
                        slow[i].send(b"GET /imptr?id=1 HTTP/1.1\r\n" if first_line else b"X: y\r\n")
                        if slow[i].recv(4096) == b"":
                            open_.discard(i)
                    except BlockingIOError:
                        pass
                    except OSError:
                        open_.discard(i)
                first_line = False
                time.sleep(0.5)
            elapsed = time.monotonic() - started
        finally:
            for sock in slow:
                sock.close()
        good.finish()
        assert not open_, f"{len(open_)} slow connections still open after {elapsed:.1f}s"
        assert elapsed < 12
        assert max(good.latencies) < 2.0, max(good.latencies)
        assert refused(proc.port, "head_timeout") >= 2000


def test_the_connection_cap_holds_and_good_clients_get_in(env: Env) -> None:
    raise_fd_limit()
    cap = 200
    with collector_process(env, ADTRACK_MAX_CONNECTIONS=str(cap)) as proc:
        pid = pid_of(proc)
        base_fds = open_fds(pid)
        good = GoodClient(proc.port)
        good.start()
        held: list[socket.socket] = []
        most = 0
        try:
            for n in range(2000):
                with contextlib.suppress(OSError):
                    held.append(socket.create_connection((LOOPBACK, proc.port), timeout=5))
                if n % 50 == 0:
                    most = max(most, open_fds(pid))
            time.sleep(0.5)
            most = max(most, open_fds(pid))
            # a good client still gets its answer (an idle connection makes room for it)
            assert request(proc.port, f"/imptr?id={env.basic.imp}").status == 200
            connections = metric(proc.port, "adtrack_collector_connections")
        finally:
            for sock in held:
                sock.close()
        good.finish()
        assert connections <= cap
        # 2,000 attempts, about `cap` descriptors: slack for a new connection accepted before
        # the oldest idle one is closed for it, and for the store's own files (the catalogue
        # poll opens SQLite, the event log rotates)
        assert most <= base_fds + cap + 5, (most, base_fds)
        evicted = refused(proc.port, "evicted_idle")
        assert evicted >= 2000 - cap


def pipelined(prefix: str, imp: str, count: int) -> Iterator[bytes]:
    """``count`` pairs of ``GET /healthz`` and a tracked ``/imptr``, 500 pairs per chunk."""
    ua = f"User-Agent: {BROWSER_UA}"
    for start in range(0, count, 500):
        yield b"".join(
            head("/healthz") + head(f"{imp}&cachebuster={prefix}{n}", ua)
            for n in range(start, min(start + 500, count))
        )


def test_pipelining_without_reading_is_bounded(env: Env) -> None:
    with collector_process(env) as proc:
        pid = pid_of(proc)
        baseline = rss_kib(pid)
        imp = f"/imptr?id={env.basic.imp}"
        count = 5000  # pairs on the connection read at the end
        flood = 200_000  # pairs offered on each of the others (about 50 MB), never read
        sources = [pipelined("c0p", imp, count)] + [pipelined(f"c{c}p", imp, flood) for c in (1, 2)]
        sockets = []
        for _ in sources:
            sock = socket.socket()
            # small kernel buffers, so that what the server holds is what shows
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            sock.connect((LOOPBACK, proc.port))
            sock.setblocking(False)
            sockets.append(sock)
        pending = [b""] * len(sockets)
        sent = [0] * len(sockets)
        peak = baseline
        try:
            # send as much as the server takes, never reading: it must stop taking it
            last_progress = started = time.monotonic()
            while time.monotonic() - last_progress < 1.5 and time.monotonic() - started < 20:
                for i, sock in enumerate(sockets[1:], 1):
                    if not pending[i]:
                        pending[i] = next(sources[i], b"")
                    with contextlib.suppress(BlockingIOError):
                        n = sock.send(pending[i][:65536])
                        if n:
                            sent[i] += n
                            pending[i] = pending[i][n:]
                            last_progress = time.monotonic()
                peak = max(peak, rss_kib(pid))
                time.sleep(0.005)
            assert time.monotonic() - last_progress >= 1.5, "the server never stopped reading"
            assert max(sent) < 200 * 1024 * 1024
            peak = max(peak, rss_kib(pid))
            assert peak < baseline + 50 * 1024, (baseline, peak)
            # the first connection pipelines its requests and then reads: all answered in order
            sock = sockets[0]
            sock.setblocking(True)
            sock.settimeout(20)
            sender = threading.Thread(target=lambda: [sock.sendall(c) for c in sources[0]])
            sender.start()
            received = bytearray()
            while received.count(b"HTTP/1.1 ") < 2 * count:
                chunk = sock.recv(1 << 20)
                assert chunk, "closed early"
                received += chunk
            sender.join(20)
        finally:
            for sock in sockets:
                sock.close()
        assert received.count(b"HTTP/1.1 200 OK") == 2 * count
        time.sleep(0.5)
        assert rss_kib(pid) < baseline + 50 * 1024
    events = wait_for_events(env.tmp / "proc-data" / "eventlog", count)
    cbs = [e["cachebuster"] for e in events if e["cachebuster"]]  # (not the warm-up's)
    assert len(cbs) == len(set(cbs))  # each stored once
    # every event of the connection that was read; of the others, at most what they sent
    assert {f"c0p{n}" for n in range(count)} <= set(cbs)
    assert 0 < len(cbs) - count <= 2 * flood


# ---- readiness on the main port ---------------------------------------------------------------


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(LOOPBACK, port, 15)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_main_port_is_ready_while_its_event_log_takes_writes(env: Env) -> None:
    cache = TrackerCache(SqlTrackerCatalogue(env.engine))
    cache.load()
    log_dir = env.tmp / "main-eventlog"
    writer = LocalEventLogWriter(log_dir, fsync="always")
    tracking = TrackingASGIApp(TrackingCore(cache, hits=RecentHits()), writer)
    app = create_app(
        bootstrap(settings_for(env.tmp, env.url), engine=env.engine), tracking=tracking
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ready\n")
        assert client.get(f"/imptr?id={env.basic.imp}").status_code == 200
        shutil.rmtree(log_dir)
        log_dir.write_text("not a folder")
        assert client.get(f"/imptr?id={env.basic.imp}").status_code == 503
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.text.startswith("not ready: event log unavailable")
        assert client.get("/healthz").status_code == 200
        log_dir.unlink()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.1)


def test_the_main_port_without_tracking_is_ready_while_the_database_answers(env: Env) -> None:
    with serving(create_app(bootstrap(settings_for(env.tmp, env.url), engine=env.engine))) as url:
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert (ready.status_code, ready.text) == (200, "ready\n")
    # a database server that does not answer (nothing listens on the port)
    gone = db.make_engine(f"postgresql+psycopg://postgres@{LOOPBACK}:{free_port()}/adtrack")
    try:
        with serving(create_app(bootstrap(settings_for(env.tmp, env.url), engine=gone))) as url:
            not_ready = httpx.get(f"{url}/readyz", timeout=10)
            assert not_ready.status_code == 503
            assert not_ready.text.startswith("not ready: database unavailable")
    finally:
        gone.dispose()
