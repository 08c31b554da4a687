"""The composition root: every service, adapter and engine of adtrack is built here, from
``Settings``, and handed to the entry points (the API app, the console, the CLI, the collector,
the aggregator, ``adtrack serve``). Nothing else constructs a service.

* :func:`bootstrap` builds the whole :class:`Services` container (what the API process uses).
* The ``build_*`` functions build one part each; :func:`bootstrap` is made of them, and the CLI
  calls only those its command needs, so ``adtrack users list`` stays cheap to start.
* :func:`open_engine` / :func:`migrate` open and migrate the configured database.

Adapters whose import is expensive (DuckDB, Parquet, the event log) are imported inside the
functions that build them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from adtrack.adapters.sql import db
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.adapters.sql.users import SqlUserUnitOfWork
from adtrack.config import Settings
from adtrack.domain.click_tokens import ClickTokens
from adtrack.domain.errors import DomainError
from adtrack.domain.sign_in_lockout import SignInPolicy
from adtrack.domain.utc import utc_now
from adtrack.domain.view_tokens import ViewTokenSigner
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.feeds import FeedRules
from adtrack.services.catalogue import CatalogueService
from adtrack.services.ports import Mailer
from adtrack.services.sign_in_throttle import SignInThrottle
from adtrack.services.users import UserService
from adtrack.services.xandr.catalogue_import import CatalogueImport
from adtrack.services.xandr.dump_files import DumpLimits
from adtrack.services.xandr.report_history import ReportHistoryService
from adtrack.services.xandr.tag_recovery import TagRecoveryService

if TYPE_CHECKING:
    from adtrack.aggregator.runner import Aggregator
    from adtrack.collector.tracker_cache import TrackerCache
    from adtrack.reporting.saved_reports import SavedReportService
    from adtrack.services.export_delivery import ExportDelivery, ExportDeliveryWorker
    from adtrack.services.exports import ExportService, RetryPolicy
    from adtrack.services.ports import (
        ConversionBookkeepingRetention,
        EventLogWriter,
        RawEventArchive,
        RawEventReader,
        RawEventRetention,
        RawEventStore,
        StorageFailure,
    )

__all__ = [
    "Services",
    "bootstrap",
    "build_catalogue",
    "build_conversion_bookkeeping_retention",
    "build_event_writer",
    "build_exports",
    "build_feed_rules",
    "build_mailer",
    "build_raw_event_archive",
    "build_raw_event_reader",
    "build_raw_event_retention",
    "build_report_engine",
    "build_saved_reports",
    "build_sign_in_throttle",
    "build_tracker_cache",
    "build_users",
    "carry_over_legacy_events",
    "migrate",
    "open_aggregator",
    "open_engine",
    "schema_revision",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Everything the API process serves with, built once by :func:`bootstrap`.

    ``export_worker`` (sends queued email exports) exists when SMTP is set up; whoever runs the
    process starts and stops it (the web app's lifespan does). :meth:`close` disposes of the
    engine when :func:`bootstrap` opened it.
    """

    settings: Settings
    engine: Engine
    catalogue: CatalogueService
    # the catalogue import of dumps of the original platform (Microsoft Invest/Xandr)
    xandr_import: CatalogueImport
    users: UserService
    sign_in_throttle: SignInThrottle
    mailer: Mailer | None
    exports: ExportService
    export_delivery: ExportDelivery | None
    export_worker: ExportDeliveryWorker | None
    reports: ReportEngine
    saved_reports: SavedReportService
    raw_events: RawEventReader
    feed_rules: FeedRules
    report_history: ReportHistoryService
    tag_recovery: TagRecoveryService
    # tells a full or failing database from other errors (the web app answers 503)
    storage_failure: StorageFailure
    owns_engine: bool = False

    def close(self) -> None:
        if self.export_worker is not None:
            self.export_worker.stop()
        if self.owns_engine:
            self.engine.dispose()


def bootstrap(settings: Settings, *, engine: Engine | None = None) -> Services:
    """All the services for ``settings``, on ``engine`` when given (the caller then disposes
    of it), else on a new engine for ``settings.database_url``. Does not migrate."""
    from adtrack.services.export_delivery import ExportDeliveryWorker

    owns_engine = engine is None
    db_engine = engine if engine is not None else open_engine(settings)
    catalogue = build_catalogue(settings, db_engine)
    mailer = build_mailer(settings)
    exports, delivery = build_exports(settings, db_engine, catalogue, mailer)
    reports = build_report_engine(db_engine)
    return Services(
        settings=settings,
        engine=db_engine,
        catalogue=catalogue,
        xandr_import=build_xandr_import(settings, db_engine, catalogue),
        users=build_users(db_engine),
        sign_in_throttle=build_sign_in_throttle(settings, db_engine),
        mailer=mailer,
        exports=exports,
        export_delivery=delivery,
        export_worker=ExportDeliveryWorker(delivery) if delivery is not None else None,
        reports=reports,
        saved_reports=build_saved_reports(settings, db_engine, reports, mailer),
        raw_events=build_raw_event_reader(settings, db_engine),
        feed_rules=build_feed_rules(settings),
        report_history=build_report_history(settings, db_engine),
        tag_recovery=build_tag_recovery(settings, db_engine, catalogue),
        storage_failure=db.storage_unavailable,
        owns_engine=owns_engine,
    )


