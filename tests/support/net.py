"""Ports on the loopback interface."""

from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it by binding port 0).

    Another process may still take it before the caller binds it; callers that start a server
    on it should retry with a new port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> bool:
    """Wait until ``host:port`` accepts connections; False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if port_is_open(host, port):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
