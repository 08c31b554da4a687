"""The supervisor of ``adtrack serve``'s child processes, with small Python children: readiness,
restart of a child that dies, no restart of one told to stop, SIGKILL of one that will not."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import pytest

from adtrack.supervisor import ChildSpec, ChildStartError, Supervisor

# A child that says it is ready, then runs `then`; SIGTERM ends it with status 0.
_CHILD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
os.write(int(sys.argv[1]), b"ready\\n")
{then}
"""


def child(then: str = "time.sleep(60)", before_ready: str = "") -> Callable[[int], list[str]]:
    script = before_ready + _CHILD.format(then=then)
    return lambda ready_fd: [sys.executable, "-c", script, str(ready_fd)]


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_killed_child_is_restarted() -> None:
    supervisor = Supervisor([ChildSpec("sleeper", child())]).start()
    try:
        [first] = supervisor.pids
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: supervisor.restarts == 1, 5.0)
        [second] = supervisor.pids
        assert second != first
    finally:
        supervisor.stop()
    assert supervisor.pids == []


def test_a_child_that_exits_when_told_is_not_restarted() -> None:
    supervisor = Supervisor([ChildSpec("sleeper", child())]).start()
    try:
        [pid] = supervisor.pids
        os.kill(pid, signal.SIGTERM)  # as a service manager signalling the whole group
        wait_until(lambda: supervisor.pids == [], 5.0)
        time.sleep(1.0)  # two rounds of supervision
        assert supervisor.pids == [] and supervisor.restarts == 0
    finally:
        supervisor.stop()


def test_a_child_that_exits_before_it_is_ready_fails_the_start() -> None:
    supervisor = Supervisor(
        [ChildSpec("broken", child(before_ready="import sys; sys.exit(3)\n"), "listening")]
    )
    with pytest.raises(ChildStartError, match=r"broken exited with code 3 before listening"):
        supervisor.start()


def test_a_child_that_is_never_ready_fails_the_start_in_time() -> None:
    supervisor = Supervisor(
        [ChildSpec("mute", child(before_ready="import time; time.sleep(60)\n"))],
        startup_timeout=1.0,
    )
    started = time.monotonic()
    with pytest.raises(ChildStartError, match=r"mute was not running within 1s"):
        supervisor.start()
    assert time.monotonic() - started < 10.0
    assert supervisor.pids == []


def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    stubborn = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    supervisor = Supervisor([ChildSpec("stubborn", child(then=stubborn))]).start()
    [pid] = supervisor.pids
    started = time.monotonic()
    supervisor.stop(timeout=0.5)
    assert time.monotonic() - started < 5.0
    assert supervisor.pids == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