# ---- the database ------------------------------------------------------------------------------


def open_engine(settings: Settings) -> Engine:
    """An engine on the configured database (the caller disposes of it)."""
    return db.make_engine(settings.database_url)


def migrate(settings: Settings) -> None:
    """Bring the configured database to the latest schema (idempotent)."""
    db.upgrade(settings.database_url)


def schema_revision(settings: Settings) -> str | None:
    """The configured database's schema revision (None before the first migration)."""
    return db.current_revision(settings.database_url)


# ---- services ----------------------------------------------------------------------------------


def build_users(engine: Engine) -> UserService:
    return UserService(partial(SqlUserUnitOfWork, engine))


def build_sign_in_throttle(settings: Settings, engine: Engine) -> SignInThrottle:
    policy = SignInPolicy(
        max_failures_per_account=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        window=timedelta(seconds=settings.login_window_seconds),
        lockout=timedelta(seconds=settings.login_lockout_seconds),
        max_lockout=timedelta(seconds=settings.login_max_lockout_seconds),
    )
    return SignInThrottle(partial(SqlUserUnitOfWork, engine), policy)


def build_catalogue(settings: Settings, engine: Engine) -> CatalogueService:
    return CatalogueService(
        partial(SqlUnitOfWork, engine, changes_kept=settings.catalogue_changes_kept)
    )


def build_xandr_import(
    settings: Settings, engine: Engine, catalogue: CatalogueService
) -> CatalogueImport:
    uow_factory = partial(SqlUnitOfWork, engine, changes_kept=settings.catalogue_changes_kept)
    return CatalogueImport(catalogue, uow_factory, utc_now)


def dump_limits(settings: Settings) -> DumpLimits:
    return DumpLimits(max_bytes=settings.import_max_bytes, max_objects=settings.import_max_objects)


def build_mailer(settings: Settings) -> Mailer | None:
    """The SMTP mailer, or None when ``ADTRACK_SMTP_URL`` is unset or invalid (logged)."""
    from adtrack.adapters.smtp import SmtpMailer

    if not settings.smtp_url:
        return None
    try:
        return SmtpMailer.from_url(settings.smtp_url, settings.smtp_from)
    except DomainError as exc:
        log.error("email delivery disabled: %s %s", exc.field, exc.message)
        return None


def build_exports(
    settings: Settings,
    engine: Engine,
    catalogue: CatalogueService,
    mailer: Mailer | None,
    retry: RetryPolicy | None = None,
) -> tuple[ExportService, ExportDelivery | None]:
    """The export service and, with a mailer, the delivery that sends its emails."""
    from adtrack.adapters.sql.export_store import SqlExportStore
    from adtrack.services.export_delivery import ExportDelivery
    from adtrack.services.exports import ExportService

    service = ExportService(
        catalogue,
        settings.public_url,
        store=SqlExportStore(engine),
        email_enabled=mailer is not None,
        retry=retry,
    )
    return service, (ExportDelivery(service, mailer) if mailer is not None else None)


def build_report_engine(engine: Engine) -> ReportEngine:
    """The report engine, reading the rollups of ``engine``."""
    from adtrack.adapters.sql.rollup_reads import SqlRollupReads

    return ReportEngine(SqlRollupReads(engine))


def build_report_history(settings: Settings, engine: Engine) -> ReportHistoryService:
    """Imports of the original platform's report history into the rollups of ``engine``."""
    from adtrack.adapters.sql.report_history_store import SqlReportHistoryStore

    return ReportHistoryService(
        SqlReportHistoryStore(engine),
        max_bytes=settings.report_history_max_bytes,
        max_rows=settings.report_history_max_rows,
    )


def build_tag_recovery(
    settings: Settings, engine: Engine, catalogue: CatalogueService
) -> TagRecoveryService:
    """Trackers recovered from exported tag files, created through ``catalogue``."""
    from adtrack.adapters.sql.tracker_ids import SqlTrackerIds

    return TagRecoveryService(
        catalogue,
        SqlTrackerIds(engine),
        max_bytes=settings.tag_file_max_bytes,
        max_trackers=settings.tag_file_max_trackers,
    )


def build_saved_reports(
    settings: Settings, engine: Engine, reports: ReportEngine, mailer: Mailer | None
) -> SavedReportService:
    from adtrack.adapters.sql.saved_report_store import SqlSavedReportStore
    from adtrack.reporting.saved_reports import SavedReportService

    return SavedReportService(
        SqlSavedReportStore(engine), reports, default_timezone=settings.timezone, mailer=mailer
    )


def build_raw_event_reader(settings: Settings, engine: Engine) -> RawEventReader:
    """The raw-event archive's reader (the feeds), with the deployment's read limits."""
    from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader

    return DuckDBRawEventReader.for_settings(settings, engine)


