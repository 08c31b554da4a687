"""The SQL unit of work: one connection, one transaction, the catalogue repositories on it.

``CatalogueService(lambda: SqlUnitOfWork(engine))`` wires the catalogue to a database.
"""

from __future__ import annotations

from sqlalchemy import Connection

from adtrack.adapters.sql.repositories import (
    SqlAdvertiserRepository,
    SqlCatalogueVersionRepository,
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
    catalogue_version: SqlCatalogueVersionRepository

    def _open(self, conn: Connection) -> None:
        self.advertisers = SqlAdvertiserRepository(conn)
        self.line_items = SqlLineItemRepository(conn)
        self.publishers = SqlPublisherRepository(conn)
        self.placements = SqlPlacementRepository(conn)
        self.payment_rules = SqlPaymentRuleRepository(conn)
        self.trackers = SqlTrackerRepository(conn)
        self.catalogue_version = SqlCatalogueVersionRepository(conn)
