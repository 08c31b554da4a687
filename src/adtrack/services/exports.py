"""Exporting trackers as tags: choose trackers and options, get tag rows now or by email.

``ExportService.build`` checks a request (``export_request.py``) against the catalogue and
renders one ``TagRow`` per tracker. ``ExportService.queue_email`` checks it the same way, then
stores an export (status ``queued``) that the background delivery worker
(``export_delivery.py``) sends; its status is read back with ``get_export``. A queued export is
rendered again when it is sent, from the stored request, so the mail shows the catalogue as it
is then.

``ExportService.download`` gives an export as a file: a tag sheet (TXT, CSV, XLSX) or the tag
map, each tracker's tag on the original platform next to the tag that replaces it
(``tag_map.py``).

Format per tracker type (the request's ``format`` applies where it fits):

========================  =========================  ========================
requested ``format``       impression trackers        click trackers
========================  =========================  ========================
none                      ``pixel``                  ``url``
``javascript``            ``javascript``             ``url``
``pixel``                 ``pixel``                  ``url``
``url``                   ``url``                    ``url``
``anchor``                ``pixel``                  ``anchor``
========================  =========================  ========================
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from adtrack.domain.errors import NotFound, ValidationError
from adtrack.domain.macro_presets import Macro, Preset, get_preset
from adtrack.domain.model import Tracker, TrackerType
from adtrack.domain.tags import (
    TrackerTagData,
    effective_format,
    local_host_warning,
    normalise_public_url,
    render_tag,
)
from adtrack.domain.utc import utc_now
from adtrack.services.catalogue import CatalogueService
from adtrack.services.export_request import Delivery, ExportRequest
from adtrack.services.pixel_tags import PixelTags, pixel_tags
from adtrack.services.ports import Attachment, ExportRecord, ExportStatus, ExportStore, MailMessage
from adtrack.services.tag_map import TagMapRow, parse_old_host, render_tag_map, tag_map_rows
from adtrack.services.tag_sheets import RenderedSheet, SheetKind, TagRow, render_sheet, to_text

__all__ = [
    "DownloadedSheet",
    "ExportResult",
    "ExportService",
    "QueuedExport",
    "RetryPolicy",
    "TagMapResult",
]


@dataclass
class ExportResult:
    rows: list[TagRow]
    warnings: list[str] = field(default_factory=list)

    def tags_json(self) -> list[dict[str, str | int | None]]:
        """The API's ``tags`` list."""
        return [
            {
                "tracker_id": r.tracker_id,
                "tracker_type": r.tracker_type.value,
                "name": r.name,
                "code": r.code,
                "line_item_id": r.line_item_id,
                "line_item": r.line_item,
                "publisher_id": r.publisher_id,
                "publisher": r.publisher,
                "placement_id": r.placement_id,
                "placement": r.placement,
                "tag": r.tag,
            }
            for r in self.rows
        ]


@dataclass
class TagMapResult:
    rows: list[TagMapRow]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DownloadedSheet:
    """An export as a file, with how many rows it holds and what to check before using it."""

    sheet: RenderedSheet
    rows: int
    warnings: list[str]


# --- stored email exports -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedExport:
    record: ExportRecord
    warnings: list[str]


