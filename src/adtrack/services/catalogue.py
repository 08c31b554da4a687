"""The catalogue use cases: advertisers, line items, publishers, placements, payment rules and
impression/click trackers. The API, the CLI and the console all go through this service.

Input (``data`` for create, ``changes`` for a partial update) uses the entity attribute names
of ``domain/model.py`` (money already in micros, revshare in ppm); values may be enum members
or their string values, dates aware datetimes (or ISO 8601 text with an offset). Every refusal
is a ``DomainError`` whose ``field`` is the name the API user typed (``revenue_value``, not
``revenue_value_micros``; see ``catalogue_rules.API_FIELD``).

Each write runs in one transaction that first bumps the catalogue version (collectors poll it),
then loads what the rules need, checks them on the merged result and stores.

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

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

from adtrack.domain import catalogue_rules as rules
from adtrack.domain.errors import DomainError, NotFound, ValidationError
from adtrack.domain.landing_domains import clean_landing_domains
from adtrack.domain.model import (
    Advertiser,
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
from adtrack.domain.utc import as_utc, utc_now
from adtrack.domain.validation import (
    ID_MAX,
    clean_code,
    clean_datetime,
    clean_description,
    clean_enum,
    clean_id,
    clean_id_set,
    clean_landing_page_url,
    clean_money_micros,
    clean_name,
    clean_optional_enum,
    clean_optional_id,
    clean_ppm,
    clean_priority,
)
from adtrack.services.unit_of_work import ListQuery, Page, Repository, UnitOfWork

__all__ = ["MAX_PAGE_SIZE", "BASE_RULE_NAME", "CatalogueService", "Page"]

E = TypeVar("E")

MAX_PAGE_SIZE = 1000
BASE_RULE_NAME = "Base rule"

Cleaner = Callable[[object], Any]


def _clean_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


_COMMON: dict[str, Cleaner] = {
    "name": clean_name,
    "code": clean_code,
    "state": partial(clean_enum, State, field="state"),
}


def _ref(field: str) -> Cleaner:
    return partial(clean_optional_id, field=field)


@dataclass(frozen=True)
class _Kind(Generic[E]):
    """What the service needs to know about one kind of catalogue object."""

    label: str  # in messages: "line item"
    entity: Callable[..., E]
    repository: Callable[[UnitOfWork], Repository[E]]
    fields: Mapping[str, Cleaner]  # writable attribute -> cleaner
    required: tuple[str, ...]  # attributes a create must give
    list_filters: Mapping[str, Cleaner]  # list filter -> cleaner
    # Placeholders a create starts from for attributes the check fills in.
    placeholders: Mapping[str, Any] = dataclass_field(default_factory=dict)

    def clean(self, data: object, *, creating: bool) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise ValidationError("body", "must be an object")
        values: dict[str, Any] = {}
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


_READ_ONLY = frozenset({"id", "created_at", "last_modified", "deleted_at"})

ADVERTISER = _Kind(
    label="advertiser",
    entity=Advertiser,
    repository=lambda uow: uow.advertisers,
    fields={
        **_COMMON,
        "landing_domains": clean_landing_domains,
        "redirect_policy": partial(clean_optional_enum, RedirectPolicy, field="redirect_policy"),
    },
    required=("name",),
    list_filters={},
)

LINE_ITEM = _Kind(
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
        "advertiser_id": partial(clean_id, field="advertiser_id"),
        "revenue_type": lambda v: clean_enum(RevenueType, v, "revenue_type").value,
    },
)

PUBLISHER = _Kind(
    label="publisher",
    entity=Publisher,
    repository=lambda uow: uow.publishers,
    fields=_COMMON,
    required=("name",),
    list_filters={},
)

PLACEMENT = _Kind(
    label="placement",
    entity=Placement,
    repository=lambda uow: uow.placements,
    fields={**_COMMON, "publisher_id": _ref("publisher_id")},
    required=("name", "publisher_id"),
    list_filters={"publisher_id": partial(clean_id, field="publisher_id")},
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

PAYMENT_RULE = _Kind(
    label="payment rule",
    entity=PaymentRule,
    repository=lambda uow: uow.payment_rules,
    fields=_PAYMENT_RULE_FIELDS,
    required=("name", "publisher_id"),
    list_filters={
        "publisher_id": partial(clean_id, field="publisher_id"),
        "pricing_type": lambda v: clean_enum(PricingType, v, "pricing_type").value,
        "is_base": partial(_clean_bool, field="is_base"),
    },
)

# The fields a publisher's base rule may be created with (``create_publisher``'s "base_rule").
_BASE_RULE_FIELDS: dict[str, Cleaner] = {
    key: cleaner
    for key, cleaner in _PAYMENT_RULE_FIELDS.items()
    if key not in ("publisher_id", "is_base", "state")
}
BASE_RULE = _Kind(
    label="base rule",
    entity=PaymentRule,
    repository=lambda uow: uow.payment_rules,
    fields=_BASE_RULE_FIELDS,
    required=(),
    list_filters={},
)

TRACKER = _Kind(
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
    },
    required=("name", "tracker_type", "line_item_id", "publisher_id"),
    list_filters={
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


def _tracker_label(tracker_type: TrackerType | None) -> str:
    return "tracker" if tracker_type is None else f"{tracker_type.value} tracker"


# A check receives the open unit of work, the entity about to be stored, the attributes the
# request set, and the stored version (None on create); it returns the entity to store.
Check = Callable[[UnitOfWork, E, frozenset[str], E | None], E]


class CatalogueService:
    """Create, read, update, list and (soft-)delete catalogue objects, enforcing every rule.

    ``uow_factory`` returns a fresh unit of work per call (``lambda: SqlUnitOfWork(engine)``);
    ``clock`` gives the current time (aware; naive values are taken as UTC).
    """

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    # =========================================================================================
    # Advertisers
    # =========================================================================================

    def create_advertiser(self, data: Mapping[str, Any]) -> Advertiser:
        return self._create(ADVERTISER, data, _no_check)

    def get_advertiser(self, id: int) -> Advertiser:
        return self._get(ADVERTISER, id)

    def update_advertiser(self, id: int, changes: Mapping[str, Any]) -> Advertiser:
        return self._update(ADVERTISER, id, changes, _no_check)

    def delete_advertiser(self, id: int) -> None:
        def blockers(uow: UnitOfWork, advertiser: Advertiser) -> None:
            trackers, total = uow.trackers.live_using("advertiser_id", id, rules.MAX_BLOCKERS)
            line_items, li_total = uow.line_items.live_for_advertiser(id, rules.MAX_BLOCKERS)
            filtering, f_total = uow.payment_rules.live_filtering_on(
                "advertiser", id, rules.MAX_BLOCKERS
            )
            rules.check_not_in_use(
                "advertiser",
                id,
                trackers,
                total,
                [("line_item", line_items, li_total), ("payment_rule", filtering, f_total)],
            )

        self._delete(ADVERTISER, id, blockers)

    def list_advertisers(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> Page[Advertiser]:
        return self._list(ADVERTISER, q, state, offset, limit, filters)

    # =========================================================================================
    # Line items
    # =========================================================================================

    def create_line_item(self, data: Mapping[str, Any]) -> LineItem:
        return self._create(LINE_ITEM, data, self._check_line_item)

    def get_line_item(self, id: int) -> LineItem:
        return self._get(LINE_ITEM, id)

    def update_line_item(self, id: int, changes: Mapping[str, Any]) -> LineItem:
        return self._update(LINE_ITEM, id, changes, self._check_line_item)

    def delete_line_item(self, id: int) -> None:
        def blockers(uow: UnitOfWork, line_item: LineItem) -> None:
            trackers, total = uow.trackers.live_using("line_item_id", id, rules.MAX_BLOCKERS)
            filtering, f_total = uow.payment_rules.live_filtering_on(
                "line_item", id, rules.MAX_BLOCKERS
            )
            rules.check_not_in_use(
                "line item", id, trackers, total, [("payment_rule", filtering, f_total)]
            )

        self._delete(LINE_ITEM, id, blockers)

    def list_line_items(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> Page[LineItem]:
        return self._list(LINE_ITEM, q, state, offset, limit, filters)

    @staticmethod
    def _check_line_item(
        uow: UnitOfWork, item: LineItem, given: frozenset[str], before: LineItem | None
    ) -> LineItem:
        rules.check_reference(
            "advertiser_id",
            "advertiser",
            item.advertiser_id,
            uow.advertisers.get(item.advertiser_id),
        )
        item = rules.check_line_item(item, given, before)
        if before is not None and before.advertiser_id != item.advertiser_id:
            trackers, total = uow.trackers.live_using("line_item_id", item.id, rules.MAX_BLOCKERS)
            rules.check_line_item_move(before, item, trackers, total)
        return item

    # =========================================================================================
    # Publishers (each with exactly one base payment rule)
    # =========================================================================================

    def create_publisher(self, data: Mapping[str, Any]) -> Publisher:
        """Create a publisher and its base payment rule (revshare 0 unless ``data["base_rule"]``
        gives ``name``, ``code``, ``description``, ``pricing_type``, ``revshare_ppm``,
        ``cost_cpm_micros`` or ``cost_cpc_micros``). Errors about the base rule name
        ``base_rule.<field>``."""
        if not isinstance(data, Mapping):
            raise ValidationError("body", "must be an object")
        publisher_data = {k: v for k, v in data.items() if k != "base_rule"}
        base_data = data.get("base_rule") or {}
        if not isinstance(base_data, Mapping):
            raise ValidationError("base_rule", "must be an object")
        values = PUBLISHER.clean(publisher_data, creating=True)
        with _prefixed_errors("base_rule."):
            base_values = BASE_RULE.clean(base_data, creating=True)
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            publisher = uow.publishers.add(
                Publisher(id=0, **values, created_at=now, last_modified=now)
            )
            base_values.setdefault("name", BASE_RULE_NAME)
            base = PaymentRule(
                id=0,
                publisher_id=publisher.id,
                is_base=True,
                created_at=now,
                last_modified=now,
                **base_values,
            )
            with _prefixed_errors("base_rule."):
                base = self._check_payment_rule(uow, base, frozenset(base_values), None)
            uow.payment_rules.add(base)
            uow.commit()
        return publisher

    def get_publisher(self, id: int) -> Publisher:
        return self._get(PUBLISHER, id)

    def update_publisher(self, id: int, changes: Mapping[str, Any]) -> Publisher:
        return self._update(PUBLISHER, id, changes, _no_check)

    def delete_publisher(self, id: int) -> None:
        """Soft-delete a publisher and its base rule; refused while trackers, placements or
        conditional payment rules of the publisher are live."""

        def blockers(uow: UnitOfWork, publisher: Publisher) -> None:
            trackers, total = uow.trackers.live_using("publisher_id", id, rules.MAX_BLOCKERS)
            placements, p_total = uow.placements.live_for_publisher(id, rules.MAX_BLOCKERS)
            conditional, r_total = uow.payment_rules.live_conditional_for_publisher(
                id, rules.MAX_BLOCKERS
            )
            rules.check_not_in_use(
                "publisher",
                id,
                trackers,
                total,
                [("placement", placements, p_total), ("payment_rule", conditional, r_total)],
            )

        def also_delete(uow: UnitOfWork, at: datetime) -> None:
            base = uow.payment_rules.base_for_publisher(id)
            if base is not None:
                uow.payment_rules.soft_delete(base.id, at)

        self._delete(PUBLISHER, id, blockers, also_delete)

    def list_publishers(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> Page[Publisher]:
        return self._list(PUBLISHER, q, state, offset, limit, filters)

    # =========================================================================================
    # Placements
    # =========================================================================================

    def create_placement(self, data: Mapping[str, Any]) -> Placement:
        return self._create(PLACEMENT, data, self._check_placement)

    def get_placement(self, id: int) -> Placement:
        return self._get(PLACEMENT, id)

    def update_placement(self, id: int, changes: Mapping[str, Any]) -> Placement:
        return self._update(PLACEMENT, id, changes, self._check_placement)

    def delete_placement(self, id: int) -> None:
        def blockers(uow: UnitOfWork, placement: Placement) -> None:
            trackers, total = uow.trackers.live_using("placement_id", id, rules.MAX_BLOCKERS)
            rules.check_not_in_use("placement", id, trackers, total)

        self._delete(PLACEMENT, id, blockers)

    def list_placements(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> Page[Placement]:
        return self._list(PLACEMENT, q, state, offset, limit, filters)

    @staticmethod
    def _check_placement(
        uow: UnitOfWork, placement: Placement, given: frozenset[str], before: Placement | None
    ) -> Placement:
        rules.check_reference(
            "publisher_id",
            "publisher",
            placement.publisher_id,
            uow.publishers.get(placement.publisher_id),
        )
        if before is not None and before.publisher_id != placement.publisher_id:
            trackers, total = uow.trackers.live_using(
                "placement_id", placement.id, rules.MAX_BLOCKERS
            )
            rules.check_placement_move(before, placement, trackers, total)
        return placement

    # =========================================================================================
    # Payment rules
    # =========================================================================================

    def create_payment_rule(self, data: Mapping[str, Any]) -> PaymentRule:
        """Create a conditional payment rule (the base rule comes with its publisher)."""
        return self._create(PAYMENT_RULE, data, self._check_payment_rule)

    def get_payment_rule(self, id: int) -> PaymentRule:
        return self._get(PAYMENT_RULE, id)

    def update_payment_rule(self, id: int, changes: Mapping[str, Any]) -> PaymentRule:
        return self._update(PAYMENT_RULE, id, changes, self._check_payment_rule)

    def delete_payment_rule(self, id: int) -> None:
        def blockers(uow: UnitOfWork, rule: PaymentRule) -> None:
            rules.check_payment_rule_deletable(rule)
            trackers, total = uow.trackers.live_using("payment_rule_id", id, rules.MAX_BLOCKERS)
            rules.check_not_in_use("payment rule", id, trackers, total)

        self._delete(PAYMENT_RULE, id, blockers)

    def list_payment_rules(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> Page[PaymentRule]:
        return self._list(PAYMENT_RULE, q, state, offset, limit, filters)

    @staticmethod
    def _check_payment_rule(
        uow: UnitOfWork, rule: PaymentRule, given: frozenset[str], before: PaymentRule | None
    ) -> PaymentRule:
        rules.check_reference(
            "publisher_id", "publisher", rule.publisher_id, uow.publishers.get(rule.publisher_id)
        )
        if before is None:
            if "is_base" in given:
                rules.check_new_conditional_rule(rule)
        else:
            trackers: list[Tracker] = []
            total = 0
            if before.publisher_id != rule.publisher_id:
                trackers, total = uow.trackers.live_using(
                    "payment_rule_id", rule.id, rules.MAX_BLOCKERS
                )
            rules.check_payment_rule_change(before, rule, trackers, total)
        rule = rules.check_payment_rule(rule, given, before)
        rules.check_references(
            "advertiser_ids",
            "advertiser",
            rule.advertiser_ids,
            (i for i in rule.advertiser_ids if uow.advertisers.get(i) is not None),
        )
        rules.check_references(
            "line_item_ids",
            "line item",
            rule.line_item_ids,
            (i for i in rule.line_item_ids if uow.line_items.get(i) is not None),
        )
        return rule

    # =========================================================================================
    # Trackers (impression and click, one id space)
    # =========================================================================================

    def create_tracker(self, data: Mapping[str, Any]) -> Tracker:
        """``data["tracker_type"]`` is ``"impression"`` or ``"click"``; ``advertiser_id`` may be
        omitted (the line item's advertiser is used)."""
        return self._create(TRACKER, data, self._check_tracker)

    def get_tracker(self, id: int, tracker_type: TrackerType | str | None = None) -> Tracker:
        """The live tracker ``id``; ``NotFound`` if it is missing, deleted or (when
        ``tracker_type`` is given) of the other type."""
        wanted = self._tracker_type(tracker_type)
        with self._uow_factory() as uow:
            return self._load_tracker(uow, id, wanted)

    def update_tracker(
        self,
        id: int,
        changes: Mapping[str, Any],
        tracker_type: TrackerType | str | None = None,
    ) -> Tracker:
        wanted = self._tracker_type(tracker_type)
        return self._update(
            TRACKER,
            id,
            changes,
            self._check_tracker,
            load=lambda uow: self._load_tracker(uow, id, wanted),
        )

    def delete_tracker(self, id: int, tracker_type: TrackerType | str | None = None) -> None:
        """Soft-delete a tracker (always allowed)."""
        wanted = self._tracker_type(tracker_type)
        self._delete(
            TRACKER,
            id,
            lambda uow, tracker: None,
            load=lambda uow: self._load_tracker(uow, id, wanted),
        )

    def list_trackers(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> Page[Tracker]:
        """Filters: ``tracker_type``, ``advertiser_id``, ``line_item_id``, ``publisher_id``,
        ``placement_id``, ``payment_rule_id``."""
        return self._list(TRACKER, q, state, offset, limit, filters)

    @staticmethod
    def _tracker_type(value: TrackerType | str | None) -> TrackerType | None:
        return None if value is None else clean_enum(TrackerType, value, "tracker_type")

    @staticmethod
    def _load_tracker(uow: UnitOfWork, id: int, wanted: TrackerType | None) -> Tracker:
        tracker = uow.trackers.get(id) if _is_id(id) else None
        if tracker is None or (wanted is not None and tracker.tracker_type is not wanted):
            raise NotFound("id", f"{_tracker_label(wanted)} {id} does not exist")
        return tracker

    @staticmethod
    def _check_tracker(
        uow: UnitOfWork, tracker: Tracker, given: frozenset[str], before: Tracker | None
    ) -> Tracker:
        if before is not None:
            rules.check_tracker_type_unchanged(before, tracker)
        line_item = uow.line_items.get(tracker.line_item_id)
        rules.check_reference("line_item_id", "line item", tracker.line_item_id, line_item)
        assert line_item is not None
        # The advertiser follows the line item unless the request names one.
        line_item_set = before is None or "line_item_id" in given
        if tracker.advertiser_id is None or ("advertiser_id" not in given and line_item_set):
            tracker = replace(tracker, advertiser_id=line_item.advertiser_id)
        rules.check_reference(
            "advertiser_id",
            "advertiser",
            tracker.advertiser_id,
            uow.advertisers.get(tracker.advertiser_id),
        )
        rules.check_reference(
            "publisher_id",
            "publisher",
            tracker.publisher_id,
            uow.publishers.get(tracker.publisher_id),
        )
        placement = None
        if tracker.placement_id is not None:
            placement = uow.placements.get(tracker.placement_id)
            rules.check_reference("placement_id", "placement", tracker.placement_id, placement)
        payment_rule = None
        if tracker.payment_rule_id is not None:
            payment_rule = uow.payment_rules.get(tracker.payment_rule_id)
            rules.check_reference(
                "payment_rule_id", "payment rule", tracker.payment_rule_id, payment_rule
            )
        rules.check_tracker(tracker, line_item, placement, payment_rule)
        if tracker.code is not None:
            rules.check_code_unique(
                tracker, uow.trackers.live_with_code(tracker.tracker_type, tracker.code)
            )
        return tracker

    # =========================================================================================
    # The catalogue version
    # =========================================================================================

    def catalogue_version(self) -> int:
        """The number collectors poll: it grows with every catalogue write."""
        with self._uow_factory() as uow:
            return uow.catalogue_version.current()

    # =========================================================================================
    # Generic create / get / update / delete / list
    # =========================================================================================

    def _now(self) -> datetime:
        return as_utc(self._clock())

    def _create(self, kind: _Kind[E], data: Mapping[str, Any], check: Check[E]) -> E:
        values = kind.clean(data, creating=True)
        given = frozenset(values)
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            start = {**kind.placeholders, **values}
            entity = kind.entity(id=0, created_at=now, last_modified=now, **start)
            entity = check(uow, entity, given, None)
            entity = kind.repository(uow).add(entity)
            uow.commit()
        return entity

    def _get(self, kind: _Kind[E], id: int) -> E:
        with self._uow_factory() as uow:
            return self._load(kind, uow, id)

    @staticmethod
    def _load(kind: _Kind[E], uow: UnitOfWork, id: int) -> E:
        entity = kind.repository(uow).get(id) if _is_id(id) else None
        if entity is None:
            raise NotFound("id", f"{kind.label} {id} does not exist")
        return entity

    def _update(
        self,
        kind: _Kind[E],
        id: int,
        changes: Mapping[str, Any],
        check: Check[E],
        load: Callable[[UnitOfWork], E] | None = None,
    ) -> E:
        values = kind.clean(changes, creating=False)
        given = frozenset(values)
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            before = load(uow) if load is not None else self._load(kind, uow, id)
            after = check(uow, replace(before, **values), given, before)  # type: ignore[type-var]
            if after == before:
                return before  # nothing changed: roll back, the version included
            after = replace(after, last_modified=now)  # type: ignore[type-var]
            kind.repository(uow).update(after)
            uow.commit()
        return after

    def _delete(
        self,
        kind: _Kind[E],
        id: int,
        check: Callable[[UnitOfWork, E], None],
        also: Callable[[UnitOfWork, datetime], None] | None = None,
        load: Callable[[UnitOfWork], E] | None = None,
    ) -> None:
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            entity = load(uow) if load is not None else self._load(kind, uow, id)
            check(uow, entity)
            kind.repository(uow).soft_delete(id, now)
            if also is not None:
                also(uow, now)
            uow.commit()

    def _list(
        self,
        kind: _Kind[E],
        q: str | None,
        state: str | None,
        offset: int,
        limit: int,
        filters: Mapping[str, Any],
    ) -> Page[E]:
        if q is not None and not isinstance(q, str):
            raise ValidationError("q", "must be a text")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError("offset", "must be a non-negative integer")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        clean_filters: dict[str, int | str] = {}
        for name, value in filters.items():
            if value is None:
                continue
            cleaner = kind.list_filters.get(name)
            if cleaner is None:
                raise ValidationError(name, f"is not a filter of {kind.label}s")
            clean_filters[name] = cleaner(value)
        query = ListQuery(
            q=(q.strip() or None) if q else None,
            state=None if state is None else clean_enum(State, state, "state"),
            filters=clean_filters,
            offset=offset,
            limit=limit,
        )
        with self._uow_factory() as uow:
            return kind.repository(uow).list(query)


def _no_check(uow: UnitOfWork, entity: E, given: frozenset[str], before: E | None) -> E:
    return entity


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX


@contextmanager
def _prefixed_errors(prefix: str) -> Iterator[None]:
    """Re-raise domain errors with their field prefixed (``base_rule.revshare``)."""
    try:
        yield
    except DomainError as exc:
        exc.field = prefix + exc.field
        exc.args = (f"{exc.field}: {exc.message}",)
        raise
