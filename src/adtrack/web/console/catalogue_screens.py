"""The catalogue's console screens, one ``CatalogueScreen`` per kind: its form fields, list
columns and sorts, which fields a form sends, and how values are shown (``describe_revenue``,
``describe_pricing``). The pages themselves are in ``routes_catalogue.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from adtrack.domain.catalogue_rules import BASE_RULE_CONDITIONAL_ONLY
from adtrack.domain.model import (
    DEFAULT_POST_CLICK_WINDOW_MINUTES,
    DEFAULT_POST_VIEW_WINDOW_MINUTES,
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    PricingType,
    Publisher,
    RevenueType,
    State,
)
from adtrack.services.catalogue import CatalogueService, KindCatalogue
from adtrack.web.console.forms import FormField, FormValue, FormValues
from adtrack.web.console.rendering import money_text

__all__ = [
    "ADVERTISERS",
    "CONVERSION_PIXELS",
    "LINE_ITEMS",
    "PAYMENT_RULES",
    "PLACEMENTS",
    "PUBLISHERS",
    "CatalogueEntity",
    "CatalogueScreen",
    "Column",
    "describe_pricing",
    "describe_revenue",
]

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


class CatalogueEntity(Protocol):
    """What every catalogue list shows of an object (the columns and sorts all kinds share)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def code(self) -> str | None: ...
    @property
    def state(self) -> State: ...
    @property
    def last_modified(self) -> datetime | None: ...


E = TypeVar("E", bound=CatalogueEntity)
# Whether a form field is left out of what the form sends (given its raw value and the form's).
Skip = Callable[[FormField, FormValue | None, FormValues], bool]
# A column reads an entity; one that reads only what all kinds have serves every screen.
E_contra = TypeVar("E_contra", bound=CatalogueEntity, contravariant=True)


@dataclass(frozen=True)
class Column(Generic[E_contra]):
    header: str
    cell: Callable[[E_contra], object]
    sort: str | None = None
    link: Callable[[E_contra], str] | None = None
    cell_type: str = "text"  # text | num | state | advertiser | revenue | pricing | pixel_tags


@dataclass(frozen=True)
class CatalogueScreen(Generic[E]):
    """The list and form pages of one kind of catalogue object (entity type ``E``)."""

    slug: str  # URL segment: "line-items"
    label: str  # "line item"
    title: str  # "Line Items"
    section: str
    fields: tuple[FormField, ...]
    columns: tuple[Column[E], ...]
    sort_keys: Mapping[str, Callable[[E], object]]
    objects: Callable[[CatalogueService], KindCatalogue[E]]  # the service's catalogue of it
    parent: str | None = None  # list filter and create default: "advertiser_id"
    defaults: Mapping[str, str] = field(default_factory=dict)  # a new object's form values
    skip: Skip | None = None
    hidden_fields: Callable[[object], frozenset[str]] = field(default=lambda entity: frozenset())


_COMMON_SORTS: Mapping[str, Callable[[CatalogueEntity], object]] = {
    "id": lambda e: e.id,
    "name": lambda e: e.name,
    "code": lambda e: e.code,
    "state": lambda e: e.state.value,
    "last_modified": lambda e: e.last_modified,
}


def _skip_amounts(type_field: str, amounts: Mapping[str, str]) -> Skip:
    """Only the amount of the chosen pricing/revenue type is sent (the rules refuse others)."""

    def skip(field: FormField, raw: FormValue | None, values: FormValues) -> bool:
        prefix = field.name.rsplit(".", 1)[0] + "." if "." in field.name else ""
        if field.name.removeprefix(prefix) not in amounts.values():
            return False
        chosen = str(values.get(prefix + type_field) or "")
        return amounts.get(chosen) != field.name.removeprefix(prefix)

    return skip


def _skip_payment_rule(field: FormField, raw: FormValue | None, values: FormValues) -> bool:
    return _skip_amounts("pricing_type", _PRICING_AMOUNT)(field, raw, values)


def _skip_line_item(field: FormField, raw: FormValue | None, values: FormValues) -> bool:
    if field.name == "revenue_value":
        return values.get("revenue_type") in ("", "none", None) and not str(raw or "").strip()
    return False


