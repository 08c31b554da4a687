"""Reporting endpoints (any signed-in role, reporter included; no token -> 401).

- ``GET /api/v1/reports`` -- the network report over the rollups (``services/report_query.py``):
  ``start``, ``end`` (or ``range``), ``interval``, ``timezone``, ``group_by``, ``metrics``,
  filters ``<dimension>_id`` (repeat the parameter or separate ids with commas), and
  ``format=json|csv|xlsx``.
- ``GET /api/v1/feeds/click-trackers`` and ``/api/v1/feeds/impression-trackers`` -- one row per
  event, ``start``/``end`` at most 24 hours apart and within the raw-event retention,
  streamed as ``format=csv`` (default) or ``jsonl``.
- ``/api/v1/saved-reports`` -- saved definitions (list, create, read, change, delete), run one
  with ``GET .../{id}/run`` and email it now with ``POST .../{id}/send``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from adtrack.domain.errors import ValidationError
from adtrack.domain.validation import ID_MAX
from adtrack.services.feeds import FeedFormat, FeedKind, parse_deployment_feed_request
from adtrack.services.ports import User
from adtrack.services.report_query import parse_report_request, run_report
from adtrack.services.saved_reports import Actor, SavedReport, SavedReportService
from adtrack.web.api.deps import authenticated
from adtrack.web.downloads import feed_response, report_response
from adtrack.web.state import services

__all__ = ["get_saved_reports", "router"]

router = APIRouter(tags=["reports"])  # included under /api/v1

Caller = Annotated[User, Depends(authenticated)]
ReportId = Annotated[int, Path(ge=1, le=ID_MAX, description="The saved report's id.")]
IdList = Annotated[list[str] | None, Query(description="ids, repeated or comma-separated")]


def _check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    value = (fmt or allowed[0]).lower()
    if value not in allowed:
        raise ValidationError("format", f"must be one of {', '.join(allowed)}")
    return value


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
    format: Annotated[str, Query(description="json, csv or xlsx")] = "json",
) -> Response:
    fmt = _check_format(format, ("json", "csv", "xlsx"))
    settings = services(request).settings
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "range": range,
        "interval": interval,
        "timezone": timezone,
        "group_by": group_by,
        "metrics": metrics,
        "imp_type": imp_type,
        "advertiser_id": advertiser_id,
        "line_item_id": line_item_id,
        "publisher_id": publisher_id,
        "placement_id": placement_id,
        "payment_rule_id": payment_rule_id,
        "tracker_id": tracker_id,
    }
    report_request = parse_report_request(params, default_timezone=settings.timezone)
    report = run_report(services(request).engine, report_request)
    name = f"report-{report_request.start.date()}-{report_request.end.date()}"
    return report_response(report, fmt, name)


FeedStart = Annotated[str | None, Query(description="date or datetime (at most 24 h window)")]
FeedEnd = Annotated[str | None, Query(description="exclusive; at most 24 hours after start")]
FeedTz = Annotated[str | None, Query(description="zone of times without an offset")]
FeedFmt = Annotated[str, Query(description="csv or jsonl")]


def _feed_endpoint(kind: FeedKind) -> Callable[..., StreamingResponse]:
    """``GET /feeds/<kind>-trackers``: the feed of one kind of event."""

    def feed(
        request: Request,
        _user: Caller,
        start: FeedStart = None,
        end: FeedEnd = None,
        timezone: FeedTz = None,
        format: FeedFmt = "csv",
    ) -> StreamingResponse:
        feed_format = FeedFormat(_check_format(format, ("csv", "jsonl")))
        # Validate before streaming starts, so a bad window is a 422 and not a broken stream.
        feed_request = parse_deployment_feed_request(
            services(request).settings, kind, start, end, timezone
        )
        return feed_response(services(request).raw_events, feed_request, feed_format)

    feed.__name__ = f"{kind.value}_tracker_feed"  # the OpenAPI operation id
    return feed


router.add_api_route(
    "/feeds/click-trackers",
    _feed_endpoint(FeedKind.CLICK),
    methods=["GET"],
    summary="Click-tracker feed: one row per click",
)
router.add_api_route(
    "/feeds/impression-trackers",
    _feed_endpoint(FeedKind.IMPRESSION),
    methods=["GET"],
    summary="Impression-tracker feed: one row per imp",
)


# ---------------------------------------------------------------------------------------------
# Saved reports
# ---------------------------------------------------------------------------------------------


def get_saved_reports(request: Request) -> SavedReportService:
    return services(request).saved_reports


Service = Annotated[SavedReportService, Depends(get_saved_reports)]
SavedBody = Annotated[
    dict[str, Any],
    Body(
        examples=[
            {
                "name": "Yesterday by line item",
                "definition": {
                    "range": "yesterday",
                    "interval": "day",
                    "group_by": ["line_item", "imp_type"],
                },
                "schedule": "daily",
                "hour": 7,
                "timezone": "Europe/Berlin",
                "recipients": ["sales@example.com"],
                "attachment_format": "xlsx",
            }
        ]
    ),
]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def saved_report_json(saved: SavedReport) -> dict[str, Any]:
    return {
        "id": saved.id,
        "name": saved.name,
        "owner_id": saved.owner_id,
        "definition": saved.definition,
        "schedule": saved.schedule,
        "weekday": saved.weekday,
        "hour": saved.hour,
        "timezone": saved.timezone,
        "recipients": list(saved.recipients),
        "attachment_format": saved.attachment_format,
        "last_sent_at": _iso(saved.last_sent_at),
        "last_status": saved.last_status,
        "last_error": saved.last_error,
        "created_at": _iso(saved.created_at),
        "last_modified": _iso(saved.last_modified),
    }


def _actor(user: User) -> Actor:
    return Actor(user.id, user.role)


@router.get("/saved-reports", summary="List saved reports")
def list_saved_reports(_user: Caller, service: Service) -> dict[str, Any]:
    return {"items": [saved_report_json(s) for s in service.list_all()]}


@router.post("/saved-reports", status_code=201, summary="Save a report definition")
def create_saved_report(user: Caller, service: Service, body: SavedBody) -> JSONResponse:
    saved = service.create(_actor(user), body)
    return JSONResponse(
        saved_report_json(saved),
        status_code=201,
        headers={"Location": f"/api/v1/saved-reports/{saved.id}"},
    )


@router.get("/saved-reports/{report_id}", summary="A saved report")
def get_saved_report(report_id: ReportId, _user: Caller, service: Service) -> dict[str, Any]:
    return saved_report_json(service.get(report_id))


@router.patch("/saved-reports/{report_id}", summary="Change a saved report (owner or admin)")
def update_saved_report(
    report_id: ReportId, user: Caller, service: Service, body: SavedBody
) -> dict[str, Any]:
    return saved_report_json(service.update(_actor(user), report_id, body))


@router.delete(
    "/saved-reports/{report_id}", status_code=204, summary="Delete a saved report (owner or admin)"
)
def delete_saved_report(report_id: ReportId, user: Caller, service: Service) -> Response:
    service.delete(_actor(user), report_id)
    return Response(status_code=204)


@router.get("/saved-reports/{report_id}/run", summary="Run a saved report now")
def run_saved_report(
    report_id: ReportId,
    _user: Caller,
    service: Service,
    format: Annotated[str, Query(description="json, csv or xlsx")] = "json",
) -> Response:
    fmt = _check_format(format, ("json", "csv", "xlsx"))
    report = service.run(report_id)
    return report_response(report, fmt, f"saved-report-{report_id}")


@router.post("/saved-reports/{report_id}/send", summary="Email a saved report now")
def send_saved_report(report_id: ReportId, _user: Caller, service: Service) -> JSONResponse:
    result = service.send_now(report_id)
    if result.status != "sent":
        return JSONResponse(
            {"detail": [{"field": "email", "message": result.error or "not delivered"}]},
            status_code=502,
        )
    return JSONResponse({"id": report_id, "status": result.status})
