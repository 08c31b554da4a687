"""Domain errors. Each names the field it is about so every entrypoint can report it."""

from __future__ import annotations


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
