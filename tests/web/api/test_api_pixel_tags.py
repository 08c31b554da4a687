"""A conversion pixel's tags through the API (``GET /api/v1/conversion-pixels/{id}/tags``):
the three forms on the https tag host, by id or by code, the placeholders, warnings, and 404 for
a pixel that is not there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_fixtures import API, ApiTestbed, created, make_testbed

PIXELS = f"{API}/conversion-pixels"


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    # an http tag host: the tags are https all the same
    yield from make_testbed(sqlite_url, tmp_path, {"ADTRACK_PUBLIC_URL": "http://t.example/x/"})


def _pixel(api: ApiTestbed, **fields: object) -> dict[str, object]:
    advertiser = created(api.trafficker, "advertisers", {"name": "Acme"})
    body = {"advertiser_id": advertiser["id"], "name": "Buy <now> -->", **fields}
    return created(api.trafficker, "conversion-pixels", body)


def test_the_tags_of_a_pixel(api: ApiTestbed) -> None:
    pixel = _pixel(api, code="buy")
    answer = api.reporter.get(f"{PIXELS}/{pixel['id']}/tags")  # any role reads
    assert answer.status_code == 200, answer.text
    body = answer.json()
    n = pixel["id"]
    browser = "order_id=[ORDER_ID]&value=[VALUE]&sspdata=[SSP_DATA]"
    name = "Buy &lt;now&gt; --&gt;"  # cannot close the comment
    assert body["tags"] == {
        "image": f"<!-- Conversion Pixel - {name} - DO NOT MODIFY -->"
        f'<img src="https://t.example/x/px?id={n}&{browser}" width="1" height="1" alt="" />'
        "<!-- End of Conversion Pixel -->",
        "javascript": f"<!-- Conversion Pixel - {name} - DO NOT MODIFY -->"
        f'<script src="https://t.example/x/px?id={n}&t=1&{browser}" type="text/javascript">'
        "</script><!-- End of Conversion Pixel -->",
        "postback": f"https://t.example/x/sspx?id={n}&sspdata=[SSP_DATA]"
        "&order_id=[ORDER_ID]&value=[VALUE]",
    }
    assert (body["conversion_pixel_id"], body["code"]) == (n, "buy")
    assert body["advertiser_id"] == pixel["advertiser_id"] and body["warnings"] == []
    assert [(p["placeholder"], p["parameter"], p["required"]) for p in body["placeholders"]] == [
        ("[SSP_DATA]", "sspdata", False),
        ("[ORDER_ID]", "order_id", False),
        ("[VALUE]", "value", False),
    ]
    by_code = api.reporter.get(f"{PIXELS}/{n}/tags", params={"use_code": "true"}).json()
    assert by_code["tags"]["postback"].startswith("https://t.example/x/sspx?code=buy&sspdata=")
    assert "px?code=buy&t=1&order_id=" in by_code["tags"]["javascript"]


def test_warnings_for_a_pixel_without_code_and_an_inactive_one(api: ApiTestbed) -> None:
    pixel = _pixel(api, state="inactive")
    body = api.reporter.get(f"{PIXELS}/{pixel['id']}/tags?use_code=true").json()
    assert f"/px?id={pixel['id']}&order_id=" in body["tags"]["image"]
    assert body["warnings"] == [
        "the pixel has no code: its tags name it by id=",
        "the pixel is inactive: its conversions are not recorded until it is active",
    ]


def test_unknown_and_deleted_pixels_are_404(api: ApiTestbed) -> None:
    pixel = _pixel(api)
    assert api.trafficker.delete(f"{PIXELS}/{pixel['id']}").status_code == 204
    for target in (f"{PIXELS}/{pixel['id']}/tags", f"{PIXELS}/999999/tags"):
        answer = api.reporter.get(target)
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"][0]["field"] == "id"
    assert api.anonymous.get(f"{PIXELS}/1/tags").status_code == 401
    refused = api.reporter.get(f"{PIXELS}/0/tags")
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "id"
