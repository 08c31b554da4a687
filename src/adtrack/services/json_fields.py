"""JSON field types shared by the API's and the CLI's models, and the exact conversion of
their values to and from the domain.

Money is exchanged in currency units with at most 6 decimals: JSON numbers (or decimal
strings) in, JSON numbers out (e.g. ``"cost_cpm": 2.5``). The domain keeps integer micros; the
conversion here is exact (``domain/money.py``), never through a binary float. ``revshare`` is
a fraction 0..1 (also 6 decimals), stored in parts per million. Dates accept an ISO date
(``2024-05-01`` = 00:00 UTC) or date-time (no offset = UTC) and are returned as ISO date-times
in UTC.

A ``LooseBody`` takes any JSON value in each of its fields, each annotated with the schema it
documents: for request bodies whose checks (and the field names their refusals carry) belong
to the service that parses them (the tag export, saved reports).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    JsonValue,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from adtrack.domain.errors import ValidationError
from adtrack.domain.money import MoneyError, from_micros, to_micros
from adtrack.domain.parsing import check_supported_instant
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import ID_MAX, MONEY_MAX_MICROS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ApiModel",
    "DateTimeIn",
    "Id",
    "LooseBody",
    "Money",
    "MoneyOut",
    "NotNull",
    "SearchText",
    "Share",
    "ShareOut",
    "from_domain",
    "or_null",
    "to_domain",
]

# API money field -> domain attribute. revshare uses the same 10^6 scale as micros (ppm).
MONEY_ATTRIBUTES = {
    "revenue_value": "revenue_value_micros",
    "cost_cpm": "cost_cpm_micros",
    "cost_cpc": "cost_cpc_micros",
    "revshare": "revshare_ppm",
    "post_click_revenue": "post_click_revenue_micros",
    "post_view_revenue": "post_view_revenue_micros",
}
API_NAMES = {attribute: name for name, attribute in MONEY_ATTRIBUTES.items()}
# Anything beyond this cannot be a valid amount or share; checked before exact arithmetic so an
# absurd exponent (1e999999) is refused instead of overflowing the decimal context.
_DECIMAL_GUARD_DIGITS = 15


# ---------------------------------------------------------------------------------------------
# Field types
# ---------------------------------------------------------------------------------------------


def _exact_units(value: Decimal) -> Decimal:
    # ``adjusted()`` reads the exponent without arithmetic, which could overflow.
    if value != 0 and value.adjusted() >= _DECIMAL_GUARD_DIGITS:
        raise ValueError(f"must be at most {from_micros(MONEY_MAX_MICROS)}")
    try:
        to_micros(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None
    return value


def _as_utc(value: datetime) -> datetime:
    # The range first: converting 9999-12-31T23:00-05:00 to UTC would overflow.
    try:
        check_supported_instant(value, "date")
    except ValidationError as exc:
        raise ValueError(exc.message) from None
    return as_utc(value)


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null")
    return value


# On an optional (PATCH) field that may be left out but not set to null.
NotNull = BeforeValidator(_not_null)


def _printable(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


_DECIMAL_IN_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d{1,6})?$"}],
}
Money = Annotated[
    Decimal,
    AfterValidator(_exact_units),
    WithJsonSchema(
        {**_DECIMAL_IN_SCHEMA, "description": "Currency units, at most 6 decimals (e.g. 2.5)."}
    ),
]
Share = Annotated[
    Decimal,
    AfterValidator(_exact_units),
    WithJsonSchema(
        {**_DECIMAL_IN_SCHEMA, "description": "A fraction from 0 to 1, at most 6 decimals."}
    ),
]
MoneyOut = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "Currency units, at most 6 decimals."}),
]
ShareOut = Annotated[
    Decimal, WithJsonSchema({"type": "number", "description": "A fraction from 0 to 1."})
]
Id = Annotated[int, Strict(), Field(ge=1, le=ID_MAX)]
DateTimeIn = Annotated[
    datetime,
    AfterValidator(_as_utc),
    WithJsonSchema(
        {
            "type": "string",
            "description": "ISO 8601 date (00:00 UTC) or date-time (UTC when no offset).",
            "examples": ["2024-05-01", "2024-05-01T12:00:00Z"],
        }
    ),
]
SearchText = Annotated[str, Field(max_length=255), AfterValidator(_printable)]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Request bodies checked by the service that parses them
# ---------------------------------------------------------------------------------------------


def or_null(schema: dict[str, JsonValue]) -> WithJsonSchema:
    """The schema of a ``LooseBody`` field that also takes null (as if it were left out)."""
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]})


class LooseBody(BaseModel):
    """A request body of fields that take any JSON value. Unknown fields are kept, not refused
    here, so the parsing service refuses them with its own message and order; the schema still
    says there are none."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: object) -> object:
        # Refused in the words of any JSON-object body, without the model's class name.
        if not isinstance(data, dict):
            raise ValueError("Input should be a valid dictionary")
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(
            super().__get_pydantic_json_schema__(core_schema, handler)
        )
        schema["additionalProperties"] = False
        return schema

    def given(self) -> dict[str, object]:
        """The fields the client sent (unknown ones included), as sent."""
        return self.model_dump(exclude_unset=True)


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------


def to_domain(values: Mapping[str, object]) -> dict[str, object]:
    """API values (as validated above) -> the service's input: money to exact micros,
    revshare to ppm; nested objects (a publisher's ``base_rule``) likewise."""
    converted: dict[str, object] = {}
    for name, value in values.items():
        if name in MONEY_ATTRIBUTES:
            if value is not None and not isinstance(value, (Decimal, int, str, float)):
                raise TypeError(f"{name}: not an amount: {value!r}")  # the models above check it
            converted[MONEY_ATTRIBUTES[name]] = None if value is None else to_micros(value)
        elif isinstance(value, Mapping):
            converted[name] = to_domain(value)
        else:
            converted[name] = value
    return converted


def from_domain(entity: DataclassInstance) -> dict[str, object]:
    """A domain entity (dataclass) -> its JSON-ready API representation."""
    out: dict[str, object] = {}
    for field in fields(entity):
        value = getattr(entity, field.name)
        name = API_NAMES.get(field.name, field.name)
        if field.name in API_NAMES:
            value = from_micros(value)
        elif isinstance(value, frozenset | set):
            value = sorted(value)
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, datetime):
            value = _as_utc(value)
        out[name] = value
    return out
