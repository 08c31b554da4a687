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


def test_tags(tmp_path: Path) -> None:
    env = {
        "ADTRACK_DATA_DIR": str(tmp_path / "data"),
        "ADTRACK_DATABASE_URL": "",
        "ADTRACK_PUBLIC_URL": "http://track.example",
    }
    made = runner.invoke(app, ["advertisers", "create", '{"name": "Acme"}'], env=env)
    advertiser_id = json.loads(made.output)["id"]
    body = json.dumps({"advertiser_id": advertiser_id, "name": "Buy", "code": "buy"})
    pixel_id = json.loads(
        runner.invoke(app, ["conversion-pixels", "create", body], env=env).output
    )["id"]

    text = runner.invoke(app, ["conversion-pixels", "tags", str(pixel_id)], env=env)
    assert text.exit_code == 0, text.output
    postback = (
        f"https://track.example/sspx?id={pixel_id}&sspdata=[SSP_DATA]"
        "&order_id=[ORDER_ID]&value=[VALUE]"
    )
    assert f"Server-side postback URL:\n{postback}\n" in text.output
    assert f'<img src="https://track.example/px?id={pixel_id}&order_id=' in text.output
    assert "[SSP_DATA] (sspdata): The click token" in text.output

    by_code = runner.invoke(
        app, ["conversion-pixels", "tags", str(pixel_id), "--use-code", "--json"], env=env
    )
    assert by_code.exit_code == 0, by_code.output
    answer = json.loads(by_code.output)
    assert answer["tags"]["postback"].startswith("https://track.example/sspx?code=buy&")
    assert answer["conversion_pixel_id"] == pixel_id and answer["warnings"] == []

    missing = runner.invoke(app, ["conversion-pixels", "tags", "999999"], env=env)
    assert missing.exit_code == 1 and "error: id: " in missing.output
    bad = runner.invoke(app, ["conversion-pixels", "tags", "x"], env=env)
    assert bad.exit_code == 2 and "'x'" in bad.output
