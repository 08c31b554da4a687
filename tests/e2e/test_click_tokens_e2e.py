"""Click tokens through a real ``adtrack serve`` with two collector processes: every process
seals with the deployment's one token secret (kept in the data directory when unset, or
``ADTRACK_TOKEN_SECRET``), so a token opens wherever it was made, on the tracking port and on
the main port's tracking paths alike; a token sealed with another secret does not."""

from __future__ import annotations

import stat
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adtrack.bootstrap import TOKEN_SECRET_FILE
from adtrack.domain.click_tokens import ClickTokenRefused, ClickTokens
from tests.conftest import ServerFactory
from tests.support.api_fixtures import create_chain
from tests.support.collector import BROWSER
from tests.support.server import AdtrackServer

pytestmark = [pytest.mark.slow]


def token_click_tracker(server: AdtrackServer) -> int:
    with server.client() as api:
        chain = create_chain(api)
        response = api.post(
            "/api/v1/click-trackers",
            json={
                "name": "Spring with token",
                "line_item_id": chain["line_item"]["id"],
                "publisher_id": chain["publisher"]["id"],
                "placement_id": chain["placement"]["id"],
                "landing_page_url": "https://shop.example/spring?sspdata=${SSP_DATA}",
            },
        )
    assert response.status_code == 201, response.text
    tracker_id: int = response.json()["id"]
    return tracker_id


def clicks(base_url: str, tracker_id: int, count: int) -> list[str]:
    """The tokens of ``count`` clicks, each on a new connection (spread over the workers)."""
    tokens = []
    for n in range(count):
        deadline = time.monotonic() + 10
        while True:  # a new tracker reaches the collectors with their next catalogue poll
            with httpx.Client(headers=BROWSER, timeout=10) as client:
                answer = client.get(f"{base_url}/clktrb?id={tracker_id}&cachebuster=e{n}")
            if answer.status_code == 302 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 302, answer.text
        [token] = parse_qs(urlsplit(answer.headers["location"]).query)["sspdata"]
        tokens.append(token)
    return tokens


def test_every_process_seals_with_the_kept_secret(adtrack_server_factory: ServerFactory) -> None:
    server = adtrack_server_factory(extra_args=["--workers", "2"])
    tracker_id = token_click_tracker(server)
    secret_file = server.data_dir / TOKEN_SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    tokens = ClickTokens(secret_file.read_bytes())
    made = clicks(server.tracking_url, tracker_id, 12) + clicks(server.base_url, tracker_id, 2)
    now = time.time_ns() // 1000
    read = [tokens.read(token, now) for token in made]
    assert {click.tracker_id for click in read} == {tracker_id}
    assert len({click.event_id for click in read}) == len(made)
    # the event ids' prefixes name the processes that made them: more than one did
    assert len({click.event_id.rsplit("-", 1)[0] for click in read}) >= 2
    with pytest.raises(ClickTokenRefused) as refused:
        ClickTokens(b"another deployment's secret....").read(made[0], now)
    assert refused.value.reason == "forged"


def test_the_configured_secret(adtrack_server_factory: ServerFactory) -> None:
    secret = "a configured token secret, 40 characters"
    server = adtrack_server_factory(env={"ADTRACK_TOKEN_SECRET": secret})
    tracker_id = token_click_tracker(server)
    [token] = clicks(server.tracking_url, tracker_id, 1)
    click = ClickTokens(secret.encode()).read(token, time.time_ns() // 1000)
    assert click.tracker_id == tracker_id
    assert not (server.data_dir / TOKEN_SECRET_FILE).exists()
