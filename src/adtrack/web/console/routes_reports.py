"""**Reports**: dates, interval, group-by and filters; a table with totals; a chart of imps and
clicks over time by impression type (by the first audience dimension grouped by, when there is
one: imps per country, device type, OS or browser; conversions per pixel in a report by
conversion pixel); CSV / XLSX download; the click-tracker feed download.

The numbers come from the report engine (``reporting/engine.py``), the same as
``GET /api/v1/reports``. Dates on this page are whole days in the deployment's time zone and
the *To* date is inclusive (the engine's end is exclusive: the page adds a day).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.domain.events import DEVICE_TYPES
from adtrack.domain.model import ImpType
from adtrack.domain.parsing import parse_date
from adtrack.reporting import formats
from adtrack.reporting.feeds import FeedFormat, FeedKind
from adtrack.reporting.plan import plan_buckets
from adtrack.reporting.request import (
    CONVERSION_PIXEL,
    DIMENSIONS,
    MONEY_METRICS,
    RATE_METRICS,
    UNKNOWN_LABEL,
    Interval,
    ReportParameters,
    ReportRequest,
    parse_report_request,
)
from adtrack.reporting.results import Report
from adtrack.services.catalogue import MAX_PAGE_SIZE
from adtrack.web.api.deps import get_catalogue
from adtrack.web.console.access import ViewerDep, check_csrf
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.console_state import console_state
from adtrack.web.console.rendering import money_text, render
from adtrack.web.downloads import feed_response, report_response
from adtrack.web.state import services

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

DIMENSION_LABELS = {
    "imp_type": "Impression type",
    "advertiser": "Advertiser",
    "line_item": "Line item",
    "publisher": "Publisher",
    "placement": "Placement",
    "payment_rule": "Payment rule",
    "tracker": "Tracker",
    "conversion_pixel": "Conversion pixel",
    "country": "Country",
    "device_type": "Device type",
    "os": "OS",
    "browser": "Browser",
}
METRIC_LABELS = {
    "imps": "Imps",
    "clicks": "Clicks",
    "invalid_imps": "Invalid imps",
    "invalid_clicks": "Invalid clicks",
    "ctr": "CTR",
    "media_cost": "Media cost",
    "booked_revenue": "Booked revenue",
    "profit": "Profit",
    "cpm": "CPM",
    "viewable_imps": "Viewable imps",
    "view_measured_imps": "Measured imps",
    "viewability_rate": "Viewability rate",
    "view_measurement_rate": "Measurement rate",
    "conversions": "Conversions",
    "post_click_conversions": "Post-click conversions",
    "post_view_conversions": "Post-view conversions",
    "conversion_revenue": "Conversion revenue",
    "cpa": "CPA",
    "conversion_rate": "Conversion rate",
    "roas": "ROAS",
}
FILTERS = (
    "imp_type",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "tracker_id",
    "conversion_pixel_id",
    "country",
    "device_type",
    "os",
    "browser",
)
# The audience chart draws the values with the most imps, and the rest as one series.
CHART_AUDIENCE_SERIES = 8
OTHER_VALUES_LABEL = "All other values"
INTERVALS = (("hour", "Hour"), ("day", "Day"), ("month", "Month"), ("cumulative", "Cumulative"))


# The report page's inputs by name: texts, and the list of group-by dimensions.
ReportForm = dict[str, str | list[str]]


def _form(request: Request) -> ReportForm:
    """The page's inputs, with defaults: the last 7 days by day, grouped by impression type."""
    q = request.query_params
    today = datetime.now(console_state(request).zone).date()
    values: ReportForm = {
        "start": q.get("start") or (today - timedelta(days=6)).isoformat(),
        "end": q.get("end") or today.isoformat(),
        "interval": q.get("interval") or "day",
        "group_by": q.getlist("group_by") if "group_by" in q else ["imp_type"],
    }
    for name in FILTERS:
        values[name] = q.get(name) or ""
    return values


def _report_params(values: ReportForm, tz: str) -> ReportParameters:
    # The page asks for the last day shown; reports take an exclusive end.
    end_exclusive = (parse_date(values["end"], "end") + timedelta(days=1)).isoformat()
    return ReportParameters(
        start=values["start"],
        end=end_exclusive,
        interval=values["interval"],
        timezone=tz,
        group_by=[g for g in values["group_by"] if g],
        **{name: values[name] for name in FILTERS if values.get(name)},
    )


def _bucket_label(when: datetime, interval: Interval) -> str:
    if interval is Interval.HOUR:
        return when.strftime("%Y-%m-%d %H:00")
    if interval is Interval.MONTH:
        return when.strftime("%Y-%m")
    return when.strftime("%Y-%m-%d")


