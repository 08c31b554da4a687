"""Saved report definitions and their scheduled delivery by email.

A saved report holds the parameters of a report (``definition``: the same keys as
``GET /api/v1/reports``; use ``range`` -- ``yesterday``, ``last_7_days``... -- so a scheduled
report covers a fresh period each time) and, optionally, a schedule:

- ``daily``: every day at ``hour`` (0-23) in the schedule's ``timezone``;
- ``weekly``: every ``weekday`` (0 Monday .. 6 Sunday) at ``hour``.

``run_due_schedules(now)`` (``adtrack serve`` calls it every minute) sends each report whose latest
scheduled time has passed and was not sent since. A report is claimed with a conditional UPDATE
before it is sent, so two processes never send the same occurrence twice. Outages are not
caught up one by one: after downtime, the latest missed occurrence is sent once. A failed send
is recorded (``last_status = "failed"``, ``last_error``) and retried at the next occurrence;
``send_now`` (``POST /api/v1/saved-reports/{id}/send``) delivers at once.

Anyone signed in may read and create saved reports; changing or deleting one is for its owner
and admins.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from adtrack.domain.errors import DomainError, NotFound, PermissionDenied, ValidationError
from adtrack.domain.model import Role
from adtrack.domain.money import format_micros
from adtrack.domain.utc import utc_now
from adtrack.reporting import formats
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.request import parse_report_request
from adtrack.reporting.results import Report
from adtrack.reporting.saved_report_fields import ATTACHMENT_FORMATS, check_fields, check_schedule
from adtrack.services.ports import (
    Attachment,
    MailDeliveryError,
    Mailer,
    MailMessage,
    SavedReport,
    SavedReportStore,
)

__all__ = [
    "Actor",
    "DeliveryResult",
    "SavedReport",
    "SavedReportService",
    "build_message",
    "deliver_scheduled_reports",
    "latest_occurrence",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who is asking: the user's id and role (``None`` for the system, e.g. the scheduler)."""

    user_id: int | None
    role: Role | str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is not None and Role(self.role) is Role.ADMIN


def latest_occurrence(
    schedule: str, weekday: int | None, hour: int, timezone: str, now: datetime
) -> datetime | None:
    """The latest scheduled time at or before ``now`` (aware UTC), or None for no schedule.

    A local delivery time that does not exist on a DST day falls to the first instant after
    the gap; a repeated one means its first occurrence.
    """
    if schedule == "none":
        return None
    tz = ZoneInfo(timezone)
    local_today = now.astimezone(tz).date()
    for back in range(0, 8):
        day: date = local_today - timedelta(days=back)
        if schedule == "weekly" and day.weekday() != weekday:
            continue
        at = datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)
        if at <= now:
            return at
    return None


@dataclass(frozen=True)
class DeliveryResult:
    report_id: int
    status: str  # sent | failed
    error: str | None = None