def build_feed_rules(settings: Settings) -> FeedRules:
    """The feeds' window rules: the raw-event retention and the deployment's time zone."""
    return FeedRules(retention_days=settings.raw_event_retention_days, timezone=settings.timezone)


def build_raw_event_archive(settings: Settings) -> RawEventStore:
    """The raw-event archive's writer side (``ADTRACK_RAW_EVENTS_DIR``)."""
    from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive

    return ParquetRawEventArchive(settings.raw_events_dir)


def build_raw_event_retention(settings: Settings, engine: Engine) -> RawEventRetention:
    """The raw-event archive's retention purge (its manifest in ``engine``)."""
    from adtrack.adapters.raw_events.parquet_archive import (
        ArchiveRetention,
        ParquetRawEventArchive,
    )

    return ArchiveRetention(ParquetRawEventArchive(settings.raw_events_dir), engine)


def build_conversion_bookkeeping_retention(
    settings: Settings, engine: Engine
) -> ConversionBookkeepingRetention:
    """The retention purge of the aggregator's conversion verdicts and order ids."""
    from adtrack.adapters.sql.conversion_retention import SqlConversionBookkeepingRetention

    return SqlConversionBookkeepingRetention(
        engine, batch_rows=settings.conversion_purge_batch_rows
    )


def carry_over_legacy_events(engine: Engine, archive: RawEventArchive) -> int:
    """Move the raw events an earlier version left in the ``events`` table into ``archive``;
    returns how many were moved (0 once the table is empty)."""
    from adtrack.adapters.raw_events import legacy_events

    return legacy_events.carry_over_legacy_events(engine, archive)


# ---- the tracking side -------------------------------------------------------------------------


def build_tracker_cache(engine: Engine, *, freeze_after_load: bool = False) -> TrackerCache:
    """The collector's in-memory tracker cache, reading the catalogue from ``engine`` (the
    caller loads and starts it)."""
    from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
    from adtrack.collector.tracker_cache import TrackerCache

    return TrackerCache(SqlTrackerCatalogue(engine), freeze_after_load=freeze_after_load)


TOKEN_SECRET_FILE = "token_secret"
TOKEN_SECRET_MIN_CHARS = 32


def token_secret(settings: Settings) -> bytes:
    """The secret signed tokens use: ``ADTRACK_TOKEN_SECRET``, else the one kept in the data
    directory (created on first use). A configured one shorter than 32 characters is refused:
    a token is only as hard to forge as its secret is to guess."""
    from adtrack.adapters.secret_files import load_or_create_secret

    if settings.token_secret is not None:
        if len(settings.token_secret) < TOKEN_SECRET_MIN_CHARS:
            raise ValueError(
                f"ADTRACK_TOKEN_SECRET must be at least {TOKEN_SECRET_MIN_CHARS} characters"
            )
        return settings.token_secret.encode()
    return load_or_create_secret(settings.data_dir / TOKEN_SECRET_FILE).encode()


def build_click_tokens(settings: Settings) -> ClickTokens:
    """Click tokens (docs/conversions.md) signed with the deployment's token secret."""
    return ClickTokens(token_secret(settings))


def build_view_tokens(settings: Settings) -> ViewTokenSigner:
    """Viewability tokens (docs/tracking.md, "Viewability") signed with a key derived from the
    deployment's token secret."""
    return ViewTokenSigner(token_secret(settings))


def build_event_writer(settings: Settings, writer_id: str | None = None) -> EventLogWriter:
    """The event-log writer configured by ``settings`` (``ADTRACK_EVENT_LOG``)."""
    from adtrack.adapters.eventlog.factory import open_writer

    return open_writer(settings, writer_id=writer_id)


@contextlib.asynccontextmanager
async def open_aggregator(
    settings: Settings, engine: Engine, archive: RawEventArchive, consumer: str
) -> AsyncIterator[Aggregator]:
    """The aggregator of this deployment: the event log's consumer ``consumer`` into the
    reporting tables of ``engine`` (one SQL rollup sink, which also gives the reader the
    committed positions) and the raw-event ``archive`` (its reader is closed on the way
    out)."""
    from adtrack.adapters.eventlog.factory import is_local, open_reader
    from adtrack.adapters.sql.aggregator_members import SqlAggregatorMembers
    from adtrack.adapters.sql.rollup_sink import SqlRollupSink
    from adtrack.aggregator.runner import Aggregator

    membership = None
    if not is_local(settings):
        # JetStream: the stream's partitions are shared out among the aggregators alive on
        # this database; one that gains a partition resumes it from the committed position.
        membership = SqlAggregatorMembers(
            engine,
            group=f"nats:{settings.nats_stream}",
            ttl_seconds=settings.aggregator_member_ttl_seconds,
        )
    sink = SqlRollupSink(engine, view_dedup_days=settings.view_dedup_days)
    reader = open_reader(
        settings,
        consumer=consumer,
        membership=membership,
        committed_positions=sink.load_checkpoints,
    )
    try:
        yield Aggregator(reader, sink, archive=archive, consumer=consumer)
    finally:
        await reader.close()
