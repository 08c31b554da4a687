"""Saved reports: definitions, schedules, and delivery by email through a real SMTP server."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine

from adtrack.adapters.smtp import SmtpMailer
from adtrack.adapters.sql.saved_report_store import SqlSavedReportStore
from adtrack.bootstrap import build_report_engine
from adtrack.domain.errors import NotFound, PermissionDenied, ValidationError
from adtrack.domain.model import Role
from adtrack.reporting.saved_reports import (
    Actor,
    SavedReportService,
    deliver_scheduled_reports,
    latest_occurrence,
)
from adtrack.web.state import state_of
from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    error_fields,
    fast_user_service,
    make_testbed,
)
from tests.support.reporting import TRACKERS, RawEvent, load_rollups, migrated_engine
from tests.support.smtp import SmtpServer

OWNER = Actor(1, Role.REPORTER)
OTHER = Actor(2, Role.TRAFFICKER)
ADMIN = Actor(3, Role.ADMIN)
BERLIN_DEFINITION = {"range": "yesterday", "group_by": ["line_item", "imp_type"]}
X = {"name": "x", "definition": BERLIN_DEFINITION}


@pytest.fixture
def engine(tmp_path: Any) -> Iterator[Engine]:
    with migrated_engine("sqlite", tmp_path) as eng:
        # Yesterday (2026-03-09) and the day before, for "now" = 2026-03-10 in Berlin.
        events = [
            RawEvent(
                datetime(2026, 3, 9, 10, tzinfo=UTC), TRACKERS[0], 2_000_000, 3_000_000, False
            ),
            RawEvent(datetime(2026, 3, 9, 11, tzinfo=UTC), TRACKERS[1], 500_000, 0, False),
            RawEvent(datetime(2026, 3, 8, 11, tzinfo=UTC), TRACKERS[0], 7, 7, False),
        ]
        load_rollups(eng, events)
        users = fast_user_service(eng)
        for actor in (OWNER, OTHER, ADMIN):
            user = users.create_user(
                f"user{actor.user_id}@example.com", Role(actor.role), "quiet lantern 12345678"
            )
            assert user.user.id == actor.user_id
        yield eng


def saved_reports(engine: Engine, **options: Any) -> SavedReportService:
    """The service on ``engine``, with the SQL store and report engine bootstrap gives it."""
    return SavedReportService(SqlSavedReportStore(engine), build_report_engine(engine), **options)


def service(engine: Engine, smtp: SmtpServer | None, now: datetime) -> SavedReportService:
    mailer = SmtpMailer.from_url(smtp.url, "reports@example.com") if smtp else None
    return saved_reports(engine, default_timezone="Europe/Berlin", mailer=mailer, clock=lambda: now)


def test_daily_schedule_sends_once_per_day_with_a_csv_attachment(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    created_at = datetime(2026, 3, 9, 12, tzinfo=UTC)
    svc = service(engine, smtp_server, created_at)
    saved = svc.create(
        OWNER,
        {
            "name": "Daily by line item",
            "definition": BERLIN_DEFINITION,
            "schedule": "daily",
            "hour": 7,
            "recipients": ["a@example.com", "b@example.com"],
        },
    )
    assert saved.timezone == "Europe/Berlin" and saved.owner_id == OWNER.user_id
    # 07:00 in Berlin on 2026-03-10 is 06:00 UTC.
    assert svc.run_due_schedules(datetime(2026, 3, 10, 5, 59, tzinfo=UTC)) == []
    results = svc.run_due_schedules(datetime(2026, 3, 10, 6, 0, tzinfo=UTC))
    assert [(r.report_id, r.status) for r in results] == [(saved.id, "sent")]
    assert svc.run_due_schedules(datetime(2026, 3, 10, 6, 1, tzinfo=UTC)) == []  # once only

    (message,) = smtp_server.messages
    assert message["To"] == "a@example.com, b@example.com"
    assert "Daily by line item" in message["Subject"] and "2026-03-09" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Impressions: 1" in body and "Media cost: 2.500000" in body
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "daily-by-line-item-2026-03-09.csv"
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert rows[0][:5] == ["interval_start", "line_item_id", "line_item", "imp_type_id", "imp_type"]
    assert [r[4] for r in rows[1:-1]] == ["9 External Impression", "10 External Click"]
    assert rows[-1][0] == "Totals"

    after = svc.get(saved.id)
    assert after.last_status == "sent" and after.last_error is None
    assert after.last_sent_at == datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    # The next day's occurrence is due again.
    nxt = svc.run_due_schedules(datetime(2026, 3, 11, 6, 30, tzinfo=UTC))
    assert [r.status for r in nxt] == ["sent"] and len(smtp_server.messages) == 2


def test_weekly_schedule_with_an_xlsx_attachment(engine: Engine, smtp_server: SmtpServer) -> None:
    svc = service(engine, smtp_server, datetime(2026, 3, 4, tzinfo=UTC))  # a Wednesday
    saved = svc.create(
        OWNER,
        {
            "name": "Weekly",
            "definition": {"range": "last_7_days", "interval": "cumulative"},
            "schedule": "weekly",
            "weekday": 1,  # Tuesday
            "hour": 9,
            "timezone": "UTC",
            "recipients": ["boss@example.com"],
            "attachment_format": "xlsx",
        },
    )
    scheduler = saved_reports(engine, mailer=svc._mailer)
    monday = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert scheduler.run_due_schedules(monday) == []  # last Tuesday predates it
    tuesday = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert [r.status for r in scheduler.run_due_schedules(tuesday)] == ["sent"]
    (message,) = smtp_server.messages
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename().endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(attachment.get_content())).active
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    assert values[1][header.index("imps")] == 2  # Mar 8 and Mar 9
    assert svc.get(saved.id).last_status == "sent"


def test_failed_delivery_is_recorded(engine: Engine, refusing_smtp_server: SmtpServer) -> None:
    svc = service(engine, refusing_smtp_server, datetime(2026, 3, 1, tzinfo=UTC))
    saved = svc.create(
        OWNER,
        {
            "name": "Refused",
            "definition": BERLIN_DEFINITION,
            "schedule": "daily",
            "hour": 0,
            "recipients": ["x@example.com"],
        },
    )
    (result,) = svc.run_due_schedules(datetime(2026, 3, 10, 12, tzinfo=UTC))
    assert result.status == "failed" and result.error and "550" in result.error
    after = svc.get(saved.id)
    assert after.last_status == "failed" and "550" in (after.last_error or "")


def test_owner_or_admin_change_and_delete(engine: Engine) -> None:
    svc = service(engine, None, datetime(2026, 3, 1, tzinfo=UTC))
    saved = svc.create(OWNER, {"name": "Mine", "definition": BERLIN_DEFINITION})
    with pytest.raises(PermissionDenied):
        svc.update(OTHER, saved.id, {"name": "Theirs"})
    assert svc.update(OWNER, saved.id, {"name": "Still mine"}).name == "Still mine"
    assert svc.update(ADMIN, saved.id, {"hour": 5}).hour == 5
    with pytest.raises(PermissionDenied):
        svc.delete(OTHER, saved.id)
    svc.delete(ADMIN, saved.id)
    with pytest.raises(NotFound):
        svc.get(saved.id)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"definition": BERLIN_DEFINITION}, "name"),
        ({"name": "x", "definition": {"range": "forever"}}, "definition.range"),
        ({"name": "x", "definition": {"start": "2026-01-01"}}, "definition.end"),
        (
            {"name": "x", "definition": {"range": "yesterday", "country": "Germany"}},
            "definition.country",
        ),
        (
            {"name": "x", "definition": {"range": "yesterday", "group_by": ["os", "tracker"]}},
            "definition.group_by",
        ),
        ({"name": "x", "definition": BERLIN_DEFINITION, "schedule": "hourly"}, "schedule"),
        ({"name": "x", "definition": BERLIN_DEFINITION, "schedule": "daily"}, "recipients"),
        (
            {
                "name": "x",
                "definition": BERLIN_DEFINITION,
                "schedule": "weekly",
                "recipients": ["a@b.cd"],
            },
            "weekday",
        ),
        (
            {"name": "x", "definition": BERLIN_DEFINITION, "recipients": ["not-an-address"]},
            "recipients[0]",
        ),
        ({"name": "x", "definition": BERLIN_DEFINITION, "hour": 24}, "hour"),
        ({"name": "x", "definition": BERLIN_DEFINITION, "timezone": "Moon/Base"}, "timezone"),
        (
            {"name": "x", "definition": BERLIN_DEFINITION, "attachment_format": "pdf"},
            "attachment_format",
        ),
        (
            {"name": "x", "definition": BERLIN_DEFINITION, "attachment_format": ["csv"]},
            "attachment_format",
        ),
        ({"name": "x", "definition": BERLIN_DEFINITION, "colour": "red"}, "colour"),
    ],
)
def test_bad_definitions_name_the_field(engine: Engine, data: dict[str, Any], field: str) -> None:
    svc = service(engine, None, datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(ValidationError) as info:
        svc.create(OWNER, data)
    assert info.value.field == field


def test_a_definition_by_audience_is_kept_as_given(engine: Engine) -> None:
    svc = service(engine, None, datetime(2026, 3, 1, tzinfo=UTC))
    definition = {"range": "yesterday", "group_by": ["country", "line_item"], "country": "us,fr"}
    saved = svc.create(OWNER, {"name": "By country", "definition": definition})
    assert svc.get(saved.id).definition == definition


def test_occurrences_on_dst_days() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: the delivery happens at 03:30 local (01:30 UTC).
    at = latest_occurrence("daily", None, 2, "Europe/Berlin", datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert at == datetime(2026, 3, 29, 1, tzinfo=UTC)
    # 01:00 happens twice in New York on 2026-11-01: the first one (05:00 UTC) counts.
    at = latest_occurrence(
        "daily", None, 1, "America/New_York", datetime(2026, 11, 1, 12, tzinfo=UTC)
    )
    assert at == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert latest_occurrence("none", None, 1, "UTC", datetime(2026, 11, 1, tzinfo=UTC)) is None


# ---------------------------------------------------------------------------------------------
# Over HTTP
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def api(sqlite_url: str, tmp_path: Any, smtp_server: SmtpServer) -> Iterator[ApiTestbed]:
    for testbed in make_testbed(sqlite_url, tmp_path):
        state = state_of(testbed.app)
        state.services = replace(
            state.services,
            saved_reports=saved_reports(
                testbed.engine,
                mailer=SmtpMailer.from_url(smtp_server.url, "reports@example.com"),
            ),
        )
        yield testbed


def test_saved_reports_over_http(api: ApiTestbed, smtp_server: SmtpServer) -> None:
    body = {
        "name": "Yesterday",
        "definition": {"range": "yesterday", "group_by": ["imp_type"]},
        "recipients": ["team@example.com"],
    }
    created = api.reporter.post(f"{API}/saved-reports", json=body)
    assert created.status_code == 201, created.text
    saved = created.json()
    assert created.headers["location"] == f"{API}/saved-reports/{saved['id']}"
    assert saved["schedule"] == "none" and saved["recipients"] == ["team@example.com"]

    listed = api.trafficker.get(f"{API}/saved-reports").json()["items"]
    assert [s["id"] for s in listed] == [saved["id"]]
    assert api.admin.get(f"{API}/saved-reports/{saved['id']}").json()["name"] == "Yesterday"

    refused = api.trafficker.patch(f"{API}/saved-reports/{saved['id']}", json={"name": "Mine now"})
    assert refused.status_code == 403
    changed = api.reporter.patch(
        f"{API}/saved-reports/{saved['id']}", json={"schedule": "weekly", "weekday": 0}
    )
    assert changed.status_code == 200 and changed.json()["weekday"] == 0

    run = api.reporter.get(f"{API}/saved-reports/{saved['id']}/run", params={"format": "csv"})
    assert run.status_code == 200 and run.text.startswith("interval_start,imp_type_id,imp_type")

    sent = api.reporter.post(f"{API}/saved-reports/{saved['id']}/send")
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"id": saved["id"], "status": "sent"}
    assert len(smtp_server.messages) == 1
    assert api.reporter.get(f"{API}/saved-reports/{saved['id']}").json()["last_status"] == "sent"

    bad = api.reporter.post(f"{API}/saved-reports", json={**body, "definition": {"range": "never"}})
    assert bad.status_code == 422 and error_fields(bad) == ["definition.range"]
    assert api.reporter.get(f"{API}/saved-reports/999").status_code == 404
    assert TestClient(api.app).get(f"{API}/saved-reports").status_code == 401

    assert api.reporter.delete(f"{API}/saved-reports/{saved['id']}").status_code == 204
    assert api.reporter.get(f"{API}/saved-reports").json()["items"] == []


def test_yesterday_is_computed_at_delivery_time(engine: Engine, smtp_server: SmtpServer) -> None:
    svc = service(engine, smtp_server, datetime(2026, 3, 10, 12, tzinfo=UTC))
    saved = svc.create(OWNER, {"name": "Y", "definition": BERLIN_DEFINITION})
    assert svc.run(saved.id).totals.imps == 1  # Mar 9
    assert svc.run(saved.id, now=datetime(2026, 3, 9, 12, tzinfo=UTC)).totals.imps == 1  # Mar 8
    assert svc.run(saved.id, now=datetime(2026, 3, 12, tzinfo=UTC)).totals.imps == 0


def test_the_scheduler_loop_delivers_due_reports(engine: Engine, smtp_server: SmtpServer) -> None:
    svc = service(engine, smtp_server, datetime.now(UTC) - timedelta(days=3))
    svc.create(
        OWNER,
        {**X, "schedule": "daily", "hour": 0, "timezone": "UTC", "recipients": ["a@example.com"]},
    )
    mailer = SmtpMailer.from_url(smtp_server.url, "reports@example.com")

    async def run() -> None:
        task = asyncio.create_task(
            deliver_scheduled_reports(saved_reports(engine, mailer=mailer), interval_seconds=0.05)
        )
        try:
            await asyncio.to_thread(smtp_server.wait_for_messages, 1, 10)
            await asyncio.sleep(0.3)  # more rounds: the occurrence is not sent twice
        finally:
            task.cancel()

    asyncio.run(run())
    assert len(smtp_server.messages) == 1
