"""Creative > Impression Trackers and Creative > Click Trackers.

- The list of one advertiser's trackers (an advertiser picker first when none is chosen; the
  last choice is remembered in the ``adtrack_advertiser`` cookie): search, state filter, sort,
  paging, a checkbox per row with select-all, **+ New** and **More Actions** (Export Tags,
  Activate, Deactivate, Delete).
- The **Create New Impression Tracker / Click Tracker** dialog (also used to edit), with its
  sections *Imp/Click Tracker Details* (*Advanced Options*: code, landing page), *Line Item
  Association* and *Publisher Settings* (searchable pickers), *Placement* and *Payment Rule*
  (only the chosen publisher's).
- A tracker's page with its **Live hits** and a **Fire test hit** button.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.domain.macro_presets import Macro
from adtrack.domain.model import (
    Advertiser,
    PaymentRule,
    Placement,
    State,
    Tracker,
    TrackerType,
)
from adtrack.domain.parsing import parse_id, parse_id_list, parse_optional_id
from adtrack.domain.tags import TagFormat, TagOptions, TrackerTagData, tracker_url
from adtrack.services.catalogue import MAX_PAGE_SIZE, CatalogueService
from adtrack.web.api.deps import get_catalogue
from adtrack.web.console.access import EditorDep, ViewerDep, check_csrf
from adtrack.web.console.catalogue_names import CatalogueNames
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.console_state import console_state
from adtrack.web.console.forms import error_field
from adtrack.web.console.hits import hit_rows
from adtrack.web.console.listing import PER_PAGE_CHOICES, list_rows
from adtrack.web.console.rendering import is_htmx, redirect, render, safe_next
from adtrack.web.console.tracker_screens import TRACKER_SCREENS, TrackerScreen, screen_of

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

ADVERTISER_COOKIE = "adtrack_advertiser"
PICKER_LIMIT = 50

# A view built per tracker screen: FastAPI reads its parameters; it answers a page.
Endpoint = Callable[..., Response | Awaitable[Response]]


# --- the advertiser in use ----------------------------------------------------------------


def _chosen_advertiser(request: Request, svc: CatalogueService) -> Advertiser | None:
    raw = request.query_params.get("advertiser_id") or (
        None if request.query_params.get("choose") else request.cookies.get(ADVERTISER_COOKIE)
    )
    if not raw:
        return None
    advertiser_id: int | None
    if "advertiser_id" in request.query_params:
        advertiser_id = parse_id(raw, "advertiser_id")  # typed in the URL: say what is wrong
    else:
        advertiser_id = _id_or_none(raw)  # a stale or tampered cookie is just forgotten
    if advertiser_id is None:
        return None
    try:
        return svc.advertisers.get(advertiser_id)
    except DomainError:
        return None


def _remember_advertiser(request: Request, response: Response, advertiser_id: int) -> Response:
    response.set_cookie(
        ADVERTISER_COOKIE,
        str(advertiser_id),
        max_age=365 * 86400,
        path="/",
        secure=console_state(request).settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


def list_url(screen: TrackerScreen, advertiser_id: int | None) -> str:
    return f"/{screen.slug}" + (f"?advertiser_id={advertiser_id}" if advertiser_id else "")


# --- lists ---------------------------------------------------------------------------------


def _list_view(screen: TrackerScreen, request: Request, viewer: ViewerDep) -> Response:
    svc = get_catalogue(request)
    advertiser = _chosen_advertiser(request, svc)
    if advertiser is None:
        q = (request.query_params.get("q") or "").strip() or None
        advertisers = svc.advertisers.list(q=q, limit=100)
        return render(
            request,
            "advertiser_picker.html",
            {"screen": screen, "advertisers": advertisers, "q": q or "", "section": "creative"},
        )
    names = CatalogueNames(svc, missing="#{id} (deleted)")
    sort_keys: dict[str, Callable[[Tracker], object]] = {
        "id": lambda t: t.id,
        "name": lambda t: t.name,
        "code": lambda t: t.code,
        "state": lambda t: t.state.value,
        "line_item": lambda t: names("line_item", t.line_item_id),
        "publisher": lambda t: names("publisher", t.publisher_id),
        "last_modified": lambda t: t.last_modified,
    }
    listing = list_rows(
        svc.trackers.list,
        dict(request.query_params),
        sort_keys,
        filters={"tracker_type": screen.tracker_type.value, "advertiser_id": advertiser.id},
    )
    listing.query.pop("tracker_type", None)
    response = render(
        request,
        "tracker_list.html",
        {
            "screen": screen,
            "advertiser": advertiser,
            "listing": listing,
            "names": names,
            "per_page_choices": PER_PAGE_CHOICES,
            "section": "creative",
        },
    )
    return _remember_advertiser(request, response, advertiser.id)


def _bulk_view(screen: TrackerScreen) -> Endpoint:
    async def bulk(request: Request, viewer: EditorDep) -> Response:
        svc = get_catalogue(request)
        form = await request.form()
        action = str(form.get("action") or "")
        ids = parse_id_list(form.getlist("ids"), "ids")
        back = safe_next(_path(request.headers.get("hx-current-url")), f"/{screen.slug}")
        if not ids:
            return redirect(request, back, flash="Select at least one tracker.", flash_kind="error")
        if action not in ("activate", "deactivate", "delete"):
            raise ValidationError("action", "must be activate, deactivate or delete")
        done, failed = 0, []
        for tracker_id in ids:
            try:
                if action == "delete":
                    screen.objects(svc).delete(tracker_id)
                else:
                    state = State.ACTIVE if action == "activate" else State.INACTIVE
                    screen.objects(svc).update(tracker_id, {"state": state})
                done += 1
            except DomainError as exc:
                failed.append(f"{tracker_id}: {exc.message}")
        past = {"activate": "Activated", "deactivate": "Deactivated", "delete": "Deleted"}[action]
        message = f"{past} {done} {screen.label}{'s' if done != 1 else ''}."
        if failed:
            message += " Not done: " + "; ".join(failed)
        return redirect(request, back, flash=message, flash_kind="error" if failed else "success")

    return bulk


def _path(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


# --- the create / edit dialog ---------------------------------------------------------------

FORM_FIELDS = (
    "name",
    "code",
    "landing_page_url",
    "ssp_data_param",
    "state",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "payment_rule_id",
)
_ID_FIELDS = ("line_item_id", "publisher_id", "placement_id", "payment_rule_id")


def _tracker_values(tracker: Tracker) -> dict[str, str]:
    return {
        "name": tracker.name,
        "code": tracker.code or "",
        "landing_page_url": tracker.landing_page_url or "",
        "ssp_data_param": tracker.ssp_data_param or "",
        "state": tracker.state.value,
        **{f: str(getattr(tracker, f) or "") for f in _ID_FIELDS},
    }


def _parse_tracker_form(
    screen: TrackerScreen, values: dict[str, str]
) -> tuple[dict[str, object], dict[str, str]]:
    data: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name in ("name", "code", "state"):
        data[name] = values.get(name, "").strip()
    if not screen.is_impression:
        data["landing_page_url"] = values.get("landing_page_url", "").strip()
        data["ssp_data_param"] = values.get("ssp_data_param", "").strip()
    for name in _ID_FIELDS:
        try:
            data[name] = parse_optional_id(values.get(name), name)
        except ValidationError:
            data[name] = None
            errors[name] = "must be chosen from the list"
    if data["state"] not in ("active", "inactive"):
        data["state"] = "active"
    # Report every missing required input at once (the service stops at the first).
    if not data["name"]:
        errors.setdefault("name", "is required")
    if data["line_item_id"] is None:
        errors.setdefault("line_item_id", "is required: choose a line item with Edit")
    if data["publisher_id"] is None:
        errors.setdefault("publisher_id", "is required: choose a publisher with Edit")
    return data, errors


def _options_for_publisher(
    svc: CatalogueService, publisher_id: int | None
) -> tuple[list[Placement], list[PaymentRule]]:
    if publisher_id is None:
        return [], []
    placements = svc.placements.list(publisher_id=publisher_id, limit=MAX_PAGE_SIZE).items
    rules = sorted(
        svc.payment_rules.list(publisher_id=publisher_id, limit=MAX_PAGE_SIZE).items,
        key=lambda r: (not r.is_base, -r.priority, r.id),
    )
    return placements, rules


def _id_or_none(text: str | None) -> int | None:
    """A valid id, or None for anything else (a form shown again with its errors)."""
    try:
        return parse_optional_id(text, "id")
    except ValidationError:
        return None


def _dialog(
    request: Request,
    screen: TrackerScreen,
    advertiser_id: int,
    tracker: Tracker | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Response:
    svc = get_catalogue(request)
    names = CatalogueNames(svc, missing="#{id} (deleted)")
    publisher_id = _id_or_none(values.get("publisher_id"))
    placements, rules = _options_for_publisher(svc, publisher_id)
    line_items = svc.line_items.list(advertiser_id=advertiser_id, limit=PICKER_LIMIT)
    publishers = svc.publishers.list(limit=PICKER_LIMIT)
    context = {
        "screen": screen,
        "tracker": tracker,
        "advertiser_id": advertiser_id,
        "advertiser_name": names("advertiser", advertiser_id),
        "values": values,
        "errors": errors,
        "names": names,
        "line_items": line_items,
        "publishers": publishers,
        "placements": placements,
        "payment_rules": rules,
        "action": f"/{screen.slug}/{tracker.id}" if tracker else f"/{screen.slug}",
        "advanced_open": bool(
            values.get("code")
            or values.get("landing_page_url")
            or values.get("ssp_data_param")
            or errors.get("code")
            or errors.get("landing_page_url")
            or errors.get("ssp_data_param")
        ),
        "section": "creative",
    }
    template = "tracker_dialog.html" if is_htmx(request) else "tracker_form_page.html"
    return render(request, template, context, status_code=status_code)


def _new_view(screen: TrackerScreen) -> Endpoint:
    def new(request: Request, viewer: EditorDep) -> Response:
        svc = get_catalogue(request)
        advertiser = _chosen_advertiser(request, svc)
        if advertiser is None:
            return redirect(request, f"/{screen.slug}?choose=1")
        return _dialog(request, screen, advertiser.id, None, {"state": "active"}, {})

    return new


async def _save(request: Request, screen: TrackerScreen, tracker: Tracker | None) -> Response:
    svc = get_catalogue(request)
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in FORM_FIELDS}
    if tracker is not None:
        advertiser_id = tracker.advertiser_id
    else:
        advertiser_id = parse_id(form.get("advertiser_id"), "advertiser_id")
        svc.advertisers.get(advertiser_id)  # NotFound -> error page
    data, errors = _parse_tracker_form(screen, values)
    if not errors:
        try:
            if tracker is None:
                saved = screen.objects(svc).create(data)
                back = list_url(screen, saved.advertiser_id)
                verb = "Created"
            else:
                saved = screen.objects(svc).update(tracker.id, data)
                back = safe_next(
                    _path(request.headers.get("hx-current-url")),
                    list_url(screen, saved.advertiser_id),
                )
                verb = "Saved"
        except DomainError as exc:
            errors[_field_for(exc)] = exc.message
        else:
            message = f"{verb} {screen.label} “{saved.name}” (id {saved.id})."
            return redirect(request, back, flash=message)
    return _dialog(request, screen, advertiser_id, tracker, values, errors, status_code=422)


def _create_view(screen: TrackerScreen) -> Endpoint:
    async def create(request: Request, viewer: EditorDep) -> Response:
        return await _save(request, screen, None)

    return create


def _update_view(screen: TrackerScreen) -> Endpoint:
    async def update(tracker_id: int, request: Request, viewer: EditorDep) -> Response:
        tracker = screen.objects(get_catalogue(request)).get(tracker_id)
        return await _save(request, screen, tracker)

    return update


def _list_route(screen: TrackerScreen) -> Endpoint:
    def list_view(request: Request, viewer: ViewerDep) -> Response:
        return _list_view(screen, request, viewer)

    return list_view


def _field_for(exc: DomainError) -> str:
    field = error_field(exc.field)
    if field == "advertiser_id":
        return "line_item_id"  # the line item decides the advertiser
    if field in FORM_FIELDS:
        return field
    return "form"


def _edit_view(screen: TrackerScreen) -> Endpoint:
    def edit(tracker_id: int, request: Request, viewer: EditorDep) -> Response:
        tracker = screen.objects(get_catalogue(request)).get(tracker_id)
        return _dialog(
            request, screen, tracker.advertiser_id, tracker, _tracker_values(tracker), {}
        )

    return edit


# --- pickers --------------------------------------------------------------------------------


@router.get("/pickers/line-items", include_in_schema=False)
def pick_line_items(
    request: Request,
    viewer: ViewerDep,
    advertiser_id: int,
    q: str | None = None,
    selected: str | None = None,
) -> Response:
    items = get_catalogue(request).line_items.list(
        advertiser_id=advertiser_id, q=q or None, limit=PICKER_LIMIT
    )
    return render(
        request,
        "_picker_results.html",
        {"page": items, "field": "line_item_id", "selected": selected, "what": "line items"},
    )


@router.get("/pickers/publishers", include_in_schema=False)
def pick_publishers(
    request: Request, viewer: ViewerDep, q: str | None = None, selected: str | None = None
) -> Response:
    items = get_catalogue(request).publishers.list(q=q or None, limit=PICKER_LIMIT)
    return render(
        request,
        "_picker_results.html",
        {"page": items, "field": "publisher_id", "selected": selected, "what": "publishers"},
    )


@router.get("/pickers/publisher-options", include_in_schema=False)
def publisher_options(
    request: Request,
    viewer: ViewerDep,
    publisher_id: str | None = None,
) -> Response:
    svc = get_catalogue(request)
    pid = parse_optional_id(publisher_id, "publisher_id")
    placements, rules = _options_for_publisher(svc, pid)
    return render(
        request,
        "_publisher_options.html",
        {
            "values": {"publisher_id": publisher_id or ""},
            "errors": {},
            "placements": placements,
            "payment_rules": rules,
        },
    )


# --- a tracker's page and its live hits -----------------------------------------------------


def test_hit_url(request: Request, tracker: Tracker) -> str:
    """The tracker's own tracking URL with a ``[CACHEBUSTER]`` placeholder (the page fills it)."""
    options = TagOptions(
        public_url=console_state(request).settings.public_url,
        format=TagFormat.URL,
        macros=frozenset({Macro.CACHEBUSTER}),
    )
    data = TrackerTagData(tracker.id, tracker.tracker_type, tracker.name, tracker.code)
    try:
        return tracker_url(data, options, TagFormat.URL)
    except ValidationError:  # a misconfigured public URL: use this server (it serves /imptr too)
        path = "/imptr" if tracker.tracker_type is TrackerType.IMPRESSION else "/clktrb"
        suffix = "&t=2" if tracker.tracker_type is TrackerType.IMPRESSION else ""
        return f"{path}?id={tracker.id}&cachebuster=[CACHEBUSTER]{suffix}"


