"""Importing the original platform's report history (its network analytics report as CSV)
into the reporting tables, so reports, the summary and the charts span the move.

How imported counts are kept (docs/reporting.md, "Imported report history"):

- they are added to ``rollup_hourly`` and ``rollup_daily`` like the aggregator's, with
  ``tracker_id`` 0: "imported history, no tracker" (every live event has a tracker). The rest of
  the key is adtrack's ids of the row's line item (and its advertiser), publisher and placement;
  the imp type is 9 or 10;
- each import is recorded (``report_history_imports``: file name, SHA-256, time zone, rows,
  totals, who, when) with exactly what it added (``report_history_rows``), so it can be listed
  and undone, and the same file is never counted twice;
- rows of the report are in the stated time zone. An hourly row lands in the UTC hour at which
  its local hour starts (the first whole UTC hour starting in it, for zones with half-hour
  offsets: the same rule reports bucket by, ``reporting/plan.py``). A daily row lands whole in
  the first UTC hour of its local day: a daily report in the same time zone shows exactly the
  imported day totals, and the hourly and daily rollups stay consistent with each other. (Hourly
  and other time zones' views of such a day show it all in that one hour: the report had no
  finer detail.)

An import is all or nothing: one refused row refuses it, unless ``skip_refused`` is asked, which
imports the others and reports the refused ones. A dry run checks everything and writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adtrack.domain.errors import Conflict, ValidationError
from adtrack.domain.money import format_micros
from adtrack.domain.rollup_counters import Counters
from adtrack.services.ports import (
    SPAN_MARGIN,
    HistoryImport,
    HistoryKey,
    HistoryRowRecord,
    NewHistoryImport,
    ReportHistoryStore,
    earlier_imports,
)
from adtrack.services.xandr.report_history_csv import (
    LineRefusal,
    ReportFileError,
    ReportLine,
    parse_report_csv,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "HistoryImportResult",
    "ReportHistoryService",
    "ReportHistoryRefused",
    "import_json",
]

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_ROWS = 1_000_000
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


@dataclass
class HistoryImportResult:
    """What an import added (or, in a dry run, would add), and what it refused."""

    file_name: str
    sha256: str
    timezone: str
    granularity: str
    dry_run: bool
    lines: int = 0  # rows read and accepted
    rollup_rows: int = 0  # rollup keys they make (rows of one key are summed)
    first_day: date | None = None  # first and last local day covered
    last_day: date | None = None
    totals: Counters = field(default_factory=Counters)
    refused: list[LineRefusal] = field(default_factory=list)
    imported: HistoryImport | None = None  # the import recorded (not in a dry run)

    def as_json(self) -> dict[str, object]:
        """The JSON the API answers and the CLI prints (money as decimal strings)."""
        return {
            "file_name": self.file_name,
            "sha256": self.sha256,
            "timezone": self.timezone,
            "granularity": self.granularity,
            "dry_run": self.dry_run,
            "rows": self.lines,
            "rollup_rows": self.rollup_rows,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "totals": totals_json(self.totals),
            "refused": [
                {"line": r.line, "field": r.field, "message": r.message} for r in self.refused
            ],
            "import": import_json(self.imported) if self.imported is not None else None,
        }


def totals_json(totals: Counters) -> dict[str, object]:
    return {
        "imps": totals.imps,
        "clicks": totals.clicks,
        "media_cost": format_micros(totals.media_cost_micros),
        "booked_revenue": format_micros(totals.booked_revenue_micros),
    }


def import_json(done: HistoryImport) -> dict[str, object]:
    """A recorded import as the API lists it."""

    def when(value: datetime | None) -> str | None:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

    return {
        "id": done.id,
        "file_name": done.file_name,
        "sha256": done.sha256,
        "timezone": done.timezone,
        "granularity": done.granularity,
        "rows": done.lines,
        "first_hour": when(done.first_hour),
        "last_hour": when(done.last_hour),
        "totals": totals_json(done.totals),
        "imported_by": done.imported_by,
        "created_at": when(done.created_at),
    }


class ReportHistoryRefused(ValidationError):
    """Rows were refused and the import was not applied; ``result`` lists them by line."""

    def __init__(self, result: HistoryImportResult) -> None:
        count = len(result.refused)
        super().__init__(
            "file", f"{count} row{'s' if count != 1 else ''} refused; nothing was imported"
        )
        self.result = result


class ReportHistoryService:
    def __init__(
        self,
        store: ReportHistoryStore,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self._store = store
        self.max_bytes = max_bytes
        self.max_rows = max_rows

    def import_csv(
        self,
        data: bytes,
        *,
        file_name: str,
        timezone: str,
        imported_by: str,
        dry_run: bool = False,
        skip_refused: bool = False,
    ) -> HistoryImportResult:
        """Check ``data`` (the report as CSV) against the catalogue and, unless ``dry_run``,
        add it. Raises :class:`ValidationError` for a file that cannot be read,
        :class:`Conflict` for a file imported before, and :class:`ReportHistoryRefused` when
        rows were refused (not with ``skip_refused`` or ``dry_run``: the result lists them)."""
        tz = _zone(timezone)
        if len(data) > self.max_bytes:
            raise ValidationError(
                "file",
                f"is larger than {self.max_bytes} bytes (ADTRACK_REPORT_HISTORY_MAX_BYTES)",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("file", f"is not UTF-8 text (byte {exc.start})") from None
        sha256 = hashlib.sha256(data).hexdigest()
        earlier = self._store.find_by_hash(sha256)
        if earlier is not None:
            raise Conflict(
                "file",
                f"this file was imported already (import {earlier.id}, {earlier.file_name!r}, "
                f"{earlier.created_at:%Y-%m-%d %H:%M} UTC); undo that import to import it again",
            )
        try:
            parsed = parse_report_csv(text, max_rows=self.max_rows)
        except ReportFileError as exc:
            raise ValidationError(exc.field, exc.message) from None
        result = HistoryImportResult(
            file_name=file_name[:255],
            sha256=sha256,
            timezone=tz.key,
            granularity=parsed.granularity,
            dry_run=dry_run,
            refused=list(parsed.refusals),
        )
        # rows share their hours: each is placed once
        spans: dict[tuple[datetime, bool], tuple[datetime, datetime] | None] = {}
        placed: list[_Placed] = []
        for line in parsed.lines:
            when = (line.local, line.whole_day)
            if when not in spans:
                spans[when] = _span(line.local, tz, whole_day=line.whole_day)
            span = spans[when]
            if span is None:
                _refuser(result, line.line)(
                    "hour",
                    f"{line.local:%Y-%m-%d %H:00} does not exist in {tz.key} (clock change)",
                )
            else:
                placed.append(_Placed(line, *span))
        records = self._resolve(placed, result)
        records = self._without_overlaps(records, result)
        result.refused.sort(key=lambda refusal: refusal.line)
        rows = _summed(records)
        result.lines = len(records)
        result.rollup_rows = len(rows)
        result.totals = Counters.of(
            [sum(column) for column in zip(*(r.counters for r in rows), strict=True)]
            if rows
            else Counters()
        )
        if records:
            result.first_day = min(r.line.local for r in records).date()
            result.last_day = max(r.line.local for r in records).date()
        if dry_run:
            return result
        if result.refused and not skip_refused:
            raise ReportHistoryRefused(result)
        if not rows:
            raise ValidationError("file", "has no rows to import")
        result.imported = self._store.add(
            NewHistoryImport(
                file_name=result.file_name,
                sha256=sha256,
                timezone=tz.key,
                granularity=parsed.granularity,
                lines=result.lines,
                first_hour=min(row.key.hour for row in rows),
                last_hour=max(row.key.hour for row in rows),
                totals=result.totals,
                imported_by=imported_by[:255],
            ),
            rows,
        )
        return result

    def imports(self) -> list[HistoryImport]:
        return self._store.imports()

    def undo(self, import_id: int) -> HistoryImport:
        """Take an import's counts out of the reports again (raises ``NotFound``)."""
        return self._store.remove(import_id)

    # --- checks against the catalogue and earlier imports ----------------------------------------

    def _resolve(self, placed: Sequence[_Placed], result: HistoryImportResult) -> list[_Record]:
        line_items = self._store.line_items({p.line.line_item for p in placed})
        publishers = self._store.publishers({p.line.publisher for p in placed})
        placements = self._store.placements({p.line.placement for p in placed if p.line.placement})
        records: list[_Record] = []
        for p in placed:
            line = p.line
            refuse = _refuser(result, line.line)
            item = line_items.get(line.line_item)
            publisher_id = publishers.get(line.publisher)
            placement = placements.get(line.placement) if line.placement else None
            if item is None:
                refuse("line_item_id", f"no line item has the id {line.line_item}")
            elif publisher_id is None:
                refuse("publisher_id", f"no publisher has the id {line.publisher}")
            elif line.placement and placement is None:
                refuse("placement_id", f"no placement has the id {line.placement}")
            elif placement is not None and placement.publisher_id != publisher_id:
                refuse(
                    "placement_id",
                    f"placement {line.placement} belongs to another publisher, "
                    f"not to publisher {line.publisher}",
                )
            elif line.advertiser is not None and line.advertiser != item.advertiser_original_id:
                refuse(
                    "advertiser_id",
                    f"line item {line.line_item} belongs to advertiser "
                    f"{item.advertiser_original_id}, not {line.advertiser}",
                )
            else:
                key = HistoryKey(
                    hour=p.start,
                    imp_type=line.imp_type,
                    advertiser_id=item.advertiser_id,
                    line_item_id=item.id,
                    publisher_id=publisher_id,
                    placement_id=placement.id if placement is not None else 0,
                    payment_rule_id=0,
                )
                records.append(_Record(line, key, p.end))
        return records

    def _without_overlaps(
        self, records: list[_Record], result: HistoryImportResult
    ) -> list[_Record]:
        """Refuses rows covering time that an earlier import already covers for the same
        line item, publisher, placement and imp type (a second export of the same days)."""
        if not records:
            return records
        start = min(r.key.hour for r in records) - SPAN_MARGIN
        end = max(r.covers_until for r in records) + SPAN_MARGIN
        spans = self._store.spans_between(start, end, {r.key.line_item_id for r in records})
        clashes = earlier_imports([(r.key, r.covers_until) for r in records], spans)
        kept: list[_Record] = []
        for record, clash in zip(records, clashes, strict=True):
            if clash is None:
                kept.append(record)
            else:
                _refuser(result, record.line.line)(
                    "day" if record.line.whole_day and result.granularity == "day" else "hour",
                    f"import {clash} already holds this time for this line item, publisher, "
                    "placement and imp type",
                )
        return kept


