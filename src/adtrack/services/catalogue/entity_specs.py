"""What the catalogue needs to know about each kind of object: its entity class, its repository,
the attributes a request may write (each with its cleaner), the attributes a create must give
and the filters its list accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import partial
from typing import Generic, TypeVar

from adtrack.domain import catalogue_rules as rules
from adtrack.domain.errors import ValidationError
from adtrack.domain.landing_domains import clean_landing_domains
from adtrack.domain.model import (
    MIN_MINUTES_PER_CONVERSION_MAX,
    POST_CLICK_WINDOW_MAX_MINUTES,
    POST_VIEW_WINDOW_MAX_MINUTES,
    Advertiser,
    ConversionEventType,
    ConversionPixel,
    ConversionTrigger,
    FilterAction,
    LineItem,
    PaymentRule,
    Placement,
    PricingType,
    Publisher,
    RedirectPolicy,
    RevenueType,
    State,
    Tracker,
    TrackerType,
)
from adtrack.domain.validation import (
    clean_code,
    clean_datetime,
    clean_description,
    clean_enum,
    clean_flag,
    clean_id,
    clean_id_set,
    clean_landing_page_url,
    clean_money_micros,
    clean_name,
    clean_optional_enum,
    clean_optional_id,
    clean_optional_whole_number,
    clean_original_code,
    clean_original_id,
    clean_ppm,
    clean_priority,
    clean_query_parameter_name,
    clean_whole_number,
)
from adtrack.services.ports import Repository, UnitOfWork

__all__ = [
    "ADVERTISER",
    "BASE_RULE",
    "CONVERSION_PIXEL",
    "LINE_ITEM",
    "PAYMENT_RULE",
    "PLACEMENT",
    "PUBLISHER",
    "TRACKER",
    "EntitySpec",
]

E = TypeVar("E")

# A cleaner checks one request value and returns what the entity stores (its type differs per
# attribute; ``EntitySpec.entity`` builds the entity from the cleaned values by name).
Cleaner = Callable[[object], object]
# A list filter's cleaner returns what the repository compares with: an id or an enum's value.
FilterCleaner = Callable[[object], int | str]

_READ_ONLY = frozenset({"id", "created_at", "last_modified", "deleted_at"})


@dataclass(frozen=True)
class EntitySpec(Generic[E]):
    """One kind of catalogue object as the service sees it."""

    label: str  # in messages: "line item"
    entity: Callable[..., E]
    repository: Callable[[UnitOfWork], Repository[E]]
    fields: Mapping[str, Cleaner]  # writable attribute -> cleaner
    required: tuple[str, ...]  # attributes a create must give
    list_filters: Mapping[str, FilterCleaner]  # list filter -> cleaner
    # Placeholders a create starts from for attributes the check fills in.
    placeholders: Mapping[str, object] = dataclass_field(default_factory=dict)

    def clean(self, data: object, *, creating: bool) -> dict[str, object]:
        """The request's attributes, each cleaned; unknown, read-only and missing required
        attributes are refused."""
        if not isinstance(data, Mapping):
            raise ValidationError("body", "must be an object")
        values: dict[str, object] = {}
        for key, value in data.items():
            cleaner = self.fields.get(key) if isinstance(key, str) else None
            if cleaner is None:
                field = str(key)
                if field in _READ_ONLY:
                    raise ValidationError(field, "is set by the server and cannot be given")
                raise ValidationError(field, f"is not a known {self.label} field")
            if value is None and key in self.required:
                raise ValidationError(rules.api_field(key), "is required")
            values[key] = cleaner(value)
        if creating:
            for key in self.required:
                if key not in values:
                    raise ValidationError(rules.api_field(key), "is required")
        return values


def _clean_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


def _ref(field: str) -> Cleaner:
    return partial(clean_optional_id, field=field)


_COMMON: dict[str, Cleaner] = {
    "name": clean_name,
    "code": clean_code,
    "state": partial(clean_enum, State, field="state"),
    # Set by imports (read-only in the API, whose models do not take them).
    "original_id": clean_original_id,
    "original_code": clean_original_code,
}


def _original_id_filter(value: object) -> int:
    # A list never cleans a None filter (it means "no filter"), so there is always an id.
    original_id = clean_original_id(value)
    if original_id is None:
        raise ValidationError("original_id", "must be a positive integer")
    return original_id


# Every kind's list may be filtered by the id an object had on the platform it came from.
_ORIGIN_FILTERS: dict[str, FilterCleaner] = {
    "original_id": _original_id_filter,
}

ADVERTISER = EntitySpec(
    label="advertiser",
    entity=Advertiser,
    repository=lambda uow: uow.advertisers,
    fields={
        **_COMMON,
        "landing_domains": clean_landing_domains,
        "redirect_policy": partial(clean_optional_enum, RedirectPolicy, field="redirect_policy"),
        "conversion_cookies": partial(clean_flag, field="conversion_cookies"),
    },
    required=("name",),
    list_filters=_ORIGIN_FILTERS,
)

LINE_ITEM = EntitySpec(
    label="line item",
    entity=LineItem,
    repository=lambda uow: uow.line_items,
    fields={
        **_COMMON,
        "advertiser_id": _ref("advertiser_id"),
        "revenue_type": partial(clean_enum, RevenueType, field="revenue_type"),
        "revenue_value_micros": partial(clean_money_micros, field="revenue_value"),
        "start_date": partial(clean_datetime, field="start_date"),
        "end_date": partial(clean_datetime, field="end_date"),
    },
    required=("name", "advertiser_id"),
    list_filters={
        **_ORIGIN_FILTERS,
        "advertiser_id": partial(clean_id, field="advertiser_id"),
        "revenue_type": lambda v: clean_enum(RevenueType, v, "revenue_type").value,
    },
)

PUBLISHER = EntitySpec(
    label="publisher",
    entity=Publisher,
    repository=lambda uow: uow.publishers,
    fields=_COMMON,
    required=("name",),
    list_filters=_ORIGIN_FILTERS,
)

PLACEMENT = EntitySpec(
    label="placement",
    entity=Placement,
    repository=lambda uow: uow.placements,
    fields={**_COMMON, "publisher_id": _ref("publisher_id")},
    required=("name", "publisher_id"),
    list_filters={**_ORIGIN_FILTERS, "publisher_id": partial(clean_id, field="publisher_id")},
)

_PAYMENT_RULE_FIELDS: dict[str, Cleaner] = {
    **_COMMON,
    "publisher_id": _ref("publisher_id"),
    "description": clean_description,
    "is_base": partial(_clean_bool, field="is_base"),
    "pricing_type": partial(clean_enum, PricingType, field="pricing_type"),
    "revshare_ppm": partial(clean_ppm, field="revshare"),
    "cost_cpm_micros": partial(clean_money_micros, field="cost_cpm"),
    "cost_cpc_micros": partial(clean_money_micros, field="cost_cpc"),
    "priority": partial(clean_priority, field="priority"),
    "start_date": partial(clean_datetime, field="start_date"),
    "end_date": partial(clean_datetime, field="end_date"),
    "advertiser_filter": partial(clean_optional_enum, FilterAction, field="advertiser_filter"),
    "advertiser_ids": partial(clean_id_set, field="advertiser_ids"),
    "line_item_filter": partial(clean_optional_enum, FilterAction, field="line_item_filter"),
    "line_item_ids": partial(clean_id_set, field="line_item_ids"),
}

PAYMENT_RULE = EntitySpec(
    label="payment rule",
    entity=PaymentRule,
    repository=lambda uow: uow.payment_rules,
    fields=_PAYMENT_RULE_FIELDS,
    required=("name", "publisher_id"),
    list_filters={
        **_ORIGIN_FILTERS,
        "publisher_id": partial(clean_id, field="publisher_id"),
        "pricing_type": lambda v: clean_enum(PricingType, v, "pricing_type").value,
        "is_base": partial(_clean_bool, field="is_base"),
    },
)

# The fields a publisher's base rule may be created with (the publisher create's "base_rule").
BASE_RULE = EntitySpec(
    label="base rule",
    entity=PaymentRule,
    repository=lambda uow: uow.payment_rules,
    fields={
        key: cleaner
        for key, cleaner in _PAYMENT_RULE_FIELDS.items()
        if key not in ("publisher_id", "is_base", "state")
    },
    required=(),
    list_filters=_ORIGIN_FILTERS,
)

TRACKER = EntitySpec(
    label="tracker",
    entity=Tracker,
    repository=lambda uow: uow.trackers,
    fields={
        **_COMMON,
        "tracker_type": partial(clean_enum, TrackerType, field="tracker_type"),
        "advertiser_id": _ref("advertiser_id"),
        "line_item_id": _ref("line_item_id"),
        "publisher_id": _ref("publisher_id"),
        "placement_id": _ref("placement_id"),
        "payment_rule_id": _ref("payment_rule_id"),
        "landing_page_url": clean_landing_page_url,
        "ssp_data_param": partial(clean_query_parameter_name, field="ssp_data_param"),
    },
    required=("name", "tracker_type", "line_item_id", "publisher_id"),
    list_filters={
        **_ORIGIN_FILTERS,
        "tracker_type": lambda v: clean_enum(TrackerType, v, "tracker_type").value,
        "advertiser_id": partial(clean_id, field="advertiser_id"),
        "line_item_id": partial(clean_id, field="line_item_id"),
        "publisher_id": partial(clean_id, field="publisher_id"),
        "placement_id": partial(clean_id, field="placement_id"),
        "payment_rule_id": partial(clean_id, field="payment_rule_id"),
    },
    # advertiser_id may be omitted: it is then the line item's advertiser.
    placeholders={"advertiser_id": None},
)

CONVERSION_PIXEL = EntitySpec(
    label="conversion pixel",
    entity=ConversionPixel,
    repository=lambda uow: uow.conversion_pixels,
    fields={
        **_COMMON,
        "advertiser_id": _ref("advertiser_id"),
        "trigger_type": partial(clean_enum, ConversionTrigger, field="trigger_type"),
        "post_click_window_minutes": partial(
            clean_whole_number,
            field="post_click_window_minutes",
            low=1,
            high=POST_CLICK_WINDOW_MAX_MINUTES,
        ),
        "post_view_window_minutes": partial(
            clean_whole_number,
            field="post_view_window_minutes",
            low=1,
            high=POST_VIEW_WINDOW_MAX_MINUTES,
        ),
        "min_minutes_per_conversion": partial(
            clean_optional_whole_number,
            field="min_minutes_per_conversion",
            low=0,
            high=MIN_MINUTES_PER_CONVERSION_MAX,
        ),
        "post_click_revenue_micros": partial(clean_money_micros, field="post_click_revenue"),
        "post_view_revenue_micros": partial(clean_money_micros, field="post_view_revenue"),
        "event_type": partial(clean_enum, ConversionEventType, field="event_type"),
    },
    required=("name", "advertiser_id"),
    list_filters={
        **_ORIGIN_FILTERS,
        "advertiser_id": partial(clean_id, field="advertiser_id"),
        "trigger_type": lambda v: clean_enum(ConversionTrigger, v, "trigger_type").value,
        "event_type": lambda v: clean_enum(ConversionEventType, v, "event_type").value,
    },
)
