"""Email exports as stored: the record, its status and the store the export service and its
delivery worker share.

Adapter: ``adapters/sql/export_store.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = ["ExportRecord", "ExportStatus", "ExportStore"]


class ExportStatus(StrEnum):
    QUEUED = "queued"  # waiting for its first or next attempt
    SENDING = "sending"  # a worker holds it
    SENT = "sent"
    FAILED = "failed"  # for good; ``error`` says why


@dataclass
class ExportRecord:
    id: str
    status: ExportStatus
    recipients: list[str]
    request: Mapping[str, object]
    attempts: int
    error: str | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "export_id": self.id,
            "status": self.status.value,
            "recipients": list(self.recipients),
            "attempts": self.attempts,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class ExportStore(Protocol):
    """Where email exports live (SQL: ``adapters/sql/export_store.py``)."""

    def add(self, record: ExportRecord) -> None: ...

    def get(self, export_id: str) -> ExportRecord | None: ...

    def queued(self, limit: int) -> list[ExportRecord]:
        """Exports with status ``queued``, oldest first."""
        ...

    def claim(self, export_id: str, at: datetime) -> bool:
        """``queued`` -> ``sending`` if it is still queued; False when another worker won."""
        ...

    def finish(
        self,
        export_id: str,
        status: ExportStatus,
        attempts: int,
        error: str | None,
        at: datetime,
    ) -> None:
        """Record the outcome of an attempt (``queued`` again to retry later)."""
        ...

    def requeue_stale(self, older_than: datetime, at: datetime) -> int:
        """Put ``sending`` exports untouched since ``older_than`` back to ``queued`` (a worker
        died mid-send); returns how many."""
        ...
