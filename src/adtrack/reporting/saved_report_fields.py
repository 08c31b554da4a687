"""The fields of a saved report: its JSON body (``SavedReportCreate`` and, for a change,
``SavedReportChange``, as the API documents them) and their checks (``check_fields``,
``check_schedule``).

The body models take any JSON value in each field and only document the shape: the checks
here are the one authority, and their refusals name the field as the client wrote it
(``recipients[1]``, ``definition.group_by``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, TypedDict

from pydantic import ConfigDict, Field, WithJsonSchema

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.reporting.request import parse_report_request, parse_timezone
from adtrack.services.json_fields import LooseBody, or_null

__all__ = [
    "ATTACHMENT_FORMATS",
    "SavedReportChange",
    "SavedReportCreate",
    "check_fields",
    "check_schedule",
]

SCHEDULES = ("none", "daily", "weekly")
ATTACHMENT_FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
MAX_RECIPIENTS = 10
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


class SavedReportChange(LooseBody):
    """The fields of a saved report to change; the others stay as they are. Checked by the
    service (``check_fields``), which names the field at fault."""

    name: Annotated[
        object, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255})
    ] = Field(default=None, description="A name (1 to 255 characters).", examples=["Yesterday"])
    definition: Annotated[object, WithJsonSchema({"type": "object"})] = Field(
        default=None,
        description="The report's parameters: the query parameters of GET /api/v1/reports. Use "
        "range (yesterday, last_7_days...) so a scheduled report covers a fresh period each time.",
        examples=[{"range": "yesterday", "interval": "day", "group_by": ["line_item"]}],
    )
    schedule: Annotated[object, or_null({"type": "string", "enum": list(SCHEDULES)})] = Field(
        default=None, description="none (default), daily or weekly.", examples=["daily"]
    )
    weekday: Annotated[object, or_null({"type": "integer", "minimum": 0, "maximum": 6})] = Field(
        default=None,
        description="For a weekly schedule: 0 (Monday) to 6 (Sunday).",
        examples=[0],
    )
    hour: Annotated[object, WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 23})] = (
        Field(
            default=None,
            description="The hour of delivery (0 to 23, 6 by default) in the timezone.",
            examples=[7],
        )
    )
    timezone: Annotated[object, or_null({"type": "string"})] = Field(
        default=None,
        description="An IANA time zone name; the server's reporting time zone by default.",
        examples=["Europe/Berlin"],
    )
    recipients: Annotated[
        object,
        or_null(
            {
                "type": "array",
                "items": {"type": "string", "format": "email"},
                "maxItems": MAX_RECIPIENTS,
            }
        ),
    ] = Field(
        default=None,
        description=f"Who gets it by email (at most {MAX_RECIPIENTS}); a schedule needs one.",
        examples=[["sales@example.com"]],
    )
    attachment_format: Annotated[
        object, or_null({"type": "string", "enum": list(ATTACHMENT_FORMATS)})
    ] = Field(default=None, description="csv (default) or xlsx.", examples=["xlsx"])


class SavedReportCreate(SavedReportChange):
    """A saved report: a name, the report's parameters and, optionally, a schedule."""

    model_config = ConfigDict(
        json_schema_extra={
            # Documented as required; a missing one is refused by check_fields, in its order.
            "required": ["name", "definition"],
            "examples": [
                {
                    "name": "Yesterday by line item",
                    "definition": {
                        "range": "yesterday",
                        "interval": "day",
                        "group_by": ["line_item", "imp_type"],
                    },
                    "schedule": "daily",
                    "hour": 7,
                    "timezone": "Europe/Berlin",
                    "recipients": ["sales@example.com"],
                    "attachment_format": "xlsx",
                }
            ],
        }
    )


_KNOWN_FIELDS = frozenset(SavedReportChange.model_fields)


class SavedReportValues(TypedDict, total=False):
    """A saved report's checked fields, as stored (an update holds only those it changes)."""

    name: str
    definition: dict[str, object]
    schedule: str
    weekday: int | None
    hour: int
    timezone: str
    recipients: list[str]
    attachment_format: str


def check_fields(
    data: Mapping[str, object], default_timezone: str, partial: bool
) -> SavedReportValues:
    """Check the fields of a create (``partial=False``) or update; returns the values to store
    (``definition`` as given, ``recipients`` cleaned)."""
    out: SavedReportValues = {}
    for key in data:
        if key not in _KNOWN_FIELDS:
            raise ValidationError(key, "is not a known field here")
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("name", "is required")
        if len(name) > 255:
            raise ValidationError("name", "must be at most 255 characters")
        out["name"] = name.strip()
    if "definition" in data or not partial:
        definition = data.get("definition")
        if not isinstance(definition, dict):
            raise ValidationError("definition", "must be an object of report parameters")
        try:
            parse_report_request(definition, default_timezone=default_timezone)
        except DomainError as exc:
            raise ValidationError(f"definition.{exc.field}", exc.message) from exc
        out["definition"] = definition
    if "schedule" in data or not partial:
        schedule = data.get("schedule", "none") or "none"
        if schedule not in SCHEDULES:
            raise ValidationError("schedule", "must be none, daily or weekly")
        out["schedule"] = schedule
    if "weekday" in data:
        weekday = data["weekday"]
        if weekday is not None and (
            isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6
        ):
            raise ValidationError("weekday", "must be 0 (Monday) to 6 (Sunday)")
        out["weekday"] = weekday
    if "hour" in data or not partial:
        hour = data.get("hour", 6)
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise ValidationError("hour", "must be an hour from 0 to 23")
        out["hour"] = hour
    if "timezone" in data or not partial:
        tz_name = data.get("timezone") or default_timezone
        out["timezone"] = parse_timezone(tz_name).key
    if "recipients" in data or not partial:
        recipients = data.get("recipients") or []
        addresses = (
            [r for r in recipients if isinstance(r, str)] if isinstance(recipients, list) else []
        )
        if not isinstance(recipients, list) or len(addresses) != len(recipients):
            raise ValidationError("recipients", "must be a list of email addresses")
        cleaned: list[str] = []
        for i, address in enumerate(addresses):
            address = address.strip()
            if not _EMAIL.match(address):
                raise ValidationError(f"recipients[{i}]", "is not an email address")
            if address.lower() not in (c.lower() for c in cleaned):
                cleaned.append(address)
        if len(cleaned) > MAX_RECIPIENTS:
            raise ValidationError("recipients", f"at most {MAX_RECIPIENTS} addresses")
        out["recipients"] = cleaned
    if "attachment_format" in data or not partial:
        fmt = data.get("attachment_format") or "csv"
        if not isinstance(fmt, str) or fmt not in ATTACHMENT_FORMATS:
            raise ValidationError("attachment_format", "must be csv or xlsx")
        out["attachment_format"] = fmt
    return out


def check_schedule(schedule: str, weekday: int | None, recipients: Sequence[str]) -> None:
    if schedule == "weekly" and weekday is None:
        raise ValidationError("weekday", "is required for a weekly schedule")
    if schedule != "none" and not recipients:
        raise ValidationError("recipients", "a scheduled report needs at least one address")
