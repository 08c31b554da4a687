"""A report request: the one definition of the report parameters, and their validation.

The API (``GET /api/v1/reports``), the CLI (``adtrack report``), the console and saved report
definitions all give the same parameters (:class:`ReportParameters`); :func:`parse_report_request`
turns them into a :class:`ReportRequest` or raises :class:`ValidationError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from adtrack.domain.errors import ValidationError
from adtrack.domain.events import DEVICE_TYPES
from adtrack.domain.parsing import parse_id_list, parse_local_datetime
from adtrack.domain.rollup_counters import CONVERSION_PIXEL_SUMS
from adtrack.reporting.time_grid import DAY, local_midnight

# Longest windows a report may cover (protects the server from accidental huge reports).
MAX_REPORT_DAYS = 3660
MAX_HOURLY_REPORT_DAYS = 92


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    CUMULATIVE = "cumulative"


class Audience(StrEnum):
    """The audience rollups a text dimension is kept in (``adapters/sql/tables.py``)."""

    GEO = "geo"
    DEVICE = "device"


# How an unknown audience value (no country, an agent that was not parsed) reads in every
# format; the same word, in any case, filters on it.
UNKNOWN_LABEL = "Unknown"
# The widest OS or browser family name (the event record's width).
MAX_FAMILY_LENGTH = 64
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")


def _country(value: str) -> str:
    code = value.upper()
    if not (value.isascii() and _COUNTRY_CODE.fullmatch(code)):
        raise ValidationError(
            "country",
            f"must be two-letter country codes (ISO 3166-1 alpha-2, e.g. US,FR) or "
            f"{UNKNOWN_LABEL}; got {value[:40]!r}",
        )
    return code


def _device_type(value: str) -> str:
    kind = value.lower()
    if kind not in DEVICE_TYPES:
        raise ValidationError(
            "device_type",
            f"must be one of {', '.join(DEVICE_TYPES)} or {UNKNOWN_LABEL}; got {value[:40]!r}",
        )
    return kind


def _family(field_name: str) -> Callable[[str], str]:
    def family(value: str) -> str:
        if len(value) > MAX_FAMILY_LENGTH or not value.isprintable():
            raise ValidationError(
                field_name,
                f"must be family names of at most {MAX_FAMILY_LENGTH} printable characters",
            )
        return value

    return family


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str  # the rollups' key column, and the name of the dimension's filter parameter
    # Text dimensions (the audience): the rollups they are kept in and the check of one filter
    # value (its stored form). Id dimensions: None, filters are ids.
    audience: Audience | None = None
    text_value: Callable[[str], str] | None = None


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
        Dimension("conversion_pixel", "conversion_pixel_id"),
        Dimension("country", "country", Audience.GEO, _country),
        Dimension("device_type", "device_type", Audience.DEVICE, _device_type),
        Dimension("os", "os", Audience.DEVICE, _family("os")),
        Dimension("browser", "browser", Audience.DEVICE, _family("browser")),
    )
}
# The dimensions the audience rollups also hold: the only ones a report grouped or filtered
# by an audience dimension can use besides it (docs/reporting.md).
AUDIENCE_COMPANIONS = ("imp_type", "advertiser", "line_item")
# Conversions by the pixel that recorded them are kept in the conversion pixel rollups, which
# hold the ids a conversion is attributed to besides the pixel (its imp type is always 11) and
# the conversion counters only (``CONVERSION_PIXEL_SUMS``): a report grouped or filtered by
# conversion pixel combines with these dimensions and asks for these metrics only (its
# default), docs/reporting.md.
CONVERSION_PIXEL = "conversion_pixel"
PIXEL_COMPANIONS = ("advertiser", "line_item", "publisher", "placement", "payment_rule", "tracker")
# (a metric is named after its sum, money without "_micros")
PIXEL_METRICS = tuple(name.removesuffix("_micros") for name in CONVERSION_PIXEL_SUMS)

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
    # conversions (docs/conversions.md)
    "conversions",
    "post_click_conversions",
    "post_view_conversions",
    "conversion_revenue",
    "cpa",
    "conversion_rate",
    "roas",
)
MONEY_METRICS = frozenset(
    {"media_cost", "booked_revenue", "profit", "cpm", "conversion_revenue", "cpa"}
)
if not set(PIXEL_METRICS) <= set(METRICS):
    raise RuntimeError("every conversion pixel sum must be a metric")
# Ratios, as decimals with six places (0.5 is 50 %), empty where their denominator is 0:
# clicks / imps, viewable / measured imps, measured imps / imps, conversions / clicks,
# conversion revenue / media cost.
RATE_METRICS = frozenset(
    {"ctr", "viewability_rate", "view_measurement_rate", "conversion_rate", "roas"}
)


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
    metrics: object = None  # metric names (default: all of METRICS; by pixel PIXEL_METRICS)
    # One filter per dimension, named after its rollup column: ids to keep.
    imp_type: object = None
    advertiser_id: object = None
    line_item_id: object = None
    publisher_id: object = None
    placement_id: object = None
    payment_rule_id: object = None
    tracker_id: object = None
    conversion_pixel_id: object = None
    # Audience filters: texts to keep (``country=US,FR``; ``Unknown`` for none).
    country: object = None
    device_type: object = None
    os: object = None
    browser: object = None

    @classmethod
    def of(cls, params: Mapping[str, object]) -> ReportParameters:
        """The parameters a mapping holds (a saved definition); other keys are ignored."""
        return cls(**{name: params.get(name) for name in _PARAMETER_NAMES})


_PARAMETER_NAMES = tuple(f.name for f in fields(ReportParameters))
if not {d.column for d in DIMENSIONS.values()} <= set(_PARAMETER_NAMES):
    raise RuntimeError("ReportParameters must have a filter for every dimension")


# A filter's values: ids, or the texts of an audience dimension ("" for unknown).
FilterValues = tuple[int, ...] | tuple[str, ...]


@dataclass(frozen=True)
class ReportRequest:
    """A validated report request. ``start``/``end`` are aware datetimes (``end`` exclusive)."""

    start: datetime
    end: datetime
    interval: Interval = Interval.DAY
    timezone: str = "UTC"
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, FilterValues] = field(default_factory=dict)
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
    ``<dimension>_id`` (e.g. ``line_item_id``) holding ids as a list or a comma-separated text,
    or, for the audience dimensions, named after them (``country=US,FR``) holding texts.
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

    filters: dict[str, FilterValues] = {}
    for name, dim in DIMENSIONS.items():
        values: FilterValues
        if dim.text_value is not None:
            values = parse_filter_texts(getattr(params, dim.column), dim.text_value)
        else:
            # 0 is a valid key: "no placement" / "no payment rule" in the rollups.
            values = parse_id_list(getattr(params, dim.column), dim.column, low=0)
        if values:
            filters[name] = values
    by_pixel = check_conversion_pixel(group_by, filters)
    check_audience(group_by, filters)

    metrics_raw = _as_list(params.metrics)
    for m in metrics_raw:
        if m not in METRICS:
            raise ValidationError("metrics", f"unknown metric {m!r}; use {', '.join(METRICS)}")
        if by_pixel and m not in PIXEL_METRICS:
            raise ValidationError(
                "metrics",
                f"{m} is not reported by conversion pixel: a report grouped or filtered by "
                f"conversion_pixel has the metrics {', '.join(PIXEL_METRICS)} only",
            )
    if metrics_raw:
        metrics = tuple(m for m in METRICS if m in metrics_raw)
    else:
        metrics = PIXEL_METRICS if by_pixel else METRICS

    return ReportRequest(
        start=start,
        end=end,
        interval=interval,
        timezone=tz.key,
        group_by=tuple(group_by),
        filters=filters,
        metrics=metrics,
    )


def parse_filter_texts(value: object, check: Callable[[str], str]) -> tuple[str, ...]:
    """Comma-separated texts (a text or a list of them), each checked by ``check`` (a text
    dimension's ``text_value``); ``Unknown`` (any case) stands for "" (none)."""
    texts = {
        "" if item.lower() == UNKNOWN_LABEL.lower() else check(item) for item in _as_list(value)
    }
    return tuple(sorted(texts))


def check_conversion_pixel(group_by: Sequence[str], filters: Mapping[str, FilterValues]) -> bool:
    """Whether the report groups or filters by conversion pixel; then it reads the conversion
    pixel rollups, which hold the companions (``PIXEL_COMPANIONS``) and no other dimension."""
    used = [*((name, "group_by") for name in group_by)]
    used += [(name, DIMENSIONS[name].column) for name in filters]
    if not any(name == CONVERSION_PIXEL for name, _ in used):
        return False
    for name, where in used:
        if name != CONVERSION_PIXEL and name not in PIXEL_COMPANIONS:
            raise ValidationError(
                where,
                f"{name} cannot be combined with {CONVERSION_PIXEL}: reports by conversion "
                f"pixel group and filter only by {', '.join(PIXEL_COMPANIONS)}",
            )
    return True


def check_audience(group_by: Sequence[str], filters: Mapping[str, FilterValues]) -> None:
    """A report that groups or filters by an audience dimension reads its audience rollups,
    which hold the companions (``AUDIENCE_COMPANIONS``) and that family's dimensions only."""
    used = [*((name, "group_by") for name in group_by)]
    used += [(name, DIMENSIONS[name].column) for name in filters]
    audience = [(name, where) for name, where in used if DIMENSIONS[name].audience]
    if not audience:
        return
    first = audience[0][0]
    family = DIMENSIONS[first].audience
    for name, where in used:
        other = DIMENSIONS[name].audience
        if other is not None and other is not family:
            raise ValidationError(
                where,
                f"{name} cannot be combined with {first}: country is reported apart from "
                f"device_type, os and browser",
            )
        if other is None and name not in AUDIENCE_COMPANIONS:
            raise ValidationError(
                where,
                f"{name} cannot be combined with {first}: reports by country, device_type, "
                f"os or browser group and filter only by {', '.join(AUDIENCE_COMPANIONS)}",
            )


def _dim_names() -> str:
    return ", ".join(DIMENSIONS)
