"""The catalogue use cases: advertisers, line items, publishers, placements, payment rules and
impression/click trackers. The API, the CLI and the console all go through ``CatalogueService``,
whose attributes are one ``KindCatalogue`` per kind (``catalogue.line_items.create(data)``).

- ``entity_specs.py``: per kind, the attributes a request may write and how each is cleaned;
- ``kind_catalogue.py``: create / get / update / delete / list of one kind, one transaction each;
- ``checks.py``: per kind, what a write or delete loads for the rules of
  ``domain/catalogue_rules.py``;
- ``publishers.py``, ``trackers.py``: the two kinds that do more (a publisher's base rule; the
  two tracker types);
- ``service.py``: the service that puts them together.

Input (``data`` for create, ``changes`` for a partial update) uses the entity attribute names
of ``domain/model.py`` (money already in micros, revshare in ppm); values may be enum members
or their string values, dates aware datetimes (or ISO 8601 text with an offset). Every refusal
is a ``DomainError`` whose ``field`` is the name the API user typed (``revenue_value``, not
``revenue_value_micros``; see ``catalogue_rules.API_FIELD``).

Decisions where the product pages are silent:
- a reference to an unknown or deleted object in a request body is a ``ValidationError``
  (422) naming the field; only the object addressed by id is ``NotFound`` (404);
- delete is a soft delete, refused with ``InUse`` (409, listing the blockers) while live
  trackers use the object, or an advertiser still has line items, a publisher placements or
  conditional payment rules, or a payment rule's filter lists the advertiser / line item;
- a publisher's base rule is deleted with its publisher and never on its own;
- on a tracker, ``advertiser_id`` may be omitted: it is the line item's advertiser (also on
  update when ``line_item_id`` changes and ``advertiser_id`` is not given);
- an empty update (or one that changes nothing) writes nothing.
"""

from adtrack.services.catalogue.kind_catalogue import MAX_PAGE_SIZE, KindCatalogue
from adtrack.services.catalogue.publishers import BASE_RULE_NAME, PublisherCatalogue
from adtrack.services.catalogue.service import CatalogueService
from adtrack.services.catalogue.trackers import TrackerCatalogue
from adtrack.services.ports import Page

__all__ = [
    "BASE_RULE_NAME",
    "MAX_PAGE_SIZE",
    "CatalogueService",
    "KindCatalogue",
    "Page",
    "PublisherCatalogue",
    "TrackerCatalogue",
]
