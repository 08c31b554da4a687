"""Tag export endpoints.

- ``POST /api/v1/trackers/export`` — body ``ExportBody`` (``services/export_request.py``).
  ``delivery=now`` answers 200 ``{"tags": [...], "warnings": [...]}``, or with
  ``?download=txt|csv|xlsx`` the tag sheet as a file (``Content-Disposition: attachment``), or
  with ``?download=tag-map`` the tag map: a CSV of each tracker's old tag (as the original
  platform exported it, from ``?old_host=``, ``secure.adnxs.com`` by default) and the tag that
  replaces it, for the ad servers' bulk tools (``services/tag_map.py``).
  ``delivery=email`` answers 202
  ``{"export_id", "status", "warnings"}`` with a ``Location`` to poll.
- ``GET /api/v1/conversion-pixels/{id}/tags`` — a conversion pixel's tags (the browser pixel
  as an image and as a script, and the server-side postback URL), with the placeholders to fill
  and warnings; ``?use_code=true`` names the pixel by its code. 404 for an unknown or deleted
  pixel (``services/pixel_tags.py``).
- ``GET /api/v1/exports/{export_id}`` — an email export's status: ``queued``, ``sending``,
  ``sent`` or ``failed`` (with the mail server's reason in ``error``).

Roles: any signed-in user may export tags to look at or download them (reading); sending mail
and reading export statuses (which list addresses) take the admin or trafficker role.

The ``ExportService`` and its delivery worker come from the app's services
(``adtrack.bootstrap``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from adtrack.domain.errors import PermissionDenied, ValidationError
from adtrack.domain.model import Role
from adtrack.domain.validation import ID_MAX
from adtrack.services.export_request import Delivery, ExportBody, ExportRequest
from adtrack.services.exports import ExportService
from adtrack.services.ports import User
from adtrack.services.tag_sheets import SheetKind
from adtrack.web.api.deps import authenticated, read_access, require_role
from adtrack.web.state import services

__all__ = ["get_exports", "router"]

router = APIRouter(tags=["exports"])  # included under /api/v1

_EMAIL_ROLES = frozenset({Role.ADMIN, Role.TRAFFICKER})


def get_exports(request: Request) -> ExportService:
    return services(request).exports


@router.post("/trackers/export", summary="Export trackers as tags (now, download, or email)")
def export_trackers(
    payload: ExportBody,
    user: Annotated[User, Depends(authenticated)],
    exports: Annotated[ExportService, Depends(get_exports)],
    request: Request,
    download: Annotated[
        SheetKind | None,
        Query(
            description="txt, csv or xlsx: the tag sheet as a file; tag-map: a CSV of each "
            "tracker's old tag (original platform) and new tag, one row per tracker and format "
            "(every format of its type unless the body gives one)"
        ),
    ] = None,
    old_host: Annotated[
        str | None,
        Query(
            description="With download=tag-map: the host of the old tags (a host name or an "
            "http(s) URL); secure.adnxs.com by default.",
            examples=["secure.adnxs.com"],
        ),
    ] = None,
) -> Response:
    export = ExportRequest.from_mapping(payload.given())
    if old_host is not None and download is not SheetKind.TAG_MAP:
        raise ValidationError("old_host", "only applies to download 'tag-map'")
    if export.delivery is Delivery.EMAIL:
        if download is not None:
            raise ValidationError("download", "only applies to delivery 'now'")
        if user.role not in _EMAIL_ROLES:
            raise PermissionDenied(
                "delivery", f"the {user.role.value} role cannot send exports by email"
            )
        queued = exports.queue_email(export, created_by=user.id)
        record = queued.record
        worker = services(request).export_worker
        if worker is not None:
            worker.wake()
        return JSONResponse(
            {"export_id": record.id, "status": record.status.value, "warnings": queued.warnings},
            status_code=202,
            headers={"Location": f"/api/v1/exports/{record.id}"},
        )
    if download is None:
        result = exports.build(export)
        return JSONResponse({"tags": result.tags_json(), "warnings": result.warnings})
    sheet = exports.download(export, download, old_host=old_host).sheet
    return Response(
        content=sheet.data,
        media_type=sheet.media_type,
        headers={"Content-Disposition": f'attachment; filename="{sheet.filename}"'},
    )


@router.get("/exports/{export_id}", summary="Status of an email export")
def get_export(
    export_id: str,
    user: Annotated[User, Depends(require_role(Role.ADMIN, Role.TRAFFICKER))],
    exports: Annotated[ExportService, Depends(get_exports)],
) -> JSONResponse:
    return JSONResponse(exports.get_export(export_id).to_json())


class PixelTagForms(BaseModel):
    image: str = Field(description="The browser pixel as an <img> tag (https).")
    javascript: str = Field(description="The browser pixel as a <script> tag (t=1).")
    postback: str = Field(description="The server-side postback URL (GET /sspx).")


class PlaceholderOut(BaseModel):
    placeholder: str = Field(examples=["[SSP_DATA]"])
    parameter: str = Field(description="The query parameter it fills.", examples=["sspdata"])
    required: bool
    meaning: str


class PixelTagsOut(BaseModel):
    conversion_pixel_id: int
    name: str
    code: str | None
    advertiser_id: int
    tags: PixelTagForms
    placeholders: list[PlaceholderOut] = Field(
        description="What to put in place of each placeholder of the tags."
    )
    warnings: list[str]


@router.get(
    "/conversion-pixels/{id}/tags",
    response_model=PixelTagsOut,
    dependencies=[Depends(read_access)],
    summary="A conversion pixel's tags (image, script, server-side postback)",
    tags=["conversion-pixels"],
)
def conversion_pixel_tags(
    id: Annotated[int, Path(ge=1, le=ID_MAX, description="The pixel's id.")],
    exports: Annotated[ExportService, Depends(get_exports)],
    use_code: Annotated[
        bool,
        Query(
            description="Name the pixel by its code (code=) instead of its id, where it has one."
        ),
    ] = False,
) -> JSONResponse:
    return JSONResponse(exports.pixel_tags(id, use_code=use_code).to_json())