@dataclass(frozen=True)
class RetryPolicy:
    """Temporary failures are retried after ``base_delay``, doubling up to ``max_delay``, until
    ``max_attempts`` attempts were made; then the export fails with the last reason."""

    max_attempts: int = 6
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=30)
    # A "sending" export untouched this long belongs to a worker that died: retry it.
    stale_after: timedelta = timedelta(minutes=10)

    def delay_after(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt."""
        factor: int = 2 ** min(max(0, attempts - 1), 30)
        delay: timedelta = self.base_delay * factor
        return min(delay, self.max_delay)


# --- the service --------------------------------------------------------------------------------


class ExportService:
    def __init__(
        self,
        catalogue: CatalogueService,
        public_url: str,
        *,
        store: ExportStore | None = None,
        email_enabled: bool = False,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.catalogue = catalogue
        self.public_url = public_url
        self.store = store
        self.email_enabled = email_enabled and store is not None
        self.retry = retry or RetryPolicy()
        self.clock = clock

    # rendering

    def build(self, request: ExportRequest) -> ExportResult:
        """Check every selected tracker exists (live, of the right type) and render its tag.

        Raises ``NotFound`` naming the field and listing every id that is not there.
        """
        request.check()
        options = request.options(normalise_public_url(self.public_url))
        impressions = self._trackers(request.impression_tracker_ids, TrackerType.IMPRESSION)
        clicks = self._trackers(request.click_tracker_ids, TrackerType.CLICK)
        names = _NameCache(self.catalogue)
        rows = []
        for tracker in (*impressions, *clicks):
            tag = render_tag(
                TrackerTagData(tracker.id, tracker.tracker_type, tracker.name, tracker.code),
                options,
            )
            rows.append(
                TagRow(
                    tracker_id=tracker.id,
                    tracker_type=tracker.tracker_type,
                    name=tracker.name,
                    code=tracker.code,
                    line_item_id=tracker.line_item_id,
                    line_item=names.line_item(tracker.line_item_id),
                    publisher_id=tracker.publisher_id,
                    publisher=names.publisher(tracker.publisher_id),
                    placement_id=tracker.placement_id,
                    placement=(
                        names.placement(tracker.placement_id)
                        if tracker.placement_id is not None
                        else None
                    ),
                    tag=tag,
                )
            )
        return ExportResult(rows=rows, warnings=self._warnings(request, [*impressions, *clicks]))

    def pixel_tags(self, pixel_id: int, *, use_code: bool = False) -> PixelTags:
        """A conversion pixel's tags on this deployment's tag host (``pixel_tags.py``);
        ``NotFound`` when the pixel is unknown or deleted."""
        return pixel_tags(self.catalogue, self.public_url, pixel_id, use_code=use_code)

    def tag_map(self, request: ExportRequest, old_host: str | None = None) -> TagMapResult:
        """Each selected tracker's old tag (as the original platform exported it from
        ``old_host``, ``secure.adnxs.com`` by default) next to its new tag; checked like
        ``build``. One row per tracker and format (``tag_map.py``)."""
        request.check()
        old_base_url = parse_old_host(old_host)
        options = request.options(normalise_public_url(self.public_url))
        trackers = [
            *self._trackers(request.impression_tracker_ids, TrackerType.IMPRESSION),
            *self._trackers(request.click_tracker_ids, TrackerType.CLICK),
        ]
        warnings = self._warnings(request, trackers)
        no_original = [t.id for t in trackers if t.original_id is None]
        if no_original:
            warnings.append(
                "tracker(s) without an original id: their old tag uses their own id: "
                + ", ".join(str(i) for i in no_original)
            )
        return TagMapResult(tag_map_rows(trackers, options, old_base_url), warnings)

    def download(
        self, request: ExportRequest, kind: SheetKind, *, old_host: str | None = None
    ) -> DownloadedSheet:
        """The export as a file of ``kind``; ``old_host`` applies to the tag map only."""
        if kind is SheetKind.TAG_MAP:
            tag_map = self.tag_map(request, old_host)
            sheet = render_tag_map(tag_map.rows, self.clock())
            return DownloadedSheet(sheet, len(tag_map.rows), tag_map.warnings)
        if old_host is not None:
            raise ValidationError("old_host", "only applies to the tag map (download 'tag-map')")
        result = self.build(request)
        sheet = render_sheet(result.rows, kind, self.clock())
        return DownloadedSheet(sheet, len(result.rows), result.warnings)

    def _trackers(self, ids: Sequence[int], tracker_type: TrackerType) -> list[Tracker]:
        found: list[Tracker] = []
        missing: list[int] = []
        for tracker_id in ids:
            try:
                found.append(self.catalogue.trackers.get(tracker_id, tracker_type))
            except NotFound:
                missing.append(tracker_id)
        if missing:
            field_name = (
                "impression_tracker_ids"
                if tracker_type is TrackerType.IMPRESSION
                else "click_tracker_ids"
            )
            listed = ", ".join(str(i) for i in missing)
            raise NotFound(
                field_name,
                f"no live {tracker_type.value} tracker with id {listed} "
                "(unknown, deleted, or of the other type)",
            )
        return found

    def _warnings(self, request: ExportRequest, trackers: Iterable[Tracker]) -> list[str]:
        warnings: list[str] = []
        local = local_host_warning(self.public_url)
        if local is not None:
            warnings.append(local)
        preset = get_preset(request.preset)
        if request.preset is not Preset.GENERIC:
            kept = sorted(m.value for m in request.macros if m not in preset.native)
            if kept:
                placeholders = ", ".join(f"[{name}]" for name in kept)
                warnings.append(
                    f"{preset.label} has no macro for {', '.join(kept)}: replace "
                    f"{placeholders} in the tags by hand (ancost: the cost you pay per "
                    "impression or click, e.g. 0.0025)"
                )
        if request.delivery is Delivery.NOW and request.emails:
            warnings.append("emails were ignored: delivery is 'now'")
        trackers = list(trackers)
        if request.use_code:
            no_code = [t.id for t in trackers if not t.code]
            if no_code:
                warnings.append(
                    "tracker(s) without a code were exported with id=: "
                    + ", ".join(str(i) for i in no_code)
                )
        if Macro.REDIRECT_URL not in request.macros:
            lost = [
                t.id
                for t in trackers
                if t.tracker_type is TrackerType.CLICK and not t.landing_page_url
            ]
            if lost:
                warnings.append(
                    "click tracker(s) with no landing page and no REDIRECT_URL macro: a click "
                    "will land on a plain 'click recorded' page: " + ", ".join(str(i) for i in lost)
                )
        requested = request.format
        if requested is not None:
            for tracker_type in (TrackerType.IMPRESSION, TrackerType.CLICK):
                has_type = any(t.tracker_type is tracker_type for t in trackers)
                used = effective_format(tracker_type, requested)
                if has_type and used is not requested:
                    warnings.append(
                        f"format {requested.value!r} does not apply to {tracker_type.value} "
                        f"trackers: they were exported as {used.value!r}"
                    )
        return warnings

    # email

    def queue_email(self, request: ExportRequest, created_by: int | None = None) -> QueuedExport:
        """Check the request like ``build`` does, then store it for the delivery worker."""
        if request.delivery is not Delivery.EMAIL:
            raise ValidationError("delivery", "must be 'email' to queue an email export")
        if not self.email_enabled or self.store is None:
            raise ValidationError(
                "delivery", "email delivery is not set up on this server (ADTRACK_SMTP_URL)"
            )
        result = self.build(request)  # refuse unknown ids now rather than fail later
        now = self.clock()
        record = ExportRecord(
            id=str(uuid.uuid4()),
            status=ExportStatus.QUEUED,
            recipients=list(request.emails),
            request=request.to_json(),
            attempts=0,
            error=None,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        self.store.add(record)
        return QueuedExport(record=record, warnings=result.warnings)

    def get_export(self, export_id: str) -> ExportRecord:
        record = self.store.get(export_id) if self.store is not None else None
        if record is None:
            raise NotFound("export_id", f"no export with id {export_id}")
        return record

    def due(self, limit: int = 20) -> list[ExportRecord]:
        """Queued exports whose back-off has passed, oldest first."""
        if self.store is None:
            return []
        now = self.clock()
        return [
            r
            for r in self.store.queued(limit)
            if r.attempts == 0 or now >= r.updated_at + self.retry.delay_after(r.attempts)
        ]

    def message_for(self, record: ExportRecord) -> MailMessage:
        """Render the stored request again and wrap the tags and sheets into a message."""
        request = ExportRequest.from_mapping(record.request)
        result = self.build(request)
        now = self.clock()
        n_imp = sum(1 for r in result.rows if r.tracker_type is TrackerType.IMPRESSION)
        n_clk = len(result.rows) - n_imp
        lines = [
            f"Tags for {n_imp} impression tracker(s) and {n_clk} click tracker(s), "
            f"exported {now.strftime('%Y-%m-%d %H:%M UTC')}.",
            f"Ad-server preset: {get_preset(request.preset).label}.",
            "The same tags are attached as a CSV and an XLSX sheet.",
            "",
        ]
        if result.warnings:
            lines += ["Warnings:", *(f"- {w}" for w in result.warnings), ""]
        lines.append(to_text(result.rows))
        attachments = tuple(
            Attachment(sheet.filename, sheet.media_type.split(";")[0], sheet.data)
            for sheet in (
                render_sheet(result.rows, SheetKind.CSV, now),
                render_sheet(result.rows, SheetKind.XLSX, now),
            )
        )
        return MailMessage(
            recipients=tuple(record.recipients),
            subject=f"adtrack tags: {len(result.rows)} tracker(s)",
            text_body="\n".join(lines),
            attachments=attachments,
        )


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _NameCache:
    """Names of line items, publishers and placements, fetched once per export."""

    def __init__(self, catalogue: CatalogueService) -> None:
        self._catalogue = catalogue
        self._cache: dict[tuple[str, int], str] = {}

    def _get(self, kind: str, object_id: int, fetch: Callable[[int], _Named]) -> str:
        key = (kind, object_id)
        if key not in self._cache:
            try:
                self._cache[key] = fetch(object_id).name
            except NotFound:
                self._cache[key] = ""  # deleted since: the id column still says which
        return self._cache[key]

    def line_item(self, object_id: int) -> str:
        return self._get("line_item", object_id, self._catalogue.line_items.get)

    def publisher(self, object_id: int) -> str:
        return self._get("publisher", object_id, self._catalogue.publishers.get)

    def placement(self, object_id: int) -> str:
        return self._get("placement", object_id, self._catalogue.placements.get)
