"""A tag export request: its JSON body (``ExportBody``, as the API documents it) and its
parsing into an ``ExportRequest`` (``ExportRequest.from_mapping``).

The body model takes any JSON value in each field and only documents the shape:
``from_mapping`` is the one place that checks a request, for the API, the console, the CLI and
a stored email export alike, and its refusals name the field as the client wrote it
(``click_tracker_ids[0]``, ``emails[2]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue

from adtrack.domain.errors import ValidationError
from adtrack.domain.macro_presets import Macro, Preset
from adtrack.domain.tags import (
    TagFormat,
    TagOptions,
    parse_format,
    parse_macros,
    parse_preset,
    parse_view_element,
)
from adtrack.domain.validation import ID_MAX
from adtrack.services.json_fields import LooseBody, or_null

__all__ = [
    "MAX_RECIPIENTS",
    "MAX_TRACKERS",
    "Delivery",
    "ExportBody",
    "ExportRequest",
    "parse_emails",
]

MAX_RECIPIENTS = 10  # as the original platform allows for its pixel exports
MAX_TRACKERS = 5000  # per export, both types together
MAX_EMAIL_LENGTH = 254
# ASCII addresses only: mail goes out without SMTPUTF8, which many relays do not offer.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


class Delivery(StrEnum):
    NOW = "now"
    EMAIL = "email"


# --- the body, as documented ---------------------------------------------------------------------


def _one_of(values: type[StrEnum]) -> dict[str, JsonValue]:
    return {"type": "string", "enum": [v.value for v in values]}


_TRACKER_IDS = or_null(
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": ID_MAX}}
)
_FLAG = or_null({"type": "boolean"})


class ExportBody(LooseBody):
    """What to export and how. Names (format, macros, preset, delivery) are case-insensitive;
    null is the same as leaving a field out."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "impression_tracker_ids": [531],
                    "click_tracker_ids": [21378],
                    "format": "pixel",
                    "macros": ["CACHEBUSTER", "ANCOST", "REDIRECT_URL"],
                    "preset": "generic",
                    "use_code": False,
                    "delivery": "now",
                    "emails": [],
                }
            ],
        }
    )

    impression_tracker_ids: Annotated[object, _TRACKER_IDS] = Field(
        default=None,
        description="Impression trackers to export. At least one tracker and at most "
        f"{MAX_TRACKERS} in both lists together; a repeated id counts once.",
        examples=[[531]],
    )
    click_tracker_ids: Annotated[object, _TRACKER_IDS] = Field(
        default=None,
        description="Click trackers to export (see impression_tracker_ids).",
        examples=[[21378]],
    )
    format: Annotated[object, or_null(_one_of(TagFormat))] = Field(
        default=None,
        description="The tag format where it fits the tracker type; by default pixel for "
        "impression trackers and url for click trackers.",
        examples=["pixel"],
    )
    macros: Annotated[object, or_null({"type": "array", "items": _one_of(Macro)})] = Field(
        default=None,
        description="The placeholders the tags carry (none by default).",
        examples=[["CACHEBUSTER", "REDIRECT_URL"]],
    )
    preset: Annotated[object, or_null(_one_of(Preset))] = Field(
        default=None,
        description="The ad server whose macro spelling the tags use (generic by default).",
        examples=["gam"],
    )
    use_code: Annotated[object, _FLAG] = Field(
        default=None,
        description="Identify trackers by their code instead of their id (false by default).",
        examples=[False],
    )
    secure: Annotated[object, _FLAG] = Field(
        default=None, description="Tags for https-only pages (false by default).", examples=[False]
    )
    view_element: Annotated[
        object, or_null({"type": "string", "pattern": "^[A-Za-z0-9_:.-]{1,100}$"})
    ] = Field(
        default=None,
        description="JavaScript tags: the id of the element whose viewability the tag measures; "
        "by default the tag's parent element (the creative's container).",
        examples=["creative-300x250"],
    )
    delivery: Annotated[object, or_null(_one_of(Delivery))] = Field(
        default=None,
        description="now (default): answer with the tags; email: send them to the emails "
        "(admin or trafficker).",
        examples=["now"],
    )
    emails: Annotated[
        object,
        or_null(
            {
                "type": "array",
                "items": {"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH},
                "maxItems": MAX_RECIPIENTS,
            }
        ),
    ] = Field(
        default=None,
        description=f"Recipients for delivery email: at most {MAX_RECIPIENTS} ASCII addresses.",
        examples=[["ops@agency.example"]],
    )


_KNOWN_FIELDS = frozenset(ExportBody.model_fields)


# --- parsing -------------------------------------------------------------------------------------


def _ids(data: Mapping[str, object], name: str) -> tuple[int, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValidationError(name, "must be a list of tracker ids")
    seen: dict[int, None] = {}
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= ID_MAX:
            raise ValidationError(
                f"{name}[{i}]", f"must be a tracker id (1 to {ID_MAX}), got {item!r}"
            )
        seen.setdefault(item, None)
    return tuple(seen)


def _flag(data: Mapping[str, object], name: str) -> bool:
    value = data.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def _text(data: Mapping[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    return value


def parse_emails(values: object) -> tuple[str, ...]:
    """Recipient addresses: a list of at most ``MAX_RECIPIENTS`` valid, distinct addresses."""
    if values is None:
        return ()
    if not isinstance(values, list | tuple):
        raise ValidationError("emails", "must be a list of email addresses")
    out: dict[str, str] = {}
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ValidationError(f"emails[{i}]", "must be an email address (a string)")
        address = value.strip()
        if len(address) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(address):
            raise ValidationError(
                f"emails[{i}]", f"{value!r} is not a valid email address (name@example.com)"
            )
        out.setdefault(address.lower(), address)
    if len(out) > MAX_RECIPIENTS:
        raise ValidationError("emails", f"at most {MAX_RECIPIENTS} recipients, got {len(out)}")
    return tuple(out.values())


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how. Build it with ``from_mapping`` (the API's JSON body)."""

    impression_tracker_ids: tuple[int, ...] = ()
    click_tracker_ids: tuple[int, ...] = ()
    format: TagFormat | None = None
    macros: frozenset[Macro] = frozenset()
    preset: Preset = Preset.GENERIC
    use_code: bool = False
    secure: bool = False
    view_element: str | None = None
    delivery: Delivery = Delivery.NOW
    emails: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> ExportRequest:
        """Parse and check the request body; ``ValidationError`` names the field at fault."""
        if not isinstance(data, Mapping):
            raise ValidationError("body", "must be a JSON object")
        unknown = sorted(set(data) - _KNOWN_FIELDS)
        if unknown:
            raise ValidationError(unknown[0], "is not a known field here")
        macros_value = data.get("macros") or []
        if not isinstance(macros_value, list | tuple):
            raise ValidationError("macros", "must be a list of macro names")
        format_value, preset_value, delivery_value, element_value = (
            _text(data, name) for name in ("format", "preset", "delivery", "view_element")
        )
        try:
            delivery = Delivery((delivery_value or Delivery.NOW.value).strip().lower())
        except ValueError:
            raise ValidationError("delivery", "must be 'now' or 'email'") from None
        request = cls(
            impression_tracker_ids=_ids(data, "impression_tracker_ids"),
            click_tracker_ids=_ids(data, "click_tracker_ids"),
            format=parse_format(format_value),
            macros=parse_macros(macros_value),
            preset=parse_preset(preset_value),
            use_code=_flag(data, "use_code"),
            secure=_flag(data, "secure"),
            view_element=parse_view_element(element_value),
            delivery=delivery,
            emails=parse_emails(data.get("emails")),
        )
        request.check()
        return request

    def check(self) -> None:
        """Rules that need the whole request (selection size, recipients for email)."""
        count = len(self.impression_tracker_ids) + len(self.click_tracker_ids)
        if count == 0:
            raise ValidationError(
                "impression_tracker_ids",
                "select at least one tracker (impression_tracker_ids or click_tracker_ids)",
            )
        if count > MAX_TRACKERS:
            raise ValidationError(
                "impression_tracker_ids", f"at most {MAX_TRACKERS} trackers per export, got {count}"
            )
        if self.delivery is Delivery.EMAIL and not self.emails:
            raise ValidationError("emails", "delivery 'email' needs at least one address")

    def options(self, public_url: str) -> TagOptions:
        return TagOptions(
            public_url=public_url,
            format=self.format,
            macros=self.macros,
            preset=self.preset,
            use_code=self.use_code,
            secure=self.secure,
            view_element=self.view_element,
        )

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "impression_tracker_ids": list(self.impression_tracker_ids),
            "click_tracker_ids": list(self.click_tracker_ids),
            "format": self.format.value if self.format else None,
            "macros": [m.value for m in Macro if m in self.macros],
            "preset": self.preset.value,
            "use_code": self.use_code,
            "secure": self.secure,
            "view_element": self.view_element,
            "delivery": self.delivery.value,
            "emails": list(self.emails),
        }
