"""The tag map: for each tracker, the tag the original platform exported and the tag that
replaces it, as a CSV for the ad servers' bulk tools.

Moving over from Microsoft Invest (Xandr) means swapping every tracker tag in the external ad
servers. Imported trackers keep their ids where they were free and record the original id
(``original_id``), so the old tag is rebuilt exactly as the platform exported it: same form,
same comments, the original id, the platform's host (``secure.adnxs.com`` unless told
otherwise) and its square-bracket placeholders. The new tag is adtrack's export of the same
format with this server's tracking host and the request's options (``ExportRequest``).

One row per tracker and tag format: every format of the tracker's type (an ad server may hold
any of them), or only the requested ``format`` where it fits the type. A tracker without an
original id (made in adtrack, or imported where its id was free) uses its own id in the old tag.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from adtrack.domain.errors import ValidationError
from adtrack.domain.macro_presets import Preset
from adtrack.domain.model import Tracker, TrackerType
from adtrack.domain.tags import (
    FORMATS_BY_TYPE,
    TagFormat,
    TagOptions,
    TrackerTagData,
    effective_format,
    normalise_public_url,
    render_tag,
)
from adtrack.services.tag_sheets import MEDIA_TYPES, RenderedSheet, SheetKind, csv_safe

__all__ = [
    "ORIGINAL_TAG_HOST",
    "TAG_MAP_COLUMNS",
    "TagMapRow",
    "parse_old_host",
    "render_tag_map",
    "tag_map_rows",
]

# The host of the original platform's exported tags (its "secure pixel" host).
ORIGINAL_TAG_HOST = "secure.adnxs.com"

TAG_MAP_COLUMNS: tuple[str, ...] = (
    "tracker_id",
    "tracker_type",
    "name",
    "original_id",
    "format",
    "old_tag",
    "new_tag",
)


@dataclass(frozen=True)
class TagMapRow:
    """One tracker in one tag format: the tag to find and the tag to put in its place."""

    tracker_id: int
    tracker_type: TrackerType
    name: str
    original_id: int | None
    format: TagFormat
    old_tag: str
    new_tag: str

    def cells(self) -> list[object]:
        return [
            self.tracker_id,
            self.tracker_type.value,
            self.name,
            "" if self.original_id is None else self.original_id,
            self.format.value,
            self.old_tag,
            self.new_tag,
        ]


def parse_old_host(value: str | None) -> str:
    """The old platform's tag host as a base URL: a host name (``ib.adnxs.com``, https) or an
    http(s) URL; ``secure.adnxs.com`` by default. ``ValidationError`` on ``old_host``."""
    text = (value or "").strip() or ORIGINAL_TAG_HOST
    url = text if "://" in text else f"https://{text}"
    try:
        return normalise_public_url(url)
    except ValidationError:
        raise ValidationError(
            "old_host", f"must be a host name or an http(s) URL without a query, got {value!r}"
        ) from None


def _formats(tracker: Tracker, requested: TagFormat | None) -> tuple[TagFormat, ...]:
    if requested is None:
        return FORMATS_BY_TYPE[tracker.tracker_type]
    return (effective_format(tracker.tracker_type, requested),)


def tag_map_rows(
    trackers: Iterable[Tracker], new: TagOptions, old_base_url: str
) -> list[TagMapRow]:
    """The rows of ``trackers``: new tags as ``new`` renders them, old tags from
    ``old_base_url`` (see :func:`parse_old_host`) with the original's placeholders."""
    old = TagOptions(
        public_url=old_base_url,
        macros=new.macros,
        preset=Preset.GENERIC,  # the platform's export wrote [CACHEBUSTER], [ANCOST], ...
        secure=new.secure,
        viewability_comment=False,  # (adtrack's own addition)
    )
    rows: list[TagMapRow] = []
    for tracker in trackers:
        data = TrackerTagData(tracker.id, tracker.tracker_type, tracker.name, tracker.code)
        old_data = TrackerTagData(
            tracker.original_id or tracker.id, tracker.tracker_type, tracker.name
        )
        for fmt in _formats(tracker, new.format):
            rows.append(
                TagMapRow(
                    tracker_id=tracker.id,
                    tracker_type=tracker.tracker_type,
                    name=tracker.name,
                    original_id=tracker.original_id,
                    format=fmt,
                    old_tag=render_tag(old_data, replace(old, format=fmt)),
                    new_tag=render_tag(data, replace(new, format=fmt)),
                )
            )
    return rows


def render_tag_map(rows: Sequence[TagMapRow], at: datetime) -> RenderedSheet:
    """The tag map as UTF-8 CSV (with a byte-order mark, like the tag sheets), e.g.
    ``adtrack-tag-map-20260301-120000.csv``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(TAG_MAP_COLUMNS)
    for row in rows:
        writer.writerow([csv_safe(v) for v in row.cells()])
    return RenderedSheet(
        filename=f"adtrack-tag-map-{at.strftime('%Y%m%d-%H%M%S')}.csv",
        media_type=MEDIA_TYPES[SheetKind.CSV],
        data=("\ufeff" + buf.getvalue()).encode("utf-8"),
    )
