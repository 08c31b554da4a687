"""Domain errors. Each names the field it is about so every entrypoint can report it."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base class: a request the domain refuses. ``field`` names the offending input."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ValidationError(DomainError):
    """A value that breaks a rule (empty name, bad URL, placement of another publisher...)."""


class NotFound(DomainError):
    """A referenced or requested object does not exist (or was deleted)."""

    status = 404


class Conflict(DomainError):
    """A uniqueness rule would be broken (duplicate code, second base rule...)."""

    status = 409


class InUse(Conflict):
    """Deleting an object that trackers (or other objects) still use."""

    def __init__(self, field: str, message: str, blockers: list[dict[str, object]]) -> None:
        super().__init__(field, message)
        self.blockers = blockers


class PermissionDenied(DomainError):
    """The caller's role does not allow the action."""

    status = 403


@dataclass(frozen=True)
class ItemRefusal:
    """Why one item of a batch was refused: its position, its id (when it has one), the field
    at fault and the message."""

    item: int
    id: int | None
    field: str
    message: str


class BatchRefused(ValidationError):
    """A batch (bulk write) of which some items break the rules: nothing of it was written.
    ``refusals`` lists each refused item (up to ``MAX_REFUSALS`` of them)."""

    MAX_REFUSALS = 100

    def __init__(self, refusals: list[ItemRefusal], total: int) -> None:
        first = refusals[0]
        where = f"item {first.item}" + ("" if first.id is None else f" (id {first.id})")
        more = "" if total == 1 else f" and {total - 1} more refused"
        super().__init__(
            "items",
            f"{where}: {first.field}: {first.message}{more}; nothing was written",
        )
        self.refusals = refusals
        self.total = total
