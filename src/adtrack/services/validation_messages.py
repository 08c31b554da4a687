"""Pydantic's validation errors as adtrack's error details: ``{"field": ..., "message": ...}``
with the field named as the client wrote it (``advertiser_ids[0]``) and the message in plain
words. Shared by the API, the console and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import ErrorDetails

__all__ = ["batch_item_errors", "validation_errors"]

_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})


def _field_name(loc: Sequence[str | int]) -> str:
    """``("body", "advertiser_ids", 0)`` -> ``"advertiser_ids[0]"``; ``("body",)`` -> ``"body"``."""
    parts = list(loc)
    if parts and parts[0] in _REQUEST_PARTS and len(parts) > 1:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def _message(error: ErrorDetails) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "is not a known field here"
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        return f"is not valid JSON ({reason})" if reason else "is not valid JSON"
    message = str(error.get("msg", "is invalid"))
    # Our own validators raise ValueError; pydantic prefixes those with "Value error, ".
    return message.removeprefix("Value error, ")


def validation_errors(errors: Sequence[ErrorDetails]) -> tuple[int, list[dict[str, str]]]:
    """Pydantic/FastAPI errors -> (status, detail list). Malformed JSON is a 400."""
    status = 422
    detail = []
    for error in errors:
        loc = error.get("loc", ("body",))
        if error.get("type") == "json_invalid":
            status = 400
            field = "body"
        else:
            field = _field_name(loc)
        detail.append({"field": field, "message": _message(error)})
    return status, detail


# Where a batch body lists its items: ``{"items": [...]}`` or ``{"ids": [...]}``.
_BATCH_LISTS = {"items": None, "ids": "id"}


def batch_item_errors(errors: Sequence[ErrorDetails]) -> list[dict[str, object]]:
    """The errors about one item of a batch body (``("body", "items", 3, "name")``) as the
    batch refusals list them: ``{"item": 3, "id": null, "field": "name", "message": ...}``."""
    items: list[dict[str, object]] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc[:1] == ["body"]:
            loc = loc[1:]
        if len(loc) < 2 or loc[0] not in _BATCH_LISTS or not isinstance(loc[1], int):
            continue
        rest = loc[2:]
        field = _field_name(rest) if rest else (_BATCH_LISTS[loc[0]] or "item")
        items.append({"item": loc[1], "id": None, "field": field, "message": _message(error)})
    return items
