"""Catalogue repositories on SQLAlchemy Core. They store and fetch; rules live in the domain.

All of them work on one ``Connection`` inside the unit of work's transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, TypeVar, get_args, get_type_hints

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from adtrack.adapters.sql import tables
from adtrack.adapters.sql.catalogue_version import SqlCatalogueVersionRepository
from adtrack.adapters.sql.rows import SqlRow, SqlSelect, SqlValues
from adtrack.domain.model import (
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    Publisher,
    Tracker,
    TrackerType,
)
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import ID_MAX, ORIGINAL_ID_MAX
from adtrack.services.ports import FilterKind, ListQuery, Page, TrackerReference

E = TypeVar("E")

# Ids per IN (...) list: well under every database's bound-parameter limit.
_ID_CHUNK = 500
# Every catalogue table may be listed by the id its rows had on the platform they came from.
_ORIGIN_FILTERABLE = ("original_id",)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class _Conversions:
    """Attributes stored in another form than the entity holds, read off the entity's type
    hints (``state: State``, ``advertiser_filter: FilterAction | None``, ``...: datetime``)."""

    enums: Mapping[str, type[Enum]]  # stored as the enum's value
    datetimes: frozenset[str]  # stored as UTC; SQLite gives them back naive

    @classmethod
    def of(cls, entity: type) -> _Conversions:
        enums: dict[str, type[Enum]] = {}
        datetimes: set[str] = set()
        for name, hint in get_type_hints(entity).items():
            for part in get_args(hint) or (hint,):
                if isinstance(part, type) and issubclass(part, Enum):
                    enums[name] = part
                elif part is datetime:
                    datetimes.add(name)
        return cls(enums, frozenset(datetimes))


class _SqlRepository(Generic[E]):
    """Rows of one table <-> one entity class, for the columns the entity has."""

    table: Table
    entity: type[E]
    # Columns a list may be filtered on (exact match), besides ``state``.
    filterable: tuple[str, ...] = ()
    _conversions: _Conversions
    _fields: tuple[str, ...]  # the entity's attributes that are columns of the table

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._conversions = _Conversions.of(cls.entity)
        cls._fields = tuple(
            f.name
            for f in dataclasses.fields(cls.entity)  # type: ignore[arg-type]
            if f.name in cls.table.c
        )

    def __init__(self, conn: Connection, changes: SqlCatalogueVersionRepository) -> None:
        self._conn = conn
        self._changes = changes  # every write is recorded in the catalogue change log

    # -- mapping ----------------------------------------------------------------------------

    @classmethod
    def from_row(cls, row: SqlRow) -> E:
        """The entity of a row of ``table`` (one holding at least the entity's columns).

        Raises ValueError for a stored value the entity's enums do not know."""
        values: dict[str, object] = {}
        mapping = row._mapping
        enums, datetimes = cls._conversions.enums, cls._conversions.datetimes
        for name in cls._fields:
            value = mapping[name]
            if name in enums:
                value = None if value is None else enums[name](value)
            elif name in datetimes:
                value = as_utc(value)
            values[name] = value
        return cls.entity(**values)

    def _to_row(self, entity: E) -> dict[str, object]:
        row: dict[str, object] = {}
        enums, datetimes = self._conversions.enums, self._conversions.datetimes
        for name in self._fields:
            value = getattr(entity, name)
            if name in datetimes:
                value = as_utc(value)
            elif hasattr(value, "value") and name in enums:
                value = value.value
            row[name] = value
        row.pop("id", None)
        return row

    def _load(self, rows: Iterable[SqlRow]) -> list[E]:
        return [self.from_row(row) for row in rows]

    # -- queries ----------------------------------------------------------------------------

    def _live(self) -> ColumnElement[bool]:
        return self.table.c.deleted_at.is_(None)

    def _select(self) -> SqlSelect:
        return select(*(self.table.c[name] for name in self._fields))

    def _page(self, where: ColumnElement[bool], offset: int, limit: int) -> tuple[list[E], int]:
        total = self._conn.execute(
            select(func.count()).select_from(self.table).where(where)
        ).scalar_one()
        rows = self._conn.execute(
            self._select().where(where).order_by(self.table.c.id).offset(offset).limit(limit)
        )
        return self._load(rows), int(total)

    def get(self, id: int, *, include_deleted: bool = False) -> E | None:
        if not 1 <= id <= ID_MAX:  # out of the column's range: cannot exist
            return None
        where = self.table.c.id == id
        if not include_deleted:
            where = and_(where, self._live())
        row = self._conn.execute(self._select().where(where)).first()
        return None if row is None else self._load([row])[0]

    def get_many(self, ids: Iterable[int]) -> dict[int, E]:
        """The live objects among ``ids``, by id (one query per few hundred ids)."""
        wanted = sorted({i for i in ids if 1 <= i <= ID_MAX})
        found: dict[int, E] = {}
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            rows = self._conn.execute(
                self._select().where(self._live(), self.table.c.id.in_(chunk))
            )
            found.update((getattr(e, "id"), e) for e in self._load(rows))  # noqa: B009
        return found

    def live_with_original_ids(self, original_ids: Iterable[int]) -> list[E]:
        """The live rows imported with one of these original ids (in chunks)."""
        wanted = sorted(set(original_ids))
        found: list[E] = []
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            rows = self._conn.execute(
                self._select().where(self._live(), self.table.c.original_id.in_(chunk))
            )
            found.extend(self._load(rows))
        return found

    def taken_ids(self, ids: Iterable[int]) -> set[int]:
        """Those of ``ids`` that a row has, deleted or not (an id is never used twice)."""
        wanted = sorted(set(ids))
        taken = {i for i in wanted if not 1 <= i <= ID_MAX}
        wanted = [i for i in wanted if i not in taken]
        if len(wanted) > _ID_CHUNK:
            # many ids: one range scan of the primary key, cheaper than many IN lists (which
            # PostgreSQL plans badly right after a bulk insert, before its statistics catch up)
            id = self.table.c.id
            rows = self._conn.execute(select(id).where(id >= wanted[0], id <= wanted[-1]))
            taken.update(set(wanted).intersection(int(row[0]) for row in rows))
            return taken
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            rows = self._conn.execute(select(self.table.c.id).where(self.table.c.id.in_(chunk)))
            taken.update(int(row[0]) for row in rows)
        return taken

    def max_id(self) -> int:
        """The largest id any row has (0 for an empty table). Inside a catalogue write (which
        holds the catalogue version's lock) the ids above it are free."""
        return int(self._conn.execute(select(func.max(self.table.c.id))).scalar() or 0)

    def add_many(self, entities: Sequence[E]) -> None:
        """Insert ``entities`` with the ids they carry (free ones: see ``max_id`` and
        ``taken_ids``) in one executemany, and move PostgreSQL's id sequence past them."""
        if not entities:
            return
        ids: list[int] = [getattr(entity, "id") for entity in entities]  # noqa: B009
        rows = [{**self._to_row(e), "id": i} for e, i in zip(entities, ids, strict=True)]
        self._conn.execute(insert(self.table), rows)
        self._changes.record_many(self.table.name, ids)
        if self._conn.dialect.name == "postgresql":
            # the next single insert takes its id from the sequence: past every id now used
            self._conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                    f"(SELECT max(id) FROM {self.table.name}))"
                ),
                {"table": self.table.name},
            )

    def update_many(self, entities: Sequence[E]) -> None:
        """Store the new versions of ``entities`` (each by its id) in one executemany."""
        if not entities:
            return
        ids: list[int] = [getattr(entity, "id") for entity in entities]  # noqa: B009
        # bound names differ from the column names (SQLAlchemy reserves those for SET)
        rows = [
            {"row_id": i, **{f"v_{k}": v for k, v in self._to_row(e).items()}}
            for e, i in zip(entities, ids, strict=True)
        ]
        columns = list(self._to_row(entities[0]))
        statement = (
            update(self.table)
            .where(self.table.c.id == bindparam("row_id"))
            .values({name: bindparam(f"v_{name}") for name in columns})
        )
        self._conn.execute(statement, rows)
        self._changes.record_many(self.table.name, ids)

    def add(self, entity: E) -> E:
        new_id = self._conn.execute(
            insert(self.table).values(self._to_row(entity)).returning(self.table.c.id)
        ).scalar_one()
        self._changes.record(self.table.name, new_id)
        return dataclasses.replace(entity, id=new_id)  # type: ignore[type-var]

    def update(self, entity: E) -> None:
        entity_id = getattr(entity, "id")  # noqa: B009
        self._conn.execute(
            update(self.table).where(self.table.c.id == entity_id).values(self._to_row(entity))
        )
        self._changes.record(self.table.name, entity_id)

    def soft_delete(self, id: int, at: datetime) -> None:
        self._conn.execute(
            update(self.table).where(self.table.c.id == id).values(deleted_at=at, last_modified=at)
        )
        self._changes.record(self.table.name, id)

    def list(self, query: ListQuery) -> Page[E]:
        t = self.table
        conditions: list[ColumnElement[bool]] = [self._live()]
        q = (query.q or "").strip()
        if q:
            pattern = _like_pattern(q)
            match = or_(
                t.c.name.ilike(pattern, escape="\\"),
                t.c.code.ilike(pattern, escape="\\"),
                t.c.original_code.ilike(pattern, escape="\\"),
            )
            if q.isdecimal() and 1 <= int(q) <= ID_MAX:
                match = or_(match, t.c.id == int(q))
            if q.isdecimal() and 1 <= int(q) <= ORIGINAL_ID_MAX:
                match = or_(match, t.c.original_id == int(q))
            conditions.append(match)
        if query.state is not None:
            conditions.append(t.c.state == query.state.value)
        for name, value in query.filters.items():
            if name not in self.filterable and name not in _ORIGIN_FILTERABLE:
                raise ValueError(f"cannot filter {t.name} on {name!r}")
            conditions.append(t.c[name] == value)
        items, total = self._page(and_(*conditions), query.offset, query.limit)
        return Page(items=items, total=total, offset=query.offset, limit=query.limit)


