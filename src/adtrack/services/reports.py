"""The reporting summary: tracked totals from the rollups, enough to check counts.

``summary(engine, start, end, group_by, filters)`` sums the rollups over whole UTC hours
``[start, end)`` (``start`` is rounded down and ``end`` up to the hour, since rollups are
hourly), grouped by any of :data:`SUMMARY_DIMENSIONS`. A range of whole UTC days not grouped by
hour reads ``rollup_daily`` (24 times fewer rows), anything else ``rollup_hourly``. ``hour``
and ``day`` are UTC. Money is summed in integer micro-units and returned as decimal strings in
currency units (``"12.345000"``). Invalid traffic is reported apart: ``imps``, ``clicks`` and
the money count valid events only; ``invalid_imps`` / ``invalid_clicks`` the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, func, select

from adtrack.adapters.sql import tables as t
from adtrack.domain.errors import ValidationError
from adtrack.domain.model import ImpType
from adtrack.domain.money import format_micros

__all__ = ["FILTER_DIMENSIONS", "SUMMARY_DIMENSIONS", "SUMMARY_METRICS", "summary"]

# Catalogue dimensions: (rollup column, table holding the names).
_CATALOGUE: dict[str, tuple[str, Table]] = {
    "tracker": ("tracker_id", t.trackers),
    "advertiser": ("advertiser_id", t.advertisers),
    "line_item": ("line_item_id", t.line_items),
    "publisher": ("publisher_id", t.publishers),
    "placement": ("placement_id", t.placements),
    "payment_rule": ("payment_rule_id", t.payment_rules),
}
SUMMARY_DIMENSIONS = (
    "imp_type",
    "tracker",
    "advertiser",
    "line_item",
    "publisher",
    "placement",
    "payment_rule",
    "hour",
    "day",
)
FILTER_DIMENSIONS = SUMMARY_DIMENSIONS[:-2]  # ids to keep; 0 means "none" for placement/rule
SUMMARY_METRICS = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost",
    "booked_revenue",
)
_SUMMED = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost_micros",
    "booked_revenue_micros",
)
_HOUR = timedelta(hours=1)
_MAX_SPAN = timedelta(days=3660)


def summary(
    engine: Engine,
    start: datetime | date,
    end: datetime | date,
    group_by: Sequence[str] = (),
    filters: Mapping[str, Iterable[int]] | None = None,
) -> dict[str, Any]:
    """Totals over ``[start, end)``, one row per combination of the ``group_by`` values.

    Naive datetimes and dates are read as UTC. Returns ``{"start", "end", "group_by", "rows",
    "totals"}``; each row holds its dimension values (``<dim>_id`` and ``<dim>_name`` for
    catalogue objects, ``imp_type`` and ``imp_type_name``, ``hour`` as ISO 8601, ``day`` as
    ``YYYY-MM-DD``) and the metrics. Raises :class:`ValidationError` naming the bad field.
    """
    lo = _floor_hour(_as_utc(start, "start"))
    hi = _ceil_hour(_as_utc(end, "end"))
    if hi <= lo:
        raise ValidationError("end", "must be after start")
    if hi - lo > _MAX_SPAN:
        raise ValidationError("end", f"a summary covers at most {_MAX_SPAN.days} days")
    dims = _check_group_by(group_by)
    wanted = _check_filters(filters or {})

    whole_days = lo == _floor_day(lo) and hi == _floor_day(hi) and "hour" not in dims
    r = t.rollup_daily if whole_days else t.rollup_hourly
    when = r.c.day if whole_days else r.c.hour
    keys: list[ColumnElement[Any]] = [_key_expression(engine, r, when, dim) for dim in dims]
    query = (
        select(*keys, *(func.sum(r.c[name]).label(name) for name in _SUMMED))
        .where(when >= lo, when < hi)
        .group_by(*keys)
        .order_by(*keys)
    )
    for dim, ids in wanted.items():
        query = query.where(_column(r, dim).in_(sorted(ids)))

    totals = [0] * len(_SUMMED)
    grouped: list[tuple[tuple[Any, ...], list[int]]] = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            sums = [int(value or 0) for value in row[len(dims) :]]
            for i, value in enumerate(sums):
                totals[i] += value
            grouped.append((tuple(row[: len(dims)]), sums))
        names = _load_names(conn, dims, grouped)

    return {
        "start": _iso(lo),
        "end": _iso(hi),
        "group_by": dims,
        "rows": [
            {**_dimension_fields(dims, key, names), **_metrics(sums)} for key, sums in grouped
        ],
        "totals": _metrics(totals),
    }


def _as_utc(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValidationError(field, "must be a date or a datetime")


def _floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _floor_day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_hour(value: datetime) -> datetime:
    floor = _floor_hour(value)
    return floor if floor == value else floor + _HOUR


def _check_group_by(group_by: Sequence[str]) -> list[str]:
    dims: list[str] = []
    for name in group_by:
        if name not in SUMMARY_DIMENSIONS:
            raise ValidationError(
                "group_by", f"unknown dimension {name!r}; use {', '.join(SUMMARY_DIMENSIONS)}"
            )
        if name not in dims:
            dims.append(name)
    return dims


def _check_filters(filters: Mapping[str, Iterable[int]]) -> dict[str, set[int]]:
    checked: dict[str, set[int]] = {}
    for name, ids in filters.items():
        if name not in FILTER_DIMENSIONS:
            raise ValidationError(
                name, f"cannot filter on {name!r}; use {', '.join(FILTER_DIMENSIONS)}"
            )
        values = set(ids)
        if any(type(value) is not int for value in values):
            raise ValidationError(name, "must be integer ids")
        if values:
            checked[name] = values
    return checked


def _column(r: Table, dim: str) -> ColumnElement[Any]:
    if dim == "imp_type":
        return r.c.imp_type
    return r.c[_CATALOGUE[dim][0]]


def _key_expression(
    engine: Engine, r: Table, when: ColumnElement[Any], dim: str
) -> ColumnElement[Any]:
    if dim == "hour":
        return when
    if dim == "day":
        if engine.dialect.name == "postgresql":
            # timestamptz -> the UTC calendar day, whatever the session time zone.
            return func.to_char(func.timezone("UTC", when), "YYYY-MM-DD").label("day")
        return func.substr(when, 1, 10).label("day")  # SQLite stores "YYYY-MM-DD HH:..."
    return _column(r, dim)


def _load_names(
    conn: Any, dims: list[str], grouped: list[tuple[tuple[Any, ...], list[int]]]
) -> dict[str, dict[int, str]]:
    """Names of the grouped catalogue objects (deleted ones keep theirs)."""
    names: dict[str, dict[int, str]] = {}
    for position, dim in enumerate(dims):
        if dim not in _CATALOGUE:
            continue
        ids = {key[position] for key, _ in grouped} - {0}
        table = _CATALOGUE[dim][1]
        found: dict[int, str] = {}
        id_list = sorted(ids)
        for i in range(0, len(id_list), 1000):
            chunk = id_list[i : i + 1000]
            query = select(table.c.id, table.c.name).where(table.c.id.in_(chunk))
            found.update({row.id: row.name for row in conn.execute(query)})
        names[dim] = found
    return names


def _dimension_fields(
    dims: list[str], key: tuple[Any, ...], names: Mapping[str, Mapping[int, str]]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for dim, value in zip(dims, key, strict=True):
        if dim == "hour":
            fields["hour"] = _iso(_as_utc(value, "hour"))
        elif dim == "day":
            fields["day"] = str(value)
        elif dim == "imp_type":
            fields["imp_type"] = int(value)
            try:
                fields["imp_type_name"] = ImpType(int(value)).label
            except ValueError:
                fields["imp_type_name"] = None
        else:
            object_id = int(value) or None  # placement / payment rule 0 means "none"
            fields[f"{dim}_id"] = object_id
            fields[f"{dim}_name"] = names[dim].get(object_id) if object_id else None
    return fields


def _metrics(sums: Sequence[int]) -> dict[str, Any]:
    imps, clicks, invalid_imps, invalid_clicks, media_cost, booked_revenue = sums
    return {
        "imps": imps,
        "clicks": clicks,
        "invalid_imps": invalid_imps,
        "invalid_clicks": invalid_clicks,
        "media_cost": format_micros(media_cost),
        "booked_revenue": format_micros(booked_revenue),
    }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
