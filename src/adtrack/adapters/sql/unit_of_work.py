"""The SQL unit of work: one connection, one transaction, the catalogue repositories on it.

``CatalogueService(lambda: SqlUnitOfWork(engine))`` wires the catalogue to a database.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction

from adtrack.adapters.sql.repositories import (
    SqlAdvertiserRepository,
    SqlCatalogueVersionRepository,
    SqlLineItemRepository,
    SqlPaymentRuleRepository,
    SqlPlacementRepository,
    SqlPublisherRepository,
    SqlTrackerRepository,
)


class SqlUnitOfWork:
    """``with SqlUnitOfWork(engine) as uow: ...; uow.commit()`` — leaving without a commit (or
    on an exception) rolls back."""

    advertisers: SqlAdvertiserRepository
    line_items: SqlLineItemRepository
    publishers: SqlPublisherRepository
    placements: SqlPlacementRepository
    payment_rules: SqlPaymentRuleRepository
    trackers: SqlTrackerRepository
    catalogue_version: SqlCatalogueVersionRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        self._conn = conn
        self._tx = conn.begin()
        self.advertisers = SqlAdvertiserRepository(conn)
        self.line_items = SqlLineItemRepository(conn)
        self.publishers = SqlPublisherRepository(conn)
        self.placements = SqlPlacementRepository(conn)
        self.payment_rules = SqlPaymentRuleRepository(conn)
        self.trackers = SqlTrackerRepository(conn)
        self.catalogue_version = SqlCatalogueVersionRepository(conn)
        return self

    def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("commit() outside of the unit of work's 'with' block")
        self._tx.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._tx = None
