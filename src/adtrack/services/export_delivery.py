"""Sending queued email exports, in the background, with retries.

``ExportDelivery.attempt`` makes one attempt at one export: it claims the row (``queued`` ->
``sending``, so two workers never send the same export), renders the mail, and hands it to the
``Mailer``. The outcome is stored at once:

- sent -> ``sent``;
- a temporary failure (SMTP 4xx, connection refused, timeout) -> back to ``queued`` with the
  reason in ``error`` and the attempt counted; it is tried again after the policy's back-off,
  and fails for good after ``RetryPolicy.max_attempts`` attempts;
- a permanent failure (SMTP 5xx, refused credentials, a tracker deleted since) -> ``failed`` with
  the server's reason.

``ExportDeliveryWorker`` runs ``ExportDelivery.run_due`` on a daemon thread (SMTP is blocking,
so it never touches the web server's event loop); ``wake()`` makes it look at once after an export
is queued. Several processes may run workers on the same database: claiming is atomic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from adtrack.domain.errors import DomainError
from adtrack.domain.utc import utc_now
from adtrack.services.exports import ExportService
from adtrack.services.ports import ExportRecord, ExportStatus, MailDeliveryError, Mailer

__all__ = ["ExportDelivery", "ExportDeliveryWorker"]

log = logging.getLogger(__name__)


class ExportDelivery:
    def __init__(
        self,
        service: ExportService,
        mailer: Mailer,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if service.store is None:
            raise ValueError("email delivery needs an export store")
        self.service = service
        self.store = service.store
        self.mailer = mailer
        self.clock = clock

    def attempt(self, record: ExportRecord) -> ExportStatus | None:
        """One delivery attempt; the new status, or None when another worker holds it."""
        if not self.store.claim(record.id, self.clock()):
            return None
        attempts = record.attempts + 1
        try:
            message = self.service.message_for(record)
            self.mailer.send(message)
        except MailDeliveryError as exc:
            last = attempts >= self.service.retry.max_attempts
            if exc.temporary and not last:
                status = ExportStatus.QUEUED
                error = f"attempt {attempts} failed, will retry: {exc.reason}"
            else:
                status = ExportStatus.FAILED
                error = (
                    f"gave up after {attempts} attempts: {exc.reason}"
                    if exc.temporary
                    else exc.reason
                )
            log.warning("export %s: %s", record.id, error)
            self.store.finish(record.id, status, attempts, error, self.clock())
            return status
        except DomainError as exc:
            # The stored request no longer renders (a tracker was deleted since it was queued).
            error = f"cannot render the tags any more: {exc.field}: {exc.message}"
            self.store.finish(record.id, ExportStatus.FAILED, attempts, error, self.clock())
            return ExportStatus.FAILED
        except Exception as exc:
            # Unexpected (store down mid-attempt, a bug): count it as a temporary failure so the
            # export is neither lost in "sending" nor sent twice by this worker.
            log.exception("export %s: unexpected error while sending", record.id)
            status = (
                ExportStatus.FAILED
                if attempts >= self.service.retry.max_attempts
                else ExportStatus.QUEUED
            )
            error = f"attempt {attempts} failed: {type(exc).__name__}: {exc}"
            try:
                self.store.finish(record.id, status, attempts, error, self.clock())
            except Exception:
                log.exception("export %s: could not record the failure", record.id)
            return status
        self.store.finish(record.id, ExportStatus.SENT, attempts, None, self.clock())
        log.info("export %s sent to %d recipient(s)", record.id, len(record.recipients))
        return ExportStatus.SENT

    def run_due(self, limit: int = 20) -> int:
        """Attempt every export that is due; returns how many attempts were made."""
        now = self.clock()
        self.store.requeue_stale(now - self.service.retry.stale_after, now)
        made = 0
        for record in self.service.due(limit):
            if self.attempt(record) is not None:
                made += 1
        return made

    def deliver_now(self, export_id: str, sleep: Callable[[float], None]) -> ExportRecord:
        """Keep attempting one export (sleeping through the back-off) until it is sent or
        failed; for the CLI, which may run without a server."""
        while True:
            record = self.service.get_export(export_id)
            if record.status in (ExportStatus.SENT, ExportStatus.FAILED):
                return record
            if record.status is ExportStatus.QUEUED:
                wait = 0.0
                if record.attempts:
                    due_at = record.updated_at + self.service.retry.delay_after(record.attempts)
                    wait = (due_at - self.clock()).total_seconds()
                if wait > 0:
                    sleep(wait)
                    continue
                self.attempt(record)
            else:  # another process is sending it right now
                sleep(0.5)


class ExportDeliveryWorker:
    """A daemon thread that sends due exports every ``interval`` seconds (or when woken)."""

    def __init__(self, delivery: ExportDelivery, interval: float = 1.0) -> None:
        self.delivery = delivery
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="adtrack-export-delivery", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.delivery.run_due()
            except Exception:
                log.exception("export delivery pass failed; retrying")
            self._wake.wait(self.interval)
            self._wake.clear()
