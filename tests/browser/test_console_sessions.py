"""Sign-in protection in a real browser against a real ``adtrack serve``: a cookie copied before
**Sign out** is refused afterwards, and repeated wrong passwords end on the lockout page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.support.server import AdtrackServer


@pytest.fixture
def server(adtrack_server_factory: Callable[..., AdtrackServer]) -> AdtrackServer:
    return adtrack_server_factory(env={"ADTRACK_LOGIN_MAX_FAILURES": "3"})


def fill_and_submit(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    server: AdtrackServer, page: Page
) -> None:
    assert server.credentials is not None and server.credentials.password
    page.goto(server.base_url + "/login")
    fill_and_submit(page, server.credentials.email, server.credentials.password)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    copied = page.context.cookies()
    assert any(cookie["name"] == "adtrack_session" for cookie in copied)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))

    thief = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        thief.add_cookies(copied)  # type: ignore[arg-type]
        stolen = thief.new_page()
        stolen.goto(server.base_url + "/advertisers")
        expect(stolen).to_have_url(re.compile(r"/login\?next=%2Fadvertisers"))
        expect(stolen.get_by_role("button", name="Sign in")).to_be_visible()
    finally:
        thief.close()


def test_wrong_passwords_end_on_the_lockout_page(server: AdtrackServer, page: Page) -> None:
    assert server.credentials is not None and server.credentials.password
    page.goto(server.base_url + "/login")
    for attempt in range(2):
        fill_and_submit(page, server.credentials.email, f"not the password {attempt}")
        expect(page.get_by_role("alert")).to_contain_text("not right")
    fill_and_submit(page, server.credentials.email, "not the password either")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    # The right password now gets the same page: the account waits out its lockout.
    fill_and_submit(page, server.credentials.email, server.credentials.password)
    expect(page.get_by_role("alert")).to_contain_text("Try again in 15 minutes")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
