"""The export service: selection checks, rows, sheets, and email delivery against a real SMTP
server (aiosmtpd) — accepted, refused (550), temporarily refused (451), down, with credentials."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import Engine

from adtrack.adapters.smtp import SmtpMailer, parse_smtp_url
from adtrack.adapters.sql.export_store import SqlExportStore
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.domain.errors import DomainError, NotFound, ValidationError
from adtrack.services.catalogue import CatalogueService
from adtrack.services.export_delivery import ExportDelivery, ExportDeliveryWorker
from adtrack.services.export_request import Delivery, ExportRequest
from adtrack.services.exports import ExportService, RetryPolicy
from adtrack.services.ports import ExportStatus
from adtrack.services.tag_sheets import SheetKind, render_sheet, to_csv, to_text, to_xlsx
from tests.support.exports import ExportWorld, make_world
from tests.support.net import free_port
from tests.support.smtp import PERMANENT_REFUSAL, SmtpServer

PUBLIC = "https://track.example.com"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=timedelta(0), max_delay=timedelta(0))


@pytest.fixture
def catalogue(engine: Engine) -> CatalogueService:
    return CatalogueService(lambda: SqlUnitOfWork(engine))


@pytest.fixture
def world(catalogue: CatalogueService) -> ExportWorld:
    return make_world(catalogue)


def service_for(
    catalogue: CatalogueService,
    engine: Engine,
    public_url: str = PUBLIC,
    retry: RetryPolicy = FAST_RETRY,
) -> ExportService:
    return ExportService(
        catalogue, public_url, store=SqlExportStore(engine), email_enabled=True, retry=retry
    )


def request(world: ExportWorld, **overrides: Any) -> ExportRequest:
    body: dict[str, Any] = {
        "impression_tracker_ids": [world.imp_coded.id, world.imp_plain.id],
        "click_tracker_ids": [world.click_landing.id, world.click_bare.id],
        "format": "pixel",
        "macros": ["CACHEBUSTER", "ANCOST", "REDIRECT_URL"],
        "preset": "generic",
    }
    body.update(overrides)
    return ExportRequest.from_mapping(body)


def refusal(call: Any, exc_type: type[DomainError], field: str) -> DomainError:
    with pytest.raises(exc_type) as err:
        call()
    assert err.value.field == field, err.value
    return err.value


# --- building rows -------------------------------------------------------------------------------


def test_build_renders_one_row_per_tracker_in_request_order(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    result = service_for(catalogue, engine).build(request(world, use_code=True))
    rows = result.rows
    assert [r.tracker_id for r in rows] == [
        world.imp_coded.id,
        world.imp_plain.id,
        world.click_landing.id,
        world.click_bare.id,
    ]
    first = rows[0]
    assert (first.line_item, first.publisher, first.placement) == (
        "Acme spring",
        "Daily News",
        "Top banner",
    )
    assert first.placement_id == world.placement_id
    assert rows[1].placement_id is None and rows[1].placement is None
    assert first.tag == (
        "<!-- Imp Tracker - Spring &lt;banner&gt; --&gt; - DO NOT MODIFY -->"
        '<img src="https://track.example.com/imptr?code=SPRING%2F1%26co%3D%C3%A9'
        '&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&t=2&redir=[REDIRECT_URL]" width="1" '
        'height="1" /><!-- End of Imp Tracker -->'
    )
    # format 'pixel' does not apply to click trackers: they get their default, the bare URL
    assert rows[2].tag == (
        "https://track.example.com/clktrb?code=CLIK-1&cachebuster=[CACHEBUSTER]"
        "&ancost=[ANCOST]&redir=[REDIRECT_URL]"
    )
    assert rows[3].tag.startswith(f"https://track.example.com/clktrb?id={world.click_bare.id}&")
    assert any("'pixel' does not apply to click" in w for w in result.warnings)
    assert any("without a code" in w and str(world.imp_plain.id) in w for w in result.warnings)
    assert not any("localhost" in w or "only this machine" in w for w in result.warnings)
    json_tags = result.tags_json()
    assert json_tags[0]["tracker_type"] == "impression" and json_tags[0]["code"] == "SPRING/1&co=é"


def test_warnings_for_localhost_presets_and_lost_clicks(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    service = service_for(catalogue, engine, public_url="http://localhost:8001")
    result = service.build(request(world, preset="gam", macros=["ANCOST"], format="anchor"))
    text = "\n".join(result.warnings)
    assert "only this machine can reach" in text and "ADTRACK_PUBLIC_URL" in text
    assert "Google Ad Manager has no macro for ANCOST" in text
    assert "no landing page and no REDIRECT_URL macro: a click will land on a plain" in text
    assert (
        str(world.click_bare.id) in text
        and str(world.click_landing.id) not in text.split("plain 'click recorded' page: ")[1]
    )
    assert "'anchor' does not apply to impression" in text


def test_unknown_deleted_and_wrong_type_ids_are_named(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    service = service_for(catalogue, engine)
    catalogue.trackers.delete(world.imp_plain.id)
    err = refusal(
        lambda: service.build(
            request(world, impression_tracker_ids=[world.imp_coded.id, world.imp_plain.id, 999])
        ),
        NotFound,
        "impression_tracker_ids",
    )
    assert f"{world.imp_plain.id}, 999" in err.message and err.status == 404
    err = refusal(
        lambda: service.build(
            request(world, impression_tracker_ids=[], click_tracker_ids=[world.imp_coded.id])
        ),
        NotFound,
        "click_tracker_ids",
    )
    assert str(world.imp_coded.id) in err.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "impression_tracker_ids"),
        ({"impression_tracker_ids": [], "click_tracker_ids": []}, "impression_tracker_ids"),
        ({"impression_tracker_ids": "1"}, "impression_tracker_ids"),
        ({"impression_tracker_ids": [1, "2"]}, "impression_tracker_ids[1]"),
        ({"impression_tracker_ids": [True]}, "impression_tracker_ids[0]"),
        ({"click_tracker_ids": [0]}, "click_tracker_ids[0]"),
        ({"impression_tracker_ids": [1], "format": "iframe"}, "format"),
        ({"impression_tracker_ids": [1], "format": 3}, "format"),
        ({"impression_tracker_ids": [1], "macros": ["CB"]}, "macros"),
        ({"impression_tracker_ids": [1], "macros": "CACHEBUSTER"}, "macros"),
        ({"impression_tracker_ids": [1], "preset": "dfp"}, "preset"),
        ({"impression_tracker_ids": [1], "use_code": "yes"}, "use_code"),
        ({"impression_tracker_ids": [1], "delivery": "fax"}, "delivery"),
        ({"impression_tracker_ids": [1], "delivery": "email"}, "emails"),
        ({"impression_tracker_ids": [1], "delivery": "email", "emails": []}, "emails"),
        ({"impression_tracker_ids": [1], "emails": ["not-an-address"]}, "emails[0]"),
        ({"impression_tracker_ids": [1], "emails": ["a@b.example", "x@localhost"]}, "emails[1]"),
        ({"impression_tracker_ids": [1], "emails": "a@b.example"}, "emails"),
        (
            {"impression_tracker_ids": [1], "emails": [f"u{i}@x.example" for i in range(11)]},
            "emails",
        ),
        ({"impression_tracker_ids": [1], "colour": "red"}, "colour"),
        ({"impression_tracker_ids": list(range(1, 5002))}, "impression_tracker_ids"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    refusal(lambda: ExportRequest.from_mapping(body), ValidationError, field)


def test_request_parsing_defaults_and_dedupes() -> None:
    req = ExportRequest.from_mapping(
        {
            "impression_tracker_ids": [3, 3, 1],
            "emails": ["A@x.example", "a@X.example", "b@x.example"],
            "delivery": "email",
        }
    )
    assert req.impression_tracker_ids == (3, 1)
    assert req.emails == ("A@x.example", "b@x.example")
    assert req.format is None and req.delivery is Delivery.EMAIL and not req.use_code
    assert ExportRequest.from_mapping(req.to_json()) == req
    ten = [f"u{i}@x.example" for i in range(10)]
    assert len(ExportRequest.from_mapping({"click_tracker_ids": [1], "emails": ten}).emails) == 10


# --- sheets --------------------------------------------------------------------------------------


def test_sheets_hold_every_row_and_defuse_formulas(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    rows = service_for(catalogue, engine).build(request(world)).rows
    text = to_text(rows)
    for row in rows:
        assert row.tag in text.splitlines()
    assert f"# Imp Tracker {world.imp_coded.id}: Spring <banner> -->" in text

    reader = list(csv.reader(io.StringIO(to_csv(rows).decode("utf-8-sig"))))
    assert reader[0][:3] == ["tracker_id", "tracker_type", "name"] and reader[0][-1] == "tag"
    assert [line[-1] for line in reader[1:]] == [r.tag for r in rows]
    assert reader[2][2] == '\'=HYPERLINK("x")'  # a formula would run in a spreadsheet

    book = load_workbook(io.BytesIO(to_xlsx(rows)))
    sheet = book["Tags"]
    values = [[c.value for c in line] for line in sheet.iter_rows()]
    assert values[0][0] == "ID" and values[0][-1] == "Tag"
    assert [v[-1] for v in values[1:]] == [r.tag for r in rows]
    assert values[2][2] == '=HYPERLINK("x")' and sheet.cell(3, 3).data_type == "s"
    assert values[1][:4] == [
        world.imp_coded.id,
        "impression",
        "Spring <banner> -->",
        "SPRING/1&co=é",
    ]

    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    sheet_file = render_sheet(rows, SheetKind.CSV, at)
    assert sheet_file.filename == "adtrack-tags-20250102-030405.csv"
    assert sheet_file.media_type.startswith("text/csv")


# --- email ---------------------------------------------------------------------------------------


def attachments(message: EmailMessage) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found[str(part.get_filename())] = payload
    return found


def run_until_final(delivery: ExportDelivery, export_id: str, limit: int = 10) -> None:
    for _ in range(limit):
        delivery.run_due()
        if delivery.service.get_export(export_id).status in (
            ExportStatus.SENT,
            ExportStatus.FAILED,
        ):
            return
    raise AssertionError("export did not reach a final status")


def test_email_delivery_sends_tags_and_sheets(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld, smtp_server: SmtpServer
) -> None:
    service = service_for(catalogue, engine)
    mailer = SmtpMailer.from_url(smtp_server.url, "adtrack@track.example.com")
    recipients = ["ops@agency.example", "Boss@Agency.example"]
    queued = service.queue_email(
        request(world, delivery="email", emails=recipients, format="javascript"), created_by=None
    )
    record = queued.record
    assert record.status is ExportStatus.QUEUED and record.attempts == 0
    assert service.get_export(record.id).recipients == recipients

    delivery = ExportDelivery(service, mailer)
    assert delivery.run_due() == 1
    final = service.get_export(record.id)
    assert (final.status, final.attempts, final.error) == (ExportStatus.SENT, 1, None)

    [message] = smtp_server.wait_for_messages(1)
    assert smtp_server.envelopes[0].rcpt_tos == tuple(recipients)
    assert smtp_server.envelopes[0].mail_from == "adtrack@track.example.com"
    assert message["Subject"] == "adtrack tags: 4 tracker(s)"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    rows = service.build(request(world, format="javascript")).rows
    for row in rows:
        assert row.tag in text
    assert "<script src=" in text and "Spring &lt;banner&gt;" in text

    files = attachments(message)
    csv_name = next(name for name in files if name.endswith(".csv"))
    xlsx_name = next(name for name in files if name.endswith(".xlsx"))
    table = list(csv.reader(io.StringIO(files[csv_name].decode("utf-8-sig"))))
    assert [line[-1] for line in table[1:]] == [r.tag for r in rows]
    book = load_workbook(io.BytesIO(files[xlsx_name]))
    cells = [[c.value for c in line] for line in book["Tags"].iter_rows()]
    assert [line[0] for line in cells[1:]] == [r.tracker_id for r in rows]
    assert [line[-1] for line in cells[1:]] == [r.tag for r in rows]

    assert delivery.run_due() == 0  # sent once, never again


def test_refusing_server_fails_with_its_reason_and_sends_nothing(
    catalogue: CatalogueService,
    engine: Engine,
    world: ExportWorld,
    refusing_smtp_server: SmtpServer,
) -> None:
    service = service_for(catalogue, engine)
    mailer = SmtpMailer.from_url(refusing_smtp_server.url, "adtrack@track.example.com")
    record = service.queue_email(
        request(world, delivery="email", emails=["a@x.example", "b@x.example"])
    ).record
    delivery = ExportDelivery(service, mailer)
    run_until_final(delivery, record.id)
    final = service.get_export(record.id)
    assert final.status is ExportStatus.FAILED and final.attempts == 1  # 5xx: no retry
    assert final.error is not None and PERMANENT_REFUSAL in final.error
    assert "nothing sent" in final.error
    assert refusing_smtp_server.messages == []


def test_down_server_is_retried_then_fails(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    service = service_for(catalogue, engine)
    port = free_port()  # nothing listens here: connection refused
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?timeout=5", "adtrack@x.example")
    record = service.queue_email(request(world, delivery="email", emails=["a@x.example"])).record
    delivery = ExportDelivery(service, mailer)
    delivery.run_due()
    after_one = service.get_export(record.id)
    assert after_one.status is ExportStatus.QUEUED and after_one.attempts == 1
    assert after_one.error is not None and "will retry" in after_one.error
    run_until_final(delivery, record.id)
    final = service.get_export(record.id)
    assert final.status is ExportStatus.FAILED and final.attempts == FAST_RETRY.max_attempts
    assert final.error is not None and "gave up after 3 attempts" in final.error
    assert "Connection refused" in final.error or "ConnectionRefused" in final.error


def test_temporary_refusal_is_retried_until_it_is_accepted(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    service = service_for(catalogue, engine)
    with SmtpServer(refuse_with="451 4.3.0 Try again later") as server:
        mailer = SmtpMailer.from_url(server.url, "adtrack@x.example")
        record = service.queue_email(
            request(world, delivery="email", emails=["a@x.example"])
        ).record
        delivery = ExportDelivery(service, mailer)
        delivery.run_due()
        first = service.get_export(record.id)
        assert first.status is ExportStatus.QUEUED and first.attempts == 1
        assert first.error is not None and "451 4.3.0 Try again later" in first.error
        assert server.messages == []
        server.refuse_with = None  # the server recovers
        delivery.run_due()
        final = service.get_export(record.id)
        assert (final.status, final.attempts, final.error) == (ExportStatus.SENT, 2, None)
        assert len(server.wait_for_messages(1)) == 1


def test_back_off_delays_the_next_attempt(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    now = [datetime(2025, 1, 1, tzinfo=UTC)]
    policy = RetryPolicy(max_attempts=5, base_delay=timedelta(seconds=30))
    service = ExportService(
        catalogue,
        PUBLIC,
        store=SqlExportStore(engine),
        email_enabled=True,
        retry=policy,
        clock=lambda: now[0],
    )
    port = free_port()
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}", "adtrack@x.example")
    delivery = ExportDelivery(service, mailer, clock=lambda: now[0])
    record = service.queue_email(request(world, delivery="email", emails=["a@x.example"])).record
    assert delivery.run_due() == 1
    now[0] += timedelta(seconds=29)
    assert delivery.run_due() == 0  # still backing off
    now[0] += timedelta(seconds=1)
    assert delivery.run_due() == 1
    assert service.get_export(record.id).attempts == 2
    now[0] += timedelta(seconds=59)
    assert delivery.run_due() == 0  # doubled: 60 s after the second failure
    now[0] += timedelta(seconds=1)
    assert delivery.run_due() == 1
    assert [policy.delay_after(n).total_seconds() for n in (1, 2, 3, 10)] == [30, 60, 120, 1800]


def test_credentials_are_used_and_a_wrong_password_fails(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    service = service_for(catalogue, engine)
    with SmtpServer(credentials=("mailer", "s3cret@pw")) as server:
        good = SmtpMailer.from_url(
            f"smtp://mailer:s3cret%40pw@{server.host}:{server.port}", "adtrack@x.example"
        )
        bad = SmtpMailer.from_url(
            f"smtp://mailer:wrong@{server.host}:{server.port}", "adtrack@x.example"
        )
        ok = service.queue_email(request(world, delivery="email", emails=["a@x.example"])).record
        run_until_final(ExportDelivery(service, good), ok.id)
        assert service.get_export(ok.id).status is ExportStatus.SENT
        assert len(server.wait_for_messages(1)) == 1
        refused = service.queue_email(
            request(world, delivery="email", emails=["a@x.example"])
        ).record
        run_until_final(ExportDelivery(service, bad), refused.id)
        final = service.get_export(refused.id)
        assert final.status is ExportStatus.FAILED and final.error is not None
        assert "535" in final.error and final.attempts == 1


def test_starttls_is_required_when_asked(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld, smtp_server: SmtpServer
) -> None:
    # The test server offers no STARTTLS: we must fail rather than send in clear text.
    service = service_for(catalogue, engine)
    mailer = SmtpMailer.from_url(f"{smtp_server.url}?starttls=true", "adtrack@x.example")
    record = service.queue_email(request(world, delivery="email", emails=["a@x.example"])).record
    run_until_final(ExportDelivery(service, mailer), record.id)
    final = service.get_export(record.id)
    assert final.status is ExportStatus.FAILED and final.error is not None
    assert "STARTTLS" in final.error
    assert smtp_server.messages == []


def test_a_tracker_deleted_after_queueing_fails_the_export_with_the_reason(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld, smtp_server: SmtpServer
) -> None:
    service = service_for(catalogue, engine)
    mailer = SmtpMailer.from_url(smtp_server.url, "adtrack@x.example")
    record = service.queue_email(request(world, delivery="email", emails=["a@x.example"])).record
    catalogue.trackers.delete(world.click_bare.id)
    run_until_final(ExportDelivery(service, mailer), record.id)
    final = service.get_export(record.id)
    assert final.status is ExportStatus.FAILED and final.error is not None
    assert "click_tracker_ids" in final.error and str(world.click_bare.id) in final.error
    assert smtp_server.messages == []


def test_email_needs_smtp_and_unknown_exports_are_404(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    no_smtp = ExportService(catalogue, PUBLIC, store=SqlExportStore(engine), email_enabled=False)
    err = refusal(
        lambda: no_smtp.queue_email(request(world, delivery="email", emails=["a@x.example"])),
        ValidationError,
        "delivery",
    )
    assert "ADTRACK_SMTP_URL" in err.message
    refusal(lambda: no_smtp.get_export("nope"), NotFound, "export_id")
    service = service_for(catalogue, engine)
    refusal(
        lambda: service.queue_email(
            request(world, delivery="email", emails=["a@x.example"], click_tracker_ids=[12345])
        ),
        NotFound,
        "click_tracker_ids",
    )


def test_worker_thread_sends_in_the_background(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld, smtp_server: SmtpServer
) -> None:
    service = service_for(catalogue, engine)
    worker = ExportDeliveryWorker(
        ExportDelivery(service, SmtpMailer.from_url(smtp_server.url, "adtrack@x.example")),
        interval=0.2,
    )
    worker.start()
    try:
        record = service.queue_email(
            request(world, delivery="email", emails=["a@x.example"])
        ).record
        worker.wake()
        smtp_server.wait_for_messages(1)
        deadline = time.monotonic() + 10
        while service.get_export(record.id).status is not ExportStatus.SENT:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        worker.stop()


def test_a_crashed_send_is_requeued_and_claims_are_exclusive(
    catalogue: CatalogueService, engine: Engine, world: ExportWorld
) -> None:
    store = SqlExportStore(engine)
    service = service_for(catalogue, engine)
    record = service.queue_email(request(world, delivery="email", emails=["a@x.example"])).record
    t0 = datetime.now(UTC)
    assert store.claim(record.id, t0) is True
    assert store.claim(record.id, t0) is False  # a second worker loses
    assert store.requeue_stale(t0 - timedelta(minutes=1), t0) == 0
    assert store.requeue_stale(t0 + timedelta(seconds=1), t0) == 1
    assert store.get(record.id) is not None
    assert store.get(record.id).status is ExportStatus.QUEUED  # type: ignore[union-attr]


# --- SMTP URL --------------------------------------------------------------------------------


def test_smtp_url_forms() -> None:
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls) == (
        "mail.example.com",
        25,
        False,
        False,
    )
    tls = parse_smtp_url("smtp://u%40x:p%3Aw@mail.example.com:587?starttls=true&timeout=5")
    assert (tls.username, tls.password, tls.port, tls.starttls, tls.timeout) == (
        "u@x",
        "p:w",
        587,
        True,
        5.0,
    )
    implicit = parse_smtp_url("smtps://u:hunter2@mail.example.com")
    assert implicit.implicit_tls and implicit.port == 465
    assert implicit.describe() == "smtps://u@mail.example.com:465"  # never the password
    for bad in (
        "http://mail.example.com",
        "smtp://",
        "smtp://h:99999",
        "smtps://h?starttls=true",
        "smtp://h?starttls=maybe",
        "smtp://h?colour=red",
        "smtp://h?timeout=-1",
    ):
        with pytest.raises(ValidationError) as err:
            parse_smtp_url(bad)
        assert err.value.field == "ADTRACK_SMTP_URL"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "impression_tracker_ids",
        "click_tracker_ids",
        "format",
        "macros",
        "preset",
        "use_code",
        "secure",
        "delivery",
        "emails",
    ]
)


@settings(max_examples=400, deadline=None)
@given(body=st.dictionaries(FIELDS, JSON_VALUES, max_size=9))
def test_any_json_body_is_parsed_or_refused_by_field(body: dict[str, Any]) -> None:
    try:
        request = ExportRequest.from_mapping(body)
    except DomainError as exc:
        assert exc.field and exc.message and exc.status in (404, 422)
        return
    assert request.impression_tracker_ids or request.click_tracker_ids
    assert ExportRequest.from_mapping(request.to_json()) == request
