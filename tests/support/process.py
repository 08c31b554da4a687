"""Stopping a subprocess a test started."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15.0) -> None:
    """Send ``sig`` to ``process`` if it still runs and wait for it to end; SIGKILL it when it
    has not ended after ``timeout`` seconds."""
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
