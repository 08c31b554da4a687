"""``adtrack export`` on a SQLite data directory: printed tags, sheets, email."""

from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from adtrack.adapters.sql import db
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.cli.main import app
from adtrack.services.catalogue import CatalogueService
from tests.support.exports import ExportWorld, make_world
from tests.support.smtp import PERMANENT_REFUSAL, SmtpServer


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "ADTRACK_DATA_DIR": str(tmp_path / "data"),
        "ADTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'adtrack.db'}",
        "ADTRACK_PUBLIC_URL": "https://track.example.com",
    }


@pytest.fixture
def world(env: dict[str, str]) -> ExportWorld:
    url = env["ADTRACK_DATABASE_URL"]
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        return make_world(CatalogueService(partial(SqlUnitOfWork, engine)))
    finally:
        engine.dispose()


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["export", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_prints_tags_with_the_chosen_options(env: dict[str, str], world: ExportWorld) -> None:
    code, out, err = run(
        env,
        "--impression-ids",
        f"{world.imp_coded.id},{world.imp_plain.id}",
        "--click-ids",
        str(world.click_landing.id),
        "--format",
        "pixel",
        "--macros",
        "CACHEBUSTER,ANCOST",
        "--preset",
        "gam",
        "--use-code",
    )
    assert code == 0, err
    assert (
        '<img src="https://track.example.com/imptr?code=SPRING%2F1%26co%3D%C3%A9'
        '&cachebuster=%%CACHEBUSTER%%&ancost=[ANCOST]&t=2" width="1" height="1" />'
    ) in out
    assert "https://track.example.com/clktrb?code=CLIK-1&cachebuster=%%CACHEBUSTER%%" in out
    assert "warning: Google Ad Manager has no macro for ANCOST" in err
    assert f"tracker(s) without a code were exported with id=: {world.imp_plain.id}" in err


def test_writes_csv_and_xlsx_sheets(
    env: dict[str, str], world: ExportWorld, tmp_path: Path
) -> None:
    ids = ["--impression-ids", str(world.imp_coded.id), "--click-ids", str(world.click_bare.id)]
    csv_file = tmp_path / "tags.csv"
    code, _, err = run(env, *ids, "--download", "csv", "-o", str(csv_file))
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(csv_file.read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == [str(world.imp_coded.id), str(world.click_bare.id)]
    xlsx_file = tmp_path / "tags.xlsx"  # the kind follows the file name
    code, _, err = run(env, *ids, "-o", str(xlsx_file))
    assert code == 0, err
    sheet = load_workbook(xlsx_file)["Tags"]
    assert sheet.cell(2, 1).value == world.imp_coded.id
    assert str(sheet.cell(3, 11).value).startswith("https://track.example.com/clktrb?id=")


def test_refusals_exit_1_naming_the_field(env: dict[str, str], world: ExportWorld) -> None:
    code, _, err = run(env, "--impression-ids", "424242")
    assert code == 1 and "impression_tracker_ids" in err and "424242" in err
    code, _, err = run(env)
    assert code == 1 and "select at least one tracker" in err
    code, _, err = run(env, "--click-ids", "1", "--email", "not-an-address")
    assert code == 1 and "emails[0]" in err
    code, _, err = run(env, "--click-ids", str(world.click_bare.id), "--email", "a@x.example")
    assert code == 1 and "ADTRACK_SMTP_URL" in err
    code, _, err = run(env, "--impression-ids", "x1")
    assert code == 2 and "--impression-ids" in err
    # Digits int() refuses or reads differently, and ids beyond the id columns.
    for bad in ("\u00b2", "\u0663", "99999999999999999999"):
        code, _, err = run(env, "--click-ids", f"1,{bad}")
        assert code == 2 and "--click-ids" in err, (bad, err)


def test_email_is_sent_and_refusal_reported(
    env: dict[str, str], world: ExportWorld, smtp_server: SmtpServer
) -> None:
    ids = ["--click-ids", str(world.click_landing.id)]
    code, out, err = run(
        {**env, "ADTRACK_SMTP_URL": smtp_server.url}, *ids, "--email", "ops@agency.example"
    )
    assert code == 0, err
    assert "queued for ops@agency.example" in out and "sent (1 attempt(s))" in out
    [message] = smtp_server.wait_for_messages(1)
    assert smtp_server.envelopes[0].rcpt_tos == ("ops@agency.example",)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and f"clktrb?id={world.click_landing.id}" in body.get_content()
    with SmtpServer(refuse_with=PERMANENT_REFUSAL) as refusing:
        code, _, err = run(
            {**env, "ADTRACK_SMTP_URL": refusing.url}, *ids, "--email", "ops@agency.example"
        )
    assert code == 1 and "failed" in err and PERMANENT_REFUSAL in err
