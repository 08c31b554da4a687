"""``adtrack serve``'s process layout: the collector and the aggregator in processes of their own
(default) or in the API's loop (``--single-process``); live hits and ``/metrics`` on the main
port still see the collectors' hits through their private control channels; the aggregator is
restarted when it dies, and every child stops with the server."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.api_fixtures import create_chain
from tests.support.collector import BROWSER_UA
from tests.support.server import AdtrackServer, adtrack_command

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing and load: run alone

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PLAIN_HTTP = {"ADTRACK_COOKIE_SECURE": "0"}  # the console's cookie over http://127.0.0.1


def children_running(server: AdtrackServer, module: bytes) -> list[int]:
    """Process ids of the server's child processes running ``python -m <module>``."""
    assert server.process is not None
    parent = server.process.pid
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat_fields[1]) == parent and module in cmdline.split(b"\0"):
            children.append(int(entry))
    return children


def collector_children(server: AdtrackServer) -> list[int]:
    """Process ids of the collector processes the server started."""
    return children_running(server, b"adtrack.collector.pool")


def aggregator_children(server: AdtrackServer) -> list[int]:
    """Process ids of the aggregator process the server started (one, or none)."""
    return children_running(server, b"adtrack.aggregator.process")


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def control_sockets(server: AdtrackServer) -> list[Path]:
    """The control sockets of the server's collector processes (from their command lines:
    ``<data dir>/control``, or a private temporary directory when that path is too long)."""
    paths = []
    for pid in collector_children(server):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        paths.append(Path(args[args.index("--control-socket") + 1]))
    return sorted(paths)


@contextmanager
def console_client(server: AdtrackServer) -> Iterator[httpx.Client]:
    """An httpx client signed in to the console as the first-run admin."""
    assert server.credentials is not None and server.credentials.password is not None
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        match = _CSRF.search(client.get("/login").text)
        assert match is not None
        answer = client.post(
            "/login",
            data={
                "csrf_token": match.group(1),
                "email": server.credentials.email,
                "password": server.credentials.password,
                "next": "/",
            },
        )
        assert answer.status_code == 303, answer.text
        yield client


def pixel(url: str, tracker_id: int, marker: str) -> None:
    """One impression of a browser on a fresh connection (so that hits spread over the
    workers), ``marker`` ending its user agent."""
    answer = httpx.get(
        f"{url}/imptr",
        params={"id": tracker_id, "cachebuster": marker},
        headers={"User-Agent": f"{BROWSER_UA} {marker}", "Connection": "close"},
        timeout=10.0,
    )
    assert answer.status_code == 200, answer.text


def live_rows(client: httpx.Client, tracker_id: int) -> list[str]:
    page = client.get(f"/trackers/{tracker_id}/hits")
    assert page.status_code == 200, page.text
    return page.text.split("<tr>")[2:]


def test_live_hits_come_from_every_collector_process(
    adtrack_server_factory: ServerFactory,
) -> None:
    server = adtrack_server_factory(env=PLAIN_HTTP, extra_args=["--workers", "2"])
    server.wait_for_tracking()
    assert len(collector_children(server)) == 2  # the collector is not in the API's process
    sockets = control_sockets(server)
    assert server.process is not None
    assert [s.name for s in sockets] == [f"w{server.process.pid}-{n}.sock" for n in (1, 2)]
    control = sockets[0].parent
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert sorted(control.iterdir()) == sockets
    assert all(stat.S_ISSOCK(s.stat().st_mode) for s in sockets)
    assert all(stat.S_IMODE(s.stat().st_mode) == 0o600 for s in sockets)

    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
    agents = [f"agent-{n}" for n in range(8)]
    for agent in agents:
        pixel(server.tracking_url, tracker_id, agent)
    pixel(server.base_url, tracker_id, "main-port-agent")  # the main port's tracking paths

    with console_client(server) as console:
        rows = live_rows(console, tracker_id)
    assert len(rows) == 9
    seen = {agent for agent in [*agents, "main-port-agent"] for row in rows if agent in row}
    assert seen == {*agents, "main-port-agent"}
    assert all("counted" in row for row in rows)


