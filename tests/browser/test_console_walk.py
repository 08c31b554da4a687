"""The seed pages, walked in a real browser against a real ``adtrack serve``.

"Create an impression tracker" and "Create a click tracker": sign in, create the advertiser,
line item, publisher, placement and payment rule, create both trackers through the dialog
(each with a validation error and its fix), export them (JavaScript tag and secure pixel; click
URL and anchor) with every macro, fire the exported pixel and click URL with an HTTP client, and
find the impression and the click in the Reports screen and the tracker's live hits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.net import free_port
from tests.support.server import AdtrackServer

pytestmark = [pytest.mark.slow]

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
REPORT_WAIT_SECONDS = 45
NAME = re.compile(r"^Name\b")  # the label reads "Name *" (required)


@pytest.fixture
def server(adtrack_server_factory: Callable[..., AdtrackServer]) -> AdtrackServer:
    tracking_port = free_port()
    return adtrack_server_factory(
        env={"ADTRACK_PUBLIC_URL": f"http://127.0.0.1:{tracking_port}"},
        tracking_port=tracking_port,
    )


def sign_in(page: Page, server: AdtrackServer) -> None:
    assert server.credentials is not None and server.credentials.password
    page.goto(server.base_url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(server.credentials.email)
    page.get_by_label("Password").fill(server.credentials.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def flash(page: Page) -> Any:
    return page.locator("#notice .notice")


def choose(select: Any, starts_with: str) -> None:
    """Select the option whose text starts with ``starts_with`` (texts end with the id)."""
    option = select.locator("option", has_text=starts_with).first
    select.select_option(option.get_attribute("value"))


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def creative(page: Page, name: str) -> None:
    """Creative > Impression Trackers / Click Trackers."""
    menu = page.get_by_role("navigation", name="Main")
    menu.get_by_text("Creative", exact=True).click()
    menu.get_by_role("link", name=name).click()


def pick(page: Page, which: str, name: str) -> None:
    """Line Item Association / Publisher Settings: Edit, search, choose."""
    dialog = page.locator("dialog")
    dialog.get_by_role("button", name=f"Edit {which}").click()
    search = dialog.get_by_role("searchbox", name=re.compile(f"Search .*{which}", re.I))
    search.fill(name.split()[0])
    choice = dialog.get_by_role("button", name=re.compile(re.escape(name)))
    choice.click()
    expect(dialog.locator(f"#{which.replace(' ', '-')}-chosen")).to_contain_text(name)


def export(page: Page, tracker_name: str, fmt: str) -> str:
    """Select the tracker, More Actions > Export Tags, choose ``fmt``, all macros, generate now;
    returns the tag shown."""
    page.get_by_label(f"Select {tracker_name}").check()
    page.get_by_text("More Actions").click()
    page.get_by_role("menuitem", name="Export Tags").click()
    dialog = page.locator("dialog")
    expect(dialog.get_by_role("heading", name="Export Trackers")).to_be_visible()
    expect(dialog.get_by_role("group", name="Basic Options")).to_be_visible()
    expect(dialog.get_by_role("group", name="Delivery Options")).to_be_visible()
    expect(dialog.get_by_role("group", name="Advanced Options")).to_be_visible()
    dialog.get_by_label(fmt, exact=True).check()
    dialog.get_by_label("Generate tags now").check()
    for macro in ("CACHEBUSTER", "ANCOST", "REDIRECT_URL"):
        dialog.get_by_label(macro, exact=True).check()
    dialog.get_by_role("button", name="Export").click()
    tag_box = dialog.get_by_role("textbox", name=f"Tag of {tracker_name}")
    expect(tag_box).to_be_visible()
    expect(dialog.get_by_role("button", name=f"Copy the tag of {tracker_name}")).to_be_visible()
    return tag_box.input_value()


def close_dialog(page: Page) -> None:
    page.locator("dialog").get_by_role("button", name="Done").click()
    expect(page.locator("dialog")).not_to_be_visible()


def plain_http(url: str) -> str:
    """The test server has no TLS: a tag URL's own https becomes http (not the redir's)."""
    return "http://" + url.removeprefix("https://") if url.startswith("https://") else url


def fill_macros(url: str, redirect: str) -> str:
    return (
        url.replace("[CACHEBUSTER]", str(int(time.time() * 1000)))
        .replace("[ANCOST]", "0.05")
        .replace("[REDIRECT_URL]", redirect)
    )


def test_seed_pages_walk(page: Page, server: AdtrackServer, shot: Callable[..., Any]) -> None:
    page.on("dialog", lambda d: d.accept())  # confirm() prompts

    # --- sign in -------------------------------------------------------------------------
    page.goto(server.base_url + "/login")
    shot(page, "01-sign-in")
    sign_in(page, server)

    # --- the catalogue ---------------------------------------------------------------------
    nav(page, "Advertisers")
    page.get_by_role("link", name="+ New").click()
    page.get_by_label(NAME).fill("Acme Shoes")
    page.get_by_role("button", name="Create advertiser").click()
    expect(flash(page)).to_contain_text("Created advertiser “Acme Shoes”")
    shot(page, "02-advertisers")

    nav(page, "Line Items")
    page.get_by_role("link", name="+ New").click()
    choose(page.get_by_label("Advertiser"), "Acme Shoes")
    page.get_by_label(NAME).fill("Spring Sale")
    page.get_by_label("Booked revenue").select_option("cpm")
    shot(page, "03-line-item-form")
    page.get_by_role("button", name="Create line item").click()
    # A CPM line item needs its revenue value: the error sits next to the field.
    expect(page.locator("#revenue_value-error")).to_contain_text("is required")
    expect(page.get_by_label(NAME)).to_have_value("Spring Sale")
    page.get_by_label("Revenue value").fill("2.50")
    page.get_by_role("button", name="Create line item").click()
    expect(flash(page)).to_contain_text("Created line item “Spring Sale”")

    nav(page, "Publishers")
    page.get_by_role("link", name="+ New").click()
    page.get_by_label(NAME).fill("Daily News")
    page.get_by_label("Base rule pricing").select_option("cpm")
    page.get_by_label("Cost CPM").fill("1.20")
    page.get_by_role("button", name="Create publisher").click()
    expect(flash(page)).to_contain_text("Created publisher “Daily News”")
    page.get_by_role("link", name="+ New placement").click()
    page.get_by_label(NAME).fill("Homepage Top")
    page.get_by_role("button", name="Create placement").click()
    expect(flash(page)).to_contain_text("Created placement “Homepage Top”")
    page.get_by_role("link", name="+ New payment rule").click()
    page.get_by_label(NAME).fill("Sports CPC")
    page.get_by_label("Pricing", exact=True).select_option("cpc")
    page.get_by_label("Cost per click").fill("0.10")
    page.get_by_label("Priority").fill("7")
    page.get_by_role("button", name="Create payment rule").click()
    expect(flash(page)).to_contain_text("Created payment rule “Sports CPC”")
    expect(page.get_by_role("link", name="Homepage Top")).to_be_visible()
    shot(page, "04-publisher", full_page=True)

    # --- Create an impression tracker --------------------------------------------------------
    creative(page, "Impression Trackers")
    expect(page.get_by_role("heading", name="Select an advertiser")).to_be_visible()
    shot(page, "05-advertiser-picker")
    page.get_by_role("link", name="Acme Shoes").click()
    page.get_by_role("button", name="+ New").click()
    dialog = page.locator("dialog")
    expect(dialog.get_by_role("heading", name="Create New Impression Tracker")).to_be_visible()
    for section in ("Imp Tracker Details", "Line Item Association", "Publisher Settings"):
        expect(dialog.get_by_role("group", name=section)).to_be_visible()
    expect(dialog.get_by_role("group", name="Placement")).to_be_visible()
    expect(dialog.get_by_role("group", name="Payment Rule")).to_be_visible()
    expect(dialog.get_by_label(NAME)).to_be_focused()
    dialog.get_by_label(NAME).fill("Homepage pixel")
    dialog.get_by_text("Advanced Options").click()
    dialog.get_by_label("Code", exact=True).fill("hp-pixel-1")
    shot(page, "06-create-impression-tracker")
    # Validation error: no line item chosen. The error sits next to the section; nothing is lost.
    dialog.get_by_role("button", name="Create Imp Tracker").click()
    expect(dialog.locator("#line_item_id-error")).to_contain_text("is required")
    expect(dialog.get_by_label(NAME)).to_have_value("Homepage pixel")
    expect(dialog.get_by_label("Code", exact=True)).to_have_value("hp-pixel-1")
    shot(page, "07-validation-error")
    # The fix.
    pick(page, "line item", "Spring Sale")
    pick(page, "publisher", "Daily News")
    expect(dialog.get_by_label("Placement")).to_be_enabled()
    choose(dialog.get_by_label("Placement"), "Homepage Top")
    choose(dialog.get_by_label("Payment rule"), "Sports CPC")
    dialog.get_by_role("button", name="Create Imp Tracker").click()
    expect(flash(page)).to_contain_text("Created impression tracker “Homepage pixel”")
    row = page.get_by_role("row", name=re.compile("Homepage pixel"))
    expect(row).to_contain_text("Spring Sale")
    expect(row).to_contain_text("Homepage Top")
    expect(row).to_contain_text("Sports CPC")
    shot(page, "08-impression-trackers")

    js_tag = export(page, "Homepage pixel", "JavaScript tag")
    assert js_tag.startswith("<!-- Imp Tracker - Homepage pixel - DO NOT MODIFY -->")
    assert "<script src=" in js_tag and "&t=1" in js_tag
    assert "cachebuster=[CACHEBUSTER]&ancost=[ANCOST]" in js_tag
    assert js_tag.split('"')[1].endswith("redir=[REDIRECT_URL]")
    shot(page, "09-export-javascript")
    close_dialog(page)
    pixel_tag = export(page, "Homepage pixel", "Secure pixel")
    pixel_src = re.search(r'<img src="([^"]+)"', pixel_tag)
    assert pixel_src is not None, pixel_tag
    assert pixel_src.group(1).startswith("https://")  # the secure pixel
    assert "&t=2" in pixel_src.group(1) and pixel_src.group(1).endswith("redir=[REDIRECT_URL]")
    close_dialog(page)
    # The export dialog itself, before generating.
    page.get_by_label("Select Homepage pixel").check()
    page.get_by_text("More Actions").click()
    page.get_by_role("menuitem", name="Export Tags").click()
    expect(page.locator("dialog").get_by_role("heading", name="Export Trackers")).to_be_visible()
    shot(page, "10-export-dialog")
    page.keyboard.press("Escape")  # keyboard closes the dialog
    expect(page.locator("dialog")).not_to_be_visible()

    # --- Create a click tracker ----------------------------------------------------------
    creative(page, "Click Trackers")  # the advertiser is remembered
    page.get_by_role("button", name="+ New").click()
    expect(dialog.get_by_role("heading", name="Create New Click Tracker")).to_be_visible()
    expect(dialog.get_by_role("group", name="Click Tracker Details")).to_be_visible()
    dialog.get_by_label(NAME).fill("Homepage click")
    dialog.get_by_text("Advanced Options").click()
    dialog.get_by_label("Landing Page URL").fill("shop.example.com/spring")
    pick(page, "line item", "Spring Sale")
    pick(page, "publisher", "Daily News")
    dialog.get_by_role("button", name="Create Click Tracker").click()
    expect(dialog.locator("#landing_page_url-error")).to_contain_text("http")
    expect(dialog.get_by_label("Landing Page URL")).to_be_focused()  # the field in error
    expect(dialog.get_by_label(NAME)).to_have_value("Homepage click")
    expect(dialog.locator("#line-item-chosen")).to_contain_text("Spring Sale")
    dialog.get_by_label("Landing Page URL").fill("https://shop.example.com/spring")
    dialog.get_by_role("button", name="Create Click Tracker").click()
    expect(flash(page)).to_contain_text("Created click tracker “Homepage click”")

    click_url = export(page, "Homepage click", "Click URL")
    assert "/clktrb?id=" in click_url
    assert "cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]" in click_url
    close_dialog(page)
    anchor = export(page, "Homepage click", "Anchor (<a> tag)")
    assert anchor.startswith("<!-- Click Tracker - Homepage click -->")
    assert anchor.endswith(">YOUR TEXT HERE</a><!-- End of Click Tracker -->")
    shot(page, "11-export-click")
    close_dialog(page)

    # --- the tags work: load them like a browser would ---------------------------------------
    headers = {"User-Agent": BROWSER_UA, "Referer": "https://news.example.com/"}
    with httpx.Client(timeout=10, headers=headers) as http:
        # No TLS on the test server: the secure pixel's https becomes http here.
        pixel = fill_macros(pixel_src.group(1), "https://cdn.example.com/creative.png")
        answer = http.get(plain_http(pixel))
        assert answer.status_code in (200, 302), answer.text
        click = fill_macros(click_url, "https://shop.example.com/spring?from=tag")
        answer = http.get(plain_http(click))
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"].startswith("https://shop.example.com/spring")

    # --- Reports ---------------------------------------------------------------------------
    nav(page, "Reports")
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    table = page.locator("#report-table")
    while True:
        page.get_by_role("button", name="Run report").click()
        imp_row = table.get_by_role("row", name=re.compile("9 External Impression"))
        click_row = table.get_by_role("row", name=re.compile("10 External Click"))
        if imp_row.count() and click_row.count():
            break
        assert time.monotonic() < deadline, "the impression and click never reached the report"
        time.sleep(1)
    cells = imp_row.get_by_role("cell").all_inner_texts()
    assert cells[2] == "1"  # interval, imp type, imps
    cells = click_row.get_by_role("cell").all_inner_texts()
    assert cells[3] == "1"  # interval, imp type, imps, clicks
    expect(page.locator("#report-chart")).to_be_visible()
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    expect(page.get_by_role("button", name="Download click-tracker feed")).to_be_visible()
    shot(page, "12-reports", full_page=True)
    # By country: the hits came from the loopback address, which has no country.
    page.locator('input[name="group_by"][value="imp_type"]').uncheck()
    page.locator('input[name="group_by"][value="country"]').check()
    page.get_by_role("button", name="Run report").click()
    expect(page.get_by_role("heading", name="Imps over time, by country")).to_be_visible()
    unknown = table.get_by_role("row", name=re.compile("Unknown"))
    expect(unknown).to_have_count(1)
    assert unknown.get_by_role("cell").all_inner_texts()[1:4] == ["Unknown", "1", "1"]
    expect(page.locator("#report-chart")).to_be_visible()

    # --- Live hits on the tracker's page -----------------------------------------------------
    creative(page, "Impression Trackers")
    page.get_by_role("link", name="Homepage pixel").click()
    hits = page.locator("#live-hits")
    expect(hits.get_by_role("row", name=re.compile("counted"))).to_have_count(1)
    expect(hits).to_contain_text("0.050000")  # the ancost the tag carried
    page.get_by_role("button", name="Fire test hit").click()
    expect(hits.locator("tbody tr")).to_have_count(2, timeout=10_000)
    shot(page, "13-live-hits", full_page=True)