class SavedReportService:
    def __init__(
        self,
        store: SavedReportStore,
        reports: ReportEngine,
        *,
        default_timezone: str = "UTC",
        mailer: Mailer | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._reports = reports
        self._default_timezone = default_timezone
        self._mailer = mailer
        self._clock = clock

    # -- CRUD ------------------------------------------------------------------------------

    def create(self, actor: Actor, data: Mapping[str, object]) -> SavedReport:
        values = check_fields(data, self._default_timezone, partial=False)
        values.setdefault("weekday", None)
        check_schedule(values["schedule"], values["weekday"], values["recipients"])
        now = self._clock()
        new_id = self._store.insert(
            {**values, "owner_id": actor.user_id, "created_at": now, "last_modified": now}
        )
        return self.get(new_id)

    def get(self, report_id: int) -> SavedReport:
        saved = self._store.get(report_id)
        if saved is None:
            raise NotFound("id", f"saved report {report_id} does not exist")
        return saved

    def list_all(self) -> list[SavedReport]:
        return self._store.list_all()

    def _check_may_change(self, actor: Actor, report: SavedReport) -> None:
        if actor.is_admin or (actor.user_id is not None and actor.user_id == report.owner_id):
            return
        raise PermissionDenied("id", "only the report's owner or an admin may change it")

    def update(self, actor: Actor, report_id: int, changes: Mapping[str, object]) -> SavedReport:
        current = self.get(report_id)
        self._check_may_change(actor, current)
        values = check_fields(changes, self._default_timezone, partial=True)
        check_schedule(
            values.get("schedule", current.schedule),
            values.get("weekday", current.weekday),
            values.get("recipients", current.recipients),
        )
        self._store.update(report_id, {**values, "last_modified": self._clock()})
        return self.get(report_id)

    def delete(self, actor: Actor, report_id: int) -> None:
        current = self.get(report_id)
        self._check_may_change(actor, current)
        self._store.delete(report_id)

    # -- running and delivering ------------------------------------------------------------

    def run(self, report_id: int, now: datetime | None = None) -> Report:
        """Run the saved definition now (relative ranges resolve against ``now``)."""
        saved = self.get(report_id)
        request = parse_report_request(
            saved.definition, default_timezone=self._default_timezone, now=now or self._clock()
        )
        return self._reports.run(request)

    def send_now(self, report_id: int) -> DeliveryResult:
        """Deliver the report at once to its recipients (no schedule needed)."""
        saved = self.get(report_id)
        if not saved.recipients:
            raise ValidationError("recipients", "the report has no recipients")
        if self._mailer is None:
            raise ValidationError("email", "email is not configured (set ADTRACK_SMTP_URL)")
        now = self._clock()
        self._store.set_sent(report_id, now)
        return self._deliver(saved, now)

    def run_due_schedules(self, now: datetime | None = None) -> list[DeliveryResult]:
        """Send every scheduled report that is due at ``now``; returns what was attempted."""
        now = (now or self._clock()).astimezone(UTC)
        if self._mailer is None:
            return []
        results = []
        for saved in self.list_all():
            occurrence = latest_occurrence(
                saved.schedule, saved.weekday, saved.hour, saved.timezone, now
            )
            if occurrence is None or occurrence < saved.created_at:
                continue
            if saved.last_sent_at is not None and saved.last_sent_at >= occurrence:
                continue
            if not self._store.claim(saved.id, occurrence, now):
                continue  # another process took it
            results.append(self._deliver(saved, now))
        return results

    def _deliver(self, saved: SavedReport, now: datetime) -> DeliveryResult:
        assert self._mailer is not None
        try:
            request = parse_report_request(
                saved.definition, default_timezone=self._default_timezone, now=now
            )
            report = self._reports.run(request)
            message = build_message(saved, report)
            self._mailer.send(message)
            result = DeliveryResult(saved.id, "sent")
        except (MailDeliveryError, DomainError) as exc:
            reason = exc.reason if isinstance(exc, MailDeliveryError) else str(exc)
            log.warning("saved report %s was not delivered: %s", saved.id, reason)
            result = DeliveryResult(saved.id, "failed", reason)
        except Exception as exc:  # a scheduler must record the failure and go on
            log.exception("saved report %s failed", saved.id)
            result = DeliveryResult(saved.id, "failed", f"{type(exc).__name__}: {exc}")
        self._store.set_status(saved.id, result.status, result.error)
        return result


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return slug[:60] or "report"


def build_message(saved: SavedReport, report: Report) -> MailMessage:
    """The email: a short summary in the body and the report attached as CSV or XLSX."""
    request = report.request
    start, end = request.start.date().isoformat(), request.end.date().isoformat()
    fmt = saved.attachment_format
    if fmt == "xlsx":
        data = formats.to_xlsx(report, sheet_title=saved.name)
    else:
        data = formats.to_csv(report).encode()
    totals = report.totals
    body = "\n".join(
        [
            f"{saved.name}",
            f"Period: {request.start.isoformat()} to {request.end.isoformat()} "
            f"({request.timezone}), by {request.interval.value}",
            "",
            f"Impressions: {totals.imps}",
            f"Clicks: {totals.clicks}",
            f"Invalid impressions: {totals.invalid_imps}",
            f"Invalid clicks: {totals.invalid_clicks}",
            f"Media cost: {format_micros(totals.media_cost_micros)}",
            f"Booked revenue: {format_micros(totals.booked_revenue_micros)}",
            f"Profit: {format_micros(totals.profit_micros)}",
            "",
            f"{len(report.rows)} rows attached ({fmt.upper()}).",
        ]
    )
    return MailMessage(
        recipients=saved.recipients,
        subject=f"adtrack report: {saved.name} ({start} to {end})",
        text_body=body + "\n",
        attachments=(
            Attachment(
                filename=f"{_slug(saved.name)}-{start}.{fmt}",
                media_type=ATTACHMENT_FORMATS[fmt],
                data=data,
            ),
        ),
    )


async def deliver_scheduled_reports(
    service: SavedReportService, *, interval_seconds: float = 60
) -> None:
    """Call ``service.run_due_schedules`` every ``interval_seconds`` (in a worker thread) until
    cancelled; ``adtrack serve`` starts it with ``asyncio.create_task`` when mail is
    configured."""
    while True:
        try:
            await asyncio.to_thread(service.run_due_schedules)
        except Exception:  # the next round tries again; the loop must not die
            log.exception("scheduled report delivery failed")
        await asyncio.sleep(interval_seconds)
