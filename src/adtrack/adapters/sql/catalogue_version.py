"""The catalogue's version and change log on SQLAlchemy Core: the one-row ``catalogue_version``
table collectors poll and the ``catalogue_changes`` they apply from, written by the catalogue
repositories of a unit of work on its ``Connection``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adtrack.adapters.sql import tables

__all__ = [
    "CATALOGUE_VERSION_ROW",
    "DEFAULT_CHANGES_KEPT",
    "MAX_RECORDED_CHANGES",
    "SqlCatalogueVersionRepository",
]

CATALOGUE_VERSION_ROW = 1
# Catalogue changes kept for collectors to catch up from (ADTRACK_CATALOGUE_CHANGES_KEPT).
DEFAULT_CHANGES_KEPT = 100_000
# Above this many changed rows in one transaction (a bulk write, an import) none is logged and
# collectors reload the catalogue: below the collectors' own limit for applying changes one by
# one (collector/tracker_cache.py, 20,000), above which they would reload anyway.
MAX_RECORDED_CHANGES = 10_000


class SqlCatalogueVersionRepository:
    """The one-row ``catalogue_version`` table collectors poll, and the change log
    (``catalogue_changes``) they apply from.

    The repositories of one unit of work :meth:`record` each row they write under the version
    of the transaction (bumping it first if the caller has not), so collectors fetch the
    changed rows instead of reloading the catalogue. Each bump trims the log to the last
    ``changes_kept`` versions.
    """

    def __init__(self, conn: Connection, changes_kept: int = DEFAULT_CHANGES_KEPT) -> None:
        self._conn = conn
        self._changes_kept = max(1, changes_kept)
        self._version: int | None = None  # bumped in this transaction
        self._recorded: set[tuple[str, int]] = set()
        self._unrecorded = False  # too many changes: collectors reload everything

    def bump(self, at: datetime) -> int:
        t = tables.catalogue_version
        # UPDATE first: it takes the row lock that serialises catalogue writes (PostgreSQL) or
        # the database write lock (SQLite) before this transaction reads anything it checks.
        bumped = self._conn.execute(
            update(t)
            .where(t.c.id == CATALOGUE_VERSION_ROW)
            .values(version=t.c.version + 1, changed_at=at)
            .returning(t.c.version)
        ).first()
        if bumped is None:
            self._insert_first_row(at)
            return self.bump(at)
        version = int(bumped[0])
        self._version = version
        self._recorded.clear()
        self._unrecorded = False
        self._trim(version - self._changes_kept)
        return version

    def record_many(self, kind: str, entity_ids: Sequence[int]) -> None:
        """Log that these rows of table ``kind`` changed in this transaction (one executemany).

        A transaction that changes more than ``MAX_RECORDED_CHANGES`` rows records none: its
        version then has no rows, and collectors reload the whole catalogue, which is cheaper
        for them than applying that many changes (and spares the write)."""
        if self._version is None:
            self.bump(datetime.now(UTC))
        if self._unrecorded:
            return
        new = [(kind, i) for i in dict.fromkeys(entity_ids) if (kind, i) not in self._recorded]
        if len(self._recorded) + len(new) > MAX_RECORDED_CHANGES:
            c = tables.catalogue_changes
            self._conn.execute(delete(c).where(c.c.version == self._version))
            self._unrecorded = True
            self._recorded.clear()
            return
        if not new:
            return
        self._recorded.update(new)
        self._conn.execute(
            insert(tables.catalogue_changes),
            [{"version": self._version, "kind": k, "entity_id": i} for k, i in new],
        )

    def record(self, kind: str, entity_id: int) -> None:
        """Log that row ``entity_id`` of table ``kind`` changed in this transaction."""
        if self._version is None:
            self.bump(datetime.now(UTC))
        key = (kind, entity_id)
        if key in self._recorded or self._unrecorded:
            return
        if len(self._recorded) >= MAX_RECORDED_CHANGES:
            self.record_many(kind, [entity_id])  # past the limit: the version records none
            return
        self._recorded.add(key)
        self._conn.execute(
            insert(tables.catalogue_changes).values(
                version=self._version, kind=kind, entity_id=entity_id
            )
        )

    def _trim(self, through: int) -> None:
        if through <= 0:
            return
        t, c = tables.catalogue_version, tables.catalogue_changes
        # one version leaves the window per bump: an index range delete of a row or two
        self._conn.execute(delete(c).where(c.c.version <= through))
        self._conn.execute(
            update(t)
            .where(t.c.id == CATALOGUE_VERSION_ROW, t.c.trimmed_through < through)
            .values(trimmed_through=through)
        )

    def _insert_first_row(self, at: datetime) -> None:
        t = tables.catalogue_version
        values = {"id": CATALOGUE_VERSION_ROW, "version": 0, "changed_at": at}
        dialect = self._conn.dialect.name
        if dialect == "postgresql":
            self._conn.execute(postgresql.insert(t).values(values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            self._conn.execute(sqlite.insert(t).values(values).on_conflict_do_nothing())
        else:
            self._conn.execute(insert(t).values(values))

    def current(self) -> int:
        t = tables.catalogue_version
        version = self._conn.execute(
            select(t.c.version).where(t.c.id == CATALOGUE_VERSION_ROW)
        ).scalar()
        return int(version or 0)
