"""Field validators: each takes a raw value and returns it clean, or raises ``ValidationError``
naming the field the user typed.

Pure functions, no I/O. Money arrives here already in integer micros (the API converts exactly
at the edge); revshare in parts per million.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from adtrack.domain.errors import ValidationError
from adtrack.domain.model import PPM
from adtrack.domain.parsing import ID_MAX as ID_MAX  # re-exported: defined with the parsers
from adtrack.domain.parsing import check_supported_instant

NAME_MAX = 255
CODE_MAX = 100
DESCRIPTION_MAX = 10_000
URL_MAX = 2048
# 999999.999999 currency units: the largest amount the original platform accepts (``ancost``).
MONEY_MAX_MICROS = 999_999_999_999
PRIORITY_MIN = 1
PRIORITY_MAX = 10
DEFAULT_PRIORITY = 5
# An id on the platform an object was imported from: a BigInteger column.
ORIGINAL_ID_MAX = 2**63 - 1

EnumT = TypeVar("EnumT", bound=StrEnum)


def _has_control_char(text: str) -> bool:
    # Cc: C0/C1 controls (CR, LF, TAB, NUL...); Cs: lone surrogates (not encodable as UTF-8).
    # Cf (zero-width joiners...) stays allowed in names: emoji sequences need it.
    if text.isascii() and text.isprintable():  # the usual case, without a loop in Python
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _has_format_char(text: str) -> bool:
    # Invisible formatting (zero-width spaces, bidi overrides): codes are typed and compared
    # exactly, so an invisible character would make two equal-looking codes differ.
    if text.isascii():  # no ASCII character is a format character
        return False
    return any(unicodedata.category(ch) == "Cf" for ch in text)


def _has_whitespace(text: str) -> bool:
    return any(ch.isspace() for ch in text)


def clean_name(value: object, field: str = "name") -> str:
    """A required label: a string, trimmed, 1..255 characters, no control characters."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    name = value.strip()
    if not name:
        raise ValidationError(field, "must not be empty")
    if len(name) > NAME_MAX:
        raise ValidationError(field, f"must be at most {NAME_MAX} characters (got {len(name)})")
    if _has_control_char(name):
        raise ValidationError(field, "must not contain control characters or line breaks")
    return name


def clean_code(value: object, field: str = "code") -> str | None:
    """An optional custom code: trimmed, at most 100 characters, no whitespace or control
    characters. ``None`` or an empty text means "no code"."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    code = value.strip()
    if not code:
        return None
    if len(code) > CODE_MAX:
        raise ValidationError(field, f"must be at most {CODE_MAX} characters (got {len(code)})")
    if _has_whitespace(code) or _has_control_char(code) or _has_format_char(code):
        raise ValidationError(field, "must not contain spaces, control or invisible characters")
    return code


def clean_original_id(value: object, field: str = "original_id") -> int | None:
    """The id an imported object had on the platform it came from: a positive integer."""
    if value is None:
        return None
    number = _clean_int(value, field)
    if not 1 <= number <= ORIGINAL_ID_MAX:
        raise ValidationError(field, f"must be a positive id (got {number})")
    return number


def clean_original_code(value: object, field: str = "original_code") -> str | None:
    """The code an imported object had on the platform it came from, kept as it was there
    (spaces allowed), trimmed; at most 100 characters, no control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    code = value.strip()
    if not code:
        return None
    if len(code) > CODE_MAX:
        raise ValidationError(field, f"must be at most {CODE_MAX} characters (got {len(code)})")
    if _has_control_char(code):
        raise ValidationError(field, "must not contain control characters or line breaks")
    return code


def clean_description(value: object, field: str = "description") -> str | None:
    """Optional free text (line breaks allowed), trimmed; empty means none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    text = value.strip()
    if not text:
        return None
    if len(text) > DESCRIPTION_MAX:
        raise ValidationError(field, f"must be at most {DESCRIPTION_MAX} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\r\t" for ch in text):
        raise ValidationError(field, "must not contain control characters")
    return text


def clean_enum(enum_type: type[EnumT], value: object, field: str) -> EnumT:
    """An enum member from itself or its string value."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value.strip().lower())
        except ValueError:
            pass
    allowed = ", ".join(repr(member.value) for member in enum_type)
    raise ValidationError(field, f"must be one of {allowed} (got {value!r})")


def clean_optional_enum(enum_type: type[EnumT], value: object, field: str) -> EnumT | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return clean_enum(enum_type, value, field)


def _clean_int(value: object, field: str) -> int:
    # bool is an int subclass; ``True`` as an amount or an id is a client bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer")
    return value


_FLAG_WORDS = {"true": True, "false": False}


