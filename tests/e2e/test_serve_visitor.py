"""``adtrack serve`` with ``ADTRACK_TRUST_FORWARDED_FOR=1``: its collector processes and the
tracking paths of its main port take the client address from ``X-Forwarded-For``, and the
events the aggregator archives carry the country and device of each hit. An unreadable
``ADTRACK_GEOIP_DB`` stops ``serve`` and ``collector`` before they start anything."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adtrack.adapters.sql import db
from tests.conftest import ServerFactory
from tests.support.api_fixtures import create_chain
from tests.support.net import LOOPBACK, free_port
from tests.support.raw_events import archived_events
from tests.support.server import adtrack_command

pytestmark = [pytest.mark.slow]

SAMSUNG_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "85.0.4183.93/6.0 TV Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def _archived(data_dir: Path, count: int, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """The archived raw events by cachebuster, once ``count`` are there."""
    engine = db.make_engine(f"sqlite:///{data_dir / 'adtrack.db'}")
    try:
        deadline = time.monotonic() + timeout
        while True:
            events = archived_events(engine, data_dir / "raw-events")
            if len(events) >= count or time.monotonic() > deadline:
                return {str(e["cachebuster"]): e for e in events}
            time.sleep(0.25)
    finally:
        engine.dispose()


def test_serve_trusts_forwarded_for_when_set(adtrack_server_factory: ServerFactory) -> None:
    server = adtrack_server_factory(env={"ADTRACK_TRUST_FORWARDED_FOR": "1"})
    server.wait_for_tracking()
    with server.client() as api:
        tracker = create_chain(api)["impression_tracker"]["id"]
    hits = [
        # (port, cachebuster, X-Forwarded-For, user agent, more headers)
        (server.tracking_url, "tv", "10.1.1.1, 193.0.6.139", SAMSUNG_TV, {}),
        (server.tracking_url, "phone", "2001:4860:4860::8888", IPHONE_SAFARI, {}),
        (server.base_url, "main", "202.12.29.205", WINDOWS_CHROME, {}),
        (server.base_url, "gpc", "200.160.2.3", IPHONE_SAFARI, {"Sec-GPC": "1"}),
    ]
    for url, cachebuster, forwarded_for, agent, more in hits:
        answer = httpx.get(
            f"{url}/imptr",
            params={"id": tracker, "cachebuster": cachebuster},
            headers={"User-Agent": agent, "X-Forwarded-For": forwarded_for, **more},
            timeout=10.0,
        )
        assert answer.status_code == 200, answer.text
    events = _archived(server.data_dir, len(hits))
    assert sorted(events) == ["gpc", "main", "phone", "tv"]
    visitor = {
        cb: (e["ip"], e["country"], e["device_type"], e["os"], e["browser"])
        for cb, e in events.items()
    }
    assert visitor == {
        "tv": ("193.0.6.0", "NL", "ctv", "Tizen", "Safari"),
        "phone": ("2001:4860:4860::", "US", "mobile", "iOS", "Mobile Safari"),
        "main": ("202.12.29.0", "AU", "desktop", "Windows", "Chrome"),
        "gpc": (None, "BR", "mobile", None, None),
    }
    assert events["tv"]["user_agent"] == SAMSUNG_TV and events["gpc"]["user_agent"] is None


def test_serve_ignores_forwarded_for_by_default(adtrack_server_factory: ServerFactory) -> None:
    server = adtrack_server_factory()
    server.wait_for_tracking()
    with server.client() as api:
        tracker = create_chain(api)["impression_tracker"]["id"]
    for url, cachebuster in [(server.tracking_url, "collector"), (server.base_url, "main")]:
        answer = httpx.get(
            f"{url}/imptr",
            params={"id": tracker, "cachebuster": cachebuster},
            headers={"User-Agent": WINDOWS_CHROME, "X-Forwarded-For": "8.8.8.8"},
            timeout=10.0,
        )
        assert answer.status_code == 200
    events = _archived(server.data_dir, 2)
    assert {cb: (e["ip"], e["country"]) for cb, e in events.items()} == {
        "collector": ("127.0.0.0", None),
        "main": ("127.0.0.0", None),
    }


@pytest.mark.parametrize("command", ["serve", "collector"])
def test_unreadable_geoip_db_refuses_to_start(tmp_path: Path, command: str) -> None:
    broken = tmp_path / "countries.mmdb"
    broken.write_bytes(b"this is no MaxMind DB file" * 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADTRACK_")}
    env.update(ADTRACK_DATA_DIR=str(tmp_path / "data"), ADTRACK_GEOIP_DB=str(broken))
    args = ["--host", LOOPBACK, "--port", str(free_port())]
    if command == "serve":
        args += ["--tracking-port", str(free_port())]
    done = subprocess.run(
        [*adtrack_command(), command, *args],
        env=env,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done
    assert f"adtrack: ADTRACK_GEOIP_DB: cannot read {broken}" in done.stderr.decode()
    assert b"admin password" not in done.stdout  # nothing was started or printed first
    assert not (tmp_path / "data").exists()
