"""The management API's JSON shapes for the catalogue (shared with the CLI).

Input models forbid unknown fields (the refusal names the field). In an ``...Update`` model
(PATCH) every field is optional; a field that cannot be empty (``name``, ``state``...) refuses
``null``, an optional one (``code``, ``placement_id``, dates...) is cleared by ``null``. The
field types and the conversion to and from the domain are in ``json_fields.py``.

The rules themselves (empty names, references, ranges...) are the domain's; these models only
make sure the values have the right JSON types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt, create_model

from adtrack.domain.landing_domains import LANDING_DOMAINS_MAX
from adtrack.domain.model import (
    DEFAULT_POST_CLICK_WINDOW_MINUTES,
    DEFAULT_POST_VIEW_WINDOW_MINUTES,
    MIN_MINUTES_PER_CONVERSION_MAX,
    POST_CLICK_WINDOW_MAX_MINUTES,
    POST_VIEW_WINDOW_MAX_MINUTES,
    ConversionEventType,
    ConversionTrigger,
    FilterAction,
    PricingType,
    RedirectPolicy,
    RevenueType,
    State,
    TrackerType,
)
from adtrack.domain.validation import ID_MAX, ORIGINAL_ID_MAX
from adtrack.services.catalogue import MAX_PAGE_SIZE
from adtrack.services.json_fields import (
    ApiModel,
    DateTimeIn,
    Id,
    Money,
    MoneyOut,
    NotNull,
    SearchText,
    Share,
    ShareOut,
)

__all__ = ["MAX_OFFSET", "MAX_PAGE_SIZE", "ListParams"]

MAX_OFFSET = 2**31 - 1


# ---------------------------------------------------------------------------------------------
# Lists
# ---------------------------------------------------------------------------------------------


class ListParams(ApiModel):
    q: SearchText | None = Field(
        default=None,
        description=(
            "Search: a case-insensitive part of the name, code or original code, or an exact "
            "id or original id."
        ),
    )
    state: State | None = None
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    original_id: Annotated[int, Field(ge=1, le=ORIGINAL_ID_MAX)] | None = Field(
        default=None, description="Objects imported with this id on the original platform."
    )

    def filters(self) -> dict[str, object]:
        """The resource-specific filters that were given."""
        return self.model_dump(exclude={"q", "state", "offset", "limit"}, exclude_none=True)


QueryId = Annotated[int, Field(ge=1, le=ID_MAX)]


class OriginOut(ApiModel):
    """Where an imported object came from (read-only: set by imports, null otherwise)."""

    original_id: int | None = Field(
        description="Its id on the platform it was imported from (Microsoft Invest/Xandr)."
    )
    original_code: str | None = Field(description="Its code on the platform it was imported from.")


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
_CONVERSION_COOKIES = (
    "Set a tracking-domain cookie on this advertiser's clicks and impressions, from which its "
    "browser conversion pixels (/px) attribute post-click and post-view conversions (never with "
    "Sec-GPC or DNT; needs HTTPS: docs/conversions.md). Default false."
)


class NamedUpdate(ApiModel):
    """The fields every named catalogue object has (advertisers, publishers, placements)."""

    name: Annotated[str | None, NotNull] = Field(default=None, description=_NAME)
    code: str | None = Field(default=None, description=_CODE)
    state: Annotated[State | None, NotNull] = Field(default=None, description=_STATE)


class NamedOut(OriginOut):
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
    conversion_cookies: Annotated[StrictBool | None, NotNull] = Field(
        default=None, description=_CONVERSION_COOKIES
    )


class AdvertiserCreate(AdvertiserUpdate):
    name: str = Field(description=_NAME)


class AdvertiserOut(NamedOut):
    landing_domains: list[str] = Field(description=_LANDING_DOMAINS)
    redirect_policy: RedirectPolicy | None = Field(description=_REDIRECT_POLICY)
    conversion_cookies: bool = Field(description=_CONVERSION_COOKIES)


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


class LineItemOut(OriginOut):
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


class PaymentRuleOut(OriginOut):
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


_LANDING_PAGE = (
    "Optional http(s) URL the click redirects to. ${SSP_DATA} or [SSP_DATA] in it (or in a "
    "tag's redir) is replaced with the click's token (docs/conversions.md)."
)
_SSP_DATA_PARAM = (
    "Optional query parameter (1 to 64 letters, digits, '_', '-', '.') appended to every "
    "redirect target of this tracker with the click's token as its value, e.g. sspdata; null "
    "turns it off (docs/conversions.md)."
)


class ClickTrackerUpdate(ImpressionTrackerUpdate):
    landing_page_url: str | None = Field(default=None, description=_LANDING_PAGE)
    ssp_data_param: str | None = Field(default=None, description=_SSP_DATA_PARAM)


class ClickTrackerCreate(ImpressionTrackerCreate):
    landing_page_url: str | None = Field(default=None, description=_LANDING_PAGE)
    ssp_data_param: str | None = Field(default=None, description=_SSP_DATA_PARAM)


class ImpressionTrackerOut(OriginOut):
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
    landing_page_url: str | None = Field(description=_LANDING_PAGE)
    ssp_data_param: str | None = Field(description=_SSP_DATA_PARAM)


class TrackerListParams(ListParams):
    advertiser_id: QueryId | None = None
    line_item_id: QueryId | None = None
    publisher_id: QueryId | None = None
    placement_id: QueryId | None = None
    payment_rule_id: QueryId | None = None


# ---------------------------------------------------------------------------------------------
# Conversion pixels
# ---------------------------------------------------------------------------------------------

_TRIGGER = (
    "What a conversion is counted after: click (default; a click of the advertiser's click "
    "trackers), view (an impression), or hybrid (a click, else an impression)."
)
_POST_CLICK_WINDOW = (
    f"Minutes after a click within which a conversion counts post-click: 1 to "
    f"{POST_CLICK_WINDOW_MAX_MINUTES} (90 days); default {DEFAULT_POST_CLICK_WINDOW_MINUTES}."
)
_POST_VIEW_WINDOW = (
    f"Minutes after an impression within which a conversion counts post-view: 1 to "
    f"{POST_VIEW_WINDOW_MAX_MINUTES} (30 days); default {DEFAULT_POST_VIEW_WINDOW_MINUTES}."
)
_MIN_MINUTES = (
    "null (default): one conversion per click or user; 0: count every one; 1 to "
    f"{MIN_MINUTES_PER_CONVERSION_MAX}: at most one per click or user within that many minutes."
)
_EVENT_TYPE = (
    "What the conversion is: landing_page, item_view, add_to_cart, checkout, purchase, lead "
    "or other (default)."
)
_PIXEL_CODE = (
    "Optional custom code (up to 100 characters, no spaces), unique among conversion pixels: "
    "postbacks may name the pixel by it (code=); null clears it."
)


class ConversionPixelUpdate(ApiModel):
    advertiser_id: Annotated[Id | None, NotNull] = Field(
        default=None, description="The advertiser it belongs to."
    )
    name: Annotated[str | None, NotNull] = Field(default=None, description=_NAME)
    code: str | None = Field(default=None, description=_PIXEL_CODE)
    state: Annotated[State | None, NotNull] = Field(default=None, description=_STATE)
    trigger_type: Annotated[ConversionTrigger | None, NotNull] = Field(
        default=None, description=_TRIGGER
    )
    post_click_window_minutes: Annotated[StrictInt | None, NotNull] = Field(
        default=None, description=_POST_CLICK_WINDOW
    )
    post_view_window_minutes: Annotated[StrictInt | None, NotNull] = Field(
        default=None, description=_POST_VIEW_WINDOW
    )
    min_minutes_per_conversion: StrictInt | None = Field(default=None, description=_MIN_MINUTES)
    post_click_revenue: Annotated[Money | None, NotNull] = Field(
        default=None, description="Booked per post-click conversion (default 0)."
    )
    post_view_revenue: Annotated[Money | None, NotNull] = Field(
        default=None, description="Booked per post-view conversion (default 0)."
    )
    event_type: Annotated[ConversionEventType | None, NotNull] = Field(
        default=None, description=_EVENT_TYPE
    )


class ConversionPixelCreate(ConversionPixelUpdate):
    advertiser_id: Id = Field(description="The advertiser it belongs to.")
    name: str = Field(description=_NAME)


class ConversionPixelOut(OriginOut):
    id: int
    advertiser_id: int
    name: str
    code: str | None
    state: State
    trigger_type: ConversionTrigger = Field(description=_TRIGGER)
    post_click_window_minutes: int = Field(description=_POST_CLICK_WINDOW)
    post_view_window_minutes: int = Field(description=_POST_VIEW_WINDOW)
    min_minutes_per_conversion: int | None = Field(description=_MIN_MINUTES)
    post_click_revenue: MoneyOut
    post_view_revenue: MoneyOut
    event_type: ConversionEventType = Field(description=_EVENT_TYPE)
    created_at: datetime
    last_modified: datetime


class ConversionPixelListParams(ListParams):
    advertiser_id: QueryId | None = None
    trigger_type: ConversionTrigger | None = None
    event_type: ConversionEventType | None = None


# ---------------------------------------------------------------------------------------------
# Batches (bulk writes): {"items": [...]} of the resource's own models
# ---------------------------------------------------------------------------------------------


class BatchDeactivate(ApiModel):
    ids: list[Id] = Field(min_length=1, description="The objects to set inactive.")


def batch_models(
    label: str, create: type[ApiModel], update: type[ApiModel]
) -> tuple[type[ApiModel], type[ApiModel]]:
    """The bodies of a resource's batch create and batch update: ``{"items": [...]}`` of its
    create model, and of its update model with the ``id`` of each object to change."""
    name = create.__name__.removesuffix("Create")
    update_item = create_model(
        f"{name}BatchUpdateItem",
        __base__=update,
        id=(Id, Field(description=f"The {label} to change.")),
    )
    batch_create = create_model(
        f"{name}BatchCreate",
        __base__=ApiModel,
        items=(list[create], Field(min_length=1, description=f"The {label}s to create.")),  # type: ignore[valid-type]
    )
    batch_update = create_model(
        f"{name}BatchUpdate",
        __base__=ApiModel,
        items=(
            list[update_item],  # type: ignore[valid-type]
            Field(min_length=1, description=f"The {label}s to change (only the fields given)."),
        ),
    )
    return batch_create, batch_update
