"""Helpers for the management API tests: the app on a real, migrated database with one user
(and API token) per role, and a helper that creates the whole catalogue chain over HTTP.

Users are created through the real ``UserService`` with argon2 parameters turned down, so
each test does not spend a quarter of a second per password hash.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.adapters.sql.users import SqlUserUnitOfWork
from adtrack.bootstrap import bootstrap
from adtrack.config import Settings
from adtrack.domain.events import INVALID_BOT, Event
from adtrack.domain.model import Role
from adtrack.services.users import UserService
from adtrack.web.app import create_app

API = "/api/v1"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def fast_user_service(engine: Engine) -> UserService:
    return UserService(partial(SqlUserUnitOfWork, engine), hasher=FAST_HASHER)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ApiTestbed:
    app: FastAPI
    engine: Engine
    users: UserService
    tokens: dict[Role, str]
    admin: TestClient
    trafficker: TestClient
    reporter: TestClient
    anonymous: TestClient

    def client(self, token: str) -> TestClient:
        return TestClient(self.app, headers=bearer(token))


def make_testbed(
    url: str, data_dir: Any, env: Mapping[str, str] | None = None
) -> Iterator[ApiTestbed]:
    """Migrate ``url``, create one user per role and yield clients for each; ``env`` adds
    settings (``ADTRACK_...`` variables)."""
    upgrade(url)
    engine = make_engine(url)
    try:
        settings = Settings.from_env(
            {"ADTRACK_DATA_DIR": str(data_dir), "ADTRACK_DATABASE_URL": url, **(env or {})}
        )
        app = create_app(bootstrap(settings, engine=engine))
        users = fast_user_service(engine)
        tokens: dict[Role, str] = {}
        for role in Role:
            created = users.create_user(f"{role.value}@example.com", role, "correct horse")
            tokens[role] = users.create_token(created.user.id, "tests").secret
        yield ApiTestbed(
            app=app,
            engine=engine,
            users=users,
            tokens=tokens,
            admin=TestClient(app, headers=bearer(tokens[Role.ADMIN])),
            trafficker=TestClient(app, headers=bearer(tokens[Role.TRAFFICKER])),
            reporter=TestClient(app, headers=bearer(tokens[Role.REPORTER])),
            anonymous=TestClient(app),
        )
    finally:
        engine.dispose()


class HttpClient(Protocol):
    """What TestClient and httpx.Client have in common, for the helpers below."""

    def post(self, url: str, *, json: Any = ...) -> Any: ...


def created(client: HttpClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``/api/v1/<path>`` and return the created object (asserting 201)."""
    response = client.post(f"{API}/{path}", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_chain(client: HttpClient, suffix: str = "") -> dict[str, dict[str, Any]]:
    """advertiser -> line item -> publisher -> placement -> payment rule -> both trackers."""
    advertiser = created(client, "advertisers", {"name": f"Acme{suffix}", "code": f"ACME{suffix}"})
    line_item = created(
        client,
        "line-items",
        {
            "advertiser_id": advertiser["id"],
            "name": f"Spring sale{suffix}",
            "revenue_type": "cpm",
            "revenue_value": 2.5,
            "start_date": "2024-05-01",
            "end_date": "2024-06-01T00:00:00Z",
        },
    )
    publisher = created(client, "publishers", {"name": f"Daily News{suffix}"})
    placement = created(
        client, "placements", {"publisher_id": publisher["id"], "name": f"Top banner{suffix}"}
    )
    payment_rule = created(
        client,
        "payment-rules",
        {
            "publisher_id": publisher["id"],
            "name": f"Spring CPM{suffix}",
            "pricing_type": "cpm",
            "cost_cpm": 1.25,
            "priority": 7,
            "advertiser_filter": "include",
            "advertiser_ids": [advertiser["id"]],
        },
    )
    impression_tracker = created(
        client,
        "impression-trackers",
        {
            "name": f"Spring imps{suffix}",
            "code": f"imp{suffix}",
            "line_item_id": line_item["id"],
            "publisher_id": publisher["id"],
            "placement_id": placement["id"],
            "payment_rule_id": payment_rule["id"],
        },
    )
    click_tracker = created(
        client,
        "click-trackers",
        {
            "name": f"Spring clicks{suffix}",
            "code": f"clk{suffix}",
            "line_item_id": line_item["id"],
            "publisher_id": publisher["id"],
            "placement_id": placement["id"],
            "landing_page_url": "https://shop.example.com/spring?utm=1",
        },
    )
    return {
        "advertiser": advertiser,
        "line_item": line_item,
        "publisher": publisher,
        "placement": placement,
        "payment_rule": payment_rule,
        "impression_tracker": impression_tracker,
        "click_tracker": click_tracker,
    }


def error_fields(response: Any) -> list[str | None]:
    """The ``field`` of each error in an error answer (asserting the documented shape)."""
    body = response.json()
    assert isinstance(body.get("detail"), list), body
    for item in body["detail"]:
        assert set(item) == {"field", "message"}, item
        assert isinstance(item["message"], str) and item["message"], item
    return [item["field"] for item in body["detail"]]


def tracked_event(
    tracker: Mapping[str, Any],
    imp_type: int,
    at: datetime,
    *,
    cost: int = 0,
    revenue: int = 0,
    invalid: bool = False,
    ancost: bool = False,
    referrer: str | None = None,
) -> Event:
    """The event a collector records for a hit on ``tracker`` (a tracker as the API answers it)
    at ``at``: ``cost`` and ``revenue`` in micros, ``invalid`` as a bot."""
    return Event(
        event_id=uuid.uuid4().hex,
        ts=(at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
        imp_type=imp_type,
        tracker_id=tracker["id"],
        advertiser_id=tracker["advertiser_id"],
        line_item_id=tracker["line_item_id"],
        publisher_id=tracker["publisher_id"],
        placement_id=tracker.get("placement_id"),
        payment_rule_id=tracker.get("payment_rule_id"),
        media_cost_micros=cost,
        booked_revenue_micros=revenue,
        revenue_type="cpm",
        ancost_used=ancost,
        cachebuster="cb",
        ip=None,
        country=None,
        user_agent="Mozilla/5.0",
        device_type=None,
        os=None,
        browser=None,
        referrer=referrer,
        invalid=invalid,
        invalid_reason=INVALID_BOT if invalid else None,
        redirect_url=None,
        view_state=None,
        impression_event_id=None,
    )