class SqlAdvertiserRepository(_SqlRepository[Advertiser]):
    table = tables.advertisers
    entity = Advertiser

    # landing_domains: a tuple in the entity, a JSON list in the row
    @classmethod
    def from_row(cls, row: SqlRow) -> Advertiser:
        advertiser = super().from_row(row)
        advertiser.landing_domains = tuple(advertiser.landing_domains or ())
        return advertiser

    def _to_row(self, entity: Advertiser) -> dict[str, object]:
        row = super()._to_row(entity)
        row["landing_domains"] = list(entity.landing_domains)
        return row


class SqlLineItemRepository(_SqlRepository[LineItem]):
    table = tables.line_items
    entity = LineItem
    filterable = ("advertiser_id", "revenue_type")

    def live_for_advertiser(self, advertiser_id: int, limit: int) -> tuple[list[LineItem], int]:
        where = and_(self._live(), self.table.c.advertiser_id == advertiser_id)
        return self._page(where, 0, limit)


class SqlPublisherRepository(_SqlRepository[Publisher]):
    table = tables.publishers
    entity = Publisher


class SqlPlacementRepository(_SqlRepository[Placement]):
    table = tables.placements
    entity = Placement
    filterable = ("publisher_id",)

    def live_for_publisher(self, publisher_id: int, limit: int) -> tuple[list[Placement], int]:
        where = and_(self._live(), self.table.c.publisher_id == publisher_id)
        return self._page(where, 0, limit)


