"""Reading the original platform's network analytics report as CSV: one :class:`ReportLine` per
data row, with its line number, or a :class:`LineRefusal` naming the line and the column.

Both spellings of the columns are accepted:

- the report service's (API) names: ``day`` or ``hour``, ``imp_type_id`` or ``imp_type``,
  ``line_item_id``, ``publisher_id``, ``placement_id`` (or ``tag_id``), ``advertiser_id``
  (optional, checked against the line item), ``imps``, ``clicks``, ``media_cost``,
  ``booked_revenue``; the deprecated ``line_item`` / ``publisher`` / ``placement`` columns
  ("Name (123)") stand in for the ids;
- the console's export headers: "Day", "Hour", "Imp Type", "Line Item", "Publisher",
  "Placement" (as "Name (123)"), "Imps", "Clicks", "Media Cost", "Booked Revenue".

Other columns (names, codes, ctr, country, creative...) are ignored, so a report with more
dimensions than adtrack keeps is summed into adtrack's key later. Pure: no I/O but the text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from adtrack.domain.errors import ValidationError
from adtrack.domain.money import MoneyError, to_micros
from adtrack.domain.parsing import ID_MAX, parse_date, parse_decimal, parse_id

__all__ = [
    "EXTERNAL_CLICK",
    "EXTERNAL_IMPRESSION",
    "Granularity",
    "LineRefusal",
    "ParsedReport",
    "ReportFileError",
    "ReportLine",
    "parse_report_csv",
]

EXTERNAL_IMPRESSION = 9
EXTERNAL_CLICK = 10
# Imp type labels as the platform writes them (imp_type, "Imp Type"), lower-cased.
_IMP_TYPE_LABELS = {
    "external impression": EXTERNAL_IMPRESSION,
    "external imps": EXTERNAL_IMPRESSION,
    "external click": EXTERNAL_CLICK,
    "external clicks": EXTERNAL_CLICK,
}
# Normalised header -> the column it means. First of several present wins (ids before names).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "hour": ("hour",),
    "day": ("day", "date"),
    "month": ("month",),
    "imp_type": ("imp_type_id", "imp_type"),
    "line_item": ("line_item_id", "line_item"),
    "publisher": ("publisher_id", "publisher"),
    "placement": ("placement_id", "tag_id", "placement", "tag"),
    "advertiser": ("advertiser_id", "advertiser"),
    "imps": ("imps", "impressions", "external_impression"),
    "clicks": ("clicks", "external_click"),
    "media_cost": ("media_cost", "cost", "total_cost"),
    "booked_revenue": ("booked_revenue", "revenue"),
}
_REQUIRED = ("imp_type", "line_item", "publisher")
_NAME_WITH_ID = re.compile(r".*\((\d+)\)\s*", re.DOTALL)
_HOUR = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2})(?::00(?::00)?)?")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_PLAIN_MONEY = re.compile(r"(-?)([0-9]{1,15})(?:\.([0-9]{0,6}))?", re.ASCII)
_MAX_COUNT = 2**53  # far beyond any report; keeps sums far from bigint overflow
_NONE_VALUES = frozenset({"", "0", "--", "-", "none", "n/a"})


class Granularity:
    HOUR = "hour"
    DAY = "day"


class ReportFileError(ValueError):
    """The file as a whole cannot be read (no header, no date column, not UTF-8...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One data row. Ids are the original platform's; ``placement`` 0 = none. ``local`` is the
    row's local start: midnight of its day, or its hour (naive, in the report's time zone)."""

    line: int
    local: datetime
    whole_day: bool  # a day's counts (a daily report, or an hourly one's rows past 100 days)
    imp_type: int
    line_item: int
    publisher: int
    placement: int
    advertiser: int | None
    imps: int
    clicks: int
    media_cost_micros: int
    booked_revenue_micros: int


@dataclass(frozen=True, slots=True)
class LineRefusal:
    line: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ParsedReport:
    granularity: str
    lines: list[ReportLine]
    refusals: list[LineRefusal]


def _normalise(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def _column_positions(header: list[str]) -> dict[str, int]:
    found = {_normalise(name): index for index, name in reversed(list(enumerate(header)))}
    positions: dict[str, int] = {}
    for column, names in _COLUMNS.items():
        for name in names:
            if name in found:
                positions[column] = found[name]
                break
    return positions


def parse_report_csv(text: str, *, max_rows: int) -> ParsedReport:
    """Every data row of ``text`` (a CSV with a header row), read or refused. Raises
    :class:`ReportFileError` when the file as a whole cannot be used."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = row
            break
    if header is None:
        raise ReportFileError("file", "is empty: expected a header row and data rows")
    positions = _column_positions(header)
    if "hour" in positions:
        granularity = Granularity.HOUR
    elif "day" in positions:
        granularity = Granularity.DAY
    elif "month" in positions:
        raise ReportFileError(
            "month",
            "a monthly report cannot be placed in days or hours: export it by day or by hour",
        )
    else:
        raise ReportFileError("file", "needs a day or hour column (API 'day'/'hour', 'Day'/'Hour')")
    missing = [column for column in _REQUIRED if column not in positions]
    if missing:
        names = "; ".join(" or ".join(_COLUMNS[column]) for column in missing)
        raise ReportFileError("file", f"needs the columns {names}")
    lines: list[ReportLine] = []
    refusals: list[LineRefusal] = []
    seen: dict[tuple[str, ...], int] = {}
    for row in reader:
        if not any(cell.strip() for cell in row) or _is_totals(row):
            continue
        if len(lines) + len(refusals) >= max_rows:
            raise ReportFileError(
                "file", f"has more than {max_rows} rows (ADTRACK_REPORT_HISTORY_MAX_ROWS)"
            )
        # Rows of one key are summed (a report broken down by more than adtrack keeps differs
        # in those columns), but a row identical in every cell is the same data twice (two
        # exports pasted together), not a second breakdown.
        whole = tuple(cell.strip() for cell in row)
        first = seen.setdefault(whole, reader.line_num)
        if first != reader.line_num:
            refusals.append(
                LineRefusal(
                    reader.line_num, "file", f"repeats line {first} exactly: the same data twice"
                )
            )
            continue
        cells = {column: _cell(row, index) for column, index in positions.items()}
        try:
            lines.append(_line(reader.line_num, cells, granularity))
        except ValidationError as refused:
            refusals.append(LineRefusal(reader.line_num, refused.field, refused.message))
    return ParsedReport(granularity, lines, refusals)


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _is_totals(row: list[str]) -> bool:
    """The console's exports may end with a totals row; it is not data."""
    first = next((cell.strip().lower() for cell in row if cell.strip()), "")
    return first in {"total", "totals", "grand total"}