def chart_data(report: Report, request: ReportRequest) -> dict[str, object]:
    """Labels (every bucket, empty ones too) and one series per impression type: imps of
    External Impressions, clicks of External Clicks, and the viewable ones among the imps.
    ``report`` is grouped by imp_type."""
    buckets = plan_buckets(request)
    if request.interval is Interval.CUMULATIVE:
        last_day = (request.end - timedelta(seconds=1)).astimezone(request.tz)
        labels = [f"{request.start.astimezone(request.tz):%Y-%m-%d} – {last_day:%Y-%m-%d}"]
    else:
        labels = [_bucket_label(b.label, request.interval) for b in buckets]
    index = {label: i for i, label in enumerate(labels)}
    imps = [0] * len(labels)
    clicks = [0] * len(labels)
    viewable = [0] * len(labels)
    for row in report.rows:
        if request.interval is Interval.CUMULATIVE:
            i = 0
        else:
            label = _bucket_label(row.interval_start.astimezone(request.tz), request.interval)
            if label not in index:
                continue
            i = index[label]
        imp_type = row.dimensions[0].id if row.dimensions else None
        if imp_type == ImpType.EXTERNAL_IMPRESSION:
            imps[i] += row.counters.imps
            viewable[i] += row.counters.viewable_imps
        elif imp_type == ImpType.EXTERNAL_CLICK:
            clicks[i] += row.counters.clicks
    return {
        "labels": labels,
        "series": [
            {"label": "9 External Impression: imps", "values": imps},
            {"label": "10 External Click: clicks", "values": clicks},
            {"label": "9 External Impression: viewable imps", "values": viewable},
        ],
    }


