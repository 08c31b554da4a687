"""``POST /api/v1/imports/xandr``: import a catalogue dump of Microsoft Invest/Xandr.

The body is a ``multipart/form-data`` upload of one or more ``files``: the JSON responses of
the platform's API, or zips of them. ``?dry_run=true`` answers what the import would do and
writes nothing. The answer is the import's report: counts per kind and action, and every
object with what it became (``create``, ``update``, ``unchanged``, ``refused``), its adtrack
id, whether it kept its original id, and notes on the fields adtrack could not keep.

An import with a refused object writes nothing and answers 422: ``detail`` names the first
(``"<file>: <object>: <field>"``), ``errors`` lists every refused object and ``report`` is the
whole plan. A dump that cannot be read (broken JSON, an unknown envelope) is a 422 naming the
file; an upload over ``ADTRACK_IMPORT_MAX_BYTES`` a 413, checked on its ``Content-Length``
before anything is read. Writing needs the admin or trafficker role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from adtrack.bootstrap import dump_limits
from adtrack.domain.errors import ValidationError
from adtrack.services.xandr.catalogue_import import ImportRefused, ImportReport
from adtrack.services.xandr.dump_files import Dump, read_uploads
from adtrack.web.api.deps import write_access
from adtrack.web.api.errors import OpenApiExtra, error_body
from adtrack.web.api.jsonio import ApiJSONResponse
from adtrack.web.state import services

__all__ = ["read_upload", "router"]

router = APIRouter(tags=["imports"])  # included under /api/v1

# Room for the multipart framing around the files themselves.
_MULTIPART_OVERHEAD = 64 * 1024

_UPLOAD_BODY: OpenApiExtra = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "JSON responses of the platform's API (any "
                            "service, singular or plural, any page), or zips of them.",
                        }
                    },
                }
            }
        },
    }
}


class UploadTooLarge(ValidationError):
    status = 413


async def read_upload(request: Request, field: str = "files") -> list[tuple[str, bytes]]:
    """The files of a multipart upload (name, content), refused with 413 over the import's
    size limit before its body is read, and with 422 naming ``field`` when there are none."""
    limit = services(request).settings.import_max_bytes
    length = request.headers.get("content-length")
    if length is None or not length.isdecimal():
        raise UploadTooLarge(field, "the upload needs a Content-Length header")
    if int(length) > limit + _MULTIPART_OVERHEAD:
        raise UploadTooLarge(
            field, f"the upload is larger than {limit} bytes (ADTRACK_IMPORT_MAX_BYTES)"
        )
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ValidationError("body", "must be multipart/form-data with one or more 'files'")
    form = await request.form()
    files: list[tuple[str, bytes]] = []
    try:
        for value in form.getlist(field):
            if isinstance(value, UploadFile):
                files.append((value.filename or f"{field}[{len(files)}]", await value.read()))
    finally:
        await form.close()
    if not files:
        raise ValidationError(field, "no file was uploaded")
    return files


def _refused(refused: ImportRefused) -> Response:
    report = refused.report
    errors = [
        {
            "file": entry.source,
            "object": entry.position,
            "kind": entry.kind.value,
            "original_id": entry.original_id,
            "field": entry.refused_field,
            "message": entry.refusal,
        }
        for entry in report.refused()
    ]
    body = error_body(refused.field, refused.message, errors=errors, report=report.to_json())
    return ApiJSONResponse(body, status_code=422)


@router.post(
    "/imports/xandr",
    summary="Import a catalogue dump of Microsoft Invest/Xandr (JSON responses or a zip)",
    dependencies=[Depends(write_access)],
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"description": "The import's report (a dry run's plan, or what was imported)."},
        413: {"description": "The upload is over ADTRACK_IMPORT_MAX_BYTES."},
        422: {"description": "A file that cannot be read, or refused objects (nothing written)."},
    },
)
async def import_xandr(
    request: Request,
    dry_run: Annotated[
        bool, Query(description="Only say what the import would do; write nothing.")
    ] = False,
) -> Response:
    """Upload the JSON responses of the platform's API (`advertiser`, `line-item`, `publisher`,
    `placement`, `payment-rule`, `imptracker`, `clicktracker`; singular or plural, any page, any
    order) or zips of them as `files`. Objects keep their original ids where free and record
    them (`original_id`, `original_code`); a re-run changes nothing, a newer dump updates what
    changed. All or nothing: one refused object (422, naming its file, object and field)
    imports nothing. The answer lists every object with what it became."""
    files = await read_upload(request)
    limits = dump_limits(services(request).settings)
    importer = services(request).xandr_import

    def run() -> ImportReport:
        dump: Dump = read_uploads(files, limits)
        return importer.run(dump, dry_run=dry_run)

    try:
        report = await run_in_threadpool(run)
    except ImportRefused as refused:
        return _refused(refused)
    return ApiJSONResponse(report.to_json())
