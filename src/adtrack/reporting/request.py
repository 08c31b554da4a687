"""A report request: the one definition of the report parameters, and their validation.

The API (``GET /api/v1/reports``), the CLI (``adtrack report``), the console and saved report
definitions all give the same parameters (:class:`ReportParameters`); :func:`parse_report_request`
turns them into a :class:`ReportRequest` or raises :class:`ValidationError` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from adtrack.domain.errors import ValidationError
from adtrack.domain.parsing import parse_id_list, parse_local_datetime
from adtrack.reporting.time_grid import DAY, local_midnight

# Longest windows a report may cover (protects the server from accidental huge reports).
MAX_REPORT_DAYS = 3660
MAX_HOURLY_REPORT_DAYS = 92


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    CUMULATIVE = "cumulative"


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str  # the rollups' key column, and the name of the dimension's filter parameter


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("imp_type", "imp_type"),
        Dimension("advertiser", "advertiser_id"),
        Dimension("line_item", "line_item_id"),
        Dimension("publisher", "publisher_id"),
        Dimension("placement", "placement_id"),
        Dimension("payment_rule", "payment_rule_id"),
        Dimension("tracker", "tracker_id"),
    )
}

METRICS: tuple[str, ...] = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "ctr",
    "media_cost",
    "booked_revenue",
    "profit",
    "cpm",
    # viewability (docs/reporting.md): impressions the JavaScript tag measured, those viewable
    # (MRC), viewable / measured and measured / imps; pixel-only impressions are not measured
    "viewable_imps",
    "view_measured_imps",
    "viewability_rate",
    "view_measurement_rate",
)
MONEY_METRICS = frozenset({"media_cost", "booked_revenue", "profit", "cpm"})
# Ratios, as decimals with six places (0.5 is 50 %), empty where their denominator is 0.
RATE_METRICS = frozenset({"ctr", "viewability_rate", "view_measurement_rate"})


RELATIVE_RANGES = (
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "month_to_date",
    "last_month",
)


@dataclass(frozen=True)
class ReportParameters:
    """The report parameters as given (query string, command line, saved definition), before
    validation. Lists are a list or a comma-separated text."""

    start: object = None  # date or datetime, in the report timezone unless it has an offset
    end: object = None  # exclusive
    range: object = None  # instead of start/end: one of RELATIVE_RANGES
    interval: object = None  # hour, day (default), month or cumulative
    timezone: object = None  # IANA name (default: the deployment's)
    group_by: object = None  # dimension names
    metrics: object = None  # metric names (default: all of METRICS)
    # One filter per dimension, named after its rollup column: ids to keep.
    imp_type: object = None
    advertiser_id: object = None
    line_item_id: object = None
    publisher_id: object = None
    placement_id: object = None
    payment_rule_id: object = None
    tracker_id: object = None

    @classmethod
    def of(cls, params: Mapping[str, object]) -> ReportParameters:
        """The parameters a mapping holds (a saved definition); other keys are ignored."""
        return cls(**{name: params.get(name) for name in _PARAMETER_NAMES})


_PARAMETER_NAMES = tuple(f.name for f in fields(ReportParameters))
if not {d.column for d in DIMENSIONS.values()} <= set(_PARAMETER_NAMES):
    raise RuntimeError("ReportParameters must have a filter for every dimension")


@dataclass(frozen=True)
class ReportRequest:
    """A validated report request. ``start``/``end`` are aware datetimes (``end`` exclusive)."""

    start: datetime
    end: datetime
    interval: Interval = Interval.DAY
    timezone: str = "UTC"
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    metrics: tuple[str, ...] = METRICS

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _as_list(value: object) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``["a,b"]`` -> ``["a", "b"]`` (blanks dropped)."""
    if value is None:
        return []
    items: Iterable[object] = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


def parse_timezone(value: object, field_name: str = "timezone") -> ZoneInfo:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field_name, "must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(value.strip())
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise ValidationError(field_name, f"unknown time zone {value!r}") from exc