def audience_chart_data(
    report: Report, request: ReportRequest, dimension: str, counter: str = "imps"
) -> dict[str, object]:
    """Labels (every bucket) and one series of the ``counter`` (imps; a conversion pixel's:
    conversions) per value of the ``dimension`` the report is grouped by (an audience one, or
    the conversion pixel): the :data:`CHART_AUDIENCE_SERIES` values with the most, then the
    others summed."""
    buckets = plan_buckets(request)
    cumulative = request.interval is Interval.CUMULATIVE
    labels = ["All"] if cumulative else [_bucket_label(b.label, request.interval) for b in buckets]
    index = {label: i for i, label in enumerate(labels)}
    per_value: dict[str, list[int]] = {}
    for row in report.rows:
        i = (
            0
            if cumulative
            else index.get(
                _bucket_label(row.interval_start.astimezone(request.tz), request.interval)
            )
        )
        if i is None:
            continue
        value = next(d.label or f"#{d.id}" for d in row.dimensions if d.dimension == dimension)
        per_value.setdefault(value, [0] * len(labels))[i] += getattr(row.counters, counter)
    ranked = sorted(per_value.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [
        {"label": f"{value}: {counter}", "values": values}
        for value, values in ranked[:CHART_AUDIENCE_SERIES]
    ]
    rest = ranked[CHART_AUDIENCE_SERIES:]
    if rest:
        summed = [sum(column) for column in zip(*(values for _, values in rest), strict=True)]
        series.append({"label": f"{OTHER_VALUES_LABEL}: {counter}", "values": summed})
    return {"labels": labels, "series": series}


def cell_text(metric: str, value: formats.MetricValue) -> str:
    """A metric (as :func:`formats.metric_values` gives it) as the page shows it: money
    without trailing zeros (at least 2 decimals), CTR in percent. Downloads keep the exact
    six-decimal values."""
    if value is None:
        return ""
    if metric in MONEY_METRICS and isinstance(value, int):  # micros
        return money_text(value)
    if metric in RATE_METRICS and metric != "roas":  # (roas reads as a multiple: 2.5)
        return f"{value * 100:.2f} %"
    return str(value)


def _table(report: Report) -> dict[str, object]:
    request = report.request
    rows = []
    for row in report.rows:
        data = formats.metric_values(row.counters, request.metrics)
        rows.append(
            {
                "interval": _bucket_label(row.interval_start, request.interval)
                if request.interval is not Interval.CUMULATIVE
                else "All",
                "dimensions": [
                    (d.label or ("none" if d.id == 0 else f"#{d.id}"), d.id) for d in row.dimensions
                ],
                "metrics": [cell_text(m, data.get(m)) for m in request.metrics],
            }
        )
    totals = formats.metric_values(report.totals, request.metrics)
    return {
        "dimensions": [DIMENSION_LABELS.get(g, g) for g in request.group_by],
        "metrics": [(m, METRIC_LABELS.get(m, m)) for m in request.metrics],
        "rows": rows,
        "totals": [cell_text(m, totals.get(m)) for m in request.metrics],
    }


class _Named(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


def _choices(request: Request) -> dict[str, list[tuple[str, str]]]:
    svc = get_catalogue(request)

    def options(items: Iterable[_Named]) -> list[tuple[str, str]]:
        return [(str(i.id), f"{i.name} ({i.id})") for i in items]

    return {
        "advertisers": options(svc.advertisers.list(limit=MAX_PAGE_SIZE).items),
        "line_items": options(svc.line_items.list(limit=MAX_PAGE_SIZE).items),
        "publishers": options(svc.publishers.list(limit=MAX_PAGE_SIZE).items),
        "conversion_pixels": options(svc.conversion_pixels.list(limit=MAX_PAGE_SIZE).items),
        "imp_types": [(str(int(t)), f"{int(t)} {t.label}") for t in ImpType],
        "device_types": [(kind, kind) for kind in DEVICE_TYPES] + [("unknown", UNKNOWN_LABEL)],
    }


@router.get("/reports", include_in_schema=False)
def reports_page(request: Request, viewer: ViewerDep) -> Response:
    state = console_state(request)
    values = _form(request)
    errors: dict[str, str] = {}
    context: dict[str, object] = {
        "values": values,
        "errors": errors,
        "section": "reports",
        "intervals": INTERVALS,
        "dimension_labels": DIMENSION_LABELS,
        "dimensions": list(DIMENSIONS),
        **_choices(request),
    }
    try:
        params = _report_params(values, state.settings.timezone)
        report_request = parse_report_request(params, default_timezone=state.settings.timezone)
        reports = services(request).reports
        report = reports.run(report_request)
        audience = [d for d in report_request.group_by if DIMENSIONS[d].audience is not None]
        by_pixel = CONVERSION_PIXEL in (*report_request.group_by, *report_request.filters)
        if audience:
            chart = audience_chart_data(report, report_request, audience[0])
        elif by_pixel:  # (no impressions or clicks by pixel: conversions per pixel)
            per_pixel = reports.run(
                ReportRequest(
                    start=report_request.start,
                    end=report_request.end,
                    interval=report_request.interval,
                    timezone=report_request.timezone,
                    group_by=(CONVERSION_PIXEL,),
                    filters=report_request.filters,
                    metrics=("conversions",),
                ),
            )
            chart = audience_chart_data(per_pixel, report_request, CONVERSION_PIXEL, "conversions")
        else:
            by_type = reports.run(
                ReportRequest(
                    start=report_request.start,
                    end=report_request.end,
                    interval=report_request.interval,
                    timezone=report_request.timezone,
                    group_by=("imp_type",),
                    filters=report_request.filters,
                    metrics=("imps", "clicks", "viewable_imps"),
                ),
            )
            chart = chart_data(by_type, report_request)
    except DomainError as exc:
        errors[exc.field] = exc.message
        return render(request, "reports.html", context, status_code=422)
    query = request.url.query
    context.update(
        table=_table(report),
        chart=chart,
        chart_title=(
            f"Imps over time, by {DIMENSION_LABELS[audience[0]].lower()}"
            if audience
            else "Conversions over time, by conversion pixel"
            if by_pixel
            else "Imps, viewable imps and clicks over time, by impression type"
        ),
        download_query=query,
        feed_defaults=_feed_defaults(state.zone),
    )
    return render(request, "reports.html", context)


def _feed_defaults(zone: ZoneInfo) -> dict[str, str]:
    now = datetime.now(zone).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=23)
    return {"start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{now + timedelta(hours=1):%Y-%m-%dT%H:%M}"}


@router.get("/reports/download", include_in_schema=False)
def reports_download(request: Request, viewer: ViewerDep, format: str = "csv") -> Response:
    state = console_state(request)
    if format not in ("csv", "xlsx"):
        raise ValidationError("format", "must be csv or xlsx")
    params = _report_params(_form(request), state.settings.timezone)
    report_request = parse_report_request(params, default_timezone=state.settings.timezone)
    report = services(request).reports.run(report_request)
    last_day = (report_request.end - timedelta(days=1)).date()
    name = f"report-{report_request.start.date()}-{last_day}"
    return report_response(report, format, name)


@router.get("/reports/feed", include_in_schema=False)
def reports_feed(
    request: Request,
    viewer: ViewerDep,
    kind: str = "click",
    start: str | None = None,
    end: str | None = None,
    format: str = "csv",
) -> Response:
    feed_kind = FeedKind.IMPRESSION if kind == "impression" else FeedKind.CLICK
    feed_format = FeedFormat.JSONL if format == "jsonl" else FeedFormat.CSV
    feed_request = services(request).feed_rules.request(feed_kind, start, end)
    return feed_response(services(request).raw_events, feed_request, feed_format)
