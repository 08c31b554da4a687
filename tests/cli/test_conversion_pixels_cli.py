"""``adtrack conversion-pixels create|list``: the API's JSON, its refusals naming the field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from adtrack.cli.main import app

runner = CliRunner()


def test_create_and_list(tmp_path: Path) -> None:
    env = {"ADTRACK_DATA_DIR": str(tmp_path / "data"), "ADTRACK_DATABASE_URL": ""}
    made = runner.invoke(app, ["advertisers", "create", '{"name": "Acme"}'], env=env)
    assert made.exit_code == 0, made.output
    advertiser_id = json.loads(made.output)["id"]
    body = (
        f'{{"advertiser_id": {advertiser_id}, "name": "Purchase", "code": "buy", '
        '"event_type": "purchase", "trigger_type": "hybrid", "post_click_revenue": 0.000001, '
        '"min_minutes_per_conversion": 0}'
    )
    pixel_run = runner.invoke(app, ["conversion-pixels", "create", body], env=env)
    assert pixel_run.exit_code == 0, pixel_run.output
    pixel = json.loads(pixel_run.output, parse_float=Decimal)
    assert pixel["post_click_revenue"] == Decimal("0.000001")
    assert (pixel["event_type"], pixel["trigger_type"]) == ("purchase", "hybrid")
    assert pixel["min_minutes_per_conversion"] == 0
    assert pixel["post_click_window_minutes"] == 43_200

    too_long = runner.invoke(
        app,
        [
            "conversion-pixels",
            "create",
            json.dumps(
                {"advertiser_id": advertiser_id, "name": "X", "post_view_window_minutes": 43_201}
            ),
        ],
        env=env,
    )
    assert too_long.exit_code == 1 and "post_view_window_minutes" in too_long.output
    unknown = runner.invoke(
        app,
        ["conversion-pixels", "create", json.dumps({"advertiser_id": 999, "name": "X"})],
        env=env,
    )
    assert unknown.exit_code == 1 and "advertiser_id" in unknown.output

    listed = runner.invoke(app, ["conversion-pixels", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["code"] for line in listed.output.splitlines()] == ["buy"]
    table = runner.invoke(app, ["conversion-pixels", "list", "--q", "purch"], env=env)
    assert "Purchase" in table.output and "buy" in table.output
