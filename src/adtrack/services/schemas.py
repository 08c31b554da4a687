"""The management API's JSON shapes, and their exact conversion to and from the domain.

Input models forbid unknown fields (the refusal names the field). In an ``...Update`` model
(PATCH) every field is optional; a field that cannot be empty (``name``, ``state``...) refuses
``null``, an optional one (``code``, ``placement_id``, dates...) is cleared by ``null``.

Money is exchanged in currency units with at most 6 decimals: JSON numbers (or decimal
strings) in, JSON numbers out (e.g. ``"cost_cpm": 2.5``). The domain keeps integer micros; the
conversion here is exact (``domain/money.py``), never through a binary float. ``revshare`` is
a fraction 0..1 (also 6 decimals), stored in parts per million. Dates accept an ISO date
(``2024-05-01`` = 00:00 UTC) or date-time (no offset = UTC) and are returned as ISO date-times
in UTC.

The rules themselves (empty names, references, ranges...) are the domain's; these models only
make sure the values have the right JSON types.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

from adtrack.domain.errors import ValidationError
from adtrack.domain.landing_domains import LANDING_DOMAINS_MAX
from adtrack.domain.model import (
    FilterAction,
    PricingType,
    RedirectPolicy,
    RevenueType,
    State,
    TrackerType,
)
from adtrack.domain.money import MoneyError, from_micros, to_micros
from adtrack.domain.parsing import check_supported_instant
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import ID_MAX, MONEY_MAX_MICROS
from adtrack.services.catalogue import MAX_PAGE_SIZE

__all__ = [
    "MAX_OFFSET",
    "MAX_PAGE_SIZE",
    "ApiModel",
    "ErrorOut",
    "PageOut",
    "from_domain",
    "to_domain",
]

MAX_OFFSET = 2**31 - 1
# API money field -> domain attribute. revshare uses the same 10^6 scale as micros (ppm).
MONEY_ATTRIBUTES = {
    "revenue_value": "revenue_value_micros",
    "cost_cpm": "cost_cpm_micros",
    "cost_cpc": "cost_cpc_micros",
    "revshare": "revshare_ppm",
}
API_NAMES = {attribute: name for name, attribute in MONEY_ATTRIBUTES.items()}
# Anything beyond this cannot be a valid amount or share; checked before exact arithmetic so an
# absurd exponent (1e999999) is refused instead of overflowing the decimal context.
_DECIMAL_GUARD_DIGITS = 15


# ---------------------------------------------------------------------------------------------
# Field types
# ---------------------------------------------------------------------------------------------


def _exact_units(value: Decimal) -> Decimal:
    # ``adjusted()`` reads the exponent without arithmetic, which could overflow.
    if value != 0 and value.adjusted() >= _DECIMAL_GUARD_DIGITS:
        raise ValueError(f"must be at most {from_micros(MONEY_MAX_MICROS)}")
    try:
        to_micros(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None
    return value


def _as_utc(value: datetime) -> datetime:
    # The range first: converting 9999-12-31T23:00-05:00 to UTC would overflow.
    try:
        check_supported_instant(value, "date")
    except ValidationError as exc:
        raise ValueError(exc.message) from None
    return as_utc(value)


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null")
    return value


# On an optional (PATCH) field that may be left out but not set to null.
NotNull = BeforeValidator(_not_null)


def _printable(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


_DECIMAL_IN_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d{1,6})?$"}],
}
Money = Annotated[
    Decimal,
    AfterValidator(_exact_units),
    WithJsonSchema(
        {**_DECIMAL_IN_SCHEMA, "description": "Currency units, at most 6 decimals (e.g. 2.5)."}
    ),
]
Share = Annotated[
    Decimal,
    AfterValidator(_exact_units),
    WithJsonSchema(
        {**_DECIMAL_IN_SCHEMA, "description": "A fraction from 0 to 1, at most 6 decimals."}
    ),
]
MoneyOut = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "Currency units, at most 6 decimals."}),
]
ShareOut = Annotated[
    Decimal, WithJsonSchema({"type": "number", "description": "A fraction from 0 to 1."})
]
Id = Annotated[int, Strict(), Field(ge=1, le=ID_MAX)]
DateTimeIn = Annotated[
    datetime,
    AfterValidator(_as_utc),
    WithJsonSchema(
        {
            "type": "string",
            "description": "ISO 8601 date (00:00 UTC) or date-time (UTC when no offset).",
            "examples": ["2024-05-01", "2024-05-01T12:00:00Z"],
        }
    ),
]
SearchText = Annotated[str, Field(max_length=255), AfterValidator(_printable)]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Lists and errors
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="How many objects match in all.")
    offset: int
    limit: int


class ListParams(ApiModel):
    q: SearchText | None = Field(
        default=None,
        description="Search: a case-insensitive part of the name or code, or an exact id.",
    )
    state: State | None = None
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)

    def filters(self) -> dict[str, Any]:
        """The resource-specific filters that were given."""
        return self.model_dump(exclude={"q", "state", "offset", "limit"}, exclude_none=True)


QueryId = Annotated[int, Field(ge=1, le=ID_MAX)]


class ErrorItem(BaseModel):
    field: str | None = Field(description="The field at fault, as named in the request.")
    message: str


class ErrorOut(BaseModel):
    detail: list[ErrorItem]
    blockers: list[dict[str, Any]] | None = Field(
        default=None, description="On a refused delete (409): the objects still using it."
    )


# ---------------------------------------------------------------------------------------------
# Advertisers
# ---------------------------------------------------------------------------------------------

_NAME = "A name (1 to 255 characters)."
_CODE = "An optional custom code (up to 100 characters, no spaces); null clears it."
_STATE = "active (default) or inactive."


_LANDING_DOMAINS = (
    "Host names its redir targets may go to under the allow-list redirect policy: "
    "shop.example (that host) or *.shop.example (any host below it); the port does not count. "
    f"At most {LANDING_DOMAINS_MAX}; stored lower-case, internationalised names in their "
    "ASCII (xn--) form. [] or null clears them."
)
_REDIRECT_POLICY = (
    "Overrides the server's redirect policy (ADTRACK_REDIRECT_POLICY) for this advertiser's "
    "trackers: trackers, allow-list or open; null follows the server's."
)


class NamedUpdate(ApiModel):
    """The fields every named catalogue object has (advertisers, publishers, placements)."""

    name: Annotated[str | None, NotNull] = Field(default=None, description=_NAME)
    code: str | None = Field(default=None, description=_CODE)
    state: Annotated[State | None, NotNull] = Field(default=None, description=_STATE)


class NamedOut(ApiModel):
    id: int
    name: str
    code: str | None
    state: State
    created_at: datetime
    last_modified: datetime


class AdvertiserUpdate(NamedUpdate):
    landing_domains: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, max_length=LANDING_DOMAINS_MAX, description=_LANDING_DOMAINS
    )
    redirect_policy: RedirectPolicy | None = Field(default=None, description=_REDIRECT_POLICY)


class AdvertiserCreate(AdvertiserUpdate):
    name: str = Field(description=_NAME)


class AdvertiserOut(NamedOut):
    landing_domains: list[str] = Field(description=_LANDING_DOMAINS)
    redirect_policy: RedirectPolicy | None = Field(description=_REDIRECT_POLICY)


class AdvertiserListParams(ListParams):
    pass


# ---------------------------------------------------------------------------------------------
# Line items
# ---------------------------------------------------------------------------------------------


class LineItemUpdate(ApiModel):
    advertiser_id: Annotated[Id | None, NotNull] = Field(
        default=None, description="The advertiser it belongs to."
    )
    name: Annotated[str | None, NotNull] = Field(default=None, description=_NAME)
    code: str | None = Field(default=None, description=_CODE)
    state: Annotated[State | None, NotNull] = Field(default=None, description=_STATE)
    revenue_type: Annotated[RevenueType | None, NotNull] = Field(
        default=None, description="Booked revenue: none (default), cpm or cpc."
    )
    revenue_value: Annotated[Money | None, NotNull] = Field(
        default=None, description="Per thousand impressions (cpm) or per click (cpc)."
    )
    start_date: DateTimeIn | None = Field(default=None, description="Inclusive.")
    end_date: DateTimeIn | None = Field(default=None, description="Exclusive.")


class LineItemCreate(LineItemUpdate):
    advertiser_id: Id = Field(description="The advertiser it belongs to.")
    name: str = Field(description=_NAME)


class LineItemOut(ApiModel):
    id: int
    advertiser_id: int
    name: str
    code: str | None
    state: State
    revenue_type: RevenueType
    revenue_value: MoneyOut
    start_date: datetime | None
    end_date: datetime | None
    created_at: datetime
    last_modified: datetime


class LineItemListParams(ListParams):
    advertiser_id: QueryId | None = None
    revenue_type: RevenueType | None = None


# ---------------------------------------------------------------------------------------------
# Payment rules
# ---------------------------------------------------------------------------------------------


class _PricingFields(ApiModel):
    name: Annotated[str | None, NotNull] = Field(default=None, description=_NAME)
    code: str | None = Field(default=None, description=_CODE)
    description: str | None = None
    pricing_type: Annotated[PricingType | None, NotNull] = Field(
        default=None, description="revshare (default), cpm, or cpc (a cost per click)."
    )
    revshare: Annotated[Share | None, NotNull] = Field(
        default=None, description="With revshare: share of booked revenue."
    )
    cost_cpm: Annotated[Money | None, NotNull] = Field(
        default=None, description="With cpm: cost per thousand impressions."
    )
    cost_cpc: Annotated[Money | None, NotNull] = Field(
        default=None, description="With cpc: cost per click."
    )


class BaseRuleIn(_PricingFields):
    """The base payment rule created with a publisher (revshare 0 unless given)."""


class PaymentRuleUpdate(_PricingFields):
    publisher_id: Annotated[Id | None, NotNull] = Field(
        default=None, description="The publisher it belongs to."
    )
    state: Annotated[State | None, NotNull] = Field(default=None, description=_STATE)
    is_base: Annotated[StrictBool | None, NotNull] = Field(
        default=None, description="Read-only in practice: the base rule comes with its publisher."
    )
    priority: Annotated[StrictInt | None, NotNull] = Field(
        default=None, description="1 to 10, 10 highest (default 5)."
    )
    start_date: DateTimeIn | None = Field(default=None, description="Inclusive.")
    end_date: DateTimeIn | None = Field(default=None, description="Exclusive.")
    advertiser_filter: FilterAction | None = Field(
        default=None, description="include or exclude the listed advertiser_ids."
    )
    advertiser_ids: list[Id] | None = Field(default=None, max_length=10_000)
    line_item_filter: FilterAction | None = Field(
        default=None, description="include or exclude the listed line_item_ids."
    )
    line_item_ids: list[Id] | None = Field(default=None, max_length=10_000)


class PaymentRuleCreate(PaymentRuleUpdate):
    publisher_id: Id = Field(description="The publisher it belongs to.")
    name: str = Field(description=_NAME)


class PaymentRuleOut(ApiModel):
    id: int
    publisher_id: int
    name: str
    code: str | None
    description: str | None
    state: State
    is_base: bool
    pricing_type: PricingType
    revshare: ShareOut
    cost_cpm: MoneyOut
    cost_cpc: MoneyOut
    priority: int
    start_date: datetime | None
    end_date: datetime | None
    advertiser_filter: FilterAction | None
    advertiser_ids: list[int]
    line_item_filter: FilterAction | None
    line_item_ids: list[int]
    created_at: datetime
    last_modified: datetime


class PaymentRuleListParams(ListParams):
    publisher_id: QueryId | None = None
    pricing_type: PricingType | None = None
    is_base: bool | None = None


# ---------------------------------------------------------------------------------------------
# Publishers and placements
# ---------------------------------------------------------------------------------------------


class PublisherUpdate(NamedUpdate):
    pass


class PublisherCreate(PublisherUpdate):
    name: str = Field(description=_NAME)
    base_rule: BaseRuleIn | None = Field(
        default=None, description="Settings of the base payment rule (revshare 0 by default)."
    )


class PublisherOut(NamedOut):
    pass


class PublisherListParams(ListParams):
    pass


class PlacementUpdate(NamedUpdate):
    publisher_id: Annotated[Id | None, NotNull] = Field(
        default=None, description="The publisher it belongs to."
    )


class PlacementCreate(PlacementUpdate):
    publisher_id: Id = Field(description="The publisher it belongs to.")
    name: str = Field(description=_NAME)


class PlacementOut(NamedOut):
    publisher_id: int


class PlacementListParams(ListParams):
    publisher_id: QueryId | None = None


# ---------------------------------------------------------------------------------------------
# Trackers
# ---------------------------------------------------------------------------------------------


class ImpressionTrackerUpdate(ApiModel):
    name: Annotated[str | None, NotNull] = Field(default=None, description=_NAME)
    code: str | None = Field(
        default=None, description="Optional custom code, unique among trackers of its type."
    )
    state: Annotated[State | None, NotNull] = Field(default=None, description=_STATE)
    advertiser_id: Id | None = Field(
        default=None, description="Defaults to the line item's advertiser."
    )
    line_item_id: Annotated[Id | None, NotNull] = Field(
        default=None, description="Required; of the tracker's advertiser."
    )
    publisher_id: Annotated[Id | None, NotNull] = Field(default=None, description="Required.")
    placement_id: Id | None = Field(default=None, description="Optional; of that publisher.")
    payment_rule_id: Id | None = Field(default=None, description="Optional; of that publisher.")


class ImpressionTrackerCreate(ImpressionTrackerUpdate):
    name: str = Field(description=_NAME)
    line_item_id: Id = Field(description="Required; of the tracker's advertiser.")
    publisher_id: Id = Field(description="Required.")


_LANDING_PAGE = "Optional http(s) URL the click redirects to."


class ClickTrackerUpdate(ImpressionTrackerUpdate):
    landing_page_url: str | None = Field(default=None, description=_LANDING_PAGE)


class ClickTrackerCreate(ImpressionTrackerCreate):
    landing_page_url: str | None = Field(default=None, description=_LANDING_PAGE)


class ImpressionTrackerOut(ApiModel):
    id: int
    tracker_type: TrackerType
    name: str
    code: str | None
    state: State
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    payment_rule_id: int | None
    created_at: datetime
    last_modified: datetime


class ClickTrackerOut(ImpressionTrackerOut):
    landing_page_url: str | None


class TrackerListParams(ListParams):
    advertiser_id: QueryId | None = None
    line_item_id: QueryId | None = None
    publisher_id: QueryId | None = None
    placement_id: QueryId | None = None
    payment_rule_id: QueryId | None = None


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------


def to_domain(values: Mapping[str, Any]) -> dict[str, Any]:
    """API values (as validated above) -> the service's input: money to exact micros,
    revshare to ppm; nested objects (a publisher's ``base_rule``) likewise."""
    converted: dict[str, Any] = {}
    for name, value in values.items():
        if name in MONEY_ATTRIBUTES:
            converted[MONEY_ATTRIBUTES[name]] = None if value is None else to_micros(value)
        elif isinstance(value, Mapping):
            converted[name] = to_domain(value)
        else:
            converted[name] = value
    return converted


def from_domain(entity: Any) -> dict[str, Any]:
    """A domain entity (dataclass) -> its JSON-ready API representation."""
    out: dict[str, Any] = {}
    for field in fields(entity):
        value = getattr(entity, field.name)
        name = API_NAMES.get(field.name, field.name)
        if field.name in API_NAMES:
            value = from_micros(value)
        elif isinstance(value, frozenset | set):
            value = sorted(value)
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, datetime):
            value = _as_utc(value)
        out[name] = value
    return out
