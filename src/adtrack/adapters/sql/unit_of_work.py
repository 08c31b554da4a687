"""The SQL unit of work: one connection, one transaction, the catalogue repositories on it.

``CatalogueService(lambda: SqlUnitOfWork(engine))`` wires the catalogue to a database.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from adtrack.adapters.sql.catalogue_version import (
    DEFAULT_CHANGES_KEPT,
    SqlCatalogueVersionRepository,
)
from adtrack.adapters.sql.repositories import (
    SqlAdvertiserRepository,
    SqlConversionPixelRepository,
    SqlLineItemRepository,
    SqlPaymentRuleRepository,
    SqlPlacementRepository,
    SqlPublisherRepository,
    SqlTrackerRepository,
)
from adtrack.adapters.sql.transaction import SqlTransaction


class SqlUnitOfWork(SqlTransaction):
    """``with SqlUnitOfWork(engine) as uow: ...; uow.commit()`` — leaving without a commit (or
    on an exception) rolls back."""

    advertisers: SqlAdvertiserRepository
    line_items: SqlLineItemRepository
    publishers: SqlPublisherRepository
    placements: SqlPlacementRepository
    payment_rules: SqlPaymentRuleRepository
    trackers: SqlTrackerRepository
    conversion_pixels: SqlConversionPixelRepository
    catalogue_version: SqlCatalogueVersionRepository

    def __init__(self, engine: Engine, *, changes_kept: int = DEFAULT_CHANGES_KEPT) -> None:
        super().__init__(engine)
        self._changes_kept = changes_kept

    def _open(self, conn: Connection) -> None:
        self.catalogue_version = versions = SqlCatalogueVersionRepository(conn, self._changes_kept)
        self.advertisers = SqlAdvertiserRepository(conn, versions)
        self.line_items = SqlLineItemRepository(conn, versions)
        self.publishers = SqlPublisherRepository(conn, versions)
        self.placements = SqlPlacementRepository(conn, versions)
        self.payment_rules = SqlPaymentRuleRepository(conn, versions)
        self.trackers = SqlTrackerRepository(conn, versions)
        self.conversion_pixels = SqlConversionPixelRepository(conn, versions)
