"""Console pages for what the original platform left besides its catalogue (``docs/console.md``):

- ``/imports/report-history``: upload the network analytics report (CSV) with its time
  zone, check it (a dry run: what would be added, refused rows by line) or import it; the
  imports made, each with an Undo button (editors);
- ``/imports/tags``: recover trackers from exported tag files: upload them, pick the
  line item and publisher (placement and payment rule optional), check (what would be created,
  ids taken, names missing) or create.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from adtrack.domain.errors import DomainError
from adtrack.domain.parsing import parse_id, parse_optional_id
from adtrack.services.xandr.report_history import (
    HistoryImportResult,
    ReportHistoryRefused,
    ReportHistoryService,
    import_json,
)
from adtrack.services.xandr.tag_recovery import TagAssignment, TagRecoveryResult
from adtrack.web.console.access import EditorDep, ViewerDep, check_csrf
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.rendering import redirect, render
from adtrack.web.state import services

__all__ = ["read_upload", "router"]

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

PAGE = "/imports/report-history"
TAGS_PAGE = "/imports/tags"


def _history(request: Request) -> ReportHistoryService:
    return services(request).report_history


async def read_upload(upload: object, max_bytes: int, setting: str) -> tuple[str, bytes]:
    """The uploaded file's name and bytes, refused past ``max_bytes`` (reading at most one
    byte more)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise _Refused("file", "choose a file to upload")
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _Refused("file", f"is larger than {max_bytes} bytes ({setting})")
    return upload.filename, data


class _Refused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    result: HistoryImportResult | None = None,
    status_code: int = 200,
) -> Response:
    history = _history(request)
    return render(
        request,
        "report_history_import.html",
        {
            "values": values or {"timezone": services(request).settings.timezone},
            "errors": errors or {},
            "result": result.as_json() if result is not None else None,
            "imports": [import_json(done) for done in history.imports()],
            "max_bytes": history.max_bytes,
            "section": "imports",
        },
        status_code=status_code,
    )


@router.get(PAGE, include_in_schema=False)
def report_history_page(request: Request, viewer: ViewerDep) -> Response:
    return _page(request)


@router.post(PAGE, include_in_schema=False)
async def import_report_history(request: Request, viewer: EditorDep) -> Response:
    form = await request.form()
    values = {
        "timezone": str(form.get("timezone") or ""),
        "skip_refused": "on" if form.get("skip_refused") else "",
    }
    dry_run = form.get("action") != "import"
    history = _history(request)
    try:
        file_name, data = await read_upload(
            form.get("file"), history.max_bytes, "ADTRACK_REPORT_HISTORY_MAX_BYTES"
        )
        result = await run_in_threadpool(
            history.import_csv,
            data,
            file_name=file_name,
            timezone=values["timezone"],
            imported_by=viewer.user.email,
            dry_run=dry_run,
            skip_refused=bool(values["skip_refused"]),
        )
    except _Refused as refused:
        return _page(
            request, values=values, errors={refused.field: refused.message}, status_code=422
        )
    except ReportHistoryRefused as refused:
        return _page(
            request,
            values=values,
            errors={"file": refused.message},
            result=refused.result,
            status_code=422,
        )
    except DomainError as exc:
        return _page(
            request, values=values, errors={exc.field: exc.message}, status_code=exc.status
        )
    return _page(request, values=values, result=result)


@router.post(PAGE + "/{import_id:int}/undo", include_in_schema=False)
def undo_report_history(import_id: int, request: Request, viewer: EditorDep) -> Response:
    try:
        done = _history(request).undo(import_id)
    except DomainError as exc:
        return redirect(request, PAGE, flash=f"{exc.field}: {exc.message}", flash_kind="error")
    return redirect(
        request, PAGE, flash=f"Undone: import {done.id} ({done.file_name}, {done.lines} rows)."
    )


def _tags_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    result: TagRecoveryResult | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "tag_import.html",
        {
            "values": values or {},
            "errors": errors or {},
            "result": result.as_json() if result is not None else None,
            "max_bytes": services(request).tag_recovery.max_bytes,
            "section": "imports",
        },
        status_code=status_code,
    )


@router.get(TAGS_PAGE, include_in_schema=False)
def tags_page(request: Request, viewer: EditorDep) -> Response:
    return _tags_page(request)


@router.post(TAGS_PAGE, include_in_schema=False)
async def import_tags(request: Request, viewer: EditorDep) -> Response:
    form = await request.form()
    names = ("line_item_id", "publisher_id", "placement_id", "payment_rule_id")
    values = {name: str(form.get(name) or "").strip() for name in names}
    dry_run = form.get("action") != "create"
    service = services(request).tag_recovery
    try:
        files: list[tuple[str, bytes]] = []
        budget = service.max_bytes
        for upload in form.getlist("files"):
            if isinstance(upload, UploadFile) and upload.filename:
                name, data = await read_upload(upload, budget, "ADTRACK_TAG_FILE_MAX_BYTES")
                budget -= len(data)
                files.append((name, data))
        assignment = TagAssignment(
            line_item_id=parse_id(values["line_item_id"], "line_item_id"),
            publisher_id=parse_id(values["publisher_id"], "publisher_id"),
            placement_id=parse_optional_id(values["placement_id"], "placement_id"),
            payment_rule_id=parse_optional_id(values["payment_rule_id"], "payment_rule_id"),
        )
        if not files:
            raise _Refused("files", "choose at least one tag file")
        result = await run_in_threadpool(service.recover, files, assignment, dry_run=dry_run)
    except _Refused as refused:
        field = "files" if refused.field == "file" else refused.field
        return _tags_page(request, values=values, errors={field: refused.message}, status_code=422)
    except DomainError as exc:
        field = "files" if exc.field == "file" else exc.field
        return _tags_page(
            request, values=values, errors={field: exc.message}, status_code=exc.status
        )
    return _tags_page(request, values=values, result=result)