_FILTER_KINDS: dict[FilterKind, str] = {
    "advertiser": "advertiser_ids",
    "line_item": "line_item_ids",
}


def with_filter_members(
    rules: list[PaymentRule], members: Iterable[SqlValues]
) -> list[PaymentRule]:
    """``rules`` with their filter members from ``payment_rule_filters`` rows (payment rule id,
    kind, object id); rows of other rules, or of a kind no filter has, are ignored."""
    by_rule: dict[int, dict[str, set[int]]] = {
        r.id: {attribute: set() for attribute in _FILTER_KINDS.values()} for r in rules
    }
    for rule_id, kind, object_id in members:
        attribute = _FILTER_KINDS.get(kind)
        found = by_rule.get(rule_id)
        if attribute is not None and found is not None:
            found[attribute].add(object_id)
    return [
        dataclasses.replace(
            r,
            advertiser_ids=frozenset(by_rule[r.id]["advertiser_ids"]),
            line_item_ids=frozenset(by_rule[r.id]["line_item_ids"]),
        )
        for r in rules
    ]


class SqlPaymentRuleRepository(_SqlRepository[PaymentRule]):
    """Payment rules, with their filter members in ``payment_rule_filters``."""

    table = tables.payment_rules
    entity = PaymentRule
    filterable = ("publisher_id", "pricing_type", "is_base")

    def _load(self, rows: Iterable[SqlRow]) -> list[PaymentRule]:
        rules = [self.from_row(row) for row in rows]
        if not rules:
            return rules
        f = tables.payment_rule_filters
        members = self._conn.execute(
            select(f.c.payment_rule_id, f.c.kind, f.c.object_id).where(
                f.c.payment_rule_id.in_([r.id for r in rules])
            )
        )
        return with_filter_members(rules, members)

    def _write_filters(self, rule: PaymentRule) -> None:
        f = tables.payment_rule_filters
        self._conn.execute(delete(f).where(f.c.payment_rule_id == rule.id))
        rows = [
            {"payment_rule_id": rule.id, "kind": kind, "object_id": object_id}
            for kind, attribute in _FILTER_KINDS.items()
            for object_id in sorted(getattr(rule, attribute))
        ]
        if rows:
            self._conn.execute(insert(f), rows)

    def add(self, entity: PaymentRule) -> PaymentRule:
        rule = super().add(entity)
        self._write_filters(rule)
        return rule

    def add_many(self, entities: Sequence[PaymentRule]) -> None:
        super().add_many(entities)
        self._write_many_filters(entities, replacing=False)

    def update_many(self, entities: Sequence[PaymentRule]) -> None:
        super().update_many(entities)
        self._write_many_filters(entities, replacing=True)

    def _write_many_filters(self, rules: Sequence[PaymentRule], *, replacing: bool) -> None:
        f = tables.payment_rule_filters
        if replacing:
            ids = sorted(rule.id for rule in rules)
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                self._conn.execute(delete(f).where(f.c.payment_rule_id.in_(chunk)))
        rows = [
            {"payment_rule_id": rule.id, "kind": kind, "object_id": object_id}
            for rule in rules
            for kind, attribute in _FILTER_KINDS.items()
            for object_id in sorted(getattr(rule, attribute))
        ]
        if rows:
            self._conn.execute(insert(f), rows)

    def update(self, entity: PaymentRule) -> None:
        super().update(entity)
        self._write_filters(entity)

    def base_for_publisher(self, publisher_id: int) -> PaymentRule | None:
        t = self.table
        row = self._conn.execute(
            self._select()
            .where(self._live(), t.c.publisher_id == publisher_id, t.c.is_base.is_(True))
            .order_by(t.c.id)
        ).first()
        return None if row is None else self._load([row])[0]

    def live_conditional_for_publisher(
        self, publisher_id: int, limit: int
    ) -> tuple[list[PaymentRule], int]:
        t = self.table
        where = and_(self._live(), t.c.publisher_id == publisher_id, t.c.is_base.is_(False))
        return self._page(where, 0, limit)

    def live_filtering_on(
        self, kind: FilterKind, object_id: int, limit: int
    ) -> tuple[list[PaymentRule], int]:
        f = tables.payment_rule_filters
        listing = (
            select(f.c.payment_rule_id)
            .where(f.c.kind == kind, f.c.object_id == object_id)
            .scalar_subquery()
        )
        where = and_(self._live(), self.table.c.id.in_(listing))
        return self._page(where, 0, limit)


