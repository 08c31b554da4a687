"""Imports of what the original platform (Microsoft Invest / Xandr) left behind besides its
catalogue: its report history, and trackers recovered from its exported tag files.

- ``POST /imports/report-history?timezone=TZ[&dry_run=true][&skip_refused=true][&file_name=N]``
  with the network analytics report as the CSV body (``curl --data-binary @report.csv``):
  201 with what was added (200 for a dry run); refused rows answer 422 with ``errors``
  (``[{"line", "field", "message"}]``) and nothing is imported; a file imported before, 409.
- ``GET /imports/report-history``: the imports made, newest first.
- ``DELETE /imports/report-history/{id}``: undo one (its counts leave the reports).
- ``POST /imports/xandr-tags?line_item_id=L&publisher_id=P[&placement_id=][&payment_rule_id=]
  [&dry_run=true][&file_name=N]`` with an exported tag file as the body (HTML, text or a CSV
  tag sheet): the trackers its tags name, created under their ids (201; 200 for a dry run),
  with the ids already taken and the notes (duplicates, names missing) listed.

Writes need the admin or trafficker role; the list, any role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from adtrack.domain.errors import ValidationError
from adtrack.domain.validation import ID_MAX
from adtrack.services.ports import User
from adtrack.services.xandr.report_history import (
    ReportHistoryRefused,
    ReportHistoryService,
    import_json,
)
from adtrack.services.xandr.tag_recovery import TagAssignment, TagRecoveryService
from adtrack.web.api.deps import read_access, write_access
from adtrack.web.api.errors import error_body
from adtrack.web.api.jsonio import ApiJSONResponse
from adtrack.web.state import services

__all__ = ["read_body", "router"]

router = APIRouter(tags=["imports"], default_response_class=ApiJSONResponse)
ImportId = Annotated[int, Path(ge=1, le=ID_MAX, description="The import's id.")]


def _history(request: Request) -> ReportHistoryService:
    return services(request).report_history


async def read_body(request: Request, max_bytes: int, setting: str) -> bytes:
    """The request body, refused (422, field ``file``) past ``max_bytes`` without reading
    the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ValidationError("file", f"is larger than {max_bytes} bytes ({setting})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ValidationError("file", f"is larger than {max_bytes} bytes ({setting})")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ValidationError("file", "is empty: send the CSV as the request body")
    return data


@router.post(
    "/imports/report-history",
    summary="Import the original platform's network analytics report (CSV body)",
    response_model=dict[str, object],  # the answer is built by hand; documented as an object
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_report_history(
    request: Request,
    user: Annotated[User, Depends(write_access)],
    history: Annotated[ReportHistoryService, Depends(_history)],
    timezone: Annotated[str, Query(description="the report's time zone, e.g. UTC")] = "",
    dry_run: Annotated[bool, Query(description="check only; write nothing")] = False,
    skip_refused: Annotated[
        bool, Query(description="import the good rows and report the refused ones")
    ] = False,
    file_name: Annotated[str, Query(max_length=255)] = "report.csv",
) -> Response:
    data = await read_body(request, history.max_bytes, "ADTRACK_REPORT_HISTORY_MAX_BYTES")
    try:
        result = await run_in_threadpool(
            history.import_csv,
            data,
            file_name=file_name,
            timezone=timezone,
            imported_by=user.email,
            dry_run=dry_run,
            skip_refused=skip_refused,
        )
    except ReportHistoryRefused as refused:
        body = error_body(refused.field, refused.message)
        body["errors"] = refused.result.as_json()["refused"]
        body["plan"] = refused.result.as_json()
        return JSONResponse(body, status_code=422)
    return ApiJSONResponse(result.as_json(), status_code=200 if dry_run else 201)


@router.get(
    "/imports/report-history",
    summary="The report history imports made, newest first",
    dependencies=[Depends(read_access)],
)
def list_report_history(
    history: Annotated[ReportHistoryService, Depends(_history)],
) -> dict[str, object]:
    return {"items": [import_json(done) for done in history.imports()]}


@router.delete(
    "/imports/report-history/{import_id}",
    summary="Undo a report history import: its counts leave the reports",
    dependencies=[Depends(write_access)],
)
def undo_report_history(
    import_id: ImportId, history: Annotated[ReportHistoryService, Depends(_history)]
) -> dict[str, object]:
    return import_json(history.undo(import_id))


def _tags(request: Request) -> TagRecoveryService:
    return services(request).tag_recovery


ObjectId = Annotated[int, Query(ge=1, le=ID_MAX)]


@router.post(
    "/imports/xandr-tags",
    summary="Recover trackers from a tag file the original platform exported (body)",
    response_model=dict[str, object],  # the answer is built by hand; documented as an object
    status_code=201,
    dependencies=[Depends(write_access)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_xandr_tags(
    request: Request,
    tags: Annotated[TagRecoveryService, Depends(_tags)],
    line_item_id: ObjectId,
    publisher_id: ObjectId,
    placement_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    payment_rule_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    dry_run: Annotated[bool, Query(description="check only; write nothing")] = False,
    file_name: Annotated[str, Query(max_length=255)] = "tags.txt",
) -> Response:
    data = await read_body(request, tags.max_bytes, "ADTRACK_TAG_FILE_MAX_BYTES")
    result = await run_in_threadpool(
        tags.recover,
        [(file_name, data)],
        TagAssignment(line_item_id, publisher_id, placement_id, payment_rule_id),
        dry_run=dry_run,
    )
    return ApiJSONResponse(result.as_json(), status_code=200 if dry_run else 201)