def _line(number: int, cells: Mapping[str, str], granularity: str) -> ReportLine:
    local, whole_day = _local_start(cells, granularity)
    return ReportLine(
        line=number,
        local=local,
        whole_day=whole_day,
        imp_type=_imp_type(cells["imp_type"]),
        line_item=_original_id(cells["line_item"], "line_item_id"),
        publisher=_original_id(cells["publisher"], "publisher_id"),
        placement=_optional_id(cells.get("placement", ""), "placement_id"),
        advertiser=_optional_id(cells.get("advertiser", ""), "advertiser_id") or None,
        imps=_count(cells.get("imps", ""), "imps"),
        clicks=_count(cells.get("clicks", ""), "clicks"),
        media_cost_micros=_money(cells.get("media_cost", ""), "media_cost"),
        booked_revenue_micros=_money(cells.get("booked_revenue", ""), "booked_revenue"),
    )


def _local_start(cells: Mapping[str, str], granularity: str) -> tuple[datetime, bool]:
    """The row's local start, and whether it counts a whole day. The platform's hourly reports
    give a day instead of an hour for data older than 100 days: such rows count their day."""
    if granularity == Granularity.HOUR:
        text = cells["hour"]
        match = _HOUR.fullmatch(text)
        if match is None:
            if _DATE_ONLY.fullmatch(text):
                day = parse_date(text, "hour")
                return datetime(day.year, day.month, day.day), True
            raise ValidationError(
                "hour", f"must be a whole hour like 2026-01-31 06:00:00 (got {text[:40]!r})"
            )
        day = parse_date(match.group(1), "hour")
        hour = int(match.group(2))
        if hour > 23:
            raise ValidationError("hour", f"has no hour {hour}")
        return datetime(day.year, day.month, day.day, hour), False
    day = _day(cells["day"])
    return datetime(day.year, day.month, day.day), True


def _day(text: str) -> date:
    us = _US_DATE.fullmatch(text)
    if us is not None:  # the console's exports in US format: MM/DD/YYYY
        month, day, year = (int(part) for part in us.groups())
        text = f"{year:04d}-{month:02d}-{day:02d}"
    return parse_date(text, "day")


def _imp_type(text: str) -> int:
    label = text.strip().lower()
    value = _IMP_TYPE_LABELS.get(label)
    if value is None and label.isdigit():
        value = int(label)
    if value is None:
        name = _NAME_WITH_ID.fullmatch(text)
        value = int(name.group(1)) if name else None
    if value not in (EXTERNAL_IMPRESSION, EXTERNAL_CLICK):
        raise ValidationError(
            "imp_type",
            f"{text!r} is not a tracker's imp type: only 9 (External Impression) and "
            "10 (External Click) rows can be imported",
        )
    return value


def _original_id(text: str, field: str) -> int:
    """An id, or the id in "Name (123)"."""
    if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= ID_MAX:
        return int(text)  # the usual case, without the general parser's checks
    name = _NAME_WITH_ID.fullmatch(text)
    if name is not None:
        text = name.group(1)
    if not text:
        raise ValidationError(field, "is required")
    return parse_id(text, field)


def _optional_id(text: str, field: str) -> int:
    if text.strip().lower() in _NONE_VALUES:
        return 0
    return _original_id(text, field)


def _count(text: str, field: str) -> int:
    plain = text.replace(",", "") if _GROUPED.fullmatch(text) else text
    if not plain:
        return 0
    if not plain.isdigit():
        raise ValidationError(field, f"must be a whole number of 0 or more (got {text[:40]!r})")
    value = int(plain[:20])
    if value > _MAX_COUNT:
        raise ValidationError(field, f"is too large ({text[:40]})")
    return value


def _money(text: str, field: str) -> int:
    """An amount in currency units ("12.5", "$1,234.50", "-0.25" for an adjustment)."""
    plain_number = _PLAIN_MONEY.fullmatch(text)
    if plain_number is not None:  # the usual case: exact micros from the digits
        sign, whole, fraction = plain_number.groups()
        micros = int(whole or "0") * 1_000_000 + int((fraction or "").ljust(6, "0"))
        return -micros if sign else micros
    negative = text.startswith("-")
    plain = text[1:] if negative else text
    plain = ("-" if negative else "") + plain.removeprefix("$")
    if _GROUPED.fullmatch(plain):
        plain = plain.replace(",", "")
    if not plain:
        return 0
    amount: Decimal = parse_decimal(plain, field)
    try:
        return to_micros(amount)
    except MoneyError as exc:
        raise ValidationError(field, str(exc)) from None
