"""What an import did or would do: an entry per object of the dump (created, updated,
unchanged or refused, with its id, changes and notes), the report of them all, and the error
that refuses an import with the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adtrack.domain.errors import ValidationError
from adtrack.services.xandr.objects import FieldNote, XandrKind

__all__ = ["Action", "ImportEntry", "ImportRefused", "ImportReport"]

Action = Literal["create", "update", "unchanged", "refused"]


@dataclass
class ImportEntry:
    """What one object of the dump becomes."""

    kind: XandrKind
    source: str  # the file
    position: str  # where in it: "imptrackers[3]"
    original_id: int | None
    name: str | None
    action: Action = "create"
    id: int | None = None  # adtrack's id (planned for a create)
    changes: tuple[str, ...] = ()  # the attributes an update changes
    notes: list[FieldNote] = field(default_factory=list)
    refused_field: str | None = None
    refusal: str | None = None

    @property
    def id_kept(self) -> bool | None:
        """Whether a created object has its original id (None: not a create)."""
        if self.action != "create" or self.id is None:
            return None
        return self.id == self.original_id

    def refuse(self, field: str, message: str) -> None:
        self.action = "refused"
        self.refused_field = field
        self.refusal = message

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind.value,
            "file": self.source,
            "object": self.position,
            "original_id": self.original_id,
            "name": self.name,
            "action": self.action,
            "id": self.id,
        }
        if self.action == "create":
            out["id_kept"] = self.id_kept
        if self.changes:
            out["changes"] = list(self.changes)
        if self.notes:
            out["notes"] = [{"field": n.field, "reason": n.reason} for n in self.notes]
        if self.action == "refused":
            out["field"] = self.refused_field
            out["message"] = self.refusal
        return out


@dataclass
class ImportReport:
    dry_run: bool
    applied: bool
    entries: list[ImportEntry]
    warnings: list[str]

    def refused(self) -> list[ImportEntry]:
        return [entry for entry in self.entries if entry.action == "refused"]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind, how many objects each action takes (every action listed)."""
        out: dict[str, dict[str, int]] = {}
        for entry in self.entries:
            kind = out.setdefault(
                entry.kind.value, {"create": 0, "update": 0, "unchanged": 0, "refused": 0}
            )
            kind[entry.action] += 1
        return out

    def new_ids(self) -> list[ImportEntry]:
        """The created objects that could not keep their original id."""
        return [entry for entry in self.entries if entry.id_kept is False]

    def to_json(self, *, max_entries: int | None = None) -> dict[str, object]:
        entries = self.entries if max_entries is None else self.entries[:max_entries]
        return {
            "dry_run": self.dry_run,
            "applied": self.applied,
            "counts": self.counts(),
            "refused": len(self.refused()),
            "new_ids": len(self.new_ids()),
            "warnings": self.warnings,
            "objects": [entry.to_json() for entry in entries],
        }


class ImportRefused(ValidationError):
    """An import with refused objects: nothing was written. ``report`` says what each object
    would have become, and why the refused ones were refused."""

    def __init__(self, report: ImportReport) -> None:
        refused = report.refused()
        first = refused[0]
        more = "" if len(refused) == 1 else f" ({len(refused) - 1} more objects refused)"
        super().__init__(
            f"{first.source}: {first.position}: {first.refused_field}",
            f"{first.refusal}{more}; nothing was imported",
        )
        self.report = report
