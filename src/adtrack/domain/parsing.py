"""Total parsers for values typed into URLs, query strings and forms.

Every id, whole number, decimal and date that arrives as text at an entrypoint (API query
parameters, console forms and filters, CLI options, report and feed definitions) goes through
one of these. Each either returns a value the rest of the program can use without overflowing
or raises ``ValidationError`` naming the field -- never ``ValueError``, ``OverflowError`` or
``decimal.InvalidOperation``.

Why not ``int()``, ``Decimal()`` and ``fromisoformat()`` directly: they accept more than they
should (``int("٣")`` is 3, ``int("1_000")`` is 1000, ``str.isdigit()`` is true for ``"²"``
which ``int()`` then refuses), values beyond what the database stores, and dates at the
calendar's edges where adding a day or a time zone offset overflows.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation

from adtrack.domain.errors import ValidationError

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "ID_MAX",
    "INSTANT_MAX",
    "INSTANT_MIN",
    "check_supported_instant",
    "parse_date",
    "parse_decimal",
    "parse_id",
    "parse_id_list",
    "parse_int",
    "parse_local_datetime",
    "parse_optional_id",
]

# Ids are stored in 32-bit integer columns (``adapters/sql/tables.py``).
ID_MAX = 2**31 - 1

# The supported calendar: dates 2000-01-01 .. 2099-12-31, and instants up to 2100-01-01 00:00
# (the exclusive end of that last day). Far enough from datetime's own limits (years 1..9999)
# that adding a day, an hour rounding or any time zone offset can never overflow.
DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2099, 12, 31)
INSTANT_MIN = datetime(2000, 1, 1)
INSTANT_MAX = datetime(2100, 1, 1)

# Decimals: at most this many digits before and after the point. Checked on the text, before
# any arithmetic, so ``1e999999`` or 10,000 digits never reach the decimal context.
DECIMAL_MAX_INTEGER_DIGITS = 15
DECIMAL_MAX_FRACTION_DIGITS = 6

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"(-?)([0-9]*)(?:\.([0-9]*))?", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# YYYY-MM-DD, then T or a space, HH:MM, optional :SS and fraction, optional Z or +HH:MM offset.
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.ASCII | re.IGNORECASE,
)
# int() of more digits than this is pointless (and slow for huge texts): refused by length.
_MAX_INT_DIGITS = 19


def _text(value: object) -> str | None:
    """Stripped text, or None when nothing was given."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value).strip()
    return text or None


def parse_int(value: object, field: str, *, low: int, high: int) -> int:
    """A whole number ``low..high`` from ASCII digits (an ``int`` is range-checked)."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be a whole number")
    if isinstance(value, int):
        number = value
    else:
        text = _text(value)
        if text is None:
            raise ValidationError(field, "is required: a whole number")
        negative = text.startswith("-")
        digits = text[1:] if negative else text
        if not _DIGITS.fullmatch(digits):
            raise ValidationError(field, f"must be a whole number (got {text[:40]!r})")
        if len(digits.lstrip("0")) > _MAX_INT_DIGITS:
            raise ValidationError(field, f"must be between {low} and {high}")
        number = -int(digits) if negative else int(digits)
    if not low <= number <= high:
        raise ValidationError(field, f"must be between {low} and {high} (got {number})")
    return number


def parse_id(value: object, field: str, *, low: int = 1) -> int:
    """An object id: ASCII digits, ``low``..ID_MAX (what the database's id columns hold).
    Report filters pass ``low=0``: rollups key "no placement / no payment rule" as 0."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be an id (a whole number)")
    if not isinstance(value, int):
        text = _text(value)
        if text is None or not _DIGITS.fullmatch(text):
            shown = "" if text is None else f" (got {text[:40]!r})"
            raise ValidationError(field, f"must be an id (a whole number){shown}")
        if len(text.lstrip("0")) > _MAX_INT_DIGITS:
            raise ValidationError(field, f"must be an id from {low} to {ID_MAX}")
        value = int(text)
    if not low <= value <= ID_MAX:
        raise ValidationError(field, f"must be an id from {low} to {ID_MAX} (got {value})")
    return value


def parse_optional_id(value: object, field: str) -> int | None:
    """``parse_id``, with nothing given (None or blank) meaning None."""
    return None if _text(value) is None else parse_id(value, field)


