"""The **Export Trackers** dialog (More Actions > Export Tags), and a conversion pixel's
**Export tags** (its image, script and postback tags with copy buttons; ``pixel_tags.py``).

*Basic Options*: JavaScript tag or secure pixel (impression trackers), click URL or anchor
(click trackers). *Delivery Options*: generate now, or email to up to 10 addresses.
*Advanced Options*: the ``CACHEBUSTER`` / ``ANCOST`` / ``REDIRECT_URL`` macros, the ad-server
preset that spells them, the tracker code instead of the id, https for every URL, and the id of
the element a JavaScript tag measures the viewability of (by default its parent element).

"Now" shows each tag with a copy button and offers TXT / CSV / XLSX downloads and the tag map
(a CSV of each tracker's old tag on the original platform next to its new tag, in every format
of its type, for the ad servers' bulk tools); "email" queues
the export and shows its delivery status until it is sent or failed. Everything goes through
``ExportService`` (the same checks and tags as ``POST /api/v1/trackers/export``).
"""

from __future__ import annotations

import re
from typing import TypedDict

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from adtrack.domain.errors import DomainError, PermissionDenied, ValidationError
from adtrack.domain.macro_presets import Macro, Preset, get_preset
from adtrack.domain.model import TrackerType
from adtrack.domain.parsing import parse_id_list
from adtrack.domain.validation import ID_MAX
from adtrack.services.export_request import Delivery, ExportRequest
from adtrack.services.pixel_tags import placeholders_json
from adtrack.services.ports import ExportStatus
from adtrack.services.tag_sheets import SheetKind
from adtrack.web.api.exports import get_exports
from adtrack.web.console.access import WRITE_ROLES, Viewer, ViewerDep, check_csrf
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.forms import error_field
from adtrack.web.console.rendering import is_htmx, render
from adtrack.web.state import services

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

FORMATS = {
    TrackerType.IMPRESSION: (("javascript", "JavaScript tag"), ("pixel", "Secure pixel")),
    TrackerType.CLICK: (("url", "Click URL"), ("anchor", "Anchor (<a> tag)")),
}
_SPLIT = re.compile(r"[\s,;]+")


class ExportValues(TypedDict):
    """What the export dialog shows (and sends on): the user's choices."""

    format: str
    delivery: str
    emails: str  # as typed: addresses separated by spaces, commas or semicolons
    macros: list[str]
    preset: str
    use_code: bool
    secure: bool
    view_element: str  # as typed; empty: the tag's parent element


def _tracker_type(value: object) -> TrackerType:
    return TrackerType.CLICK if str(value or "") == "click" else TrackerType.IMPRESSION


def _options_context(
    request: Request, tracker_type: TrackerType, ids: list[int]
) -> dict[str, object]:
    exports = get_exports(request)
    public_url = services(request).settings.public_url
    return {
        "tracker_type": tracker_type,
        "ids": ids,
        "formats": FORMATS[tracker_type],
        "macros": [m.value for m in Macro],
        "presets": [(p.value, get_preset(p).label) for p in Preset],
        "email_enabled": exports.email_enabled,
        "public_url": public_url,
    }


def _values_from(form: FormData, tracker_type: TrackerType) -> ExportValues:
    """The dialog's values from a posted ``form`` (an empty one gives the defaults)."""
    macros = form.getlist("macros")
    default_format = FORMATS[tracker_type][0][0]
    return {
        "format": str(form.get("format") or default_format),
        "delivery": str(form.get("delivery") or "now"),
        "emails": str(form.get("emails") or ""),
        "macros": [str(m) for m in macros],
        "preset": str(form.get("preset") or Preset.GENERIC.value),
        "use_code": bool(form.get("use_code")),
        "secure": bool(form.get("secure")),
        "view_element": str(form.get("view_element") or ""),
    }


def _ids(form: FormData) -> list[int]:
    return list(parse_id_list(form.getlist("ids"), "ids"))


def _request_body(
    tracker_type: TrackerType, ids: list[int], values: ExportValues
) -> dict[str, object]:
    impression = tracker_type is TrackerType.IMPRESSION
    key = "impression_tracker_ids" if impression else "click_tracker_ids"
    emails = [e for e in _SPLIT.split(values["emails"]) if e]
    return {
        key: ids,
        "format": values["format"],
        "macros": values["macros"],
        "preset": values["preset"],
        "use_code": values["use_code"],
        "secure": values["secure"],
        "view_element": values["view_element"] if impression else None,
        "delivery": values["delivery"],
        "emails": emails if values["delivery"] == Delivery.EMAIL.value else [],
    }


