"""Catalogue pages: advertisers, line items, publishers (with their placements and payment
rules), conversion pixels. Enough to set everything up from the browser before creating
trackers. What each kind shows is its ``CatalogueScreen`` (``catalogue_screens.py``).

Each kind has a list (search, state filter, sort, paging), a create page, an edit page (which
also deletes) and, for publishers, the publisher's placements and payment rules on its page.
Readers (the reporter role) see the same pages read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adtrack.domain.errors import DomainError, InUse
from adtrack.domain.model import LineItem, PaymentRule, Placement, Publisher
from adtrack.domain.parsing import parse_optional_id
from adtrack.services.catalogue import MAX_PAGE_SIZE, CatalogueService
from adtrack.web.api.deps import get_catalogue
from adtrack.web.console.access import EditorDep, Viewer, ViewerDep, check_csrf
from adtrack.web.console.catalogue_names import CatalogueNames
from adtrack.web.console.catalogue_screens import (
    ADVERTISERS,
    CONVERSION_PIXELS,
    LINE_ITEMS,
    PAYMENT_RULES,
    PLACEMENTS,
    PUBLISHERS,
    CatalogueEntity,
    CatalogueScreen,
)
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.console_state import console_state
from adtrack.web.console.forms import (
    FormField,
    FormValue,
    FormValues,
    entity_values,
    error_field,
    form_values,
    parse_form,
)
from adtrack.web.console.listing import PER_PAGE_CHOICES, ListFetch, list_rows
from adtrack.web.console.rendering import redirect, render

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

# --- options of selects that come from the catalogue ------------------------------------------


T = TypeVar("T")
E = TypeVar("E", bound=CatalogueEntity)


def _all(fetch: ListFetch[T]) -> list[T]:
    return list(fetch(limit=MAX_PAGE_SIZE).items)


def dynamic_options(
    svc: CatalogueService, screen: CatalogueScreen[E], values: FormValues
) -> dict[str, list[tuple[str, str]]]:
    options: dict[str, list[tuple[str, str]]] = {}
    names = {f.name for f in screen.fields}
    if "advertiser_id" in names or "advertiser_ids" in names:
        advertisers = [(str(a.id), f"{a.name} ({a.id})") for a in _all(svc.advertisers.list)]
        options["advertiser_id"] = [("", "Choose an advertiser"), *advertisers]
        options["advertiser_ids"] = advertisers
    if "publisher_id" in names:
        publishers = [(str(p.id), f"{p.name} ({p.id})") for p in _all(svc.publishers.list)]
        options["publisher_id"] = [("", "Choose a publisher"), *publishers]
    if "line_item_ids" in names:
        options["line_item_ids"] = [
            (str(li.id), f"{li.name} ({li.id})") for li in _all(svc.line_items.list)
        ]
    return options


def _defaults(screen: CatalogueScreen[E], request: Request) -> FormValues:
    values: FormValues = {"state": "active"}
    if screen.parent and request.query_params.get(screen.parent):
        values[screen.parent] = request.query_params[screen.parent]
    values.update(screen.defaults)
    return values


def _visible_fields(screen: CatalogueScreen[E], entity: object) -> list[FormField]:
    hidden = screen.hidden_fields(entity)
    return [
        f
        for f in screen.fields
        if f.name not in hidden
        and not (f.create_only and entity is not None)
        and not (f.edit_only and entity is None)
    ]


# --- pages ------------------------------------------------------------------------------------


def _list_page(request: Request, screen: CatalogueScreen[E], viewer: Viewer) -> Response:
    svc = get_catalogue(request)
    params = dict(request.query_params)
    filters: dict[str, object] = {}
    if screen.parent:
        parent_id = parse_optional_id(params.get(screen.parent), screen.parent)
        if parent_id is not None:
            filters[screen.parent] = parent_id
    listing = list_rows(screen.objects(svc).list, params, screen.sort_keys, filters=filters)
    context: dict[str, object] = {
        "screen": screen,
        "listing": listing,
        "section": screen.section,
        "name_of": CatalogueNames(svc),
        "per_page_choices": PER_PAGE_CHOICES,
        "params": params,
    }
    if screen.parent == "advertiser_id":
        context["parent_options"] = [
            (str(a.id), f"{a.name} ({a.id})") for a in _all(svc.advertisers.list)
        ]
        context["parent_label"] = "Advertiser"
    return render(request, "catalogue_list.html", context)


def _form_page(
    request: Request,
    screen: CatalogueScreen[E],
    entity: E | None,
    values: FormValues,
    errors: Mapping[str, str],
    *,
    status_code: int = 200,
    blockers: list[dict[str, object]] | None = None,
) -> Response:
    svc = get_catalogue(request)
    context: dict[str, object] = {
        "screen": screen,
        "entity": entity,
        "fields": _visible_fields(screen, entity),
        "values": values,
        "errors": dict(errors),
        "options": dynamic_options(svc, screen, values),
        "section": screen.section,
        "blockers": blockers or [],
        "action": f"/{screen.slug}/{entity.id}" if entity is not None else f"/{screen.slug}",
    }
    if screen is PUBLISHERS and entity is not None:
        context["placements"] = svc.placements.list(
            publisher_id=entity.id, limit=MAX_PAGE_SIZE
        ).items
        context["payment_rules"] = sorted(
            svc.payment_rules.list(publisher_id=entity.id, limit=MAX_PAGE_SIZE).items,
            key=lambda r: (not r.is_base, -r.priority, r.id),
        )
    if screen.parent == "publisher_id":  # placements and payment rules
        publisher_id = (
            entity.publisher_id
            if isinstance(entity, (Placement, PaymentRule))
            else values.get("publisher_id")
        )
        context["back"] = f"/publishers/{publisher_id}" if publisher_id else "/publishers"
    else:
        context["back"] = f"/{screen.slug}"
    if isinstance(entity, LineItem):
        context["back"] = f"/line-items?advertiser_id={entity.advertiser_id}"
    return render(request, "catalogue_form.html", context, status_code=status_code)


def _errors_from(exc: DomainError, fields: list[FormField]) -> dict[str, str]:
    name = error_field(exc.field)
    return {name: exc.message}


async def _save(request: Request, screen: CatalogueScreen[E], entity: E | None) -> Response:
    svc = get_catalogue(request)
    zone = console_state(request).zone
    fields = _visible_fields(screen, entity)
    form = await request.form()
    values = form_values(form, fields)
    skip = None
    if screen.skip is not None:
        screen_skip = screen.skip

        def skip(field: FormField, raw: FormValue | None) -> bool:
            return screen_skip(field, raw, values)

    data, errors = parse_form(values, fields, zone, skip=skip)
    if not errors:
        try:
            if entity is None:
                saved = screen.objects(svc).create(data)
                verb = "Created"
            else:
                saved = screen.objects(svc).update(entity.id, data)
                verb = "Saved"
        except DomainError as exc:
            errors = _errors_from(exc, fields)
        else:
            target = _after_save(screen, saved)
            message = f"{verb} {screen.label} “{saved.name}” ({saved.id})."
            return redirect(request, target, flash=message)
    return _form_page(request, screen, entity, values, errors, status_code=422)


def _after_save(screen: CatalogueScreen[E], saved: E) -> str:
    if isinstance(saved, (Placement, PaymentRule)):
        return f"/publishers/{saved.publisher_id}#{screen.slug}"
    if isinstance(saved, Publisher):
        return f"/publishers/{saved.id}"
    if isinstance(saved, LineItem):
        return f"/line-items?advertiser_id={saved.advertiser_id}"
    return f"/{screen.slug}"


def _register(screen: CatalogueScreen[E]) -> None:
    slug = screen.slug

    def list_view(request: Request, viewer: ViewerDep) -> Response:
        return _list_page(request, screen, viewer)

    def new_view(request: Request, viewer: EditorDep) -> Response:
        return _form_page(request, screen, None, _defaults(screen, request), {})

    async def create_view(request: Request, viewer: EditorDep) -> Response:
        return await _save(request, screen, None)

    def edit_view(object_id: int, request: Request, viewer: ViewerDep) -> Response:
        entity = screen.objects(get_catalogue(request)).get(object_id)
        values = entity_values(entity, screen.fields, console_state(request).zone)
        return _form_page(request, screen, entity, values, {})

    async def update_view(object_id: int, request: Request, viewer: EditorDep) -> Response:
        entity = screen.objects(get_catalogue(request)).get(object_id)
        return await _save(request, screen, entity)

    def delete_view(object_id: int, request: Request, viewer: EditorDep) -> Response:
        svc = get_catalogue(request)
        entity = screen.objects(svc).get(object_id)
        try:
            screen.objects(svc).delete(object_id)
        except InUse as exc:
            values = entity_values(entity, screen.fields, console_state(request).zone)
            return _form_page(
                request,
                screen,
                entity,
                values,
                {"delete": exc.message},
                status_code=409,
                blockers=exc.blockers,
            )
        except DomainError as exc:
            values = entity_values(entity, screen.fields, console_state(request).zone)
            return _form_page(
                request, screen, entity, values, {"delete": exc.message}, status_code=409
            )
        target = _after_delete(screen, entity)
        return redirect(request, target, flash=f"Deleted {screen.label} “{entity.name}”.")

    router.add_api_route(f"/{slug}", list_view, methods=["GET"], include_in_schema=False)
    router.add_api_route(f"/{slug}/new", new_view, methods=["GET"], include_in_schema=False)
    router.add_api_route(f"/{slug}", create_view, methods=["POST"], include_in_schema=False)
    router.add_api_route(
        f"/{slug}/{{object_id:int}}", edit_view, methods=["GET"], include_in_schema=False
    )
    router.add_api_route(
        f"/{slug}/{{object_id:int}}", update_view, methods=["POST"], include_in_schema=False
    )
    router.add_api_route(
        f"/{slug}/{{object_id:int}}/delete",
        delete_view,
        methods=["POST"],
        include_in_schema=False,
    )


def _after_delete(screen: CatalogueScreen[E], entity: E) -> str:
    if isinstance(entity, (Placement, PaymentRule)):
        return f"/publishers/{entity.publisher_id}"
    return f"/{screen.slug}"


# One call per kind: each screen has its own entity type.
_register(ADVERTISERS)
_register(LINE_ITEMS)
_register(PUBLISHERS)
_register(PLACEMENTS)
_register(PAYMENT_RULES)
_register(CONVERSION_PIXELS)


__all__ = ["router"]
