"""A conversion pixel's **Export tags** in the console: the action on its page and in the
list, the dialog with each tag and its copy button, by code on request, and a page of its own
without htmx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from adtrack.domain.model import Role
from tests.support.console import HTMX, ConsoleBed, console_bed


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[ConsoleBed]:
    env = {"ADTRACK_PUBLIC_URL": "https://track.example"}
    with console_bed(tmp_path, env=env) as bed:
        bed.sign_in(bed.add_user(Role.REPORTER))  # reading is enough
        yield bed


def _tags(html: str) -> dict[str, str]:
    found = re.findall(r'<textarea id="pixel-tag-(\w+)"[^>]*>([^<]*)</textarea>', html)
    return {key: unescape(text) for key, text in found}


def test_the_pixel_page_and_list_offer_its_tags(bed: ConsoleBed) -> None:
    advertiser = bed.catalogue.advertisers.create({"name": "Acme"})
    pixel = bed.catalogue.conversion_pixels.create(
        {"advertiser_id": advertiser.id, "name": "Buy", "code": "buy"}
    )
    action = f'hx-get="/conversion-pixels/{pixel.id}/tags" hx-target="#dialog-body"'
    assert action in bed.client.get(f"/conversion-pixels/{pixel.id}").text
    assert action in bed.client.get("/conversion-pixels").text

    dialog = bed.client.get(f"/conversion-pixels/{pixel.id}/tags", headers=HTMX)
    assert dialog.status_code == 200
    assert "<html" not in dialog.text and "data-close-dialog" in dialog.text
    tags = _tags(dialog.text)
    assert tags["postback"] == (
        f"https://track.example/sspx?id={pixel.id}&sspdata=[SSP_DATA]"
        "&order_id=[ORDER_ID]&value=[VALUE]"
    )
    assert (
        f'<img src="https://track.example/px?id={pixel.id}&order_id=[ORDER_ID]&value=[VALUE]'
        '&sspdata=[SSP_DATA]" width="1" height="1" alt="" />' in tags["image"]
    )
    assert f"/px?id={pixel.id}&t=1&" in tags["javascript"]
    for key in ("image", "javascript", "postback"):
        assert f'data-copy="pixel-tag-{key}"' in dialog.text
    assert "[SSP_DATA]</code> (sspdata)" in dialog.text

    by_code = bed.client.get(f"/conversion-pixels/{pixel.id}/tags?use_code=1", headers=HTMX)
    assert _tags(by_code.text)["postback"].startswith("https://track.example/sspx?code=buy&")

    page = bed.client.get(f"/conversion-pixels/{pixel.id}/tags")  # no htmx: a whole page
    assert "<html" in page.text and _tags(page.text) == tags


def test_a_deleted_pixel_has_no_tags(bed: ConsoleBed) -> None:
    advertiser = bed.catalogue.advertisers.create({"name": "Acme"})
    pixel = bed.catalogue.conversion_pixels.create({"advertiser_id": advertiser.id, "name": "X"})
    bed.catalogue.conversion_pixels.delete(pixel.id)
    assert bed.client.get(f"/conversion-pixels/{pixel.id}/tags", headers=HTMX).status_code == 404
