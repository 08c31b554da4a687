"""One connection and one transaction for a unit of work (the ``Transaction`` port).

Subclasses attach their repositories to the connection in :meth:`SqlTransaction._open`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine


class SqlTransaction:
    """``with Sub(engine) as uow: ...; uow.commit()`` -- leaving without a commit (or on an
    exception) rolls back."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def _open(self, conn: Connection) -> None:
        """Attach the repositories to ``conn`` (called on entering the ``with`` block)."""

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        self._conn = conn
        conn.begin()
        self._open(conn)
        return self

    def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("commit() outside of the unit of work's 'with' block")
        self._conn.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