@dataclass(frozen=True, slots=True)
class _Placed:
    line: ReportLine
    start: datetime  # UTC hour the counts land in
    end: datetime  # end of the covered time (UTC)


@dataclass(frozen=True, slots=True)
class _Record:
    line: ReportLine
    key: HistoryKey
    covers_until: datetime

    @property
    def counters(self) -> Counters:
        line = self.line
        return Counters(
            imps=line.imps,
            clicks=line.clicks,
            media_cost_micros=line.media_cost_micros,
            booked_revenue_micros=line.booked_revenue_micros,
        )


def _refuser(result: HistoryImportResult, line: int) -> Callable[[str, str], None]:
    def refuse(field_name: str, message: str) -> None:
        result.refused.append(LineRefusal(line, field_name, message))

    return refuse


def _zone(name: str) -> ZoneInfo:
    if not name or not name.strip():
        raise ValidationError("timezone", "is required: the report's time zone, e.g. UTC")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"unknown time zone {name!r}") from None


def _utc_hour_starting_in(local: datetime, tz: ZoneInfo) -> datetime | None:
    """The first whole UTC hour starting at or after local time ``local`` (naive, in ``tz``);
    None when ``local`` does not exist there (clocks moved forward over it)."""
    aware = local.replace(tzinfo=tz)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local:
        return None
    floor = instant.replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + _HOUR