@router.get("/trackers/{tracker_id}", include_in_schema=False)
def tracker_page(tracker_id: int, request: Request, viewer: ViewerDep) -> Response:
    svc = get_catalogue(request)
    tracker = svc.trackers.get(tracker_id)
    return render(
        request,
        "tracker_page.html",
        {
            "tracker": tracker,
            "screen": screen_of(tracker),
            "names": CatalogueNames(svc, missing="#{id} (deleted)"),
            "test_url": test_hit_url(request, tracker),
            "section": "creative",
        },
    )


@router.get("/trackers/{tracker_id}/hits", include_in_schema=False)
def tracker_hits(tracker_id: int, request: Request, viewer: ViewerDep) -> Response:
    # No catalogue check: a tracker deleted a moment ago still shows its last hits.
    zone = console_state(request).zone
    return render(request, "_hits.html", {"hits": hit_rows(request, tracker_id, zone)})


def _register() -> None:
    for screen in TRACKER_SCREENS.values():
        slug = screen.slug
        routes: list[tuple[str, Endpoint, str]] = [
            (f"/{slug}", _list_route(screen), "GET"),
            (f"/{slug}/new", _new_view(screen), "GET"),
            (f"/{slug}", _create_view(screen), "POST"),
            (f"/{slug}/bulk", _bulk_view(screen), "POST"),
            (f"/{slug}/{{tracker_id:int}}/edit", _edit_view(screen), "GET"),
            (f"/{slug}/{{tracker_id:int}}", _update_view(screen), "POST"),
        ]
        for path, endpoint, method in routes:
            router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


_register()

__all__ = ["list_url", "router"]
