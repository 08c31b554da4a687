"""Publishers: each is created with, and deleted with, exactly one base payment rule."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.domain.model import PaymentRule, Publisher
from adtrack.domain.validation import clean_id
from adtrack.services.catalogue.batch_view import BatchView
from adtrack.services.catalogue.batches import Refusals, allocate_ids, prime_references
from adtrack.services.catalogue.checks import check_payment_rule
from adtrack.services.catalogue.entity_specs import BASE_RULE
from adtrack.services.catalogue.kind_catalogue import KindCatalogue
from adtrack.services.ports import UnitOfWork

__all__ = ["BASE_RULE_NAME", "PublisherCatalogue"]

BASE_RULE_NAME = "Base rule"


class PublisherCatalogue(KindCatalogue[Publisher]):
    """A publisher's base rule is made by its create and soft-deleted by its delete; it is
    never deleted on its own."""

    def create(self, data: Mapping[str, object]) -> Publisher:
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
        values = self.spec.clean(publisher_data, creating=True)
        with _prefixed_errors("base_rule."):
            base_values = BASE_RULE.clean(base_data, creating=True)
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            publisher = uow.publishers.add(
                self.spec.entity(id=0, **values, created_at=now, last_modified=now)
            )
            base_values.setdefault("name", BASE_RULE_NAME)
            base = BASE_RULE.entity(
                id=0,
                publisher_id=publisher.id,
                is_base=True,
                created_at=now,
                last_modified=now,
                **base_values,
            )
            with _prefixed_errors("base_rule."):
                base = check_payment_rule(uow, base, frozenset(base_values), None)
            uow.payment_rules.add(base)
            uow.commit()
        return publisher

    def create_many_in(
        self,
        view: BatchView,
        items: Sequence[Mapping[str, object]],
        *,
        keep_ids: bool,
        now: datetime,
    ) -> list[Publisher]:
        """Publishers in bulk, each with its base rule as ``create`` makes it (``base_rule``;
        with ``keep_ids`` its ``id`` is kept when free, like the publisher's)."""
        refusals = Refusals()
        publisher_items: list[Mapping[str, object]] = []
        base_items: list[Mapping[str, object]] = []
        for index, data in enumerate(items):
            base: object = {}
            if isinstance(data, Mapping):
                base = data.get("base_rule") or {}
                data = {k: v for k, v in data.items() if k != "base_rule"}
            if not isinstance(base, Mapping):
                refusals.add(index, None, ValidationError("base_rule", "must be an object"))
                base = {}
            publisher_items.append(data)
            base_items.append(base)
        refusals.raise_if_any()
        publishers = super().create_many_in(view, publisher_items, keep_ids=keep_ids, now=now)
        cleaned: list[tuple[int, int | None, dict[str, object]]] = []
        for index, base in enumerate(base_items):
            wanted: int | None = None
            try:
                with _prefixed_errors("base_rule."):
                    if keep_ids:
                        if base.get("id") is not None:
                            wanted = clean_id(base["id"], "id")
                        base = {k: v for k, v in base.items() if k != "id"}
                    values = BASE_RULE.clean(base, creating=True)
            except DomainError as exc:
                refusals.add(index, publishers[index].id, exc)
                continue
            values.setdefault("name", BASE_RULE_NAME)
            cleaned.append((index, wanted, values))
        refusals.raise_if_any()
        prime_references(view, (values for _, _, values in cleaned))
        ids = allocate_ids(view.payment_rules, [wanted for _, wanted, _ in cleaned])
        rules: list[PaymentRule] = []
        for (index, _, values), id in zip(cleaned, ids, strict=True):
            publisher = publishers[index]
            rule = BASE_RULE.entity(
                id=id,
                publisher_id=publisher.id,
                is_base=True,
                created_at=now,
                last_modified=now,
                **values,
            )
            try:
                with _prefixed_errors("base_rule."):
                    rule = check_payment_rule(view, rule, frozenset(values), None)
            except DomainError as exc:
                refusals.add(index, publisher.id, exc)
                continue
            view.payment_rules_cache.stage(rule)
            rules.append(rule)
        refusals.raise_if_any()
        view.payment_rules.add_many(rules)
        return publishers

    def _also_delete(self, uow: UnitOfWork, id: int, at: datetime) -> None:
        base = uow.payment_rules.base_for_publisher(id)
        if base is not None:
            uow.payment_rules.soft_delete(base.id, at)


@contextmanager
def _prefixed_errors(prefix: str) -> Iterator[None]:
    """Re-raise domain errors with their field prefixed (``base_rule.revshare``)."""
    try:
        yield
    except DomainError as exc:
        exc.field = prefix + exc.field
        exc.args = (f"{exc.field}: {exc.message}",)
        raise
