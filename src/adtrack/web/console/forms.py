"""HTML form values <-> catalogue service data.

Form fields carry the API's field names (``revenue_value``, ``revshare``, ``cost_cpm``...), the
names ``DomainError.field`` uses, so an error from the service lands next to its input. Money is
typed in currency units, revshare as a fraction 0..1, dates as ``YYYY-MM-DD`` in the
deployment's time zone (midnight local; end dates are exclusive like everywhere in adtrack).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from adtrack.domain.errors import ValidationError
from adtrack.domain.model import PPM
from adtrack.domain.money import MoneyError, format_micros, to_micros
from adtrack.domain.parsing import (
    parse_date,
    parse_decimal,
    parse_id_list,
    parse_int,
    parse_optional_id,
)

__all__ = [
    "FormField",
    "FormValue",
    "FormValues",
    "parse_form",
    "entity_values",
    "error_field",
]

FormValue = str | list[str]
FormValues = dict[str, FormValue]  # what a form shows: text, or a list of texts for multi-selects

# One field's value as the services take it (ids, micros, ppm, datetimes, texts).
FieldData = str | int | datetime | list[int] | list[str] | None


@dataclass(frozen=True)
class FormField:
    """One input of a catalogue form.

    ``widget``: ``text``, ``textarea``, ``lines`` (a textarea, one item per line -> a list of
    texts), ``select``, ``money`` (currency units -> micros), ``ratio`` (0..1 -> ppm), ``int``,
    ``id``, ``ids`` (multi-select of ids), ``date``.
    ``attr`` is the service/entity attribute (default: ``name``).
    """

    name: str
    label: str
    widget: str = "text"
    attr: str | None = None
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    hint: str | None = None
    create_only: bool = False  # not shown when editing
    edit_only: bool = False  # not shown when creating

    @property
    def key(self) -> str:
        return self.attr or self.name


def error_field(field: str) -> str:
    """``emails[2]`` -> ``emails``: the input a service error belongs to."""
    return field.split("[", 1)[0]


# Whole numbers typed into a form (priority...): the domain checks their own range; this only
# keeps them within what the database's integer columns hold.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def parse_value(field: FormField, raw: FormValue | None, zone: ZoneInfo) -> FieldData:
    """One field's form text as service data; ``ValueError`` says what is wrong."""
    try:
        return _parse_value(field, raw, zone)
    except ValidationError as exc:  # from the total parsers: the message is the user's
        raise ValueError(exc.message) from None


def _parse_value(field: FormField, raw: FormValue | None, zone: ZoneInfo) -> FieldData:
    if field.widget == "ids":
        values = raw if isinstance(raw, list) else ([raw] if raw else [])
        return list(parse_id_list(values, field.name))
    text = (raw or "").strip() if isinstance(raw, str) else ""
    if field.widget in ("text", "textarea"):
        return text
    if field.widget == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if field.widget == "select":
        return text or None
    if field.widget == "money":
        try:
            return to_micros(parse_decimal(text, field.name))
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
    if field.widget == "ratio":
        value = parse_decimal(text or "0", field.name)
        if not 0 <= value <= 1:
            raise ValueError("must be between 0 and 1 (0.5 is 50 %)")
        return int(value * PPM)  # exact: at most 6 decimal places, checked by parse_decimal
    if field.widget == "int":
        return parse_int(text, field.name, low=_INT_MIN, high=_INT_MAX) if text else None
    if field.widget == "id":
        return parse_optional_id(text, field.name)
    if field.widget == "date":
        if not text:
            return None
        day = parse_date(text, field.name)
        return datetime(day.year, day.month, day.day, tzinfo=zone)
    raise AssertionError(f"unknown widget {field.widget}")


def form_values(form: FormData, fields: Sequence[FormField]) -> FormValues:
    """What the user typed, to show again (nothing typed is lost on an error)."""
    values: FormValues = {}
    for field in fields:
        if field.widget == "ids":
            values[field.name] = [v for v in form.getlist(field.name) if isinstance(v, str)]
        else:
            raw = form.get(field.name)
            values[field.name] = raw if isinstance(raw, str) else ""
    return values


def parse_form(
    values: FormValues,
    fields: Sequence[FormField],
    zone: ZoneInfo,
    *,
    skip: Callable[[FormField, FormValue | None], bool] | None = None,
) -> tuple[dict[str, object], dict[str, str]]:
    """Service data and per-field errors from the form values. ``skip`` leaves fields out."""
    data: dict[str, object] = {}
    errors: dict[str, str] = {}
    for field in fields:
        raw = values.get(field.name)
        if skip is not None and skip(field, raw):
            continue
        empty = not str(raw or "").strip()
        if empty and field.widget in ("money", "ratio"):
            continue  # left empty: not given (the service asks for it where it is needed)
        if empty and field.widget == "select" and "" not in {v for v, _ in field.options}:
            continue  # a choice without an empty option was not sent: keep the default
        try:
            value = parse_value(field, raw, zone)
        except ValueError as exc:
            errors[field.name] = str(exc)
            continue
        _set(data, field.key, value)
    return data, errors


def _set(data: dict[str, object], key: str, value: FieldData) -> None:
    """``base_rule.revshare_ppm`` goes into ``data["base_rule"]["revshare_ppm"]``."""
    if "." in key:
        head, rest = key.split(".", 1)
        existing = data.get(head)
        nested: dict[str, object] = existing if isinstance(existing, dict) else {}
        data[head] = nested
        _set(nested, rest, value)
    else:
        data[key] = value


def entity_values(entity: object, fields: Sequence[FormField], zone: ZoneInfo) -> FormValues:
    """The form values that show ``entity`` for editing."""
    values: FormValues = {}
    for field in fields:
        value = getattr(entity, field.key, None)
        values[field.name] = show_value(field, value, zone)
    return values


def show_value(field: FormField, value: object, zone: ZoneInfo) -> FormValue:
    if value is None:
        return [] if field.widget == "ids" else ""
    if field.widget == "money" and isinstance(value, int):
        return _trim(format_micros(value))
    if field.widget == "ratio" and isinstance(value, int):
        return _trim(str(Decimal(value) / PPM))
    if field.widget == "date" and isinstance(value, datetime):
        day: date = value.astimezone(zone).date()
        return day.isoformat()
    if field.widget == "ids" and isinstance(value, frozenset):
        return [str(v) for v in sorted(value)]
    if field.widget == "lines" and isinstance(value, (tuple, list)):
        return "\n".join(str(v) for v in value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):  # a yes/no choice: its options are "true" and "false"
        return "true" if value else "false"
    return str(value)


def _trim(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
