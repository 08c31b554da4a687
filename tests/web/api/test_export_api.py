"""``POST /api/v1/trackers/export`` and ``GET /api/v1/exports/{id}`` through the real app (SQLite
and PostgreSQL), with email going to a real SMTP server (aiosmtpd) via the app's worker."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine

from adtrack.bootstrap import bootstrap
from adtrack.config import Settings
from adtrack.domain.model import Role
from adtrack.services.catalogue import CatalogueService
from adtrack.web.app import create_app
from adtrack.web.state import state_of
from tests.support.exports import ExportWorld, make_world
from tests.support.smtp import PERMANENT_REFUSAL, SmtpServer

EXPORT = "/api/v1/trackers/export"


class Api:
    def __init__(
        self,
        client: TestClient,
        tokens: dict[Role, str],
        world: ExportWorld,
        catalogue: CatalogueService,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.world = world
        self.catalogue = catalogue

    def post(self, body: Any, role: Role = Role.TRAFFICKER, **params: str) -> Any:  # httpx.Response
        return self.client.post(
            EXPORT,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
        )

    def status(self, export_id: str, role: Role = Role.TRAFFICKER) -> Any:
        return self.client.get(
            f"/api/v1/exports/{export_id}",
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
        )

    def body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "impression_tracker_ids": [self.world.imp_coded.id],
            "click_tracker_ids": [self.world.click_landing.id],
            "format": "javascript",
            "macros": ["CACHEBUSTER", "REDIRECT_URL"],
            "preset": "xandr",
            "use_code": False,
            "delivery": "now",
            "emails": [],
        }
        body.update(overrides)
        return body

    def wait_final(self, export_id: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.status(export_id)
            assert answer.status_code == 200, answer.text
            data: dict[str, Any] = answer.json()
            if data["status"] in ("sent", "failed"):
                return data
            assert time.monotonic() < deadline, data
            time.sleep(0.1)


def make_api(
    engine: Engine, tmp_path: Path, smtp_url: str | None, public_url: str
) -> Iterator[Api]:
    env = {
        "ADTRACK_DATA_DIR": str(tmp_path / "data"),
        "ADTRACK_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "ADTRACK_PUBLIC_URL": public_url,
        "ADTRACK_SMTP_FROM": "tags@track.example.com",
    }
    if smtp_url:
        env["ADTRACK_SMTP_URL"] = smtp_url
    app = create_app(bootstrap(Settings.from_env(env), engine=engine))
    with TestClient(app) as client:
        users = state_of(app).services.users
        tokens = {}
        for role in Role:
            user = users.create_user(f"{role.value}@agency.example", role).user
            tokens[role] = users.create_token(user.id).secret
        catalogue = state_of(app).services.catalogue
        yield Api(client, tokens, make_world(catalogue), catalogue)


@pytest.fixture
def api(engine: Engine, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Api]:
    yield from make_api(engine, tmp_path, smtp_server.url, "https://track.example.com")


def test_delivery_now_answers_the_tags(api: Api) -> None:
    answer = api.post(api.body(), role=Role.REPORTER)  # reading: any role
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["warnings"] == [
        "format 'javascript' does not apply to click trackers: they were exported as 'url'"
    ]
    [imp, click] = data["tags"]
    assert imp["tracker_id"] == api.world.imp_coded.id and imp["tracker_type"] == "impression"
    assert imp["name"] == "Spring <banner> -->" and imp["code"] == "SPRING/1&co=é"
    assert imp["tag"] == (
        "<!-- Imp Tracker - Spring &lt;banner&gt; --&gt; - DO NOT MODIFY -->"
        "<!-- Viewability measured on this tag's parent element (the creative's container) -->"
        f'<script src="https://track.example.com/imptr?id={api.world.imp_coded.id}'
        '&cachebuster=${CACHEBUSTER}&t=1&redir=${CLICK_URL}" type="text/javascript"></script>'
        "<!-- End of Imp Tracker -->"
    )
    assert click["tag"] == (
        f"https://track.example.com/clktrb?id={api.world.click_landing.id}"
        "&cachebuster=${CACHEBUSTER}&redir=${CLICK_URL}"
    )
    assert click["line_item"] == "Acme spring" and click["publisher"] == "Daily News"


def test_ancost_warning_for_presets_without_a_cost_macro(api: Api) -> None:
    answer = api.post(api.body(preset="gam", macros=["CACHEBUSTER", "ANCOST"]))
    assert answer.status_code == 200
    assert any("Google Ad Manager has no macro for ANCOST" in w for w in answer.json()["warnings"])


@pytest.mark.parametrize("kind", ["txt", "csv", "xlsx"])
def test_download_answers_a_tag_sheet(api: Api, kind: str) -> None:
    answer = api.post(api.body(format="pixel"), download=kind)
    assert answer.status_code == 200, answer.text
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="adtrack-tags-')
    assert disposition.endswith(f'.{kind}"')
    tags = [t["tag"] for t in api.post(api.body(format="pixel")).json()["tags"]]
    if kind == "txt":
        assert answer.headers["content-type"].startswith("text/plain")
        lines = answer.text.splitlines()
        assert all(tag in lines for tag in tags)
    elif kind == "csv":
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert [r[-1] for r in rows[1:]] == tags
    else:
        book = load_workbook(io.BytesIO(answer.content))
        values = [[c.value for c in r] for r in book["Tags"].iter_rows()]
        assert [v[-1] for v in values[1:]] == tags
        assert values[1][0] == api.world.imp_coded.id


def test_download_tag_map_pairs_old_and_new_tags(api: Api) -> None:
    world = api.world
    # As an import leaves it: the id the tracker had on the original platform, recorded.
    imported = api.catalogue.trackers.create(
        {
            "tracker_type": "impression",
            "name": "Homepage",
            "line_item_id": world.line_item_id,
            "publisher_id": world.publisher_id,
            "original_id": 1425,
        }
    )
    body = {
        "impression_tracker_ids": [imported.id],
        "click_tracker_ids": [world.click_bare.id],
        "macros": ["CACHEBUSTER"],
    }
    answer = api.post(body, role=Role.REPORTER, download="tag-map")  # reading: any role
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="adtrack-tag-map-')
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [(r["tracker_id"], r["format"]) for r in rows] == [
        (str(imported.id), "javascript"),
        (str(imported.id), "pixel"),
        (str(imported.id), "url"),
        (str(world.click_bare.id), "url"),
        (str(world.click_bare.id), "anchor"),
    ]
    url = rows[2]
    assert url["original_id"] == "1425" and url["name"] == "Homepage"
    assert url["old_tag"] == "https://secure.adnxs.com/imptr?id=1425&cachebuster=[CACHEBUSTER]&t=2"
    assert url["new_tag"] == (
        f"https://track.example.com/imptr?id={imported.id}&cachebuster=[CACHEBUSTER]&t=2"
    )
    click = rows[3]
    assert click["original_id"] == "" and click["tracker_type"] == "click"
    assert click["old_tag"] == (
        f"https://secure.adnxs.com/clktrb?id={world.click_bare.id}&cachebuster=[CACHEBUSTER]"
    )
    # A format and the old host narrow and move the old tags.
    pixel_only = api.post(
        {**body, "format": "pixel", "click_tracker_ids": []},
        download="tag-map",
        old_host="ib.adnxs.com",
    )
    [row] = list(csv.DictReader(io.StringIO(pixel_only.content.decode("utf-8-sig"))))
    assert row["format"] == "pixel"
    assert (
        'src="https://ib.adnxs.com/imptr?id=1425&cachebuster=[CACHEBUSTER]&t=2"' in row["old_tag"]
    )


def test_tag_map_refusals_name_the_field(api: Api) -> None:
    body = api.body()
    for params in (
        {"download": "tag-map", "old_host": "ftp://secure.adnxs.com"},
        {"download": "csv", "old_host": "secure.adnxs.com"},
        {"old_host": "secure.adnxs.com"},
    ):
        answer = api.post(body, **params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["detail"][0]["field"] == "old_host", params
    email = api.post(api.body(delivery="email", emails=["a@x.example"]), download="tag-map")
    assert email.status_code == 422 and email.json()["detail"][0]["field"] == "download"
    missing = api.post(api.body(click_tracker_ids=[987654]), download="tag-map")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "click_tracker_ids"


BAD_INPUT: list[tuple[dict[str, Any], int, str]] = [
    ({"impression_tracker_ids": [], "click_tracker_ids": []}, 422, "impression_tracker_ids"),
    ({"impression_tracker_ids": [987654]}, 404, "impression_tracker_ids"),
    ({"click_tracker_ids": [-1]}, 422, "click_tracker_ids[0]"),
    ({"delivery": "email", "emails": ["nope"]}, 422, "emails[0]"),
    ({"delivery": "email", "emails": [f"u{i}@x.example" for i in range(11)]}, 422, "emails"),
    ({"delivery": "email", "emails": []}, 422, "emails"),
    ({"format": "iframe"}, 422, "format"),
    ({"preset": "dfp"}, 422, "preset"),
    ({"macros": ["CACHEBUSTER", "WHATEVER"]}, 422, "macros"),
    ({"view_element": "ad slot"}, 422, "view_element"),
    ({"view_element": 12}, 422, "view_element"),
    ({"unknown": 1}, 422, "unknown"),
]


def test_the_javascript_tag_measures_the_element_given(api: Api) -> None:
    answer = api.post(api.body(view_element="creative-300x250"))
    assert answer.status_code == 200, answer.text
    imp = answer.json()["tags"][0]
    assert '<!-- Viewability measured on the element with id="creative-300x250" -->' in imp["tag"]
    assert ' type="text/javascript" data-view-element="creative-300x250"></script>' in imp["tag"]


def test_bad_input_is_a_4xx_naming_the_field(api: Api) -> None:
    for overrides, status, field in BAD_INPUT:
        answer = api.post(api.body(**overrides))
        assert answer.status_code == status, (overrides, answer.text)
        assert answer.json()["detail"][0]["field"] == field, overrides


def test_bad_bodies_auth_and_roles(api: Api) -> None:
    assert api.post([1, 2]).status_code == 422
    assert api.post([1, 2]).json()["detail"][0]["field"] == "body"
    raw = api.client.post(
        EXPORT,
        content=b"{not json",
        headers={
            "Authorization": f"Bearer {api.tokens[Role.ADMIN]}",
            "Content-Type": "application/json",
        },
    )
    assert raw.status_code == 400 and raw.json()["detail"][0]["field"] == "body"
    assert api.client.post(EXPORT, json=api.body()).status_code == 401
    bad_download = api.post(api.body(), download="pdf")
    assert bad_download.status_code == 422
    assert bad_download.json()["detail"][0]["field"] == "download"
    both = api.post(api.body(delivery="email", emails=["a@x.example"]), download="csv")
    assert both.status_code == 422 and both.json()["detail"][0]["field"] == "download"
    reporter_email = api.post(
        api.body(delivery="email", emails=["a@x.example"]), role=Role.REPORTER
    )
    assert reporter_email.status_code == 403
    assert api.status("whatever", role=Role.REPORTER).status_code == 403
    missing = api.status("00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["detail"][0]["field"] == "export_id"


def test_email_delivery_is_queued_then_sent(api: Api, smtp_server: SmtpServer) -> None:
    answer = api.post(api.body(delivery="email", emails=["ops@agency.example"]))
    assert answer.status_code == 202, answer.text
    export_id = answer.json()["export_id"]
    assert answer.json()["status"] == "queued"
    assert answer.headers["location"] == f"/api/v1/exports/{export_id}"
    final = api.wait_final(export_id)
    assert final["status"] == "sent" and final["error"] is None and final["attempts"] == 1
    assert final["recipients"] == ["ops@agency.example"]
    [message] = smtp_server.wait_for_messages(1)
    assert message["From"] == "tags@track.example.com"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "${CACHEBUSTER}" in body.get_content()
    names = sorted(str(p.get_filename()) for p in message.iter_attachments())
    assert [n.rsplit(".", 1)[1] for n in names] == ["csv", "xlsx"]


def test_refused_email_shows_the_servers_reason(
    engine: Engine, tmp_path: Path, refusing_smtp_server: SmtpServer
) -> None:
    for api in make_api(engine, tmp_path, refusing_smtp_server.url, "https://t.example.com"):
        answer = api.post(api.body(delivery="email", emails=["ops@agency.example"]))
        assert answer.status_code == 202
        final = api.wait_final(answer.json()["export_id"])
        assert final["status"] == "failed"
        assert PERMANENT_REFUSAL in final["error"]
        assert refusing_smtp_server.messages == []


def test_without_smtp_email_is_refused_and_localhost_warns(engine: Engine, tmp_path: Path) -> None:
    for api in make_api(engine, tmp_path, None, "http://localhost:8001"):
        answer = api.post(api.body(delivery="email", emails=["ops@agency.example"]))
        assert answer.status_code == 422
        detail = answer.json()["detail"][0]
        assert detail["field"] == "delivery" and "ADTRACK_SMTP_URL" in detail["message"]
        now = api.post(api.body(format="pixel"))
        assert now.status_code == 200
        assert any("only this machine can reach" in w for w in now.json()["warnings"])
        # the secure pixel is https even though the public URL is http
        assert 'src="https://localhost:8001/imptr?' in now.json()["tags"][0]["tag"]
