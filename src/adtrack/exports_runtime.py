"""Wiring for tag exports: the service, the SQL export store, the SMTP mailer and the background
delivery worker, built from ``Settings``. The web app calls ``start_exports`` / ``stop_exports``
from its lifespan; the CLI calls ``build_export_service``.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from adtrack.adapters.smtp import SmtpMailer
from adtrack.adapters.sql.export_store import SqlExportStore
from adtrack.config import Settings
from adtrack.domain.errors import DomainError
from adtrack.services.catalogue import CatalogueService
from adtrack.services.export_delivery import ExportDelivery, ExportDeliveryWorker
from adtrack.services.exports import ExportService, RetryPolicy

__all__ = ["build_export_service", "build_mailer", "start_exports", "stop_exports"]

log = logging.getLogger(__name__)


def build_mailer(settings: Settings) -> SmtpMailer | None:
    """The SMTP mailer, or None when ``ADTRACK_SMTP_URL`` is unset or invalid (logged)."""
    if not settings.smtp_url:
        return None
    try:
        return SmtpMailer.from_url(settings.smtp_url, settings.smtp_from)
    except DomainError as exc:
        log.error("email delivery disabled: %s %s", exc.field, exc.message)
        return None


def build_export_service(
    settings: Settings,
    engine: Engine,
    catalogue: CatalogueService,
    retry: RetryPolicy | None = None,
) -> tuple[ExportService, ExportDelivery | None]:
    """The export service and, when SMTP is set up, the delivery that sends its emails."""
    mailer = build_mailer(settings)
    service = ExportService(
        catalogue,
        settings.public_url,
        store=SqlExportStore(engine),
        email_enabled=mailer is not None,
        retry=retry,
    )
    return service, (ExportDelivery(service, mailer) if mailer is not None else None)


def start_exports(app: Any) -> None:
    """Put the export service on ``app.state.exports`` and start the delivery worker (when
    SMTP is configured) as ``app.state.export_worker``. Needs ``app.state.settings``,
    ``app.state.engine`` and ``app.state.catalogue``."""
    state = app.state
    service, delivery = build_export_service(state.settings, state.engine, state.catalogue)
    state.exports = service
    worker = ExportDeliveryWorker(delivery) if delivery is not None else None
    state.export_worker = worker
    if worker is not None:
        worker.start()


def stop_exports(app: Any) -> None:
    worker: ExportDeliveryWorker | None = getattr(app.state, "export_worker", None)
    if worker is not None:
        worker.stop()
        app.state.export_worker = None