def parse_instant(value: object, tz: ZoneInfo, field_name: str) -> datetime:
    """A date (local midnight) or a datetime (local unless it carries an offset), as aware,
    within the supported calendar (``domain/parsing.py``)."""
    return parse_local_datetime(value, field_name, tz=tz)


def relative_range(name: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``yesterday``, ``last_7_days``... as local ``[start, end)`` relative to ``now``."""
    today = now.astimezone(tz).date()
    first_of_month = today.replace(day=1)
    if name == "today":
        start, end = today, today + DAY
    elif name == "yesterday":
        start, end = today - DAY, today
    elif name == "last_7_days":
        start, end = today - 7 * DAY, today
    elif name == "last_30_days":
        start, end = today - 30 * DAY, today
    elif name == "month_to_date":
        start, end = first_of_month, today + DAY
    elif name == "last_month":
        start, end = (first_of_month - DAY).replace(day=1), first_of_month
    else:
        raise ValidationError("range", f"must be one of {', '.join(RELATIVE_RANGES)}")
    return local_midnight(start, tz), local_midnight(end, tz)


def parse_report_request(
    given: ReportParameters | Mapping[str, object],
    *,
    default_timezone: str = "UTC",
    now: datetime | None = None,
) -> ReportRequest:
    """Validate report parameters from the API, the CLI or a saved definition (a mapping:
    its :class:`ReportParameters` keys count, others are ignored).

    ``start``, ``end`` (or ``range``: one of :data:`RELATIVE_RANGES`), ``interval``,
    ``timezone``, ``group_by``, ``metrics``, and one filter per dimension named
    ``<dimension>_id`` (e.g. ``line_item_id``) holding ids as a list or a comma-separated text.
    Raises :class:`ValidationError` naming the offending field.
    """
    params = given if isinstance(given, ReportParameters) else ReportParameters.of(given)
    tz_value = params.timezone or default_timezone
    tz = parse_timezone(tz_value)

    interval_value = params.interval or Interval.DAY.value
    try:
        interval = Interval(str(interval_value).strip().lower())
    except ValueError as exc:
        raise ValidationError("interval", "must be one of hour, day, month, cumulative") from exc

    range_value = params.range
    if range_value:
        if params.start or params.end:
            raise ValidationError("range", "give either range or start/end, not both")
        start, end = relative_range(str(range_value).strip(), now or datetime.now(UTC), tz)
    else:
        start = parse_instant(params.start, tz, "start")
        end = parse_instant(params.end, tz, "end")
    if end <= start:
        raise ValidationError("end", "must be after start")
    span = end - start
    if span > timedelta(days=MAX_REPORT_DAYS):
        raise ValidationError("end", f"a report covers at most {MAX_REPORT_DAYS} days")
    if interval is Interval.HOUR and span > timedelta(days=MAX_HOURLY_REPORT_DAYS):
        raise ValidationError(
            "interval", f"hourly reports cover at most {MAX_HOURLY_REPORT_DAYS} days"
        )

    group_by: list[str] = []
    for name in _as_list(params.group_by):
        if name not in DIMENSIONS:
            raise ValidationError("group_by", f"unknown dimension {name!r}; use {_dim_names()}")
        if name not in group_by:
            group_by.append(name)

    filters: dict[str, tuple[int, ...]] = {}
    for name, dim in DIMENSIONS.items():
        # 0 is a valid key: "no placement" / "no payment rule" in the rollups.
        ids = parse_id_list(getattr(params, dim.column), dim.column, low=0)
        if ids:
            filters[name] = ids

    metrics_raw = _as_list(params.metrics)
    for m in metrics_raw:
        if m not in METRICS:
            raise ValidationError("metrics", f"unknown metric {m!r}; use {', '.join(METRICS)}")
    metrics = tuple(m for m in METRICS if m in metrics_raw) if metrics_raw else METRICS

    return ReportRequest(
        start=start,
        end=end,
        interval=interval,
        timezone=tz.key,
        group_by=tuple(group_by),
        filters=filters,
        metrics=metrics,
    )


def _dim_names() -> str:
    return ", ".join(DIMENSIONS)
