"""The catalogue's entities. Plain dataclasses: no I/O, no ORM.

Money fields end in ``_micros`` (integer micro-units, see ``money.py``); ratios (revshare) are
integer parts-per-million (``1_000_000`` = 100 %). Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum


class State(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class RevenueType(StrEnum):
    """How the advertiser pays for a line item (its booked revenue)."""

    NONE = "none"
    CPM = "cpm"
    CPC = "cpc"


class PricingType(StrEnum):
    """How a payment rule computes the media cost owed to the publisher."""

    REVSHARE = "revshare"
    CPM = "cpm"
    CPC = "cpc"  # our extension: a cost per click


class FilterAction(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


class TrackerType(StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"


class ImpType(IntEnum):
    """The original platform's impression types for tracked events."""

    EXTERNAL_IMPRESSION = 9
    EXTERNAL_CLICK = 10
    # adtrack's own: a conversion reported to a conversion pixel (``/sspx``), neither an
    # impression nor a click (the original platform's types stop at 10)
    CONVERSION = 11

    @property
    def label(self) -> str:
        return _IMP_TYPE_LABELS[self]

    @classmethod
    def for_tracker(cls, tracker_type: TrackerType) -> ImpType:
        if tracker_type is TrackerType.IMPRESSION:
            return cls.EXTERNAL_IMPRESSION
        return cls.EXTERNAL_CLICK


_IMP_TYPE_LABELS = {
    ImpType.EXTERNAL_IMPRESSION: "External Impression",
    ImpType.EXTERNAL_CLICK: "External Click",
    ImpType.CONVERSION: "Conversion",
}


class RedirectPolicy(StrEnum):
    """Which ``redir`` targets the click and impression trackers follow (see docs/limits.md).

    ``trackers``: only for an active tracker of the endpoint's kind; ``allow-list``: as
    ``trackers``, and only to the advertiser's landing domains; ``open``: any http(s) target,
    whatever the tracker id (an open redirector: an explicit opt-in).
    """

    TRACKERS = "trackers"
    ALLOW_LIST = "allow-list"
    OPEN = "open"


class ConversionTrigger(StrEnum):
    """Which events a conversion pixel counts conversions after: clicks only (``click``),
    impressions only (``view``), or both, a click winning over an impression (``hybrid``)."""

    VIEW = "view"
    CLICK = "click"
    HYBRID = "hybrid"


class ConversionEventType(StrEnum):
    """What a conversion pixel's conversion is (the original platform's conversion event
    types, named in snake case)."""

    LANDING_PAGE = "landing_page"
    ITEM_VIEW = "item_view"
    ADD_TO_CART = "add_to_cart"
    CHECKOUT = "checkout"
    PURCHASE = "purchase"
    LEAD = "lead"
    OTHER = "other"


class Role(StrEnum):
    ADMIN = "admin"  # everything, manages users
    TRAFFICKER = "trafficker"  # manages catalogue and trackers
    REPORTER = "reporter"  # read-only


PPM = 1_000_000  # revshare is stored in parts per million


@dataclass
class Advertiser:
    id: int
    name: str
    code: str | None = None
    state: State = State.ACTIVE
    # host patterns ("example.com", "*.example.com"), normalised to lower-case ASCII (IDNA)
    landing_domains: tuple[str, ...] = ()
    redirect_policy: RedirectPolicy | None = None  # None: the server's ADTRACK_REDIRECT_POLICY
    # set a tracking-domain cookie on this advertiser's clicks and impressions, which its
    # browser conversion pixels (/px) attribute from (docs/conversions.md, "Cookies")
    conversion_cookies: bool = False
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


@dataclass
class LineItem:
    id: int
    advertiser_id: int
    name: str
    code: str | None = None
    state: State = State.ACTIVE
    revenue_type: RevenueType = RevenueType.NONE
    revenue_value_micros: int = 0  # per thousand imps for cpm, per click for cpc
    start_date: datetime | None = None  # inclusive
    end_date: datetime | None = None  # exclusive
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


@dataclass
class Publisher:
    id: int
    name: str
    code: str | None = None
    state: State = State.ACTIVE
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


@dataclass
class Placement:
    id: int
    publisher_id: int
    name: str
    code: str | None = None
    state: State = State.ACTIVE
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


@dataclass
class PaymentRule:
    id: int
    publisher_id: int
    name: str
    code: str | None = None
    state: State = State.ACTIVE
    is_base: bool = False
    pricing_type: PricingType = PricingType.REVSHARE
    revshare_ppm: int = 0  # 0..1_000_000
    cost_cpm_micros: int = 0  # per thousand impressions
    cost_cpc_micros: int = 0  # per click
    priority: int = 5  # 1..10, 10 highest
    start_date: datetime | None = None  # inclusive
    end_date: datetime | None = None  # exclusive
    advertiser_filter: FilterAction | None = None
    advertiser_ids: frozenset[int] = field(default_factory=frozenset)
    line_item_filter: FilterAction | None = None
    line_item_ids: frozenset[int] = field(default_factory=frozenset)
    description: str | None = None
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


@dataclass
class Tracker:
    """An impression tracker or a click tracker (one id space for both)."""

    id: int
    tracker_type: TrackerType
    name: str
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    code: str | None = None
    state: State = State.ACTIVE
    placement_id: int | None = None
    payment_rule_id: int | None = None
    landing_page_url: str | None = None  # click trackers only
    # click trackers only: the query parameter the redirect target gets the click token in
    ssp_data_param: str | None = None
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


# Conversion windows: at most 90 days after a click, 30 days after an impression (minutes).
POST_CLICK_WINDOW_MAX_MINUTES = 129_600
POST_VIEW_WINDOW_MAX_MINUTES = 43_200
DEFAULT_POST_CLICK_WINDOW_MINUTES = 43_200  # 30 days
DEFAULT_POST_VIEW_WINDOW_MINUTES = 1_440  # 1 day
MIN_MINUTES_PER_CONVERSION_MAX = 32_767


@dataclass
class ConversionPixel:
    """What an advertiser counts as a conversion, and what one books.

    ``min_minutes_per_conversion``: ``None`` counts one conversion per click (or user), ``0``
    every one, ``n`` at most one per click (or user) every ``n`` minutes.
    """

    id: int
    advertiser_id: int
    name: str
    code: str | None = None  # unique among live conversion pixels (``/sspx?code=``)
    state: State = State.ACTIVE
    trigger_type: ConversionTrigger = ConversionTrigger.CLICK
    post_click_window_minutes: int = DEFAULT_POST_CLICK_WINDOW_MINUTES
    post_view_window_minutes: int = DEFAULT_POST_VIEW_WINDOW_MINUTES
    min_minutes_per_conversion: int | None = None
    post_click_revenue_micros: int = 0  # booked per post-click conversion
    post_view_revenue_micros: int = 0  # booked per post-view conversion
    event_type: ConversionEventType = ConversionEventType.OTHER
    created_at: datetime | None = None
    last_modified: datetime | None = None
    # id and code on the platform it was imported from (Microsoft Invest/Xandr), if any
    original_id: int | None = None
    original_code: str | None = None


# Any one object of the catalogue (what an import or the compatible API handles kind by kind).
CatalogueEntity = Advertiser | LineItem | Publisher | Placement | PaymentRule | Tracker
