"""Publishers: each is created with, and deleted with, exactly one base payment rule."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.domain.model import Publisher
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
