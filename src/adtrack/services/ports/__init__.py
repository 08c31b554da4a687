"""The ports: every interface the services, the collector and the aggregator need from storage,
the event log, the raw-event archive and mail, with the records and errors that are part of
each contract. One module per area; this package re-exports them all, and the code that uses a
port imports it from here (``from adtrack.services.ports import EventLogWriter``).

Each Protocol names what its user needs and nothing else. The adapters behind them live in
``adapters/`` and are chosen by the composition root (``bootstrap.py``); nothing else imports
an adapter.
"""

from adtrack.services.ports.aggregator_members import AggregatorMembership
from adtrack.services.ports.catalogue import (
    CatalogueVersion,
    TrackerCatalogue,
    TrackerCatalogueChanges,
    TrackerCatalogueLoad,
    TrackerInputs,
    TrackerRow,
)
from adtrack.services.ports.catalogue_store import (
    AdvertiserRepository,
    CatalogueVersionRepository,
    ConversionPixelRepository,
    FilterKind,
    FilterValue,
    LineItemRepository,
    ListQuery,
    Page,
    PaymentRuleRepository,
    PlacementRepository,
    PublisherRepository,
    Repository,
    TrackerReference,
    TrackerRepository,
    Transaction,
    UnitOfWork,
)
from adtrack.services.ports.event_log import (
    Batch,
    EventLogReader,
    EventLogUnavailable,
    EventLogWriter,
    PrunableReader,
    RestorableReader,
    SynchronousEventLogWriter,
)
from adtrack.services.ports.exports import ExportRecord, ExportStatus, ExportStore
from adtrack.services.ports.mail import Attachment, MailDeliveryError, Mailer, MailMessage
from adtrack.services.ports.raw_events import (
    RawEventArchive,
    RawEventArchiveUpkeep,
    RawEventReader,
    RawEventRetention,
    RawEventStore,
    RawFile,
)
from adtrack.services.ports.report_history import (
    SPAN_MARGIN,
    HistoryImport,
    HistoryKey,
    HistoryRowRecord,
    HistorySpan,
    ImportedLineItem,
    ImportedPlacement,
    NewHistoryImport,
    ReportHistoryStore,
    earlier_imports,
)
from adtrack.services.ports.reports import (
    BucketSums,
    RollupReads,
    SavedReport,
    SavedReportStore,
    Terms,
)
from adtrack.services.ports.rollups import (
    DeviceKey,
    GeoKey,
    InvalidKey,
    PositionConflict,
    RollupDelta,
    RollupKey,
    RollupSink,
    ViewKey,
    ViewRows,
)
from adtrack.services.ports.sign_in import ThrottleStore, ThrottleUnitOfWork
from adtrack.services.ports.storage import StorageFailure
from adtrack.services.ports.tracker_ids import TakenTrackerId, TrackerIds
from adtrack.services.ports.users import ApiToken, User, UserRepository, UserUnitOfWork

__all__ = [
    "TakenTrackerId",
    "TrackerIds",
    "HistoryImport",
    "HistoryKey",
    "HistoryRowRecord",
    "HistorySpan",
    "ImportedLineItem",
    "ImportedPlacement",
    "NewHistoryImport",
    "ReportHistoryStore",
    "SPAN_MARGIN",
    "earlier_imports",
    "BucketSums",
    "RollupReads",
    "SavedReport",
    "SavedReportStore",
    "Terms",
    "AdvertiserRepository",
    "AggregatorMembership",
    "ApiToken",
    "Attachment",
    "Batch",
    "CatalogueVersion",
    "CatalogueVersionRepository",
    "EventLogReader",
    "EventLogUnavailable",
    "EventLogWriter",
    "ExportRecord",
    "ExportStatus",
    "ExportStore",
    "FilterKind",
    "FilterValue",
    "ConversionPixelRepository",
    "DeviceKey",
    "GeoKey",
    "InvalidKey",
    "LineItemRepository",
    "ListQuery",
    "MailDeliveryError",
    "MailMessage",
    "Mailer",
    "Page",
    "PaymentRuleRepository",
    "PlacementRepository",
    "PositionConflict",
    "PrunableReader",
    "PublisherRepository",
    "RawEventArchive",
    "RawEventArchiveUpkeep",
    "RawEventReader",
    "RawEventRetention",
    "RawEventStore",
    "RawFile",
    "Repository",
    "RestorableReader",
    "RollupDelta",
    "RollupKey",
    "ViewKey",
    "ViewRows",
    "RollupSink",
    "StorageFailure",
    "SynchronousEventLogWriter",
    "ThrottleStore",
    "ThrottleUnitOfWork",
    "TrackerCatalogue",
    "TrackerCatalogueChanges",
    "TrackerCatalogueLoad",
    "TrackerInputs",
    "TrackerReference",
    "TrackerRepository",
    "TrackerRow",
    "Transaction",
    "UnitOfWork",
    "User",
    "UserRepository",
    "UserUnitOfWork",
]