class SqlTrackerRepository(_SqlRepository[Tracker]):
    table = tables.trackers
    entity = Tracker
    filterable = (
        "tracker_type",
        "advertiser_id",
        "line_item_id",
        "publisher_id",
        "placement_id",
        "payment_rule_id",
    )

    def live_with_code(self, tracker_type: TrackerType, code: str) -> list[Tracker]:
        t = self.table
        rows = self._conn.execute(
            self._select()
            .where(self._live(), t.c.tracker_type == tracker_type.value, t.c.code == code)
            .order_by(t.c.id)
        )
        return self._load(rows)

    def live_using(
        self, reference: TrackerReference, object_id: int, limit: int
    ) -> tuple[list[Tracker], int]:
        where = and_(self._live(), self.table.c[reference] == object_id)
        return self._page(where, 0, limit)


class SqlConversionPixelRepository(_SqlRepository[ConversionPixel]):
    table = tables.conversion_pixels
    entity = ConversionPixel
    filterable = ("advertiser_id", "trigger_type", "event_type")

    def live_with_code(self, code: str) -> list[ConversionPixel]:
        t = self.table
        rows = self._conn.execute(
            self._select().where(self._live(), t.c.code == code).order_by(t.c.id)
        )
        return self._load(rows)

    def live_for_advertiser(
        self, advertiser_id: int, limit: int
    ) -> tuple[list[ConversionPixel], int]:
        where = and_(self._live(), self.table.c.advertiser_id == advertiser_id)
        return self._page(where, 0, limit)
