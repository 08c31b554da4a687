"""Helpers for the console's server-side tests: the real app on a real (migrated) database,
driven through Starlette's TestClient like a browser would (cookies, forms, htmx headers).

The client talks to ``https://testserver`` so the session cookie, ``Secure`` by default, is
stored and sent back as a browser would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.bootstrap import bootstrap
from adtrack.config import Settings
from adtrack.domain.model import Role
from adtrack.services.catalogue import CatalogueService
from adtrack.services.users import UserService
from adtrack.web.app import create_app
from adtrack.web.state import state_of
from tests.support.api_fixtures import fast_user_service

PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FIELD_ERROR = re.compile(r'<p class="field-error" id="([^"]+)-error">([^<]*)</p>')


@dataclass
class ConsoleBed:
    app: FastAPI
    engine: Engine
    users: UserService
    client: TestClient

    @property
    def catalogue(self) -> CatalogueService:
        return state_of(self.app).services.catalogue

    def new_client(self) -> TestClient:
        return TestClient(self.app, base_url="https://testserver")

    def add_user(self, role: Role, email: str | None = None) -> str:
        email = email or f"{role.value}@example.com"
        self.users.create_user(email, role, PASSWORD)
        return email

    def sign_in(self, email: str, client: TestClient | None = None) -> TestClient:
        client = client or self.client
        token = csrf(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return client

    def token(self, client: TestClient | None = None, page: str = "/advertisers") -> str:
        return csrf((client or self.client).get(page).text)

    def post(
        self,
        path: str,
        data: dict[str, Any],
        *,
        htmx: bool = False,
        client: TestClient | None = None,
    ) -> Any:
        client = client or self.client
        body = {"csrf_token": self.token(client), **data}
        return client.post(path, data=body, headers=HTMX if htmx else {}, follow_redirects=False)


def csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def field_errors(html: str) -> dict[str, str]:
    """``{"line_item_id": "is required..."}`` from the page's field error paragraphs."""
    return {
        field.replace("-", "."): message.replace("&#39;", "'")
        for field, message in _FIELD_ERROR.findall(html)
    }


@contextmanager
def console_bed(
    tmp_path: Path, url: str | None = None, env: dict[str, str] | None = None
) -> Iterator[ConsoleBed]:
    url = url or f"sqlite:///{tmp_path / 'console.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        settings = Settings.from_env(
            {"ADTRACK_DATA_DIR": str(tmp_path / "data"), "ADTRACK_DATABASE_URL": url, **(env or {})}
        )
        users = fast_user_service(engine)  # the same service, with argon2 turned down for speed
        app = create_app(replace(bootstrap(settings, engine=engine), users=users))
        with TestClient(app, base_url="https://testserver") as client:
            yield ConsoleBed(app, engine, users, client)
    finally:
        engine.dispose()


def seed_chain(catalogue: CatalogueService) -> dict[str, int]:
    """An advertiser with a line item, a publisher with a placement and a conditional rule."""
    advertiser = catalogue.advertisers.create({"name": "Acme Shoes"})
    other = catalogue.advertisers.create({"name": "Blue Bank"})
    line_item = catalogue.line_items.create(
        {
            "advertiser_id": advertiser.id,
            "name": "Spring Sale",
            "revenue_type": "cpm",
            "revenue_value_micros": 2_500_000,
        }
    )
    other_line_item = catalogue.line_items.create(
        {"advertiser_id": other.id, "name": "Savings Push"}
    )
    publisher = catalogue.publishers.create({"name": "Daily News"})
    other_publisher = catalogue.publishers.create({"name": "Sports Weekly"})
    placement = catalogue.placements.create({"publisher_id": publisher.id, "name": "Homepage Top"})
    other_placement = catalogue.placements.create(
        {"publisher_id": other_publisher.id, "name": "Sidebar"}
    )
    rule = catalogue.payment_rules.create(
        {
            "publisher_id": publisher.id,
            "name": "Sports CPC",
            "pricing_type": "cpc",
            "cost_cpc_micros": 100_000,
            "priority": 7,
        }
    )
    return {
        "advertiser": advertiser.id,
        "other_advertiser": other.id,
        "line_item": line_item.id,
        "other_line_item": other_line_item.id,
        "publisher": publisher.id,
        "other_publisher": other_publisher.id,
        "placement": placement.id,
        "other_placement": other_placement.id,
        "rule": rule.id,
    }
