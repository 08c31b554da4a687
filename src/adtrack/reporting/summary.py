"""The reporting summary: tracked totals from the rollups, enough to check counts.

``summary(reports, start, end, group_by, filters)`` totals the rollups over whole UTC hours
``[start, end)`` (``start`` is rounded down and ``end`` up to the hour, since rollups are
hourly), grouped by any of :data:`SUMMARY_DIMENSIONS`. It is a view of the report engine
(:mod:`adtrack.reporting.engine`), in UTC: one cumulative bucket, or UTC hours / UTC days
when grouped by ``hour`` / ``day``. Money is summed in integer micro-units and returned as
decimal strings in currency units (``"12.345000"``). Invalid traffic is reported apart:
``imps``, ``clicks`` and the money count valid events only; ``invalid_imps`` /
``invalid_clicks`` the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from adtrack.domain.errors import ValidationError
from adtrack.domain.model import ImpType
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.formats import JsonScalar, metric_texts
from adtrack.reporting.request import (
    DIMENSIONS,
    MAX_REPORT_DAYS,
    FilterValues,
    Interval,
    ReportRequest,
    check_audience,
    parse_filter_texts,
    parse_instant,
)
from adtrack.reporting.results import ReportRow
from adtrack.reporting.time_grid import ceil_hour, floor_hour

__all__ = ["FILTER_DIMENSIONS", "SUMMARY_DIMENSIONS", "SUMMARY_METRICS", "summary"]

SUMMARY_DIMENSIONS = (
    "imp_type",
    "tracker",
    "advertiser",
    "line_item",
    "publisher",
    "placement",
    "payment_rule",
    "country",
    "device_type",
    "os",
    "browser",
    "hour",
    "day",
)
# Ids to keep (0 means "none" for placement/rule), or texts for the audience dimensions.
FILTER_DIMENSIONS = SUMMARY_DIMENSIONS[:-2]
SUMMARY_METRICS = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost",
    "booked_revenue",
)
_UTC = ZoneInfo("UTC")


def summary(
    reports: ReportEngine,
    start: datetime | date,
    end: datetime | date,
    group_by: Sequence[str] = (),
    filters: Mapping[str, Iterable[int | str]] | None = None,
) -> dict[str, object]:
    """Totals over ``[start, end)``, one row per combination of the ``group_by`` values.

    Naive datetimes and dates are read as UTC. Returns ``{"start", "end", "group_by", "rows",
    "totals"}``; each row holds its dimension values (``<dim>_id`` and ``<dim>_name`` for
    catalogue objects, ``imp_type`` and ``imp_type_name``, ``hour`` as ISO 8601, ``day`` as
    ``YYYY-MM-DD``, the audience dimensions ``country``... as their value or ``Unknown``) and the
    metrics, rows ordered by the ``group_by`` values in that order.
    Without grouping there is exactly one row (the totals). Raises :class:`ValidationError`
    naming the bad field.
    """
    lo = floor_hour(_as_utc(start, "start"))
    hi = ceil_hour(_as_utc(end, "end"))
    if hi <= lo:
        raise ValidationError("end", "must be after start")
    if hi - lo > timedelta(days=MAX_REPORT_DAYS):
        raise ValidationError("end", f"a summary covers at most {MAX_REPORT_DAYS} days")
    dims = _check_group_by(group_by)
    grouped = tuple(dim for dim in dims if dim in DIMENSIONS)
    checked = _check_filters(filters or {})
    check_audience(grouped, checked)
    report = reports.run(
        ReportRequest(
            start=lo,
            end=hi,
            interval=_interval(dims),
            group_by=grouped,
            filters=checked,
        ),
    )
    totals = _metrics(report.totals)
    if dims:
        ordered = sorted(report.rows, key=lambda row: _sort_key(dims, row))
        rows = [{**_dimension_fields(dims, row), **_metrics(row.counters)} for row in ordered]
    else:
        rows = [_metrics(report.totals)]
    return {"start": _iso(lo), "end": _iso(hi), "group_by": dims, "rows": rows, "totals": totals}


def _as_utc(value: object, field: str) -> datetime:
    if not isinstance(value, date):  # text is for the caller to parse (the API does)
        raise ValidationError(field, "must be a date or a datetime")
    return parse_instant(value, _UTC, field).astimezone(UTC)


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


def _check_filters(filters: Mapping[str, Iterable[int | str]]) -> dict[str, FilterValues]:
    checked: dict[str, FilterValues] = {}
    for name, ids in filters.items():
        if name not in FILTER_DIMENSIONS:
            raise ValidationError(
                name, f"cannot filter on {name!r}; use {', '.join(FILTER_DIMENSIONS)}"
            )
        check_text = DIMENSIONS[name].text_value
        if check_text is not None:
            texts = parse_filter_texts([str(value) for value in ids], check_text)
            if texts:
                checked[name] = texts
            continue
        values = set(ids)
        if any(type(value) is not int for value in values):
            raise ValidationError(name, "must be integer ids")
        if values:
            checked[name] = tuple(sorted(int(value) for value in values))
    return checked


def _interval(dims: Sequence[str]) -> Interval:
    if "hour" in dims:
        return Interval.HOUR
    if "day" in dims:
        return Interval.DAY
    return Interval.CUMULATIVE


def _sort_key(dims: Sequence[str], row: ReportRow) -> tuple[datetime | date | int | str, ...]:
    ids = {value.dimension: value.id for value in row.dimensions}
    when = row.interval_start
    return tuple(
        when if dim == "hour" else when.date() if dim == "day" else ids[dim] for dim in dims
    )


def _dimension_fields(dims: Sequence[str], row: ReportRow) -> dict[str, JsonScalar]:
    values = {value.dimension: value for value in row.dimensions}
    fields: dict[str, JsonScalar] = {}
    for dim in dims:
        if dim == "hour":
            fields["hour"] = _iso(row.interval_start)
        elif dim == "day":
            fields["day"] = row.interval_start.date().isoformat()  # a UTC bucket: its UTC date
        elif DIMENSIONS[dim].audience is not None:
            fields[dim] = values[dim].label  # the value, or "Unknown"
        elif dim == "imp_type":
            fields["imp_type"] = values[dim].id
            fields["imp_type_name"] = _imp_type_name(int(values[dim].id))
        else:
            # placement / payment rule 0 means "none"; tracker 0, imported history (labelled)
            object_id = values[dim].id or None
            fields[f"{dim}_id"] = object_id
            fields[f"{dim}_name"] = values[dim].label
    return fields


def _imp_type_name(imp_type: int) -> str | None:
    try:
        return ImpType(imp_type).label
    except ValueError:
        return None


def _metrics(counters: Counters) -> dict[str, JsonScalar]:
    return metric_texts(counters, SUMMARY_METRICS)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