# A base rule's page shows neither what only conditional rules have nor what cannot change.
_BASE_RULE_HIDDEN = frozenset({"state", "publisher_id", *BASE_RULE_CONDITIONAL_ONLY})


def _base_rule_hidden(entity: object) -> frozenset[str]:
    if isinstance(entity, PaymentRule) and entity.is_base:
        return _BASE_RULE_HIDDEN
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

CONVERSION_COOKIES = FormField(
    "conversion_cookies",
    "Conversion cookies",
    "select",
    options=(("false", "Off"), ("true", "On: set a cookie on clicks and impressions")),
    hint="A tracking-domain cookie from which this advertiser's browser conversion pixels "
    "attribute post-click and post-view conversions; never set for visitors who send Sec-GPC "
    "or DNT. Needs the tracking host on HTTPS.",
)


# The columns every catalogue list starts with.
def _id_and_name(slug: str) -> tuple[Column[CatalogueEntity], Column[CatalogueEntity]]:
    """The id, and the name linking to the object's page (``/<slug>/<id>``)."""
    return (
        Column("ID", lambda e: e.id, "id", cell_type="num"),
        Column("Name", lambda e: e.name, "name", link=lambda e: f"/{slug}/{e.id}"),
    )


_CODE: Column[CatalogueEntity] = Column("Code", lambda e: e.code or "", "code")
_STATE: Column[CatalogueEntity] = Column("State", lambda e: e.state, "state", cell_type="state")


ADVERTISERS = CatalogueScreen[Advertiser](
    slug="advertisers",
    label="advertiser",
    title="Advertisers",
    section="advertisers",
    fields=(NAME, CODE, STATE, LANDING_DOMAINS, REDIRECT_POLICY, CONVERSION_COOKIES),
    columns=(
        *_id_and_name("advertisers"),
        _CODE,
        _STATE,
        Column[CatalogueEntity](
            "Line items",
            lambda e: "Line items",
            link=lambda e: f"/line-items?advertiser_id={e.id}",
        ),
        Column[CatalogueEntity](
            "Trackers",
            lambda e: "Impression trackers",
            link=lambda e: f"/impression-trackers?advertiser_id={e.id}",
        ),
    ),
    sort_keys=_COMMON_SORTS,
    objects=lambda catalogue: catalogue.advertisers,
)

LINE_ITEMS = CatalogueScreen[LineItem](
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
        *_id_and_name("line-items"),
        _CODE,
        Column("Advertiser", lambda e: e.advertiser_id, "advertiser_id", cell_type="advertiser"),
        Column("Revenue", lambda e: e, "revenue_type", cell_type="revenue"),
        _STATE,
    ),
    sort_keys={
        **_COMMON_SORTS,
        "advertiser_id": lambda e: e.advertiser_id,
        "revenue_type": lambda e: e.revenue_type.value,
    },
    objects=lambda catalogue: catalogue.line_items,
    parent="advertiser_id",
    defaults={"revenue_type": "none"},
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

PUBLISHERS = CatalogueScreen[Publisher](
    slug="publishers",
    label="publisher",
    title="Publishers",
    section="publishers",
    fields=(NAME, CODE, STATE, *_BASE_RULE_FIELDS),
    columns=(
        *_id_and_name("publishers"),
        _CODE,
        _STATE,
        Column[CatalogueEntity](
            "Placements & rules",
            lambda e: "Placements & payment rules",
            link=lambda e: f"/publishers/{e.id}#placements",
        ),
    ),
    sort_keys=_COMMON_SORTS,
    objects=lambda catalogue: catalogue.publishers,
    defaults={"base_rule.pricing_type": "revshare", "base_rule.revshare": "0"},
    skip=_skip_amounts("pricing_type", _PRICING_AMOUNT),
)

PLACEMENTS = CatalogueScreen[Placement](
    slug="placements",
    label="placement",
    title="Placements",
    section="publishers",
    fields=(FormField("publisher_id", "Publisher", "id", required=True), NAME, CODE, STATE),
    columns=(
        *_id_and_name("placements"),
        _CODE,
        _STATE,
    ),
    sort_keys=_COMMON_SORTS,
    objects=lambda catalogue: catalogue.placements,
    parent="publisher_id",
)

