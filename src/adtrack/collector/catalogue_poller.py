"""The thread that keeps the tracker cache fresh: every ``interval`` seconds it calls the
cache's refresh (which applies the catalogue changes since its version). A store that is down
keeps the last good cache in use; the failure is logged once, until a refresh succeeds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["CataloguePoller"]

log = logging.getLogger(__name__)


class CataloguePoller:
    def __init__(self, refresh: Callable[[], object], interval: float) -> None:
        self._refresh = refresh
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="tracker-cache-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._refresh()
                self.last_error = None
            except Exception as exc:  # the store is down: keep serving the last good cache
                if self.last_error is None:
                    log.warning("tracker cache refresh failed: %s", exc)
                self.last_error = str(exc)
