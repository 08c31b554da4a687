"""The retention purge of the aggregator's conversion bookkeeping (the
``ConversionBookkeepingRetention`` port): the verdicts of conversions older than a cutoff
(``conversion_verdicts``) and the order ids those conversions counted (``conversion_orders``).

A batch at a time, each in its own short transaction: the ``batch_rows`` oldest verdicts past
the cutoff (by the ``ts`` index), their order ids (by the ``event_id`` index), then the
verdicts themselves (by primary key). A big backlog (the first purge after an upgrade) thus never
holds its locks for long, and an aggregator committing a batch meanwhile waits at most for one
batch. Order ids go first: were the process stopped between the two deletes, the verdict would
still be there to find them next time. Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from adtrack.adapters.sql.tables import conversion_orders, conversion_verdicts

__all__ = ["SqlConversionBookkeepingRetention"]


class SqlConversionBookkeepingRetention:
    """Deletes conversion verdicts and their order ids past a cutoff, in batches."""

    def __init__(self, engine: Engine, *, batch_rows: int) -> None:
        """``batch_rows``: verdicts per transaction (ADTRACK_CONVERSION_PURGE_BATCH_ROWS)."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self._engine = engine
        self._batch_rows = batch_rows

    def purge(self, before_us: int) -> int:
        """Delete the verdicts of conversions older than ``before_us`` (epoch microseconds)
        and the order ids they counted; returns how many verdicts were deleted."""
        v, o = conversion_verdicts.c, conversion_orders.c
        oldest = select(v.event_id).where(v.ts < before_us).order_by(v.ts).limit(self._batch_rows)
        deleted = 0
        while True:
            with self._engine.begin() as conn:
                event_ids = list(conn.execute(oldest).scalars())
                if not event_ids:
                    return deleted
                conn.execute(delete(conversion_orders).where(o.event_id.in_(event_ids)))
                conn.execute(delete(conversion_verdicts).where(v.event_id.in_(event_ids)))
            deleted += len(event_ids)
            if len(event_ids) < self._batch_rows:
                return deleted
