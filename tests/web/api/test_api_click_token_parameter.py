"""A click tracker's ``ssp_data_param`` (the query parameter its redirects get the click token
in) through the API, on SQLite and PostgreSQL; impression trackers have none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    error_fields,
    make_testbed,
)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(db_url, tmp_path)


def test_set_shown_changed_and_cleared(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    click = chain["click_tracker"]
    assert click["ssp_data_param"] is None
    assert "ssp_data_param" not in chain["impression_tracker"]
    url = f"{API}/click-trackers/{click['id']}"
    changed = api.trafficker.patch(url, json={"ssp_data_param": " sspdata "})
    assert changed.status_code == 200, changed.text
    assert changed.json()["ssp_data_param"] == "sspdata"
    assert api.reporter.get(url).json()["ssp_data_param"] == "sspdata"
    cleared = api.trafficker.patch(url, json={"ssp_data_param": None})
    assert cleared.json()["ssp_data_param"] is None
    created = api.trafficker.post(
        f"{API}/click-trackers",
        json={
            "name": "With token",
            "line_item_id": chain["line_item"]["id"],
            "publisher_id": chain["publisher"]["id"],
            "ssp_data_param": "click.token-1_a",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["ssp_data_param"] == "click.token-1_a"


@pytest.mark.parametrize("bad", ["has space", "a&b", "a=b", "x" * 65, "é", 5])
def test_refused_names_name_the_field(api: ApiTestbed, bad: object) -> None:
    chain = create_chain(api.trafficker)
    response = api.trafficker.patch(
        f"{API}/click-trackers/{chain['click_tracker']['id']}", json={"ssp_data_param": bad}
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == ["ssp_data_param"]


def test_impression_trackers_take_none(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    response = api.trafficker.patch(
        f"{API}/impression-trackers/{chain['impression_tracker']['id']}",
        json={"ssp_data_param": "sspdata"},
    )
    assert response.status_code == 422
    assert error_fields(response) == ["ssp_data_param"]
