"""Tag sheets: exported tags as a text file, CSV or XLSX, one row per tracker. (The fourth
download, the tag map of old tag -> new tag, is ``tag_map.py``.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font

from adtrack.domain.model import TrackerType


class SheetKind(StrEnum):
    """The files an export downloads as."""

    TXT = "txt"
    CSV = "csv"
    XLSX = "xlsx"
    TAG_MAP = "tag-map"  # CSV: each tracker's old tag (original platform) -> new tag


MEDIA_TYPES: dict[SheetKind, str] = {
    SheetKind.TXT: "text/plain; charset=utf-8",
    SheetKind.CSV: "text/csv; charset=utf-8",
    SheetKind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    SheetKind.TAG_MAP: "text/csv; charset=utf-8",
}


@dataclass(frozen=True)
class TagRow:
    """One exported tracker: who it is, what it is attached to, and its tag."""

    tracker_id: int
    tracker_type: TrackerType
    name: str
    code: str | None
    line_item_id: int
    line_item: str
    publisher_id: int
    publisher: str
    placement_id: int | None
    placement: str | None
    tag: str

    def as_dict(self) -> dict[str, object]:
        return {
            "tracker_id": self.tracker_id,
            "tracker_type": self.tracker_type.value,
            "name": self.name,
            "code": self.code,
            "line_item_id": self.line_item_id,
            "line_item": self.line_item,
            "publisher_id": self.publisher_id,
            "publisher": self.publisher,
            "placement_id": self.placement_id,
            "placement": self.placement,
            "tag": self.tag,
        }


COLUMNS: tuple[str, ...] = (
    "tracker_id",
    "tracker_type",
    "name",
    "code",
    "line_item_id",
    "line_item",
    "publisher_id",
    "publisher",
    "placement_id",
    "placement",
    "tag",
)
HEADERS: tuple[str, ...] = (
    "ID",
    "Type",
    "Name",
    "Code",
    "Line item ID",
    "Line item",
    "Publisher ID",
    "Publisher",
    "Placement ID",
    "Placement",
    "Tag",
)

_TYPE_LABEL = {TrackerType.IMPRESSION: "Imp Tracker", TrackerType.CLICK: "Click Tracker"}
# A spreadsheet cell starting with one of these is read as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RenderedSheet:
    filename: str
    media_type: str
    data: bytes


def _cells(row: TagRow) -> list[object]:
    d = row.as_dict()
    return ["" if d[c] is None else d[c] for c in COLUMNS]


def csv_safe(value: object) -> object:
    # Prefix text that a spreadsheet would run as a formula with an apostrophe (OWASP advice);
    # numbers and tags (which start with "<" or "http") are untouched.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_text(rows: Sequence[TagRow]) -> str:
    """A plain text file: a header line per tracker, then its tag, then a blank line."""
    out: list[str] = []
    for row in rows:
        parts = [f"{_TYPE_LABEL[row.tracker_type]} {row.tracker_id}: {row.name}"]
        if row.code:
            parts.append(f"code {row.code}")
        parts.append(f"line item {row.line_item_id} {row.line_item}")
        parts.append(f"publisher {row.publisher_id} {row.publisher}")
        if row.placement_id is not None:
            parts.append(f"placement {row.placement_id} {row.placement or ''}".rstrip())
        out.append("# " + " | ".join(p.replace("\n", " ") for p in parts))
        out.append(row.tag)
        out.append("")
    return "\n".join(out)


def to_csv(rows: Sequence[TagRow]) -> bytes:
    """UTF-8 CSV with a byte-order mark so spreadsheet programs read accents right."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([csv_safe(v) for v in _cells(row)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: Sequence[TagRow]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Tags"
    ws.append(list(HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        # XML cannot hold most control characters: drop them rather than fail the export.
        ws.append(
            [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in _cells(row)]
        )
        for cell in ws[ws.max_row]:
            # openpyxl stores any string starting with "=" as a formula: force text.
            if isinstance(cell.value, str):
                cell.data_type = "s"
    ws.freeze_panes = "A2"
    widths = {"A": 10, "B": 12, "C": 32, "D": 16, "E": 12, "F": 28, "G": 12, "H": 28}
    widths.update({"I": 12, "J": 28, "K": 120})
    for column, width in widths.items():
        ws.column_dimensions[column].width = width
    for cell in ws["K"][1:]:
        cell.alignment = Alignment(wrap_text=False)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render_sheet(rows: Sequence[TagRow], kind: SheetKind, at: datetime) -> RenderedSheet:
    """The sheet of ``kind`` with a dated file name, e.g. ``adtrack-tags-20250101-120000.csv``.
    The tag map has rows of its own (``tag_map.render_tag_map``)."""
    if kind is SheetKind.TAG_MAP:
        raise ValueError("the tag map is rendered from tag map rows (tag_map.render_tag_map)")
    stem = f"adtrack-tags-{at.strftime('%Y%m%d-%H%M%S')}"
    if kind is SheetKind.TXT:
        data = to_text(rows).encode("utf-8")
    elif kind is SheetKind.CSV:
        data = to_csv(rows)
    else:
        data = to_xlsx(rows)
    return RenderedSheet(filename=f"{stem}.{kind.value}", media_type=MEDIA_TYPES[kind], data=data)
