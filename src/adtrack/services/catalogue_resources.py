"""The seven kinds of catalogue object as one table (``RESOURCES``): for each, its path and
label, its JSON models (``services/schemas.py``) and the ``CatalogueService`` calls that
create, read, change, delete and list it. The API's routes and the CLI's commands are both
generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adtrack.domain.model import TrackerType
from adtrack.services import schemas
from adtrack.services.catalogue import CatalogueService, Page

__all__ = ["RESOURCES", "KindOperations", "Resource", "TrackerOperations"]


class KindOperations:
    """Calls ``create_<kind>``, ``get_<kind>``... on the service for one kind of object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def create(self, service: CatalogueService, data: dict[str, Any]) -> Any:
        return getattr(service, f"create_{self.kind}")(data)

    def get(self, service: CatalogueService, id: int) -> Any:
        return getattr(service, f"get_{self.kind}")(id)

    def update(self, service: CatalogueService, id: int, changes: dict[str, Any]) -> Any:
        return getattr(service, f"update_{self.kind}")(id, changes)

    def delete(self, service: CatalogueService, id: int) -> None:
        getattr(service, f"delete_{self.kind}")(id)

    def list(self, service: CatalogueService, **query: Any) -> Page[Any]:
        page: Page[Any] = getattr(service, f"list_{self.kind}s")(**query)
        return page


class TrackerOperations(KindOperations):
    """Impression and click trackers share one service API, told apart by ``tracker_type``."""

    def __init__(self, tracker_type: TrackerType) -> None:
        super().__init__("tracker")
        self.tracker_type = tracker_type

    def create(self, service: CatalogueService, data: dict[str, Any]) -> Any:
        return service.create_tracker({**data, "tracker_type": self.tracker_type})

    def get(self, service: CatalogueService, id: int) -> Any:
        return service.get_tracker(id, self.tracker_type)

    def update(self, service: CatalogueService, id: int, changes: dict[str, Any]) -> Any:
        return service.update_tracker(id, changes, self.tracker_type)

    def delete(self, service: CatalogueService, id: int) -> None:
        service.delete_tracker(id, self.tracker_type)

    def list(self, service: CatalogueService, **query: Any) -> Page[Any]:
        return service.list_trackers(tracker_type=self.tracker_type, **query)


@dataclass(frozen=True)
class Resource:
    path: str  # "line-items"
    label: str  # "line item"
    create_model: type[schemas.ApiModel]
    update_model: type[schemas.ApiModel]
    out_model: type[schemas.ApiModel]
    params_model: type[schemas.ListParams]
    operations: KindOperations
    hidden: frozenset[str] = frozenset()  # entity attributes this resource does not show

    def to_json(self, entity: Any) -> dict[str, Any]:
        shown = schemas.from_domain(entity)
        for name in self.hidden:
            shown.pop(name, None)
        return shown


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "advertisers",
        "advertiser",
        schemas.AdvertiserCreate,
        schemas.AdvertiserUpdate,
        schemas.AdvertiserOut,
        schemas.AdvertiserListParams,
        KindOperations("advertiser"),
    ),
    Resource(
        "line-items",
        "line item",
        schemas.LineItemCreate,
        schemas.LineItemUpdate,
        schemas.LineItemOut,
        schemas.LineItemListParams,
        KindOperations("line_item"),
    ),
    Resource(
        "publishers",
        "publisher",
        schemas.PublisherCreate,
        schemas.PublisherUpdate,
        schemas.PublisherOut,
        schemas.PublisherListParams,
        KindOperations("publisher"),
    ),
    Resource(
        "placements",
        "placement",
        schemas.PlacementCreate,
        schemas.PlacementUpdate,
        schemas.PlacementOut,
        schemas.PlacementListParams,
        KindOperations("placement"),
    ),
    Resource(
        "payment-rules",
        "payment rule",
        schemas.PaymentRuleCreate,
        schemas.PaymentRuleUpdate,
        schemas.PaymentRuleOut,
        schemas.PaymentRuleListParams,
        KindOperations("payment_rule"),
    ),
    Resource(
        "impression-trackers",
        "impression tracker",
        schemas.ImpressionTrackerCreate,
        schemas.ImpressionTrackerUpdate,
        schemas.ImpressionTrackerOut,
        schemas.TrackerListParams,
        TrackerOperations(TrackerType.IMPRESSION),
        hidden=frozenset({"landing_page_url"}),
    ),
    Resource(
        "click-trackers",
        "click tracker",
        schemas.ClickTrackerCreate,
        schemas.ClickTrackerUpdate,
        schemas.ClickTrackerOut,
        schemas.TrackerListParams,
        TrackerOperations(TrackerType.CLICK),
    ),
)
