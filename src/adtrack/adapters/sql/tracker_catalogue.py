"""The tracker catalogue the collector reads (``services.ports.TrackerCatalogue``), in SQL.

SQLAlchemy Core, no ORM, and only the tracker columns the collector uses (not names or
timestamps: parsing them is most of a full load's time on SQLite). Line items and payment rules
are mapped by the repositories' own row mapping. A row that mapping refuses (a stored value no
enum knows) is left out with a warning: the collector keeps pricing everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.engine import Connection

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.repositories import (
    SqlConversionPixelRepository,
    SqlLineItemRepository,
    SqlPaymentRuleRepository,
    with_filter_members,
)
from adtrack.adapters.sql.rows import SqlRow, SqlValues
from adtrack.domain.model import ConversionPixel, LineItem, PaymentRule, TrackerType
from adtrack.services.ports import (
    CatalogueVersion,
    TrackerCatalogueChanges,
    TrackerCatalogueLoad,
    TrackerInputs,
    TrackerRow,
)

__all__ = ["SqlTrackerCatalogue"]

# Change-log kinds (table names) whose rows the trackers reference, by tracker column.
_FAN_OUT = {
    t.line_items.name: t.trackers.c.line_item_id,
    t.advertisers.name: t.trackers.c.advertiser_id,
    t.publishers.name: t.trackers.c.publisher_id,
    t.placements.name: t.trackers.c.placement_id,
}
# The tracker columns of a ``TrackerRow``, in its order.
_TRACKER_COLUMNS = tuple(
    t.trackers.c[name]
    for name in (
        "id",
        "tracker_type",
        "code",
        "state",
        "advertiser_id",
        "line_item_id",
        "publisher_id",
        "placement_id",
        "payment_rule_id",
        "landing_page_url",
        "ssp_data_param",
    )
)
_LIVE_TRACKERS = select(*_TRACKER_COLUMNS).where(t.trackers.c.deleted_at.is_(None))
_LIVE_PIXELS = select(t.conversion_pixels).where(t.conversion_pixels.c.deleted_at.is_(None))
# Ids per IN (...) list: well under every database's bound-parameter limit.
_CHUNK = 500

log = logging.getLogger(__name__)


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _line_items(rows: Iterable[SqlRow]) -> dict[int, LineItem]:
    out: dict[int, LineItem] = {}
    for row in rows:
        try:
            out[row.id] = SqlLineItemRepository.from_row(row)
        except ValueError as exc:
            log.warning(
                "line item %s cannot be read (%s); its trackers price without it", row.id, exc
            )
    return out


def _payment_rules(rows: Iterable[SqlRow], members: Iterable[SqlValues]) -> list[PaymentRule]:
    rules: list[PaymentRule] = []
    for row in rows:
        try:
            rules.append(SqlPaymentRuleRepository.from_row(row))
        except ValueError as exc:
            log.warning("payment rule %s cannot be read (%s); ignored", row.id, exc)
    return with_filter_members(rules, members)


def _inputs(conn: Connection, tracker_rows: Sequence[SqlRow], *, all_rows: bool) -> TrackerInputs:
    """The trackers with their line items, their publishers' and own rules and their advertisers'
    redirect settings: those of the rows (or every live one when ``all_rows``: cheaper for many
    trackers than lists of ids)."""
    trackers = cast(Sequence[TrackerRow], tracker_rows)
    if not tracker_rows:
        return TrackerInputs(trackers, {}, (), {})
    li_query = select(t.line_items).where(t.line_items.c.deleted_at.is_(None))
    rule_query = select(t.payment_rules).where(t.payment_rules.c.deleted_at.is_(None))
    filter_query = select(
        t.payment_rule_filters.c.payment_rule_id,
        t.payment_rule_filters.c.kind,
        t.payment_rule_filters.c.object_id,
    )
    advertiser_query = select(
        t.advertisers.c.id,
        t.advertisers.c.redirect_policy,
        t.advertisers.c.landing_domains,
        t.advertisers.c.conversion_cookies,
    ).where(t.advertisers.c.deleted_at.is_(None))
    if not all_rows:
        li_ids = {row.line_item_id for row in tracker_rows}
        pub_ids = {row.publisher_id for row in tracker_rows}
        own_rule_ids = {row.payment_rule_id for row in tracker_rows if row.payment_rule_id}
        li_query = li_query.where(t.line_items.c.id.in_(li_ids))
        rule_query = rule_query.where(
            t.payment_rules.c.publisher_id.in_(pub_ids) | t.payment_rules.c.id.in_(own_rule_ids)
        )
        advertiser_query = advertiser_query.where(
            t.advertisers.c.id.in_({row.advertiser_id for row in tracker_rows})
        )
    advertisers = conn.execute(advertiser_query).all()
    redirects = {row.id: (row.redirect_policy, row.landing_domains) for row in advertisers}
    cookies = frozenset(row.id for row in advertisers if row.conversion_cookies)
    line_items = _line_items(conn.execute(li_query))
    rule_rows = list(conn.execute(rule_query))
    if not all_rows:
        filter_query = filter_query.where(
            t.payment_rule_filters.c.payment_rule_id.in_([row.id for row in rule_rows])
        )
    rules = _payment_rules(rule_rows, conn.execute(filter_query))
    return TrackerInputs(trackers, line_items, rules, redirects, cookies)


def _rule_publishers(conn: Connection, rule_ids: set[int] | None) -> dict[int, int]:
    """The publisher of each live payment rule (of ``rule_ids``, or of all when None)."""
    pr = t.payment_rules
    query = select(pr.c.id, pr.c.publisher_id).where(pr.c.deleted_at.is_(None))
    if rule_ids is None:
        return {int(r): int(p) for r, p in conn.execute(query)}
    out: dict[int, int] = {}
    for chunk in _chunks(sorted(rule_ids)):
        out.update((int(r), int(p)) for r, p in conn.execute(query.where(pr.c.id.in_(chunk))))
    return out


def _pixels(rows: Iterable[SqlRow]) -> list[ConversionPixel]:
    out: list[ConversionPixel] = []
    for row in rows:
        try:
            out.append(SqlConversionPixelRepository.from_row(row))
        except ValueError as exc:
            log.warning("conversion pixel %s cannot be read (%s); ignored", row.id, exc)
    return out


def _cookie_advertisers(conn: Connection, pixels: Sequence[ConversionPixel]) -> frozenset[int]:
    """Those of the pixels' advertisers that set conversion cookies."""
    ids = sorted({pixel.advertiser_id for pixel in pixels})
    a = t.advertisers.c
    query = select(a.id).where(a.conversion_cookies.is_(True), a.deleted_at.is_(None))
    out: set[int] = set()
    for chunk in _chunks(ids):
        out.update(int(row[0]) for row in conn.execute(query.where(a.id.in_(chunk))))
    return frozenset(out)


