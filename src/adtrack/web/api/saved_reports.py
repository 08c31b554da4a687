"""``/api/v1/saved-reports``: saved report definitions (list, create, read, change, delete), run
one with ``GET .../{id}/run`` and email it now with ``POST .../{id}/send``
(``reporting/saved_reports.py``). Any signed-in role (no token -> 401); changing or deleting a
saved report is for its owner and admins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from adtrack.domain.validation import ID_MAX
from adtrack.reporting.saved_report_fields import SavedReportChange, SavedReportCreate
from adtrack.reporting.saved_reports import Actor, SavedReport, SavedReportService
from adtrack.services.ports import User
from adtrack.web.api.deps import authenticated
from adtrack.web.downloads import check_format, report_response
from adtrack.web.state import services

__all__ = ["get_saved_reports", "router"]

router = APIRouter(tags=["reports"])  # included under /api/v1

Caller = Annotated[User, Depends(authenticated)]
ReportId = Annotated[int, Path(ge=1, le=ID_MAX, description="The saved report's id.")]


def get_saved_reports(request: Request) -> SavedReportService:
    return services(request).saved_reports


Service = Annotated[SavedReportService, Depends(get_saved_reports)]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def saved_report_json(saved: SavedReport) -> dict[str, object]:
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
def list_saved_reports(_user: Caller, service: Service) -> dict[str, object]:
    return {"items": [saved_report_json(s) for s in service.list_all()]}


@router.post("/saved-reports", status_code=201, summary="Save a report definition")
def create_saved_report(user: Caller, service: Service, body: SavedReportCreate) -> JSONResponse:
    saved = service.create(_actor(user), body.given())
    return JSONResponse(
        saved_report_json(saved),
        status_code=201,
        headers={"Location": f"/api/v1/saved-reports/{saved.id}"},
    )


@router.get("/saved-reports/{report_id}", summary="A saved report")
def get_saved_report(report_id: ReportId, _user: Caller, service: Service) -> dict[str, object]:
    return saved_report_json(service.get(report_id))


@router.patch("/saved-reports/{report_id}", summary="Change a saved report (owner or admin)")
def update_saved_report(
    report_id: ReportId, user: Caller, service: Service, body: SavedReportChange
) -> dict[str, object]:
    return saved_report_json(service.update(_actor(user), report_id, body.given()))


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
    fmt = check_format(format, ("json", "csv", "xlsx"))
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