def test_live_hits_skip_a_collector_that_is_restarting(
    adtrack_server_factory: ServerFactory,
) -> None:
    """A collector process that is gone leaves its hits out; the page still answers."""
    server = adtrack_server_factory(env=PLAIN_HTTP)
    server.wait_for_tracking()
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
    pixel(server.base_url, tracker_id, "main-port-agent")
    [child] = collector_children(server)
    [socket_path] = control_sockets(server)
    socket_path.unlink()  # as if it were restarting
    with console_client(server) as console:
        rows = live_rows(console, tracker_id)
    assert len(rows) == 1 and "main-port-agent" in rows[0]
    assert "collector 1 did not answer" in server.output()
    assert child in collector_children(server)


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


def test_main_port_metrics_default_is_the_api_registry_only(adtrack_server: AdtrackServer) -> None:
    server = adtrack_server
    server.wait_for_tracking()
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
        assert "/metrics" not in api.get("/api/v1/openapi.json").json()["paths"]
    pixel(server.tracking_url, tracker_id, "agent")
    page = httpx.get(f"{server.base_url}/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    reasons = metric_lines(page.text, "adtrack_http_refused_total{")
    assert {re.search(r'reason="(\w+)"', line).group(1) for line in reasons} == {  # type: ignore[union-attr]
        "header_too_large",
        "uri_too_long",
        "head_timeout",
        "too_many_connections",
        "send_timeout",
    }
    assert "adtrack_collector_" not in page.text


def test_main_port_metrics_in_main_mode_label_every_collector(
    adtrack_server_factory: ServerFactory,
) -> None:
    server = adtrack_server_factory(env={"ADTRACK_METRICS": "main"}, extra_args=["--workers", "2"])
    server.wait_for_tracking()
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
    for n in range(6):
        pixel(server.tracking_url, tracker_id, f"agent-{n}")
    pixel(server.base_url, tracker_id, "main-port-agent")
    page = httpx.get(f"{server.base_url}/metrics").text
    assert metric_lines(page, "adtrack_http_refused_total{")
    requests = metric_lines(page, "adtrack_collector_requests_total{")
    counts: dict[str, float] = {}
    for line in requests:
        labels, value = line.rsplit(" ", 1)
        assert 'endpoint="imptr"' in labels
        worker = re.search(r'worker="([^"]+)"', labels)
        assert worker is not None
        counts[worker.group(1)] = float(value)
    assert counts.pop("main") == 1.0
    assert set(counts) <= {"1", "2"}
    assert sum(counts.values()) == 6.0
    # one HELP/TYPE per family, whatever the number of workers
    assert page.count("# TYPE adtrack_collector_requests_total counter") == 1
    assert metric_lines(page, 'adtrack_collector_connections{worker="1"}')
    assert metric_lines(page, 'adtrack_collector_connections{worker="2"}')


def test_main_port_metrics_off(adtrack_server_factory: ServerFactory) -> None:
    server = adtrack_server_factory(env={"ADTRACK_METRICS": "off"})
    assert httpx.get(f"{server.base_url}/metrics").status_code == 404
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_single_process_keeps_the_collector_in_the_api_loop(
    adtrack_server_factory: ServerFactory,
) -> None:
    server = adtrack_server_factory(
        env={**PLAIN_HTTP, "ADTRACK_METRICS": "main"}, extra_args=["--single-process"]
    )
    server.wait_for_tracking()
    assert collector_children(server) == []
    assert aggregator_children(server) == []
    assert not (server.data_dir / "control").exists()
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
    for n in range(3):
        pixel(server.tracking_url, tracker_id, f"agent-{n}")
    with console_client(server) as console:
        assert len(live_rows(console, tracker_id)) == 3
    page = httpx.get(f"{server.base_url}/metrics").text
    assert 'adtrack_collector_requests_total{endpoint="imptr",worker="main"} 3.0' in page
    with server.client() as api:  # the aggregator runs in the API's loop
        wait_until(lambda: reported_imps(api) == 3, 10.0, "3 impressions in the report")


def test_single_process_refuses_workers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADTRACK_")}
    env["ADTRACK_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [*adtrack_command(), "serve", "--port", "0", "--single-process", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--single-process" in result.stderr and "--workers" in result.stderr
    assert "admin token" not in result.stdout


def test_control_sockets_of_a_server_that_is_gone_are_removed(
    adtrack_server_factory: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "d"  # short: the sockets go in <data dir>/control
    control = data_dir / "control"
    control.mkdir(parents=True)
    finished = subprocess.Popen(["true"])  # noqa: S607
    finished.wait()
    stale = control / f"w{finished.pid}-1.sock"
    stale.touch()
    server = adtrack_server_factory(data_dir=data_dir)
    assert not stale.exists()
    assert [s.parent for s in control_sockets(server)] == [control]


# ---- the aggregator's process ---------------------------------------------------------------


def reported_imps(api: httpx.Client) -> int:
    today = datetime.now(UTC).date()
    page = api.get(
        "/api/v1/reports/summary",
        params={"start": str(today - timedelta(days=1)), "end": str(today + timedelta(days=2))},
    )
    assert page.status_code == 200, page.text
    return int(page.json()["totals"]["imps"])


def test_the_aggregator_runs_in_a_process_of_its_own_at_a_lower_priority(
    adtrack_server: AdtrackServer,
) -> None:
    server = adtrack_server
    server.wait_for_tracking()
    [aggregator] = aggregator_children(server)
    [collector] = collector_children(server)
    assert server.process is not None
    assert aggregator not in (server.process.pid, collector)
    assert nice_of(aggregator) == nice_of(server.process.pid) + 5  # ADTRACK_AGGREGATOR_NICE
    assert nice_of(collector) == nice_of(server.process.pid)
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
        for n in range(3):
            pixel(server.tracking_url, tracker_id, f"agent-{n}")
        wait_until(lambda: reported_imps(api) == 3, 10.0, "3 impressions in the report")


def test_a_killed_aggregator_is_restarted_and_counts_every_event_once(
    adtrack_server_factory: ServerFactory,
) -> None:
    server = adtrack_server_factory(env={"ADTRACK_AGGREGATOR_NICE": "0"})
    server.wait_for_tracking()
    with server.client() as api:
        tracker_id = create_chain(api)["impression_tracker"]["id"]
        for n in range(5):
            pixel(server.tracking_url, tracker_id, f"before-{n}")
        wait_until(lambda: reported_imps(api) == 5, 10.0, "5 impressions in the report")
        [first] = aggregator_children(server)
        assert nice_of(first) == nice_of(server.process.pid)  # type: ignore[union-attr]
        os.kill(first, signal.SIGKILL)
        # events logged while no aggregator runs wait in the log for the next one
        for n in range(5):
            pixel(server.tracking_url, tracker_id, f"meanwhile-{n}")
        wait_until(
            lambda: [p for p in aggregator_children(server) if p != first and alive(p)] != [],
            10.0,
            "a new aggregator process",
        )
        wait_until(lambda: reported_imps(api) >= 10, 10.0, "10 impressions in the report")
        time.sleep(0.5)  # a second count of anything would show by now
        assert reported_imps(api) == 10
    assert "aggregator (pid" in server.output() and "restarting in" in server.output()


def test_sigterm_stops_the_server_and_every_child(adtrack_server_factory: ServerFactory) -> None:
    server = adtrack_server_factory(extra_args=["--workers", "2"])
    server.wait_for_tracking()
    children = [*collector_children(server), *aggregator_children(server)]
    assert len(children) == 3
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal it handled once it has shut down: a clean stop ends so
    assert server.process.wait(timeout=15) == -signal.SIGTERM
    assert "Finished server process" in server.output()
    assert [pid for pid in children if alive(pid)] == []


def test_children_stop_by_themselves_when_the_server_is_killed(
    adtrack_server: AdtrackServer,
) -> None:
    server = adtrack_server
    server.wait_for_tracking()
    children = [*collector_children(server), *aggregator_children(server)]
    assert len(children) == 2
    assert server.process is not None
    server.process.kill()  # the server alone, not its process group
    server.process.wait()
    wait_until(lambda: not any(alive(pid) for pid in children), 10.0, "the orphaned children exit")
