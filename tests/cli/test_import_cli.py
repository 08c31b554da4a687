"""``adtrack import xandr PATH [--dry-run] [--json]``: a folder, a zip, a file; the plan, the
import, the re-run, and a refusal naming the file, the object and the field (exit code 1)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from typer.testing import CliRunner

from adtrack.cli.main import app
from tests.support.xandr_dump import build_catalogue, dump_files, write_folder, zip_bytes

runner = CliRunner()


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"ADTRACK_DATA_DIR": str(tmp_path / "data"), "ADTRACK_DATABASE_URL": ""}


def test_dry_run_import_and_rerun_of_a_folder(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    source = build_catalogue()
    folder = write_folder(tmp_path / "dump", source, page_size=4)
    dry = runner.invoke(app, ["import", "xandr", str(folder), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    imps = len(source.objects["imptracker"])
    assert (
        f"imptracker: {imps} create" in dry.output and "dry run: nothing was written" in dry.output
    )
    listed = runner.invoke(app, ["impression-trackers", "list", "--json"], env=env)
    assert listed.output.strip() == ""

    done = runner.invoke(app, ["import", "xandr", str(folder)], env=env)
    assert done.exit_code == 0, done.output
    assert f"imptracker: {imps} create" in done.output and "dry run" not in done.output
    tracker = source.objects["imptracker"][0]
    found = runner.invoke(
        app, ["impression-trackers", "list", "--json", "--q", str(tracker["id"])], env=env
    )
    assert json.loads(found.output.splitlines()[0])["original_id"] == tracker["id"]

    again = runner.invoke(app, ["import", "xandr", str(folder), "--json"], env=env)
    report = json.loads(again.output)
    assert report["applied"] is True
    assert {a for c in report["counts"].values() for a, n in c.items() if n} == {"unchanged"}


def test_a_zip_with_a_refused_object(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    source = copy.deepcopy(build_catalogue())
    source.objects["line-item"][0]["revenue_value"] = "2.1234567"  # 7 decimal places
    archive = tmp_path / "dump.zip"
    archive.write_bytes(zip_bytes(dump_files(source)))
    result = runner.invoke(app, ["import", "xandr", str(archive)], env=env)
    assert result.exit_code == 1
    assert (
        "error: dump.zip/dump/line-item-00000.json: line-items[0]: revenue_value:" in result.output
    )
    assert "nothing was imported" in result.output
    missing = runner.invoke(app, ["import", "xandr", str(tmp_path / "nope.json")], env=env)
    assert missing.exit_code == 1 and "does not exist" in missing.output
