"""Email exports in the ``exports`` table (``services.exports.ExportStore``)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, select, update

from adtrack.adapters.sql.rows import SqlRow
from adtrack.adapters.sql.tables import exports
from adtrack.domain.utc import as_utc
from adtrack.services.ports import ExportRecord, ExportStatus


def _record(row: SqlRow) -> ExportRecord:
    return ExportRecord(
        id=row.id,
        status=ExportStatus(row.status),
        recipients=list(json.loads(row.recipients)),
        request=dict(json.loads(row.request)),
        attempts=int(row.attempts or 0),
        error=row.error,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


class SqlExportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, record: ExportRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                exports.insert().values(
                    id=record.id,
                    created_by=record.created_by,
                    status=record.status.value,
                    recipients=json.dumps(record.recipients),
                    request=json.dumps(record.request, sort_keys=True),
                    attempts=record.attempts,
                    error=record.error,
                    created_at=record.created_at,
                    updated_at=record.updated_at,
                )
            )

    def get(self, export_id: str) -> ExportRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(exports).where(exports.c.id == export_id)).first()
        return _record(row) if row is not None else None

    def queued(self, limit: int) -> list[ExportRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(exports)
                .where(exports.c.status == ExportStatus.QUEUED.value)
                .order_by(exports.c.updated_at, exports.c.id)
                .limit(limit)
            ).all()
        return [_record(row) for row in rows]

    def claim(self, export_id: str, at: datetime) -> bool:
        # A conditional UPDATE is atomic on every backend: one worker wins.
        with self.engine.begin() as conn:
            result = conn.execute(
                update(exports)
                .where(exports.c.id == export_id, exports.c.status == ExportStatus.QUEUED.value)
                .values(status=ExportStatus.SENDING.value, updated_at=at)
            )
        return result.rowcount == 1

    def finish(
        self,
        export_id: str,
        status: ExportStatus,
        attempts: int,
        error: str | None,
        at: datetime,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(exports)
                .where(exports.c.id == export_id)
                .values(status=status.value, attempts=attempts, error=error, updated_at=at)
            )

    def requeue_stale(self, older_than: datetime, at: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(exports)
                .where(
                    exports.c.status == ExportStatus.SENDING.value,
                    exports.c.updated_at < older_than,
                )
                .values(status=ExportStatus.QUEUED.value, updated_at=at)
            )
        return int(result.rowcount or 0)
