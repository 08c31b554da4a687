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


def test_writes_the_tag_map(env: dict[str, str], world: ExportWorld, tmp_path: Path) -> None:
    url = env["ADTRACK_DATABASE_URL"]
    engine = db.make_engine(url)
    try:  # as an import leaves it: the tracker's id on the original platform, recorded
        imported = CatalogueService(partial(SqlUnitOfWork, engine)).trackers.create(
            {
                "tracker_type": "click",
                "name": "Spring click",
                "line_item_id": world.line_item_id,
                "publisher_id": world.publisher_id,
                "original_id": 21378,
            }
        )
    finally:
        engine.dispose()
    tag_map = tmp_path / "tag-map.csv"
    code, _, err = run(
        env,
        "--click-ids",
        str(imported.id),
        "--macros",
        "CACHEBUSTER,ANCOST,REDIRECT_URL",
        "--download",
        "tag-map",
        "--old-host",
        "http://ib.adnxs.com",
        "-o",
        str(tag_map),
    )
    assert code == 0, err
    assert f"wrote 2 tag map row(s) to {tag_map}" in err
    rows = list(csv.DictReader(io.StringIO(tag_map.read_text(encoding="utf-8-sig"))))
    assert [(r["format"], r["original_id"]) for r in rows] == [
        ("url", "21378"),
        ("anchor", "21378"),
    ]
    # The platform's exported click tracker, as its "create a click tracker" page shows it.
    assert rows[1]["old_tag"] == (
        '<!-- Click Tracker - Spring click --><a href="http://ib.adnxs.com/clktrb?id=21378'
        '&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]">YOUR TEXT HERE</a>'
        "<!-- End of Click Tracker -->"
    )
    assert rows[0]["new_tag"] == (
        f"https://track.example.com/clktrb?id={imported.id}"
        "&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]"
    )
    # To stdout without -o; a tracker made here warns that its old tag uses its own id.
    code, out, err = run(env, "--click-ids", str(world.click_bare.id), "--download", "tag-map")
    assert code == 0 and out.startswith("\ufefftracker_id,tracker_type,name,original_id,")
    assert f"without an original id: their old tag uses their own id: {world.click_bare.id}" in err
    code, _, err = run(env, "--click-ids", str(imported.id), "--old-host", "ib.adnxs.com")
    assert code == 1 and "--old-host only applies to --download tag-map" in err
    code, _, err = run(
        env, "--click-ids", str(imported.id), "--download", "tag-map", "--old-host", "ftp://x"
    )
    assert code == 1 and "old_host" in err


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
