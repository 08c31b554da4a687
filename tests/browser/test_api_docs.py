"""``/docs`` is served by adtrack alone (vendored Swagger UI) and works under the CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Page, Request

from tests.support.server import AdtrackServer


def test_swagger_ui_loads_from_adtrack_only_and_lists_the_operations(
    adtrack_server: AdtrackServer, page: Page
) -> None:
    hosts: set[str] = set()
    problems: list[str] = []

    def on_request(request: Request) -> None:
        hosts.add(urlsplit(request.url).netloc)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    answer = page.goto(f"{adtrack_server.base_url}/docs")
    assert answer is not None and answer.status == 200
    assert "script-src 'self'" in (answer.headers.get("content-security-policy") or "")
    operations = page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() > 20
    assert page.get_by_text("/api/v1/advertisers", exact=True).first.is_visible()
    assert hosts == {f"127.0.0.1:{adtrack_server.port}"}
    assert problems == []
