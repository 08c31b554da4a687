"""Imported report history in SQL (the ``ReportHistoryStore`` port): catalogue lookups by the
original platform's ids, the import records, and their rows added to (or taken out of) the
hourly and daily rollups through the rollup sink's upsert, in one transaction.

Imported counts sit in the rollups with ``tracker_id`` 0; ``report_history_rows`` keeps what each
import added, so undoing one subtracts exactly that.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Table, and_, delete, insert, select
from sqlalchemy.exc import IntegrityError

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.adapters.sql.rows import SqlRow
from adtrack.domain.epoch_hours import EPOCH
from adtrack.domain.errors import Conflict, NotFound
from adtrack.domain.imported_history import IMPORTED_HISTORY_TRACKER
from adtrack.domain.rollup_counters import Counters, add_counters
from adtrack.services.ports import (
    SPAN_MARGIN,
    HistoryImport,
    HistoryKey,
    HistoryRowRecord,
    HistorySpan,
    ImportedLineItem,
    ImportedPlacement,
    NewHistoryImport,
    RollupDelta,
    RollupKey,
    earlier_imports,
)

__all__ = ["SqlReportHistoryStore"]

_SUMS = Counters._fields
_KEY_COLUMNS = tuple(name for name in HistoryKey._fields if name != "hour")
# Ids per IN list (below SQLite's bound-parameter limit).
_CHUNK = 5000


def _chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = sorted(ids)
    return [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SqlReportHistoryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sink = SqlRollupSink(engine)

    # --- the catalogue, by the original platform's ids ------------------------------------------
    # An id is looked up as an original id first (an object imported from the platform, kept
    # under another id because its own was taken), then as an adtrack id (ids kept on import,
    # or objects created here with the same ids).

    def _by_original_id(
        self, table: Table, original_ids: Collection[int], *columns: str
    ) -> dict[int, SqlRow]:
        c = table.c
        selected = (c.id, c.original_id, *(c[name] for name in columns))
        found: dict[int, SqlRow] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(original_ids):
                for row in conn.execute(select(*selected).where(c.original_id.in_(chunk))):
                    found.setdefault(int(row.original_id), row)
            rest = [i for i in original_ids if i not in found]
            for chunk in _chunks(rest):
                for row in conn.execute(select(*selected).where(c.id.in_(chunk))):
                    found.setdefault(int(row.id), row)
        return found

    def line_items(self, original_ids: Collection[int]) -> Mapping[int, ImportedLineItem]:
        rows = self._by_original_id(t.line_items, original_ids, "advertiser_id")
        advertisers = t.advertisers.c
        ids = {row.advertiser_id for row in rows.values()}
        with self._engine.connect() as conn:
            advertiser_original = {
                row.id: int(row.original_id if row.original_id is not None else row.id)
                for chunk in _chunks(ids)
                for row in conn.execute(
                    select(advertisers.id, advertisers.original_id).where(advertisers.id.in_(chunk))
                )
            }
        return {
            key: ImportedLineItem(row.id, row.advertiser_id, advertiser_original[row.advertiser_id])
            for key, row in rows.items()
        }

    def publishers(self, original_ids: Collection[int]) -> Mapping[int, int]:
        return {
            key: row.id for key, row in self._by_original_id(t.publishers, original_ids).items()
        }

    def placements(self, original_ids: Collection[int]) -> Mapping[int, ImportedPlacement]:
        rows = self._by_original_id(t.placements, original_ids, "publisher_id")
        return {key: ImportedPlacement(row.id, row.publisher_id) for key, row in rows.items()}

    # --- imports ---------------------------------------------------------------------------------

    def find_by_hash(self, sha256: str) -> HistoryImport | None:
        imports = t.report_history_imports
        with self._engine.connect() as conn:
            row = conn.execute(select(imports).where(imports.c.sha256 == sha256)).first()
        return _import_of(row) if row is not None else None

    def spans_between(
        self, start: datetime, end: datetime, line_item_ids: Collection[int]
    ) -> list[HistorySpan]:
        with self._engine.connect() as conn:
            return _spans(conn, start, end, line_item_ids)

    def add(self, new: NewHistoryImport, rows: Sequence[HistoryRowRecord]) -> HistoryImport:
        now = datetime.now(UTC)
        values: dict[str, object] = {
            "file_name": new.file_name,
            "sha256": new.sha256,
            "timezone": new.timezone,
            "granularity": new.granularity,
            "lines": new.lines,
            "first_hour": new.first_hour,
            "last_hour": new.last_hour,
            **new.totals._asdict(),
            "imported_by": new.imported_by,
            "created_at": now,
        }
        try:
            with self._engine.begin() as conn:
                # One import at a time from here to the commit, so that two imports of the same
                # days cannot both pass the overlap check: on PostgreSQL a table lock that
                # imports take in turn; on SQLite the first write takes the database's lock.
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(
                        "LOCK TABLE report_history_imports IN SHARE ROW EXCLUSIVE MODE"
                    )
                import_id = conn.execute(
                    insert(t.report_history_imports).returning(t.report_history_imports.c.id),
                    values,
                ).scalar_one()
                _refuse_overlaps(conn, rows)
                conn.execute(
                    insert(t.report_history_rows),
                    [
                        {
                            "import_id": import_id,
                            **row.key._asdict(),
                            "covers_until": row.covers_until,
                            **row.counters._asdict(),
                        }
                        for row in rows
                    ],
                )
                self._sink.add_rollups_in(conn, _delta(rows, sign=1))
        except IntegrityError:
            raise Conflict("file", "this file was imported already (at the same time)") from None
        return _recorded(new, id=import_id, created_at=now)

    def imports(self) -> list[HistoryImport]:
        imports = t.report_history_imports
        with self._engine.connect() as conn:
            return [
                _import_of(row)
                for row in conn.execute(select(imports).order_by(imports.c.id.desc()))
            ]

    def remove(self, import_id: int) -> HistoryImport:
        imports, rows = t.report_history_imports, t.report_history_rows
        with self._engine.begin() as conn:
            found = conn.execute(
                select(imports).where(imports.c.id == import_id).with_for_update()
            ).first()
            if found is None:
                raise NotFound("id", f"no report history import has the id {import_id}")
            held = [
                HistoryRowRecord(
                    HistoryKey(_aware(row.hour), *(row._mapping[c] for c in _KEY_COLUMNS)),
                    _aware(row.covers_until),
                    Counters.of([row._mapping[s] for s in _SUMS]),
                )
                for row in conn.execute(select(rows).where(rows.c.import_id == import_id))
            ]
            self._sink.add_rollups_in(conn, _delta(held, sign=-1))
            if held:
                self._drop_empty_rollups(conn, held)
            conn.execute(delete(rows).where(rows.c.import_id == import_id))
            conn.execute(delete(imports).where(imports.c.id == import_id))
        return _import_of(found)

    @staticmethod
    def _drop_empty_rollups(conn: Connection, held: Sequence[HistoryRowRecord]) -> None:
        """Rollup rows of imported history that are all zero now (only that import made
        them) go, so the tables do not keep empty keys."""
        first = min(row.key.hour for row in held)
        last = max(row.key.hour for row in held)
        for table, column, lo, hi in (
            (t.rollup_hourly, t.rollup_hourly.c.hour, first, last + timedelta(hours=1)),
            (
                t.rollup_daily,
                t.rollup_daily.c.day,
                first.replace(hour=0),
                last.replace(hour=0) + timedelta(days=1),
            ),
        ):
            conn.execute(
                delete(table).where(
                    and_(
                        table.c.tracker_id == IMPORTED_HISTORY_TRACKER,
                        column >= lo,
                        column < hi,
                        *(table.c[s] == 0 for s in _SUMS),
                    )
                )
            )


def _spans(
    conn: Connection, start: datetime, end: datetime, line_item_ids: Collection[int]
) -> list[HistorySpan]:
    rows = t.report_history_rows.c
    spans: list[HistorySpan] = []
    for chunk in _chunks(line_item_ids):
        query = select(
            rows.import_id, rows.hour, *(rows[c] for c in _KEY_COLUMNS), rows.covers_until
        ).where(rows.line_item_id.in_(chunk), rows.hour >= start, rows.hour < end)
        for row in conn.execute(query):
            key = HistoryKey(_aware(row.hour), *(row._mapping[c] for c in _KEY_COLUMNS))
            spans.append(HistorySpan(row.import_id, key, _aware(row.covers_until)))
    return spans


def _refuse_overlaps(conn: Connection, rows: Sequence[HistoryRowRecord]) -> None:
    """The service checked before; an import of the same days that committed since is
    refused here, inside the transaction."""
    start = min(row.key.hour for row in rows) - SPAN_MARGIN
    end = max(row.covers_until for row in rows) + SPAN_MARGIN
    spans = _spans(conn, start, end, {row.key.line_item_id for row in rows})
    clash = next(
        (i for i in earlier_imports([(r.key, r.covers_until) for r in rows], spans) if i), None
    )
    if clash is not None:
        raise Conflict(
            "file",
            f"import {clash}, made meanwhile, already holds some of this time; "
            "check the file again (a dry run lists the rows)",
        )


def _recorded(new: NewHistoryImport, *, id: int, created_at: datetime) -> HistoryImport:
    return HistoryImport(
        file_name=new.file_name,
        sha256=new.sha256,
        timezone=new.timezone,
        granularity=new.granularity,
        lines=new.lines,
        first_hour=new.first_hour,
        last_hour=new.last_hour,
        totals=new.totals,
        imported_by=new.imported_by,
        id=id,
        created_at=created_at,
    )


def _delta(rows: Sequence[HistoryRowRecord], *, sign: int) -> RollupDelta:
    delta = RollupDelta()
    for row in rows:
        key = row.key
        hour = (key.hour - EPOCH) // timedelta(hours=1)
        rollup_key = RollupKey(
            hour,
            key.imp_type,
            IMPORTED_HISTORY_TRACKER,
            key.advertiser_id,
            key.line_item_id,
            key.publisher_id,
            key.placement_id,
            key.payment_rule_id,
        )
        counters = row.counters if sign > 0 else Counters.of([-value for value in row.counters])
        add_counters(delta.rows, rollup_key, counters)
    return delta


def _import_of(row: SqlRow) -> HistoryImport:
    m = row._mapping
    return HistoryImport(
        file_name=m["file_name"],
        sha256=m["sha256"],
        timezone=m["timezone"],
        granularity=m["granularity"],
        lines=m["lines"],
        first_hour=_aware(m["first_hour"]) if m["first_hour"] is not None else None,
        last_hour=_aware(m["last_hour"]) if m["last_hour"] is not None else None,
        totals=Counters.of([m[s] for s in _SUMS]),
        imported_by=m["imported_by"],
        id=m["id"],
        created_at=_aware(m["created_at"]),
    )