def _span(local: datetime, tz: ZoneInfo, *, whole_day: bool) -> tuple[datetime, datetime] | None:
    """Where a row starting at ``local`` lands and until when it counts (module docstring);
    None for a local hour that does not exist in ``tz``."""
    if not whole_day:
        start = _utc_hour_starting_in(local, tz)
        if start is None:
            return None
        end = _utc_hour_starting_in(local + _HOUR, tz) or start + _HOUR
        return start, max(end, start + _HOUR)
    return _first_utc_hour_of(local, tz), _first_utc_hour_of(local + _DAY, tz)


def _first_utc_hour_of(midnight: datetime, tz: ZoneInfo) -> datetime:
    """The first whole UTC hour starting on the local day beginning at ``midnight`` (a zone
    may skip midnight itself: the day then starts at the first local time that exists)."""
    instant = midnight.replace(tzinfo=tz).astimezone(UTC)
    floor = instant.replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + _HOUR


def _summed(records: Sequence[_Record]) -> list[HistoryRowRecord]:
    """Rows of one key summed (a report broken down by more than adtrack keeps)."""
    sums: dict[HistoryKey, tuple[datetime, Counters]] = {}
    for record in records:
        held = sums.get(record.key)
        counters = record.counters
        sums[record.key] = (
            (record.covers_until, counters)
            if held is None
            else (max(held[0], record.covers_until), held[1].plus(counters))
        )
    return [
        HistoryRowRecord(key, covers_until, counters)
        for key, (covers_until, counters) in sorted(sums.items())
    ]
