"""``CatalogueService``: the catalogue's use cases, one typed ``KindCatalogue`` per kind.

``catalogue.advertisers.create(data)``, ``catalogue.line_items.list(advertiser_id=3)``,
``catalogue.impression_trackers.get(7)``... The API, the CLI and the console all reach a kind
through these attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from adtrack.domain.model import (
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    TrackerType,
)
from adtrack.domain.utc import utc_now
from adtrack.services.catalogue import checks
from adtrack.services.catalogue.entity_specs import (
    ADVERTISER,
    CONVERSION_PIXEL,
    LINE_ITEM,
    PAYMENT_RULE,
    PLACEMENT,
    PUBLISHER,
)
from adtrack.services.catalogue.kind_catalogue import KindCatalogue
from adtrack.services.catalogue.publishers import PublisherCatalogue
from adtrack.services.catalogue.trackers import TrackerCatalogue
from adtrack.services.ports import UnitOfWork

__all__ = ["CatalogueService"]


class CatalogueService:
    """Create, read, update, list and (soft-)delete catalogue objects, enforcing every rule.

    ``uow_factory`` returns a fresh unit of work per call (``lambda: SqlUnitOfWork(engine)``);
    ``clock`` gives the current time (aware; naive values are taken as UTC).
    """

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._uow_factory = uow_factory
        self.advertisers: KindCatalogue[Advertiser] = KindCatalogue(
            ADVERTISER, uow_factory, clock, delete_check=checks.advertiser_delete_check
        )
        self.line_items: KindCatalogue[LineItem] = KindCatalogue(
            LINE_ITEM,
            uow_factory,
            clock,
            check=checks.check_line_item,
            delete_check=checks.line_item_delete_check,
        )
        self.publishers = PublisherCatalogue(
            PUBLISHER, uow_factory, clock, delete_check=checks.publisher_delete_check
        )
        self.placements: KindCatalogue[Placement] = KindCatalogue(
            PLACEMENT,
            uow_factory,
            clock,
            check=checks.check_placement,
            delete_check=checks.placement_delete_check,
        )
        # Conditional rules only: a publisher's base rule comes with its publisher.
        self.payment_rules: KindCatalogue[PaymentRule] = KindCatalogue(
            PAYMENT_RULE,
            uow_factory,
            clock,
            check=checks.check_payment_rule,
            delete_check=checks.payment_rule_delete_check,
        )
        self.trackers = TrackerCatalogue(uow_factory, clock)
        self.impression_trackers = self.trackers.of_type(TrackerType.IMPRESSION)
        self.click_trackers = self.trackers.of_type(TrackerType.CLICK)
        self.conversion_pixels: KindCatalogue[ConversionPixel] = KindCatalogue(
            CONVERSION_PIXEL, uow_factory, clock, check=checks.check_conversion_pixel
        )

    def catalogue_version(self) -> int:
        """The number collectors poll: it grows with every catalogue write."""
        with self._uow_factory() as uow:
            return uow.catalogue_version.current()
