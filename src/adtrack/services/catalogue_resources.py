"""The eight kinds of catalogue object as one table (``RESOURCES``): for each, its path and
label, its JSON models (``services/schemas.py``) and which ``KindCatalogue`` of the
``CatalogueService`` creates, reads, changes, deletes and lists it (and, for trackers, writes
it in batches). The API's routes and the
CLI's commands are both generated from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from adtrack.domain.model import (
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    Publisher,
    Tracker,
)
from adtrack.services import schemas
from adtrack.services.catalogue import CatalogueService, KindCatalogue
from adtrack.services.json_fields import ApiModel, from_domain

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["RESOURCES", "KindResource", "Resource"]

E = TypeVar("E")


@dataclass(frozen=True)
class Resource(Generic[E]):
    """One kind of object (entity type ``E``) as the API and the CLI serve it."""

    path: str  # "line-items"
    label: str  # "line item"
    create_model: type[ApiModel]
    update_model: type[ApiModel]
    out_model: type[ApiModel]
    params_model: type[schemas.ListParams]
    objects: Callable[[CatalogueService], KindCatalogue[E]]  # the service's catalogue of it
    hidden: frozenset[str] = frozenset()  # entity attributes this resource does not show
    # The bodies of batch create and batch update (``schemas.batch_models``), for the
    # resources that have the batch endpoints.
    batch: tuple[type[ApiModel], type[ApiModel]] | None = None

    def to_json(self, entity: DataclassInstance) -> dict[str, object]:
        shown = from_domain(entity)
        for name in self.hidden:
            shown.pop(name, None)
        return shown


# The routes and commands are built by one loop over all kinds; each kind keeps its own type.
KindResource = (
    Resource[Advertiser]
    | Resource[LineItem]
    | Resource[Publisher]
    | Resource[Placement]
    | Resource[PaymentRule]
    | Resource[Tracker]
    | Resource[ConversionPixel]
)

RESOURCES: tuple[KindResource, ...] = (
    Resource(
        "advertisers",
        "advertiser",
        schemas.AdvertiserCreate,
        schemas.AdvertiserUpdate,
        schemas.AdvertiserOut,
        schemas.AdvertiserListParams,
        lambda catalogue: catalogue.advertisers,
    ),
    Resource(
        "line-items",
        "line item",
        schemas.LineItemCreate,
        schemas.LineItemUpdate,
        schemas.LineItemOut,
        schemas.LineItemListParams,
        lambda catalogue: catalogue.line_items,
    ),
    Resource(
        "publishers",
        "publisher",
        schemas.PublisherCreate,
        schemas.PublisherUpdate,
        schemas.PublisherOut,
        schemas.PublisherListParams,
        lambda catalogue: catalogue.publishers,
    ),
    Resource(
        "placements",
        "placement",
        schemas.PlacementCreate,
        schemas.PlacementUpdate,
        schemas.PlacementOut,
        schemas.PlacementListParams,
        lambda catalogue: catalogue.placements,
    ),
    Resource(
        "payment-rules",
        "payment rule",
        schemas.PaymentRuleCreate,
        schemas.PaymentRuleUpdate,
        schemas.PaymentRuleOut,
        schemas.PaymentRuleListParams,
        lambda catalogue: catalogue.payment_rules,
    ),
    Resource(
        "impression-trackers",
        "impression tracker",
        schemas.ImpressionTrackerCreate,
        schemas.ImpressionTrackerUpdate,
        schemas.ImpressionTrackerOut,
        schemas.TrackerListParams,
        lambda catalogue: catalogue.impression_trackers,
        hidden=frozenset({"landing_page_url", "ssp_data_param"}),
        batch=schemas.batch_models(
            "impression tracker", schemas.ImpressionTrackerCreate, schemas.ImpressionTrackerUpdate
        ),
    ),
    Resource(
        "click-trackers",
        "click tracker",
        schemas.ClickTrackerCreate,
        schemas.ClickTrackerUpdate,
        schemas.ClickTrackerOut,
        schemas.TrackerListParams,
        lambda catalogue: catalogue.click_trackers,
        batch=schemas.batch_models(
            "click tracker", schemas.ClickTrackerCreate, schemas.ClickTrackerUpdate
        ),
    ),
    Resource(
        "conversion-pixels",
        "conversion pixel",
        schemas.ConversionPixelCreate,
        schemas.ConversionPixelUpdate,
        schemas.ConversionPixelOut,
        schemas.ConversionPixelListParams,
        lambda catalogue: catalogue.conversion_pixels,
        batch=schemas.batch_models(
            "conversion pixel", schemas.ConversionPixelCreate, schemas.ConversionPixelUpdate
        ),
    ),
)
