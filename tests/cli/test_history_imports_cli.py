"""``adtrack import report-history``, ``report-history-list`` and ``report-history-undo`` on a
real SQLite database: dry run, import, refusals by line on stderr, undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.cli.main import app
from tests.support.report_history import API_DAILY, seed_catalogue

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    upgrade(url)
    engine = make_engine(url)
    seed_catalogue(engine)
    engine.dispose()
    return {"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_DATABASE_URL": url}


def test_dry_run_import_list_and_undo(env: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "network_analytics.csv"
    report.write_text(API_DAILY)
    args = ["import", "report-history", str(report), "--timezone", "UTC"]
    dry = runner.invoke(app, [*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would import 3 rows (by day, UTC," in dry.output and "1500 imps, 7 clicks" in dry.output

    done = runner.invoke(app, [*args, "--json"], env=env)
    assert done.exit_code == 0, done.output
    import_id = json.loads(done.output)["import"]["id"]
    listed = runner.invoke(app, ["import", "report-history-list", "--json"], env=env)
    assert [item["id"] for item in json.loads(listed.output)] == [import_id]
    table = runner.invoke(app, ["import", "report-history-list"], env=env)
    assert "network_analytics.csv" in table.output

    twice = runner.invoke(app, args, env=env)
    assert twice.exit_code == 1 and "imported already" in twice.output

    undone = runner.invoke(app, ["import", "report-history-undo", str(import_id)], env=env)
    assert undone.exit_code == 0 and f"undone: import {import_id}" in undone.output
    engine = make_engine(env["ADTRACK_DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(t.report_history_imports.select()).first() is None
    engine.dispose()


def test_refused_rows_are_printed_by_line(env: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "bad.csv"
    report.write_text(API_DAILY + "2026-03-01,9,1,77,3,4,1,0,0,0\n")
    result = runner.invoke(
        app, ["import", "report-history", str(report), "--timezone", "UTC"], env=env
    )
    assert result.exit_code == 1
    assert "line 5: line_item_id: no line item has the id 77" in result.output
    assert "1 row refused; nothing was imported" in result.output
    missing_zone = runner.invoke(app, ["import", "report-history", str(report)], env=env)
    assert missing_zone.exit_code == 2  # --timezone is required


def test_xandr_tags_from_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "tags"
    folder.mkdir()
    (folder / "imps.html").write_text(
        '<!-- Imp Tracker - Spring sale - DO NOT MODIFY --><img src="https://ib.adnxs.com/imptr?'
        'id=531&cachebuster=[CACHEBUSTER]" width="1" height="1" /><!-- End of Imp Tracker -->\n'
    )
    (folder / "clicks.txt").write_text("http://ib.adnxs.com/clktrb?id=21378&redir=[REDIRECT_URL]\n")
    args = ["import", "xandr-tags", str(folder), "--line-item", "2", "--publisher", "3"]
    dry = runner.invoke(app, [*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would create 2 trackers" in dry.output
    assert "impression 531 'Spring sale' (image; imps.html line 1)" in dry.output
    assert "no name in the file: named 'Click Tracker 21378'" in dry.output
    done = runner.invoke(app, [*args, "--placement", "4", "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert sorted(c["id"] for c in json.loads(done.output)["created"]) == [531, 21378]
    again = runner.invoke(app, args, env=env)
    assert "created 0 trackers; 2 already there" in again.output
    unknown = runner.invoke(app, [*args[:4], "99", "--publisher", "3"], env=env)
    assert unknown.exit_code == 1 and "line_item_id" in unknown.output
