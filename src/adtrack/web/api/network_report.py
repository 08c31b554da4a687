"""``GET /api/v1/reports``: the network report over the rollups (``reporting/engine.py``); any
signed-in role, reporter included (no token -> 401).

``start``, ``end`` (or ``range``), ``interval``, ``timezone``, ``group_by``, ``metrics``, filters
``<dimension>_id`` (repeat the parameter or separate ids with commas; ``conversion_pixel_id``
too) and the audience filters ``country``, ``device_type``, ``os``, ``browser`` (texts;
``Unknown`` for none), and ``format=json|csv|xlsx``. Reports by conversion pixel: see
``reporting/request.py`` (``PIXEL_METRICS``, ``PIXEL_COMPANIONS``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from adtrack.reporting.request import ReportParameters, parse_report_request
from adtrack.services.ports import User
from adtrack.web.api.deps import authenticated
from adtrack.web.downloads import check_format, report_response
from adtrack.web.state import services

__all__ = ["router"]

router = APIRouter(tags=["reports"])  # included under /api/v1

Caller = Annotated[User, Depends(authenticated)]
IdList = Annotated[list[str] | None, Query(description="ids, repeated or comma-separated")]
Countries = Annotated[
    list[str] | None,
    Query(description="country codes (ISO 3166-1 alpha-2: US,FR) or Unknown; comma-separated"),
]
DeviceTypes = Annotated[
    list[str] | None,
    Query(description="desktop, mobile, tablet, ctv, other or Unknown; comma-separated"),
]
Families = Annotated[
    list[str] | None,
    Query(description="family names (at most 64 characters each) or Unknown; comma-separated"),
]


@router.get("/reports", summary="Network report: imps, clicks, cost, revenue by interval")
def get_report(
    request: Request,
    _user: Caller,
    start: Annotated[str | None, Query(description="date or datetime, report timezone")] = None,
    end: Annotated[str | None, Query(description="exclusive; date or datetime")] = None,
    range: Annotated[
        str | None,
        Query(description="instead of start/end: today, yesterday, last_7_days, ..."),
    ] = None,
    interval: Annotated[str, Query(description="hour, day, month or cumulative")] = "day",
    timezone: Annotated[str | None, Query(description="IANA name; default: deployment's")] = None,
    group_by: IdList = None,
    metrics: IdList = None,
    imp_type: IdList = None,
    advertiser_id: IdList = None,
    line_item_id: IdList = None,
    publisher_id: IdList = None,
    placement_id: IdList = None,
    payment_rule_id: IdList = None,
    tracker_id: IdList = None,
    conversion_pixel_id: Annotated[
        list[str] | None,
        Query(
            description="conversion pixel ids, repeated or comma-separated: a report by "
            "conversion pixel (grouped or filtered) has the metrics conversions, "
            "post_click_conversions, post_view_conversions and conversion_revenue only (its "
            "default) and combines with advertiser, line_item, publisher, placement, "
            "payment_rule and tracker only"
        ),
    ] = None,
    country: Countries = None,
    device_type: DeviceTypes = None,
    os: Families = None,
    browser: Families = None,
    format: Annotated[str, Query(description="json, csv or xlsx")] = "json",
) -> Response:
    fmt = check_format(format, ("json", "csv", "xlsx"))
    params = ReportParameters(
        start=start,
        end=end,
        range=range,
        interval=interval,
        timezone=timezone,
        group_by=group_by,
        metrics=metrics,
        imp_type=imp_type,
        advertiser_id=advertiser_id,
        line_item_id=line_item_id,
        publisher_id=publisher_id,
        placement_id=placement_id,
        payment_rule_id=payment_rule_id,
        tracker_id=tracker_id,
        conversion_pixel_id=conversion_pixel_id,
        country=country,
        device_type=device_type,
        os=os,
        browser=browser,
    )
    report_request = parse_report_request(
        params, default_timezone=services(request).settings.timezone
    )
    report = services(request).reports.run(report_request)
    name = f"report-{report_request.start.date()}-{report_request.end.date()}"
    return report_response(report, fmt, name)
