"""Saved reports in the ``saved_reports`` table (:class:`~adtrack.services.ports.SavedReportStore`).

The definition and the recipients are kept as JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import orjson
from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.engine import RowMapping

from adtrack.adapters.sql import tables as t
from adtrack.domain.utc import as_utc, utc_now
from adtrack.services.ports import SavedReport

__all__ = ["SqlSavedReportStore"]

_JSON_FIELDS = ("definition", "recipients")


def _from_row(row: RowMapping) -> SavedReport:
    return SavedReport(
        id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        definition=orjson.loads(row["definition"]),
        schedule=row["schedule"],
        weekday=row["weekday"],
        hour=row["hour"],
        timezone=row["timezone"],
        recipients=tuple(orjson.loads(row["recipients"])),
        attachment_format=row["attachment_format"],
        last_sent_at=as_utc(row["last_sent_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=as_utc(row["created_at"]) or utc_now(),
        last_modified=as_utc(row["last_modified"]) or utc_now(),
    )


def _columns(values: Mapping[str, object]) -> dict[str, object]:
    return {
        name: orjson.dumps(value).decode() if name in _JSON_FIELDS else value
        for name, value in values.items()
    }


class SqlSavedReportStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert(self, values: Mapping[str, object]) -> int:
        with self._engine.begin() as conn:
            new_id = conn.execute(
                t.saved_reports.insert().values(**_columns(values))
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(new_id)

    def get(self, report_id: int) -> SavedReport | None:
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(t.saved_reports).where(t.saved_reports.c.id == report_id))
                .mappings()
                .first()
            )
        return None if row is None else _from_row(row)

    def list_all(self) -> list[SavedReport]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.saved_reports).order_by(t.saved_reports.c.id)).mappings()
            return [_from_row(row) for row in rows]

    def update(self, report_id: int, values: Mapping[str, object]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(t.saved_reports)
                .where(t.saved_reports.c.id == report_id)
                .values(**_columns(values))
            )

    def delete(self, report_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(t.saved_reports.delete().where(t.saved_reports.c.id == report_id))

    def set_sent(self, report_id: int, sent_at: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(t.saved_reports)
                .where(t.saved_reports.c.id == report_id)
                .values(last_sent_at=sent_at)
            )

    def claim(self, report_id: int, occurrence: datetime, now: datetime) -> bool:
        c = t.saved_reports.c
        with self._engine.begin() as conn:
            result = conn.execute(
                update(t.saved_reports)
                .where(
                    c.id == report_id,
                    or_(c.last_sent_at.is_(None), and_(c.last_sent_at < occurrence)),
                )
                .values(last_sent_at=now)
            )
        return (result.rowcount or 0) == 1

    def set_status(self, report_id: int, status: str, error: str | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(t.saved_reports)
                .where(t.saved_reports.c.id == report_id)
                .values(last_status=status, last_error=error)
            )