def _version(conn: Connection) -> CatalogueVersion:
    cv = t.catalogue_version
    row = conn.execute(select(cv.c.version, cv.c.trimmed_through).where(cv.c.id == 1)).first()
    return CatalogueVersion(0, 0) if row is None else CatalogueVersion(int(row[0]), int(row[1]))


class SqlTrackerCatalogue:
    """``TrackerCatalogue`` on the catalogue tables and their change log."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def version(self) -> CatalogueVersion:
        with self._engine.connect() as conn:
            return _version(conn)

    def load(self) -> TrackerCatalogueLoad:
        with self._engine.connect() as conn:
            version = _version(conn).version  # read first: a later write is applied later
            rows = conn.execute(_LIVE_TRACKERS).all()
            inputs = _inputs(conn, rows, all_rows=True)
            pixels = _pixels(conn.execute(_LIVE_PIXELS))
            return TrackerCatalogueLoad(
                version,
                inputs,
                _rule_publishers(conn, None),
                pixels,
                _cookie_advertisers(conn, pixels),
            )

    def changes(
        self, after: int, through: int, *, max_changes: int, rule_publishers: Mapping[int, int]
    ) -> TrackerCatalogueChanges | None:
        c = t.catalogue_changes
        with self._engine.connect() as conn:
            changes = conn.execute(
                select(c.c.version, c.c.kind, c.c.entity_id)
                .where(c.c.version > after, c.c.version <= through)
                .limit(max_changes + 1)
            ).all()
            if len(changes) > max_changes:
                return None
            if len({row.version for row in changes}) != through - after:
                return None  # trimmed meanwhile, or a write that did not record its rows
            ids: dict[str, set[int]] = {}
            for row in changes:
                ids.setdefault(row.kind, set()).add(int(row.entity_id))
            tracker_ids = ids.get(t.trackers.name, set())
            rule_ids = ids.get(t.payment_rules.name, set())
            # the trackers that depend on what changed, by column
            wanted: list[tuple[ColumnElement[int], set[int]]] = [(t.trackers.c.id, tracker_ids)]
            wanted.extend((column, ids[kind]) for kind, column in _FAN_OUT.items() if kind in ids)
            rules_now = _rule_publishers(conn, rule_ids) if rule_ids else {}
            if rule_ids:
                publishers = set(rules_now.values())
                publishers.update(rule_publishers[r] for r in rule_ids if r in rule_publishers)
                wanted.append((t.trackers.c.payment_rule_id, rule_ids))
                wanted.append((t.trackers.c.publisher_id, publishers))
            unique: dict[int, SqlRow] = {}
            for column, values in wanted:
                for chunk in _chunks(sorted(values)):
                    for row in conn.execute(_LIVE_TRACKERS.where(column.in_(chunk))):
                        unique[row.id] = row
            # many trackers (a publisher's base rule): read their pricing inputs whole, not by id
            rows = list(unique.values())
            inputs = _inputs(conn, rows, all_rows=len(rows) > _CHUNK)
            pixel_ids = set(ids.get(t.conversion_pixels.name, set()))
            # a changed advertiser may have turned its conversion cookies on or off
            cp = t.conversion_pixels.c
            for chunk in _chunks(sorted(ids.get(t.advertisers.name, set()))):
                pixel_ids.update(
                    int(row[0])
                    for row in conn.execute(select(cp.id).where(cp.advertiser_id.in_(chunk)))
                )
            pixels: list[ConversionPixel] = []
            for chunk in _chunks(sorted(pixel_ids)):
                pixels.extend(_pixels(conn.execute(_LIVE_PIXELS.where(cp.id.in_(chunk)))))
            cookie_advertisers = _cookie_advertisers(conn, pixels)
        return TrackerCatalogueChanges(
            inputs,
            frozenset(tracker_ids),
            frozenset(rule_ids),
            rules_now,
            frozenset(pixel_ids),
            pixels,
            cookie_advertisers,
        )

    def find_by_id(self, tracker_id: int) -> TrackerInputs:
        return self._find(t.trackers.c.id == tracker_id)

    def find_by_code(self, tracker_type: TrackerType, code: str) -> TrackerInputs:
        trackers = t.trackers.c
        return self._find((trackers.code == code) & (trackers.tracker_type == tracker_type.value))

    def _find(self, where: ColumnElement[bool]) -> TrackerInputs:
        with self._engine.connect() as conn:
            rows = list(conn.execute(_LIVE_TRACKERS.where(where).limit(1)))
            return _inputs(conn, rows, all_rows=False)