def clean_flag(value: object, field: str) -> bool:
    """A yes/no setting: a JSON boolean, or the words ``true`` and ``false`` (a form's)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.strip().lower()]
    raise ValidationError(field, f"must be true or false (got {value!r})")


def clean_id(value: object, field: str) -> int:
    """A reference to another object: a positive integer."""
    number = _clean_int(value, field)
    if not 1 <= number <= ID_MAX:
        raise ValidationError(field, f"must be a positive id (got {number})")
    return number


def clean_optional_id(value: object, field: str) -> int | None:
    return None if value is None else clean_id(value, field)


def clean_id_set(value: object, field: str) -> frozenset[int]:
    """A list (or set) of positive ids; duplicates collapse. ``None`` means none."""
    if value is None:
        return frozenset()
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError(field, "must be a list of ids")
    return frozenset(clean_id(item, field) for item in value)


def clean_money_micros(value: object, field: str) -> int:
    """An amount in micros: 0 to 999999.999999 currency units."""
    micros = _clean_int(value, field)
    if micros < 0:
        raise ValidationError(field, "must not be negative")
    if micros > MONEY_MAX_MICROS:
        raise ValidationError(field, "must be at most 999999.999999")
    return micros


def clean_ppm(value: object, field: str = "revshare") -> int:
    """A share in parts per million: 0..1_000_000 (0 to 1 in the API)."""
    ppm = _clean_int(value, field)
    if not 0 <= ppm <= PPM:
        raise ValidationError(field, "must be between 0 and 1")
    return ppm


def clean_whole_number(value: object, field: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (a count of minutes...)."""
    number = _clean_int(value, field)
    if not low <= number <= high:
        raise ValidationError(field, f"must be between {low} and {high} (got {number})")
    return number


def clean_optional_whole_number(value: object, field: str, low: int, high: int) -> int | None:
    """``clean_whole_number``, or ``None`` (which the field means something by)."""
    return None if value is None else clean_whole_number(value, field, low, high)


def clean_priority(value: object, field: str = "priority") -> int:
    priority = _clean_int(value, field)
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValidationError(
            field, f"must be between {PRIORITY_MIN} and {PRIORITY_MAX} (got {priority})"
        )
    return priority


def clean_datetime(value: object, field: str) -> datetime | None:
    """An optional instant: an aware datetime (or ISO 8601 text with an offset), as UTC.

    A naive datetime is refused: which midnight a user meant is not ours to guess.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(field, "must be an ISO 8601 date-time") from None
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a date-time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must include a time zone (e.g. 2024-05-01T00:00:00Z)")
    return check_supported_instant(value, field).astimezone(UTC)


def clean_landing_page_url(value: object, field: str = "landing_page_url") -> str | None:
    """An optional landing page: an absolute http(s) URL with a host, at most 2048 characters.

    Other schemes (``javascript:``, ``data:``, ``file:``...) and a user name before the host
    (``https://good.example@evil.example``) are refused: the URL is sent to browsers as a
    redirect target. Surrounding spaces are trimmed; inner whitespace and control
    characters are refused because browsers and proxies treat them inconsistently.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    url = value.strip()
    if not url:
        return None
    if len(url) > URL_MAX:
        raise ValidationError(field, f"must be at most {URL_MAX} characters")
    if _has_whitespace(url) or _has_control_char(url) or _has_format_char(url):
        raise ValidationError(field, "must not contain spaces, line breaks or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError:
        raise ValidationError(field, "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(field, "must be an http:// or https:// URL")
    if not parts.hostname or "\\" in parts.netloc:
        raise ValidationError(field, "must be an absolute URL with a host")
    if "@" in parts.netloc or "%40" in parts.netloc.lower() or "%5c" in parts.netloc.lower():
        # browsers show "user@host" URLs as if they went to "user" (the collector refuses
        # such redirect targets too)
        raise ValidationError(field, "must not contain a user name (user@host)")
    if port == 0:
        raise ValidationError(field, "is not a valid URL")
    return url


QUERY_PARAMETER_MAX = 64
_QUERY_PARAMETER_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."
)


def clean_query_parameter_name(value: object, field: str) -> str | None:
    """An optional query parameter name: 1 to 64 ASCII letters, digits, ``_``, ``-`` or ``.``
    (nothing that would need encoding in a URL). Empty or ``None`` means none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    name = value.strip()
    if not name:
        return None
    if len(name) > QUERY_PARAMETER_MAX:
        raise ValidationError(field, f"must be at most {QUERY_PARAMETER_MAX} characters")
    if not set(name) <= _QUERY_PARAMETER_CHARS:
        raise ValidationError(field, "may hold only letters, digits, '_', '-' and '.'")
    return name


def check_date_range(start: datetime | None, end: datetime | None) -> None:
    """Start is inclusive and end exclusive, so an empty or reversed window is refused."""
    if start is not None and end is not None and not start < end:
        raise ValidationError("end_date", "must be after start_date")
