"""**Imports** (``/imports``): upload a catalogue dump of Microsoft Invest/Xandr (JSON
responses of its API, or zips of them), see the dry run's plan (what would be created,
updated, left alone or refused, the objects that get a new id, and the fields adtrack cannot
keep), then apply it. Traffickers and admins.

The uploaded files wait between the plan and its application in ``<data dir>/imports`` (a
0700 folder, 0600 files, named by a random token and the user's id); applying or planning
another upload removes them, and any left for a day are removed at the next upload. The plan
is worked out again when it is applied, in the import's own transaction, so a catalogue
changed meanwhile is taken into account. The work is ``CatalogueImport``'s, as for
``POST /api/v1/imports/xandr`` and ``adtrack import xandr``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from adtrack.bootstrap import dump_limits
from adtrack.domain.errors import DomainError, ValidationError
from adtrack.services.xandr.catalogue_import import ImportRefused, ImportReport
from adtrack.services.xandr.dump_files import read_uploads
from adtrack.web.console.access import EditorDep, Viewer, check_csrf
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.rendering import render
from adtrack.web.state import services

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

PAGE = "/imports"
# Objects with something to say (refused, a new id, notes) listed on the page; the counts
# cover all of them.
_SHOWN = 500
_KEPT_SECONDS = 24 * 3600
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _folder(request: Request) -> Path:
    folder = services(request).settings.data_dir / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _upload_dir(request: Request, viewer: Viewer, token: str) -> Path:
    if not _TOKEN.match(token):
        raise ValidationError("upload", "is not an upload of this console")
    return _folder(request) / f"{viewer.user.id}-{token}"


def _forget_old(folder: Path) -> None:
    cutoff = time.time() - _KEPT_SECONDS
    for entry in folder.iterdir():
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def _store(request: Request, viewer: Viewer, files: list[tuple[str, bytes]]) -> str:
    folder = _folder(request)
    _forget_old(folder)
    token = secrets.token_hex(16)
    target = _upload_dir(request, viewer, token)
    target.mkdir(mode=0o700)
    for n, (_, data) in enumerate(files):
        path = target / f"{n:04d}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    names = target / "names.json"
    fd = os.open(names, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps([name for name, _ in files]))
    return token


def _stored(request: Request, viewer: Viewer, token: str) -> list[tuple[str, bytes]]:
    target = _upload_dir(request, viewer, token)
    try:
        names: list[str] = orjson.loads((target / "names.json").read_bytes())
        return [(name, (target / f"{n:04d}").read_bytes()) for n, name in enumerate(names)]
    except (OSError, orjson.JSONDecodeError):
        raise ValidationError(
            "upload", "is gone (applied already, or older than a day): upload the dump again"
        ) from None


def _page(
    request: Request,
    *,
    report: ImportReport | None = None,
    token: str | None = None,
    error: DomainError | None = None,
    status_code: int = 200,
) -> Response:
    noteworthy = []
    if report is not None:
        noteworthy = [
            entry
            for entry in report.entries
            if entry.action == "refused" or entry.notes or entry.id_kept is False
        ]
    return render(
        request,
        "imports.html",
        {
            "section": "imports",
            "report": report,
            "counts": report.counts() if report is not None else {},
            "noteworthy": noteworthy[:_SHOWN],
            "more": max(0, len(noteworthy) - _SHOWN),
            "token": token,
            "error": error,
            "max_bytes": services(request).settings.import_max_bytes,
        },
        status_code=status_code,
    )


@router.get(PAGE, include_in_schema=False)
def imports_page(request: Request, viewer: EditorDep) -> Response:
    return _page(request)


@router.post(PAGE, include_in_schema=False)
async def plan_import(request: Request, viewer: EditorDep) -> Response:
    form = await request.form()  # read already by the CSRF check
    limit = services(request).settings.import_max_bytes
    files: list[tuple[str, bytes]] = []
    total = 0
    for value in form.getlist("files"):
        if isinstance(value, UploadFile) and (value.filename or value.size):
            data = await value.read()
            total += len(data)
            if total > limit:
                error = ValidationError(
                    "files", f"the upload is larger than {limit} bytes (ADTRACK_IMPORT_MAX_BYTES)"
                )
                return _page(request, error=error, status_code=413)
            files.append((value.filename or f"file {len(files) + 1}", data))
    if not files:
        return _page(
            request, error=ValidationError("files", "choose one or more files"), status_code=422
        )
    return await run_in_threadpool(_plan, request, viewer, files)


def _plan(request: Request, viewer: Viewer, files: list[tuple[str, bytes]]) -> Response:
    limits = dump_limits(services(request).settings)
    try:
        report = services(request).xandr_import.run(read_uploads(files, limits), dry_run=True)
    except DomainError as exc:
        return _page(request, error=exc, status_code=422)
    token = None if report.refused() else _store(request, viewer, files)
    return _page(request, report=report, token=token)


@router.post(f"{PAGE}/apply", include_in_schema=False)
async def apply_import(request: Request, viewer: EditorDep) -> Response:
    form = await request.form()
    token = str(form.get("upload") or "")
    return await run_in_threadpool(_apply, request, viewer, token)


def _apply(request: Request, viewer: Viewer, token: str) -> Response:
    limits = dump_limits(services(request).settings)
    try:
        files = _stored(request, viewer, token)
        report = services(request).xandr_import.run(read_uploads(files, limits), dry_run=False)
    except ImportRefused as refused:
        return _page(request, report=refused.report, error=refused, status_code=422)
    except DomainError as exc:
        return _page(request, error=exc, status_code=422)
    shutil.rmtree(_upload_dir(request, viewer, token), ignore_errors=True)
    return _page(request, report=report)
