"""Catalogue screens: advertisers, line items, publishers (with their placements and payment
rules). Enough to set everything up from the browser before creating trackers.

Each kind has a list (search, state filter, sort, paging), a create page, an edit page (which
also deletes) and, for publishers, the publisher's placements and payment rules on its page.
Readers (the reporter role) see the same pages read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adtrack.domain.errors import DomainError, InUse
from adtrack.domain.model import LineItem, PaymentRule, PricingType, RevenueType
from adtrack.domain.parsing import parse_optional_id
from adtrack.services.catalogue import MAX_PAGE_SIZE, CatalogueService
from adtrack.web.console.base import (
    ConsoleRoute,
    EditorDep,
    ViewerDep,
    check_csrf,
    console_state,
    get_catalogue,
    money_text,
    redirect,
    render,
)
from adtrack.web.console.forms import (
    FormField,
    FormValues,
    entity_values,
    error_field,
    form_values,
    parse_form,
)
from adtrack.web.console.listing import PER_PAGE_CHOICES, list_rows

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

STATE_OPTIONS = (("active", "Active"), ("inactive", "Inactive"))
REVENUE_OPTIONS = (("none", "None"), ("cpm", "CPM (per 1000 imps)"), ("cpc", "CPC (per click)"))
PRICING_OPTIONS = (
    ("revshare", "Revenue share"),
    ("cpm", "CPM (per 1000 imps)"),
    ("cpc", "CPC (per click)"),
)
FILTER_OPTIONS = (("", "No filter"), ("include", "Only these"), ("exclude", "All but these"))
_PRICING_AMOUNT = {"revshare": "revshare", "cpm": "cost_cpm", "cpc": "cost_cpc"}


# --- what differs per kind -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Any], Any]
    sort: str | None = None
    link: Callable[[Any], str] | None = None
    kind: str = "text"  # text | num | state


@dataclass(frozen=True)
class Kind:
    slug: str  # URL segment: "line-items"
    label: str  # "line item"
    title: str  # "Line Items"
    section: str
    fields: tuple[FormField, ...]
    columns: tuple[Column, ...]
    sort_keys: Mapping[str, Callable[[Any], Any]]
    service: str  # CatalogueService method suffix: "line_item"
    parent: str | None = None  # list filter and create default: "advertiser_id"
    skip: Callable[[FormField, Any, FormValues], bool] | None = None
    hidden_fields: Callable[[Any | None], frozenset[str]] = field(
        default=lambda entity: frozenset()
    )

    def method(self, svc: CatalogueService, verb: str) -> Callable[..., Any]:
        plural = "line_items" if self.service == "line_item" else f"{self.service}s"
        name = f"{verb}_{plural}" if verb == "list" else f"{verb}_{self.service}"
        method: Callable[..., Any] = getattr(svc, name)
        return method


_COMMON_SORTS: dict[str, Callable[[Any], Any]] = {
    "id": lambda e: e.id,
    "name": lambda e: e.name,
    "code": lambda e: e.code,
    "state": lambda e: e.state.value,
    "last_modified": lambda e: e.last_modified,
}


def _skip_amounts(type_field: str, amounts: Mapping[str, str]) -> Callable[..., bool]:
    """Only the amount of the chosen pricing/revenue type is sent (the rules refuse others)."""

    def skip(field: FormField, raw: Any, values: FormValues) -> bool:
        prefix = field.name.rsplit(".", 1)[0] + "." if "." in field.name else ""
        if field.name.removeprefix(prefix) not in amounts.values():
            return False
        chosen = str(values.get(prefix + type_field) or "")
        return amounts.get(chosen) != field.name.removeprefix(prefix)

    return skip


def _skip_payment_rule(field: FormField, raw: Any, values: FormValues) -> bool:
    return _skip_amounts("pricing_type", _PRICING_AMOUNT)(field, raw, values)


def _skip_line_item(field: FormField, raw: Any, values: FormValues) -> bool:
    if field.name == "revenue_value":
        return values.get("revenue_type") in ("", "none", None) and not str(raw or "").strip()
    return False


def _base_rule_hidden(entity: Any) -> frozenset[str]:
    if isinstance(entity, PaymentRule) and entity.is_base:
        return frozenset(
            {
                "state",
                "publisher_id",
                "priority",
                "start_date",
                "end_date",
                "advertiser_filter",
                "advertiser_ids",
                "line_item_filter",
                "line_item_ids",
            }
        )
    return frozenset()


NAME = FormField("name", "Name", required=True)
CODE = FormField("code", "Code", hint="Optional: your own reference, unique per kind.")
STATE = FormField("state", "State", "select", options=STATE_OPTIONS)

REDIRECT_POLICY_OPTIONS = (
    ("", "Server default"),
    ("trackers", "Trackers: any redirect of an active tracker"),
    ("allow-list", "Allow-list: only to the landing domains"),
    ("open", "Open: any redirect, any id (open redirector)"),
)
LANDING_DOMAINS = FormField(
    "landing_domains",
    "Landing domains",
    "lines",
    hint="One per line: shop.example (that host) or *.shop.example (any host below it). "
    "Under the allow-list redirect policy, click and impression redirects go only here.",
)
REDIRECT_POLICY = FormField(
    "redirect_policy",
    "Redirect policy",
    "select",
    options=REDIRECT_POLICY_OPTIONS,
    hint="Which redir targets this advertiser's trackers follow; the server default is "
    "ADTRACK_REDIRECT_POLICY.",
)

ADVERTISERS = Kind(
    slug="advertisers",
    label="advertiser",
    title="Advertisers",
    section="advertisers",
    fields=(NAME, CODE, STATE, LANDING_DOMAINS, REDIRECT_POLICY),
    columns=(
        Column("ID", lambda e: e.id, "id", kind="num"),
        Column("Name", lambda e: e.name, "name", link=lambda e: f"/advertisers/{e.id}"),
        Column("Code", lambda e: e.code or "", "code"),
        Column("State", lambda e: e.state, "state", kind="state"),
        Column(
            "Line items",
            lambda e: "Line items",
            link=lambda e: f"/line-items?advertiser_id={e.id}",
        ),
        Column(
            "Trackers",
            lambda e: "Impression trackers",
            link=lambda e: f"/impression-trackers?advertiser_id={e.id}",
        ),
    ),
    sort_keys=_COMMON_SORTS,
    service="advertiser",
)

LINE_ITEMS = Kind(
    slug="line-items",
    label="line item",
    title="Line Items",
    section="line_items",
    fields=(
        FormField("advertiser_id", "Advertiser", "id", required=True),
        NAME,
        CODE,
        STATE,
        FormField("revenue_type", "Booked revenue", "select", options=REVENUE_OPTIONS),
        FormField(
            "revenue_value",
            "Revenue value",
            "money",
            attr="revenue_value_micros",
            hint="What the advertiser pays: per 1000 impressions (CPM) or per click (CPC).",
        ),
        FormField("start_date", "Start date", "date", hint="Optional, inclusive."),
        FormField("end_date", "End date", "date", hint="Optional, exclusive."),
    ),
    columns=(
        Column("ID", lambda e: e.id, "id", kind="num"),
        Column("Name", lambda e: e.name, "name", link=lambda e: f"/line-items/{e.id}"),
        Column("Code", lambda e: e.code or "", "code"),
        Column("Advertiser", lambda e: e.advertiser_id, "advertiser_id", kind="advertiser"),
        Column("Revenue", lambda e: e, "revenue_type", kind="revenue"),
        Column("State", lambda e: e.state, "state", kind="state"),
    ),
    sort_keys={
        **_COMMON_SORTS,
        "advertiser_id": lambda e: e.advertiser_id,
        "revenue_type": lambda e: e.revenue_type.value,
    },
    service="line_item",
    parent="advertiser_id",
    skip=_skip_line_item,
)

_BASE_RULE_FIELDS = (
    FormField(
        "base_rule.pricing_type",
        "Base rule pricing",
        "select",
        options=PRICING_OPTIONS,
        create_only=True,
        hint="The publisher's base payment rule: what you pay when no other rule applies.",
    ),
    FormField(
        "base_rule.revshare",
        "Revenue share (0 to 1)",
        "ratio",
        attr="base_rule.revshare_ppm",
        create_only=True,
    ),
    FormField(
        "base_rule.cost_cpm",
        "Cost CPM",
        "money",
        attr="base_rule.cost_cpm_micros",
        create_only=True,
    ),
    FormField(
        "base_rule.cost_cpc",
        "Cost per click",
        "money",
        attr="base_rule.cost_cpc_micros",
        create_only=True,
    ),
)

PUBLISHERS = Kind(
    slug="publishers",
    label="publisher",
    title="Publishers",
    section="publishers",
    fields=(NAME, CODE, STATE, *_BASE_RULE_FIELDS),
    columns=(
        Column("ID", lambda e: e.id, "id", kind="num"),
        Column("Name", lambda e: e.name, "name", link=lambda e: f"/publishers/{e.id}"),
        Column("Code", lambda e: e.code or "", "code"),
        Column("State", lambda e: e.state, "state", kind="state"),
        Column(
            "Placements & rules",
            lambda e: "Placements & payment rules",
            link=lambda e: f"/publishers/{e.id}#placements",
        ),
    ),
    sort_keys=_COMMON_SORTS,
    service="publisher",
    skip=lambda f, raw, values: _skip_amounts("pricing_type", _PRICING_AMOUNT)(f, raw, values),
)

PLACEMENTS = Kind(
    slug="placements",
    label="placement",
    title="Placements",
    section="publishers",
    fields=(FormField("publisher_id", "Publisher", "id", required=True), NAME, CODE, STATE),
    columns=(
        Column("ID", lambda e: e.id, "id", kind="num"),
        Column("Name", lambda e: e.name, "name", link=lambda e: f"/placements/{e.id}"),
        Column("Code", lambda e: e.code or "", "code"),
        Column("State", lambda e: e.state, "state", kind="state"),
    ),
    sort_keys=_COMMON_SORTS,
    service="placement",
    parent="publisher_id",
)

PAYMENT_RULES = Kind(
    slug="payment-rules",
    label="payment rule",
    title="Payment Rules",
    section="publishers",
    fields=(
        FormField("publisher_id", "Publisher", "id", required=True),
        NAME,
        CODE,
        STATE,
        FormField("description", "Description", "textarea"),
        FormField("pricing_type", "Pricing", "select", options=PRICING_OPTIONS),
        FormField("revshare", "Revenue share (0 to 1)", "ratio", attr="revshare_ppm"),
        FormField("cost_cpm", "Cost CPM", "money", attr="cost_cpm_micros"),
        FormField("cost_cpc", "Cost per click", "money", attr="cost_cpc_micros"),
        FormField(
            "priority",
            "Priority",
            "int",
            hint="1 to 10; rules are tried from the highest priority down.",
        ),
        FormField("start_date", "Start date", "date", hint="Optional, inclusive."),
        FormField("end_date", "End date", "date", hint="Optional, exclusive."),
        FormField("advertiser_filter", "Advertiser filter", "select", options=FILTER_OPTIONS),
        FormField("advertiser_ids", "Advertisers", "ids"),
        FormField("line_item_filter", "Line item filter", "select", options=FILTER_OPTIONS),
        FormField("line_item_ids", "Line items", "ids"),
    ),
    columns=(
        Column("ID", lambda e: e.id, "id", kind="num"),
        Column("Name", lambda e: e.name, "name", link=lambda e: f"/payment-rules/{e.id}"),
        Column("Pricing", lambda e: e, "pricing_type", kind="pricing"),
        Column("Priority", lambda e: "base" if e.is_base else e.priority, "priority"),
        Column("State", lambda e: e.state, "state", kind="state"),
    ),
    sort_keys={
        **_COMMON_SORTS,
        "pricing_type": lambda e: e.pricing_type.value,
        "priority": lambda e: 11 if e.is_base else e.priority,
    },
    service="payment_rule",
    parent="publisher_id",
    skip=_skip_payment_rule,
    hidden_fields=_base_rule_hidden,
)

KINDS = {k.slug: k for k in (ADVERTISERS, LINE_ITEMS, PUBLISHERS, PLACEMENTS, PAYMENT_RULES)}


# --- options of selects that come from the catalogue ------------------------------------------


def _all(fetch: Callable[..., Any]) -> list[Any]:
    return list(fetch(limit=MAX_PAGE_SIZE).items)


def dynamic_options(svc: CatalogueService, kind: Kind, values: FormValues) -> dict[str, Any]:
    options: dict[str, Any] = {}
    names = {f.name for f in kind.fields}
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


def _defaults(kind: Kind, request: Request) -> FormValues:
    values: FormValues = {"state": "active"}
    if kind.parent and request.query_params.get(kind.parent):
        values[kind.parent] = request.query_params[kind.parent]
    if kind is LINE_ITEMS:
        values["revenue_type"] = "none"
    if kind is PAYMENT_RULES:
        values.update(pricing_type="revshare", priority="5")
    if kind is PUBLISHERS:
        values["base_rule.pricing_type"] = "revshare"
        values["base_rule.revshare"] = "0"
    return values


def _visible_fields(kind: Kind, entity: Any | None) -> list[FormField]:
    hidden = kind.hidden_fields(entity)
    return [
        f
        for f in kind.fields
        if f.name not in hidden
        and not (f.create_only and entity is not None)
        and not (f.edit_only and entity is None)
    ]


# --- pages ------------------------------------------------------------------------------------


def _name_lookup(svc: CatalogueService) -> Callable[[str, int | None], str]:
    """Names of related objects for list cells, fetched once per id."""
    cache: dict[tuple[str, int], str] = {}

    def name(kind: str, object_id: int | None) -> str:
        if object_id is None:
            return ""
        key = (kind, object_id)
        if key not in cache:
            try:
                cache[key] = getattr(svc, f"get_{kind}")(object_id).name
            except DomainError:
                cache[key] = f"#{object_id}"
        return cache[key]

    return name


def _list_page(request: Request, kind: Kind, viewer: Any) -> Response:
    svc = get_catalogue(request)
    params = dict(request.query_params)
    filters: dict[str, Any] = {}
    if kind.parent:
        parent_id = parse_optional_id(params.get(kind.parent), kind.parent)
        if parent_id is not None:
            filters[kind.parent] = parent_id
    listing = list_rows(kind.method(svc, "list"), params, kind.sort_keys, filters=filters)
    context: dict[str, Any] = {
        "kind": kind,
        "listing": listing,
        "section": kind.section,
        "name_of": _name_lookup(svc),
        "per_page_choices": PER_PAGE_CHOICES,
        "params": params,
    }
    if kind.parent == "advertiser_id":
        context["parent_options"] = [
            (str(a.id), f"{a.name} ({a.id})") for a in _all(svc.advertisers.list)
        ]
        context["parent_label"] = "Advertiser"
    return render(request, "catalogue_list.html", context)


def _form_page(
    request: Request,
    kind: Kind,
    entity: Any | None,
    values: FormValues,
    errors: Mapping[str, str],
    *,
    status_code: int = 200,
    blockers: list[dict[str, Any]] | None = None,
) -> Response:
    svc = get_catalogue(request)
    context: dict[str, Any] = {
        "kind": kind,
        "entity": entity,
        "fields": _visible_fields(kind, entity),
        "values": values,
        "errors": dict(errors),
        "options": dynamic_options(svc, kind, values),
        "section": kind.section,
        "blockers": blockers or [],
        "action": f"/{kind.slug}/{entity.id}" if entity is not None else f"/{kind.slug}",
    }
    if kind is PUBLISHERS and entity is not None:
        context["placements"] = svc.placements.list(
            publisher_id=entity.id, limit=MAX_PAGE_SIZE
        ).items
        context["payment_rules"] = sorted(
            svc.payment_rules.list(publisher_id=entity.id, limit=MAX_PAGE_SIZE).items,
            key=lambda r: (not r.is_base, -r.priority, r.id),
        )
    if kind in (PLACEMENTS, PAYMENT_RULES):
        publisher_id = entity.publisher_id if entity is not None else values.get("publisher_id")
        context["back"] = f"/publishers/{publisher_id}" if publisher_id else "/publishers"
    else:
        context["back"] = f"/{kind.slug}"
    if isinstance(entity, LineItem):
        context["back"] = f"/line-items?advertiser_id={entity.advertiser_id}"
    return render(request, "catalogue_form.html", context, status_code=status_code)


def _errors_from(exc: DomainError, fields: list[FormField]) -> dict[str, str]:
    name = error_field(exc.field)
    return {name: exc.message}


async def _save(request: Request, kind: Kind, entity: Any | None) -> Response:
    svc = get_catalogue(request)
    zone = console_state(request).zone
    fields = _visible_fields(kind, entity)
    form = await request.form()
    values = form_values(form, fields)
    skip = None
    if kind.skip is not None:
        kind_skip = kind.skip

        def skip(field: FormField, raw: Any) -> bool:
            return kind_skip(field, raw, values)

    data, errors = parse_form(values, fields, zone, skip=skip)
    if not errors:
        try:
            if entity is None:
                saved = kind.method(svc, "create")(data)
                verb = "Created"
            else:
                saved = kind.method(svc, "update")(entity.id, data)
                verb = "Saved"
        except DomainError as exc:
            errors = _errors_from(exc, fields)
        else:
            target = _after_save(kind, saved)
            message = f"{verb} {kind.label} “{saved.name}” ({saved.id})."
            return redirect(request, target, flash=message)
    return _form_page(request, kind, entity, values, errors, status_code=422)


def _after_save(kind: Kind, saved: Any) -> str:
    if kind in (PLACEMENTS, PAYMENT_RULES):
        return f"/publishers/{saved.publisher_id}#{kind.slug}"
    if kind is PUBLISHERS:
        return f"/publishers/{saved.id}"
    if kind is LINE_ITEMS:
        return f"/line-items?advertiser_id={saved.advertiser_id}"
    return f"/{kind.slug}"


def _register(kind: Kind) -> None:
    slug = kind.slug

    def list_view(request: Request, viewer: ViewerDep) -> Response:
        return _list_page(request, kind, viewer)

    def new_view(request: Request, viewer: EditorDep) -> Response:
        return _form_page(request, kind, None, _defaults(kind, request), {})

    async def create_view(request: Request, viewer: EditorDep) -> Response:
        return await _save(request, kind, None)

    def edit_view(object_id: int, request: Request, viewer: ViewerDep) -> Response:
        entity = kind.method(get_catalogue(request), "get")(object_id)
        values = entity_values(entity, kind.fields, console_state(request).zone)
        return _form_page(request, kind, entity, values, {})

    async def update_view(object_id: int, request: Request, viewer: EditorDep) -> Response:
        entity = kind.method(get_catalogue(request), "get")(object_id)
        return await _save(request, kind, entity)

    def delete_view(object_id: int, request: Request, viewer: EditorDep) -> Response:
        svc = get_catalogue(request)
        entity = kind.method(svc, "get")(object_id)
        try:
            kind.method(svc, "delete")(object_id)
        except InUse as exc:
            values = entity_values(entity, kind.fields, console_state(request).zone)
            return _form_page(
                request,
                kind,
                entity,
                values,
                {"delete": exc.message},
                status_code=409,
                blockers=exc.blockers,
            )
        except DomainError as exc:
            values = entity_values(entity, kind.fields, console_state(request).zone)
            return _form_page(
                request, kind, entity, values, {"delete": exc.message}, status_code=409
            )
        target = _after_delete(kind, entity)
        return redirect(request, target, flash=f"Deleted {kind.label} “{entity.name}”.")

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


def _after_delete(kind: Kind, entity: Any) -> str:
    if kind in (PLACEMENTS, PAYMENT_RULES):
        return f"/publishers/{entity.publisher_id}"
    return f"/{kind.slug}"


for _kind in KINDS.values():
    _register(_kind)


def describe_revenue(item: LineItem) -> str:
    if item.revenue_type is RevenueType.NONE:
        return "none"
    return f"{item.revenue_type.value.upper()} {money_text(item.revenue_value_micros)}"


def describe_pricing(rule: PaymentRule) -> str:
    if rule.pricing_type is PricingType.REVSHARE:
        return f"revshare {rule.revshare_ppm / 10_000:g} %"
    if rule.pricing_type is PricingType.CPM:
        return f"CPM {money_text(rule.cost_cpm_micros)}"
    return f"CPC {money_text(rule.cost_cpc_micros)}"


__all__ = ["KINDS", "describe_pricing", "describe_revenue", "router"]