def _options_dialog(
    request: Request,
    tracker_type: TrackerType,
    ids: list[int],
    values: ExportValues,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    context = {
        **_options_context(request, tracker_type, ids),
        "values": values,
        "errors": errors,
    }
    return render(request, "export_dialog.html", context, status_code=status_code)


@router.get("/export", include_in_schema=False)
def export_dialog(request: Request, viewer: ViewerDep) -> Response:
    tracker_type = _tracker_type(request.query_params.get("tracker_type"))
    ids = list(parse_id_list(request.query_params.getlist("ids"), "ids"))
    values = _values_from(FormData(), tracker_type)
    values["macros"] = [m.value for m in Macro]  # the seed pages' example uses all three
    values["secure"] = services(request).settings.public_url.startswith("https://")
    errors = {} if ids else {"form": "Select at least one tracker (the checkbox to its left)."}
    return _options_dialog(request, tracker_type, ids, values, errors)


def _error_of(exc: DomainError) -> tuple[str, str]:
    field = error_field(exc.field)
    if field in ("format", "delivery", "emails", "macros", "preset", "view_element"):
        return field, exc.message
    return "form", exc.message


@router.post("/export", include_in_schema=False)
async def export_run(request: Request, viewer: ViewerDep) -> Response:
    form = await request.form()
    # Building the tags of many trackers is heavy: off the event loop.
    return await run_in_threadpool(_export_run, request, viewer, form)


def _export_run(request: Request, viewer: Viewer, form: FormData) -> Response:
    tracker_type = _tracker_type(form.get("tracker_type"))
    ids = _ids(form)
    values = _values_from(form, tracker_type)
    exports = get_exports(request)
    try:
        export = ExportRequest.from_mapping(_request_body(tracker_type, ids, values))
        if export.delivery is Delivery.EMAIL:
            if viewer.user.role not in WRITE_ROLES:
                raise PermissionDenied(
                    "delivery", f"the {viewer.user.role.value} role cannot send tags by email"
                )
            queued = exports.queue_email(export, created_by=viewer.user.id)
            worker = services(request).export_worker
            if worker is not None:
                worker.wake()
            return render(
                request,
                "export_email.html",
                {"record": queued.record, "warnings": queued.warnings, "polling": True},
            )
        result = exports.build(export)
    except DomainError as exc:
        field, message = _error_of(exc)
        return _options_dialog(request, tracker_type, ids, values, {field: message}, 422)
    return render(
        request,
        "export_result.html",
        {
            "result": result,
            "tracker_type": tracker_type,
            "ids": ids,
            "values": values,
            "format_label": dict(FORMATS[tracker_type]).get(values["format"], values["format"]),
        },
    )


@router.post("/export/download", include_in_schema=False)
async def export_download(request: Request, viewer: ViewerDep) -> Response:
    form = await request.form()
    # Building the tags and the spreadsheet is heavy: off the event loop.
    return await run_in_threadpool(_export_download, request, form)


def _export_download(request: Request, form: FormData) -> Response:
    tracker_type = _tracker_type(form.get("tracker_type"))
    values = _values_from(form, tracker_type)
    values["delivery"] = Delivery.NOW.value
    try:
        kind = SheetKind(str(form.get("download") or "txt"))
    except ValueError:
        raise ValidationError("download", "must be txt, csv, xlsx or tag-map") from None
    body = _request_body(tracker_type, _ids(form), values)
    old_host = None
    if kind is SheetKind.TAG_MAP:
        body["format"] = None  # the map lists every format: an ad server may hold any of them
        old_host = str(form.get("old_host") or "").strip() or None
    exports = get_exports(request)
    sheet = exports.download(ExportRequest.from_mapping(body), kind, old_host=old_host).sheet
    return Response(
        content=sheet.data,
        media_type=sheet.media_type,
        headers={"Content-Disposition": f'attachment; filename="{sheet.filename}"'},
    )


@router.get("/exports/{export_id}/status", include_in_schema=False)
def export_status(export_id: str, request: Request, viewer: ViewerDep) -> Response:
    if viewer.user.role not in WRITE_ROLES:
        raise PermissionDenied("role", "export statuses list addresses: traffickers and admins")
    record = get_exports(request).get_export(export_id)
    polling = record.status in (ExportStatus.QUEUED, ExportStatus.SENDING)
    return render(request, "_export_status.html", {"record": record, "polling": polling})


# The forms of a conversion pixel's tags: key in ConversionPixelTags, label, where it goes.
PIXEL_TAG_FORMS = (
    ("image", "Image pixel", "on the conversion page: an <img>, no script needed"),
    ("javascript", "JavaScript pixel", "on the conversion page, where scripts are welcome (t=1)"),
    ("postback", "Server-side postback", "your server calls it when the order is placed"),
)


@router.get("/conversion-pixels/{pixel_id:int}/tags", include_in_schema=False)
def pixel_tags(pixel_id: int, request: Request, viewer: ViewerDep) -> Response:
    """The pixel's tags: the dialog's body for htmx, a page of its own otherwise."""
    if not 1 <= pixel_id <= ID_MAX:
        raise ValidationError("id", f"must be a conversion pixel id (1 to {ID_MAX})")
    use_code = bool(request.query_params.get("use_code"))
    result = get_exports(request).pixel_tags(pixel_id, use_code=use_code)
    page = not is_htmx(request)
    context = {
        "result": result,
        "tags": result.tags.as_json(),
        "forms": PIXEL_TAG_FORMS,
        "placeholders": placeholders_json(),
        "use_code": use_code,
        "page": page,
        "section": "conversion_pixels",
    }
    return render(request, "pixel_tags_page.html" if page else "_pixel_tags.html", context)
