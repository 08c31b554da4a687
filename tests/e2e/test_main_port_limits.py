"""Abuse of the main port (API, console, tracking paths) of a real ``adtrack serve``, over real
sockets: huge heads, slow heads, thousands of slow connections, pipelining without reading.
Each stays a few seconds; timings are compared with a baseline measured in the same test."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.server import AdtrackServer, start_adtrack_server

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing and load: run alone

MiB = 1024 * 1024


def rss_mb(server: AdtrackServer) -> float:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_fds(server: AdtrackServer) -> int:
    assert server.process is not None
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def refused(server: AdtrackServer, reason: str) -> float:
    page = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    match = re.search(rf'^adtrack_http_refused_total{{reason="{reason}"}} (\S+)$', page, re.M)
    assert match is not None, page
    return float(match.group(1))


def healthz_seconds(server: AdtrackServer) -> float:
    started = time.perf_counter()
    answer = httpx.get(f"{server.base_url}/healthz", timeout=30)
    assert answer.status_code == 200
    return time.perf_counter() - started


def warm_up(server: AdtrackServer) -> float:
    """A few requests (the first ones load lazily); the median time of the last ones."""
    times = [healthz_seconds(server) for _ in range(15)]
    return statistics.median(times[5:])


def read_answer(sock: socket.socket, timeout: float) -> bytes:
    """Bytes until the peer closes (or ``timeout``)."""
    sock.settimeout(timeout)
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AdtrackServer, int]]:
    """One server for the module (a server's start took 5 s, a third of each test here): every
    test measures against a baseline of its own. With the descriptors it holds when idle."""
    server = start_adtrack_server(
        tmp_path_factory.mktemp("main-port"),
        env={
            "ADTRACK_MAX_HEADER_BYTES": "4096",
            "ADTRACK_HEADER_TIMEOUT_SECONDS": "2",
            "ADTRACK_SEND_TIMEOUT_SECONDS": "2",
        },
    )
    try:
        warm_up(server)
        yield server, open_fds(server)
    finally:
        server.stop()


@pytest.fixture
def server(shared_server: tuple[AdtrackServer, int]) -> AdtrackServer:
    """The shared server once the previous test's connections are gone (as a new one would be)."""
    server, idle_fds = shared_server
    deadline = time.monotonic() + 20
    while open_fds(server) > idle_fds + 4:
        assert time.monotonic() < deadline, (open_fds(server), idle_fds)
        time.sleep(0.1)
    assert server.process is not None and server.process.poll() is None
    return server


def head_of(size: int, path: bytes = b"/healthz") -> bytes:
    """A GET head of exactly ``size`` bytes (padded with one header)."""
    start = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Pad: "
    padding = size - len(start) - 4
    assert padding >= 0
    return start + b"a" * padding + b"\r\n\r\n"


def test_a_head_up_to_the_limit_is_answered_one_byte_more_is_431(server: AdtrackServer) -> None:
    warm_up(server)
    before = refused(server, "header_too_large")
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(head_of(4096) + head_of(4096))  # two heads at the limit, pipelined
        sock.settimeout(10)
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 2:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(head_of(4097))
        answer = read_answer(sock, 10)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert b"connection: close" in answer
    assert refused(server, "header_too_large") == before + 1


@pytest.mark.parametrize("cuts", [(-2,), (-3, -1), (-1,), (-4, -3, -2, -1)])
def test_a_head_split_inside_its_blank_line_is_measured_exactly(
    server: AdtrackServer, cuts: tuple[int, ...]
) -> None:
    """The blank line that ends a head arrives over several reads: a head at the limit is
    answered, one byte more is refused."""
    for size, status in ((4096, b"200"), (4097, b"431")):
        head = head_of(size)
        bounds = [0, *(len(head) + cut for cut in cuts), len(head)]
        with socket.create_connection((server.host, server.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for start, end in zip(bounds, bounds[1:], strict=False):
                sock.sendall(head[start:end])
                time.sleep(0.05)  # separate reads on the server
            sock.settimeout(10)
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 " + status), (size, answer)


def test_a_request_line_over_the_limit_is_414(server: AdtrackServer) -> None:
    before = refused(server, "uri_too_long")
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(b"GET /healthz?" + b"q" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_answer(sock, 10)
    assert answer.startswith(b"HTTP/1.1 414 "), answer
    assert refused(server, "uri_too_long") == before + 1


def test_a_huge_head_is_refused_quickly_and_memory_stays_near_baseline(
    server: AdtrackServer,
) -> None:
    quiet = warm_up(server)
    baseline = rss_mb(server)
    slowest = 0.0
    stop = threading.Event()

    def probe() -> None:
        nonlocal slowest
        while not stop.is_set():
            slowest = max(slowest, healthz_seconds(server))
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for _ in range(2):
            with socket.create_connection((server.host, server.port)) as sock:

                def flood(sock: socket.socket = sock) -> None:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: ")
                        chunk = b"a" * MiB
                        for _ in range(64):  # a 64 MiB header value
                            sock.sendall(chunk)

                sender = threading.Thread(target=flood)
                started = time.perf_counter()
                sender.start()
                sock.settimeout(10)
                first = sock.recv(4096)
                answered_in = time.perf_counter() - started
                sender.join(timeout=30)
            assert first.startswith(b"HTTP/1.1 431 "), first
            assert answered_in < 3.0
    finally:
        stop.set()
        prober.join()
    assert slowest < max(20 * quiet, 1.0), (slowest, quiet)
    time.sleep(0.5)
    assert rss_mb(server) < baseline + 30, (baseline, rss_mb(server))
    assert healthz_seconds(server) < max(20 * quiet, 1.0)


def test_a_head_not_sent_in_time_is_408_and_counted(server: AdtrackServer) -> None:
    before = refused(server, "head_timeout")
    with socket.create_connection((server.host, server.port)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = read_answer(sock, 15)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 1.5 < waited < 8.0
    # a connection that never sends anything is closed too, without counting as a refusal
    with socket.create_connection((server.host, server.port)) as idle:
        assert read_answer(idle, 15) == b""
    assert refused(server, "head_timeout") == before + 1


@contextlib.contextmanager
def raised_fd_limit(wanted: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, wanted), hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_thousands_of_slow_connections_do_not_keep_good_clients_out(
    adtrack_server_factory: ServerFactory,
) -> None:
    """Slowloris with a cap of 500 connections: over 2,000 connections that trickle a head
    (and reconnect when closed); the oldest waiting ones make room, good requests succeed and
    the server's descriptors stay under the cap plus its reserve."""
    server = adtrack_server_factory(
        env={"ADTRACK_MAX_CONNECTIONS": "500", "ADTRACK_HEADER_TIMEOUT_SECONDS": "30"}
    )
    quiet = warm_up(server)
    before = refused(server, "too_many_connections")
    address = (server.host, server.port)
    stop = threading.Event()
    attempts = 0
    peak_fds = 0

    def slowloris() -> None:
        nonlocal attempts
        connections: list[socket.socket] = []
        try:
            while not stop.is_set():
                while len(connections) < 2_200 and not stop.is_set():
                    sock = socket.socket()
                    sock.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        sock.connect(address)
                    connections.append(sock)
                    attempts += 1
                alive = []
                for sock in connections:  # one more byte each; drop the closed ones
                    try:
                        sock.send(b"X")
                        alive.append(sock)
                    except OSError:
                        sock.close()
                connections = alive
                stop.wait(0.3)
        finally:
            for sock in connections:
                sock.close()

    with raised_fd_limit(8_192):
        attacker = threading.Thread(target=slowloris)
        attacker.start()
        try:
            time.sleep(2.0)
            times = []
            for _ in range(20):
                times.append(healthz_seconds(server))
                peak_fds = max(peak_fds, open_fds(server))
                time.sleep(0.1)
        finally:
            stop.set()
            attacker.join()
    assert attempts >= 2_000
    assert max(times) < max(50 * quiet, 2.0), (times, quiet)
    assert peak_fds < 500 + 400, peak_fds
    assert refused(server, "too_many_connections") >= before + 1_000


def test_pipelining_without_reading_keeps_memory_bounded(server: AdtrackServer) -> None:
    quiet = warm_up(server)
    baseline = rss_mb(server)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 500
    sockets = [socket.create_connection((server.host, server.port)) for _ in range(3)]
    sent = 0
    try:
        for sock in sockets:
            sock.setblocking(False)
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            progress = False
            for sock in sockets:
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(request)
                    progress = True
            if not progress:
                time.sleep(0.01)
        during = rss_mb(server)
        assert healthz_seconds(server) < max(20 * quiet, 1.0)  # others are still answered
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(1.0)
    after = rss_mb(server)
    assert sent > 1 * MiB  # the clients did push far more than the server buffers
    assert during < baseline + 60, (baseline, during)
    assert after < baseline + 60, (baseline, after)


def test_a_client_that_reads_nothing_is_closed_after_the_send_timeout(
    server: AdtrackServer,
) -> None:
    """Large answers pipelined and never read fill the buffers; after
    ADTRACK_SEND_TIMEOUT_SECONDS (2 s here) without reading, the server closes the connection."""
    warm_up(server)
    size = len(httpx.get(f"{server.api_url}/openapi.json").content)
    before = refused(server, "send_timeout")
    baseline = rss_mb(server)
    with socket.create_connection((server.host, server.port)) as sock:
        count = 64 * MiB // size + 1  # more than every buffer on the way can hold
        sock.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        deadline = time.monotonic() + 20
        while refused(server, "send_timeout") == before and time.monotonic() < deadline:
            assert rss_mb(server) < baseline + 60
            time.sleep(0.5)
        assert refused(server, "send_timeout") == before + 1
        assert read_answer(sock, 5)  # what the kernel held, then the reset
    assert rss_mb(server) < baseline + 60