def parse_id_list(values: object, field: str, *, low: int = 1) -> tuple[int, ...]:
    """Ids repeated and/or comma-separated (``["1,2", "3"]``, ``"1,2"``, ``[1, 2]``), sorted and
    without duplicates; blanks are skipped."""
    if values is None:
        return ()
    items: Iterable[object] = values if isinstance(values, list | tuple | set) else [values]
    ids: set[int] = set()
    for item in items:
        if isinstance(item, int):
            ids.add(parse_id(item, field, low=low))
            continue
        for part in str(item).split(","):
            if part.strip():
                ids.add(parse_id(part, field, low=low))
    return tuple(sorted(ids))


def parse_decimal(value: object, field: str) -> Decimal:
    """A finite decimal number written in plain ASCII notation (``-12.5``): at most 15 digits
    before the point and 6 after it. No exponents, NaN, Infinity or other scripts' digits."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        value = str(value)
    text = _text(value)
    if text is None:
        raise ValidationError(field, "is required: a number like 2.50")
    match = _DECIMAL.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        raise ValidationError(field, f"must be a number like 2.50 (got {text[:40]!r})")
    whole, fraction = match.group(2), match.group(3) or ""
    if len(whole.lstrip("0")) > DECIMAL_MAX_INTEGER_DIGITS:
        raise ValidationError(
            field, f"must have at most {DECIMAL_MAX_INTEGER_DIGITS} digits before the point"
        )
    if len(fraction.rstrip("0")) > DECIMAL_MAX_FRACTION_DIGITS:
        raise ValidationError(field, f"has more than {DECIMAL_MAX_FRACTION_DIGITS} decimal places")
    try:
        return Decimal(text)
    except InvalidOperation:  # unreachable after the checks above; kept total on purpose
        raise ValidationError(field, "must be a number like 2.50") from None


def _supported_range_message() -> str:
    return f"must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}"


def _calendar_date(text: str, field: str) -> date:
    if not _DATE.fullmatch(text):
        raise ValidationError(field, "must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"is not a date in the calendar ({text})") from None


def parse_date(value: object, field: str) -> date:
    """A calendar date ``YYYY-MM-DD`` (ASCII digits) within the supported range."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        day = value
    else:
        text = _text(value)
        if text is None:
            raise ValidationError(field, "is required: a date (YYYY-MM-DD)")
        day = _calendar_date(text, field)
    if not DATE_MIN <= day <= DATE_MAX:
        raise ValidationError(field, _supported_range_message())
    return day


def check_supported_instant(value: datetime, field: str) -> datetime:
    """``value`` itself when its wall-clock time (as written, before any time zone conversion)
    is within the supported range, else ``ValidationError``."""
    wall = value.replace(tzinfo=None)
    if not INSTANT_MIN <= wall <= INSTANT_MAX:
        raise ValidationError(field, _supported_range_message())
    return value


def parse_local_datetime(value: object, field: str, *, tz: tzinfo) -> datetime:
    """A date (midnight) or a date-time (``YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|±HH:MM]``, ``T`` or a
    space), read in ``tz`` unless it carries an offset; always aware and within the supported
    range. An aware ``datetime`` or a ``date`` object is checked the same way."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        text = _text(value)
        if text is None:
            raise ValidationError(field, "is required: a date (YYYY-MM-DD) or a datetime")
        if _DATE.fullmatch(text):
            parsed = datetime.combine(_calendar_date(text, field), time())
        elif _DATETIME.fullmatch(text):
            normal = text[:10] + "T" + text[11:]
            if normal.endswith(("Z", "z")):
                normal = normal[:-1] + "+00:00"
            try:
                parsed = datetime.fromisoformat(normal)
            except ValueError:
                raise ValidationError(
                    field, f"is not a date-time in the calendar ({text[:40]})"
                ) from None
        else:
            raise ValidationError(
                field, "must be a date (YYYY-MM-DD) or a datetime (YYYY-MM-DDTHH:MM[:SS][Z])"
            )
    check_supported_instant(parsed, field)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        # fold=0: an ambiguous local time means its first occurrence; a local time that does
        # not exist (spring forward) is read with the offset in force before the change.
        parsed = parsed.replace(tzinfo=tz)
    return parsed