PAYMENT_RULES = CatalogueScreen[PaymentRule](
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
        *_id_and_name("payment-rules"),
        Column("Pricing", lambda e: e, "pricing_type", cell_type="pricing"),
        Column("Priority", lambda e: "base" if e.is_base else e.priority, "priority"),
        _STATE,
    ),
    sort_keys={
        **_COMMON_SORTS,
        "pricing_type": lambda e: e.pricing_type.value,
        "priority": lambda e: 11 if e.is_base else e.priority,
    },
    objects=lambda catalogue: catalogue.payment_rules,
    parent="publisher_id",
    defaults={"pricing_type": "revshare", "priority": "5"},
    skip=_skip_payment_rule,
    hidden_fields=_base_rule_hidden,
)


TRIGGER_OPTIONS = (
    ("click", "Click: after a click"),
    ("view", "View: after an impression"),
    ("hybrid", "Hybrid: after a click, else an impression"),
)
EVENT_TYPE_OPTIONS = (
    ("landing_page", "Landing page"),
    ("item_view", "Item view"),
    ("add_to_cart", "Add to cart"),
    ("checkout", "Checkout"),
    ("purchase", "Purchase"),
    ("lead", "Lead"),
    ("other", "Other"),
)

CONVERSION_PIXELS = CatalogueScreen[ConversionPixel](
    slug="conversion-pixels",
    label="conversion pixel",
    title="Conversion Pixels",
    section="conversion_pixels",
    fields=(
        FormField("advertiser_id", "Advertiser", "id", required=True),
        NAME,
        FormField(
            "code",
            "Code",
            hint="Optional, unique among conversion pixels: postbacks may name the pixel by it.",
        ),
        STATE,
        FormField("event_type", "Conversion event", "select", options=EVENT_TYPE_OPTIONS),
        FormField("trigger_type", "Counted after", "select", options=TRIGGER_OPTIONS),
        FormField(
            "post_click_window_minutes",
            "Post-click window (minutes)",
            "int",
            hint="Up to 129600 (90 days).",
        ),
        FormField(
            "post_view_window_minutes",
            "Post-view window (minutes)",
            "int",
            hint="Up to 43200 (30 days).",
        ),
        FormField(
            "min_minutes_per_conversion",
            "Minutes between conversions",
            "int",
            hint="Empty: one conversion per click or user; 0: count every one; up to 32767.",
        ),
        FormField(
            "post_click_revenue",
            "Post-click revenue",
            "money",
            attr="post_click_revenue_micros",
            hint="What a post-click conversion books.",
        ),
        FormField(
            "post_view_revenue",
            "Post-view revenue",
            "money",
            attr="post_view_revenue_micros",
            hint="What a post-view conversion books.",
        ),
    ),
    columns=(
        *_id_and_name("conversion-pixels"),
        _CODE,
        Column("Advertiser", lambda e: e.advertiser_id, "advertiser_id", cell_type="advertiser"),
        Column("Event", lambda e: e.event_type.value.replace("_", " "), "event_type"),
        Column("Counted after", lambda e: e.trigger_type.value, "trigger_type"),
        _STATE,
        Column[ConversionPixel]("Tags", lambda e: e.id, cell_type="pixel_tags"),  # its dialog
    ),
    sort_keys={
        **_COMMON_SORTS,
        "advertiser_id": lambda e: e.advertiser_id,
        "event_type": lambda e: e.event_type.value,
        "trigger_type": lambda e: e.trigger_type.value,
    },
    objects=lambda catalogue: catalogue.conversion_pixels,
    parent="advertiser_id",
    defaults={
        "trigger_type": "click",
        "event_type": "other",
        "post_click_window_minutes": str(DEFAULT_POST_CLICK_WINDOW_MINUTES),
        "post_view_window_minutes": str(DEFAULT_POST_VIEW_WINDOW_MINUTES),
    },
)


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
