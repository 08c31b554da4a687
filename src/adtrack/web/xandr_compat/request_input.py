"""Reading the platform's requests: the JSON body's object under its key, and the query
string (``id=1,2,3``, ``advertiser_id=``, ``start_element``/``num_elements``). Anything
malformed is a SYNTAX error naming the parameter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from starlette.requests import Request

from adtrack.domain.errors import ValidationError
from adtrack.domain.json_values import JsonObject
from adtrack.domain.parsing import parse_id, parse_id_list, parse_int
from adtrack.web.xandr_compat.envelopes import XandrError

__all__ = ["Paging", "ids_param", "json_object", "optional_id_param", "paging"]

# start_element beyond this is beyond any list (ids are 31-bit).
_MAX_START = 2**31 - 1


def json_object(body: bytes, key: str) -> JsonObject:
    """The object under ``key`` in a JSON body ``{"<key>": {...}}``. Numbers with a fraction
    are read as exact decimals (money never passes through a binary float)."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=Decimal) if body else None
    except (ValueError, RecursionError):
        raise XandrError("SYNTAX", "the request body is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise XandrError("SYNTAX", f'the request body must be {{"{key}": {{...}}}}')
    found: JsonObject = data[key]
    return found


def _syntax(exc: ValidationError) -> XandrError:
    return XandrError("SYNTAX", f"{exc.field}: {exc.message}")


def ids_param(request: Request, most: int, name: str = "id") -> tuple[int, ...]:
    """``?id=5`` or ``?id=1,2,3`` (also repeated), sorted without duplicates, at most ``most``
    of them (each is a look-up); () if absent."""
    values = request.query_params.getlist(name)
    try:
        ids = parse_id_list(values, name)
    except ValidationError as exc:
        raise _syntax(exc) from None
    if len(ids) > most:
        raise XandrError("SYNTAX", f"{name}: at most {most} ids in one call (got {len(ids)})")
    return ids


def optional_id_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    try:
        return parse_id(value, name)
    except ValidationError as exc:
        raise _syntax(exc) from None


@dataclass(frozen=True)
class Paging:
    start_element: int
    num_elements: int


def paging(request: Request, max_elements: int) -> Paging:
    """``start_element`` (default 0) and ``num_elements`` (default and at most
    ``max_elements``: more is served as the maximum, as the platform does)."""
    query = request.query_params
    try:
        start = parse_int(
            query.get("start_element") or "0", "start_element", low=0, high=_MAX_START
        )
        wanted = parse_int(
            query.get("num_elements") or str(max_elements), "num_elements", low=1, high=_MAX_START
        )
    except ValidationError as exc:
        raise _syntax(exc) from None
    return Paging(start, min(wanted, max_elements))
