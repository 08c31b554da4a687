"""A sign-in flood on the console does not delay pixels: with the default ``adtrack serve`` the
collector runs in a process of its own, so password hashing on the API's side cannot hold up
the tracking port. Pixel latency is measured quiet and under the flood, in the same test."""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests._api_fixtures import create_chain
from tests.conftest import ServerFactory
from tests.support.server import AdtrackServer

pytestmark = pytest.mark.slow

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FLOODERS = 8


def pixel_latencies(
    server: AdtrackServer,
    tracker_id: int,
    seconds: float,
    also_until: Callable[[], bool] = lambda: True,
) -> list[float]:
    """Latencies of pixels requested one after the other for ``seconds`` (at least 100), and
    then until ``also_until()`` (at most 60 s in all)."""
    times: list[float] = []
    started = time.monotonic()
    until = started + seconds

    def more() -> bool:
        now = time.monotonic()
        if now - started > 60:
            return False
        return now < until or len(times) < 100 or not also_until()

    with httpx.Client(base_url=server.tracking_url, timeout=10) as client:
        while more():
            started = time.perf_counter()
            answer = client.get("/imptr", params={"id": tracker_id, "cachebuster": len(times)})
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200
    return times


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_wrong_password_flood_does_not_delay_pixels(
    adtrack_server_factory: ServerFactory,
) -> None:
    # the console's session cookie over plain http://127.0.0.1
    server = adtrack_server_factory(env={"ADTRACK_COOKIE_SECURE": "0"})
    server.wait_for_tracking()
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
    pixel_latencies(server, tracker_id, 0.5)  # warm up
    quiet = pixel_latencies(server, tracker_id, 2.0)

    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def flood(n: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=20) as client:
            page = client.get("/login").text
            while not stop.is_set():
                match = _CSRF.search(page)
                assert match is not None, page
                answer = client.post(
                    "/login",
                    data={
                        "csrf_token": match.group(1),
                        "email": "admin@example.com",
                        "password": f"wrong password {n}",
                    },
                )
                with lock:
                    statuses[answer.status_code] += 1
                page = answer.text if _CSRF.search(answer.text) else client.get("/login").text

    def answered() -> int:
        with lock:
            return sum(statuses.values())

    flooders = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(FLOODERS)]
    for thread in flooders:
        thread.start()
    try:
        time.sleep(1.0)  # the flood is under way
        # at least 3 s, and until every flooder had an answer: the API hashed all along
        flooded = pixel_latencies(server, tracker_id, 3.0, lambda: answered() >= 2 * FLOODERS)
    finally:
        stop.set()
        for thread in flooders:
            thread.join(timeout=30)

    attempts = sum(statuses.values())
    # refused, whether by the password check (401) or a rate limit (429); never a 5xx
    assert set(statuses) <= {401, 429}, statuses
    assert attempts >= 2 * FLOODERS, statuses
    quiet_p50, quiet_p99 = statistics.median(quiet), percentile(quiet, 0.99)
    flood_p50, flood_p99 = statistics.median(flooded), percentile(flooded, 0.99)
    summary = (
        f"quiet p50 {quiet_p50:.4f} p99 {quiet_p99:.4f}; "
        f"flood p50 {flood_p50:.4f} p99 {flood_p99:.4f}; {statuses}"
    )
    assert flood_p50 < max(5 * quiet_p50, 0.02), summary
    assert flood_p99 < max(5 * quiet_p99, 0.05), summary
