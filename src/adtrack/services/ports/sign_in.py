"""The sign-in throttle's records as stored, one per (scope, subject).

Adapter: ``adapters/sql/users.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from adtrack.domain.sign_in_lockout import FailureRecord, Scope
from adtrack.services.ports.catalogue_store import Transaction

__all__ = ["ThrottleStore", "ThrottleUnitOfWork"]


class ThrottleStore(Protocol):
    def get(
        self, scope: Scope, subject: str, *, for_update: bool = False
    ) -> FailureRecord | None: ...

    def put(self, scope: Scope, subject: str, record: FailureRecord, expires_at: datetime) -> None:
        """Insert or replace the record; may raise ``Conflict`` when a concurrent insert won."""
        ...

    def delete(self, scope: Scope, subject: str) -> None: ...

    def delete_expired(self, now: datetime) -> None: ...


class ThrottleUnitOfWork(Transaction, Protocol):
    @property
    def sign_in_failures(self) -> ThrottleStore: ...
