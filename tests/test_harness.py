"""The shared fixtures themselves: each gives a working real service and cleans up after itself."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from email.message import EmailMessage
from pathlib import Path

import httpx
import nats
import pytest
from sqlalchemy import Engine, inspect, text

from tests.support import nats as nats_support
from tests.support import postgres
from tests.support.net import free_port, port_is_open
from tests.support.server import AdtrackServer, parse_admin_credentials
from tests.support.smtp import SmtpServer


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_is_open("127.0.0.1", port)


def test_sqlite_url_is_a_file_in_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    assert sqlite_url == f"sqlite:///{tmp_path / 'adtrack.db'}"


def test_engine_is_on_a_fully_migrated_database(engine: Engine, migrated_db_url: str) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version", "advertisers", "trackers", "events", "users"} <= tables
    with engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert revision
    assert engine.url.get_backend_name() in migrated_db_url


@pytest.mark.postgres
def test_pg_url_is_a_fresh_database_dropped_afterwards() -> None:
    with postgres.temporary_database() as url:
        name = url.rsplit("/", 1)[1]
        assert name.startswith(postgres.DATABASE_PREFIX)
        assert postgres.database_exists(name)
        # An open connection must not keep the database from being dropped.
        import psycopg

        leftover = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert not postgres.database_exists(name)
    finally:
        leftover.close()


@pytest.mark.postgres
def test_pg_url_fixture_names_an_empty_database(pg_url: str) -> None:
    from adtrack.adapters.sql.db import make_engine

    eng = make_engine(pg_url)
    try:
        assert inspect(eng).get_table_names() == []
    finally:
        eng.dispose()


def _message(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "adtrack@example.com"
    msg["To"] = to
    msg["Subject"] = "Your tags"
    msg.set_content("<!-- Imp Tracker - x - DO NOT MODIFY -->")
    msg.add_attachment(b"id,name\n1,x\n", maintype="text", subtype="csv", filename="tags.csv")
    return msg


def test_smtp_server_collects_messages(smtp_server: SmtpServer) -> None:
    assert smtp_server.url == f"smtp://127.0.0.1:{smtp_server.port}"
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(_message("trafficker@example.com"))
    (received,) = smtp_server.wait_for_messages(1)
    assert received["Subject"] == "Your tags"
    assert [a.get_filename() for a in received.iter_attachments()] == ["tags.csv"]
    assert smtp_server.envelopes[0].rcpt_tos == ("trafficker@example.com",)


def test_refusing_smtp_server_answers_550(refusing_smtp_server: SmtpServer) -> None:
    with (
        smtplib.SMTP(refusing_smtp_server.host, refusing_smtp_server.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.send_message(_message("trafficker@example.com"))
    code, _reason = refused.value.recipients["trafficker@example.com"]
    assert code == 550
    assert refusing_smtp_server.attempts == 1
    assert refusing_smtp_server.messages == []


def test_smtp_server_with_credentials_requires_login() -> None:
    with SmtpServer(credentials=("mailer", "s3cret")) as server:
        assert server.url == f"smtp://mailer:s3cret@127.0.0.1:{server.port}"
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as client,
            pytest.raises(smtplib.SMTPSenderRefused),
        ):
            client.send_message(_message("a@example.com"))
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.login("mailer", "s3cret")
            client.send_message(_message("a@example.com"))
        assert len(server.wait_for_messages(1)) == 1


async def _create_stream_and_publish(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream}.events"])
        ack = await js.publish(f"{stream}.events", b"hello")
        return ack.seq
    finally:
        await nc.close()


def test_nats_stream_is_usable_and_deleted_afterwards(nats_url: str) -> None:
    name = nats_support.unique_stream_name()
    try:
        assert asyncio.run(_create_stream_and_publish(nats_url, name)) == 1
        assert nats_support.stream_exists(name, nats_url)
    finally:
        assert nats_support.delete_stream(name, nats_url)
    assert not nats_support.stream_exists(name, nats_url)


def test_nats_stream_name_fixture_is_unique(nats_url: str, nats_stream_name: str) -> None:
    assert nats_stream_name.startswith(nats_support.STREAM_PREFIX)
    assert nats_stream_name != nats_support.unique_stream_name()
    assert not nats_support.stream_exists(nats_stream_name, nats_url)


def test_first_run_lines_are_parsed() -> None:
    output = (
        "INFO starting\n"
        "adtrack: first run - created admin user admin@example.com\n"
        "adtrack: admin password: pw-123\n"
        "adtrack: admin token: tok_abc.def\n"
    )
    credentials = parse_admin_credentials(output)
    assert credentials is not None
    assert (credentials.email, credentials.password, credentials.token) == (
        "admin@example.com",
        "pw-123",
        "tok_abc.def",
    )
    assert parse_admin_credentials("INFO starting\n") is None


@pytest.mark.slow
def test_adtrack_server_serves_the_api_and_survives_restart_and_kill9(
    adtrack_server: AdtrackServer,
) -> None:
    server = adtrack_server
    assert server.is_running
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    assert httpx.get(f"{server.api_url}/advertisers").status_code == 401
    with server.client() as api:
        assert api.get("/api/v1/advertisers").status_code == 200
    assert (server.data_dir / "adtrack.db").exists()

    token = server.token
    server.restart()
    assert server.token == token  # the restart is not a first run
    with server.client() as api:
        assert api.get("/api/v1/advertisers").status_code == 200

    server.kill9()
    assert not server.is_running
    assert not port_is_open("127.0.0.1", server.port)
    assert "adtrack: admin token: " in server.output()
