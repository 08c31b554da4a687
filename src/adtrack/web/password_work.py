"""Password work (argon2 hashing and verifying, ~250 ms of CPU each) off the event loop, bounded.

``PasswordWork.run(fn, *args)`` runs ``fn`` on one of ``threads`` dedicated threads (argon2
releases the GIL, so the event loop keeps answering meanwhile). At most ``queue`` calls wait
for a thread; one more is refused at once with ``PasswordWorkBusy`` (the console answers 503
with ``Retry-After``), so a sign-in flood can neither queue unbounded work nor take the
threads that serve other requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple, Unpack

__all__ = ["PasswordWork", "PasswordWorkBusy"]

T = TypeVar("T")
Args = TypeVarTuple("Args")


class PasswordWorkBusy(Exception):
    """Every password thread is busy and the queue is full: try again shortly."""

    retry_after = 2  # seconds: a full queue drains in about queue / threads * 0.25 s


class PasswordWork:
    def __init__(self, threads: int = 2, queue: int = 16) -> None:
        self.threads = max(1, threads)
        self.capacity = self.threads + max(0, queue)  # running + waiting
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="adtrack-password")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls running or waiting now."""
        return self._pending

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def submit(self, fn: Callable[[Unpack[Args]], T], *args: *Args) -> Future[T]:
        """Start ``fn(*args)`` on a password thread, or raise ``PasswordWorkBusy``."""
        with self._lock:
            if self._pending >= self.capacity:
                raise PasswordWorkBusy()
            self._pending += 1

        def job() -> T:
            # Released before the result is visible, so a caller may submit again at once.
            try:
                return fn(*args)
            finally:
                self._release()

        try:
            future = self._executor.submit(job)
        except BaseException:
            self._release()
            raise
        # A job cancelled while queued (its request went away) never runs: release it here.
        future.add_done_callback(lambda done: self._release() if done.cancelled() else None)
        return future

    async def run(self, fn: Callable[[Unpack[Args]], T], *args: *Args) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args))
