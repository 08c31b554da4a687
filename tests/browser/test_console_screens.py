"""Screens that need a browser to be seen working: the report chart drawn by Chart.js, live hits
arriving by htmx polling, keyboard use of the dialog and menus.

The app runs in-process under uvicorn on a free port, on a database seeded with a small
catalogue and rolled-up events, so these checks do not depend on the tracking pipeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Page, expect

from adtrack.collector.hits import RecentHit, RecentHits
from adtrack.domain.model import Role
from adtrack.web.state import state_of
from tests.support.console import PASSWORD, ConsoleBed, console_bed
from tests.support.net import free_port, wait_for_port
from tests.support.reporting import TRACKERS, RawEvent, load_events, load_rollups, seed_catalogue

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class LiveApp:
    def __init__(self, bed: ConsoleBed, ring: RecentHits, url: str) -> None:
        self.bed, self.ring, self.url = bed, ring, url


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApp]:
    with console_bed(tmp_path, env={"ADTRACK_PUBLIC_URL": "http://127.0.0.1:9"}) as bed:
        seed_catalogue(bed.engine)
        events = []
        for day in range(7):
            when = TODAY - timedelta(days=6 - day) + timedelta(hours=10)
            events += [RawEvent(when, TRACKERS[0], 1_200, 2_500, False)] * (3 + day)
            events += [RawEvent(when, TRACKERS[1], 100_000, 0, False)] * (day % 3)
        load_rollups(bed.engine, events)
        load_events(bed.engine, events, state_of(bed.app).services.settings.raw_events_dir)
        bed.add_user(Role.ADMIN, "admin@example.com")
        ring = RecentHits()
        state_of(bed.app).recent_hits = ring
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(bed.app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            assert wait_for_port("127.0.0.1", port, 10)
            yield LiveApp(bed, ring, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(10)


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_report_chart_is_drawn(live: LiveApp, page: Page, shot: Callable[..., Any]) -> None:
    sign_in(page, live.url)
    page.goto(live.url + "/reports")
    table = page.locator("#report-table")
    expect(table.locator("tfoot")).to_contain_text("Totals")
    # Chart.js drew a line chart with both series over the 7 days.
    page.wait_for_function("document.getElementById('report-chart')._chart !== undefined")
    chart = page.evaluate(
        "(() => { const c = document.getElementById('report-chart')._chart;"
        " return {type: c.config.type, labels: c.data.labels,"
        " series: c.data.datasets.map(d => [d.label, d.data])}; })()"
    )
    assert chart["type"] == "line" and len(chart["labels"]) == 7
    assert chart["series"][0] == ["9 External Impression: imps", [3, 4, 5, 6, 7, 8, 9]]
    assert chart["series"][1] == ["10 External Click: clicks", [0, 1, 2, 0, 1, 2, 0]]
    assert chart["series"][2] == ["9 External Impression: viewable imps", [0] * 7]
    painted = page.evaluate(
        "(() => { const c = document.getElementById('report-chart');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"
    )
    assert painted > 1000
    shot(page, "reports", full_page=True)


def test_live_hits_arrive_while_watching(
    live: LiveApp, page: Page, shot: Callable[..., Any]
) -> None:
    sign_in(page, live.url)
    page.goto(live.url + "/trackers/1")
    hits = page.locator("#live-hits")
    expect(hits).to_contain_text("No hits yet")
    now = int(time.time() * 1_000_000)
    live.ring.add(
        1,
        RecentHit(
            now,
            "valid",
            50_000,
            True,
            "https://cdn.example.com/creative.png",
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
            "https://news.example.com/sports",
        ),
    )
    live.ring.add(1, RecentHit(now + 1, "bot", 0, False, None, "Googlebot/2.1", None))
    expect(hits.locator("tbody tr")).to_have_count(2, timeout=6_000)  # polled every 2 s
    expect(hits.locator("tbody tr").first).to_contain_text("invalid: bot")
    expect(hits.locator("tbody tr").nth(1)).to_contain_text("counted")
    expect(hits.locator("tbody tr").nth(1)).to_contain_text("0.050000")
    # Fire test hit loads the tracker's own URL (the tag host) from the browser.
    with page.expect_request(lambda r: "/imptr?id=1&cachebuster=" in r.url) as fired:
        page.get_by_role("button", name="Fire test hit").click()
    assert fired.value.url.startswith("http://127.0.0.1:9/imptr?id=1&cachebuster=")
    assert "[CACHEBUSTER]" not in fired.value.url
    shot(page, "live-hits", full_page=True)


def test_a_form_sent_back_with_errors_leaves_the_focus_where_the_user_put_it(
    live: LiveApp, page: Page
) -> None:
    """The dialog sets the focus once when a form comes back; the swap settling later (htmx's
    autofocus) does not take it back from a field the user went on to. The settling is slowed
    to 400 ms so that the user's move surely comes before it."""
    sign_in(page, live.url)
    page.goto(live.url + "/click-trackers?advertiser_id=1")
    page.get_by_role("button", name="+ New").click()
    dialog = page.locator("dialog")
    dialog.get_by_label("Name", exact=False).first.fill("Homepage click")
    dialog.get_by_text("Advanced Options").click()
    # (a value among the advanced options keeps them open when the form comes back)
    dialog.get_by_label("Landing Page URL").fill("https://shop.example.com/spring")
    page.evaluate("htmx.config.defaultSettleDelay = 400")
    dialog.get_by_role("button", name="Create Click Tracker").click()  # no line item: an error
    expect(dialog.locator("#line_item_id-error")).to_contain_text("is required")
    code = dialog.get_by_label("Code", exact=True)
    code.focus()  # the user goes on before the swap settles
    page.wait_for_timeout(800)
    expect(code).to_be_focused()


def test_dialog_and_menus_work_from_the_keyboard(live: LiveApp, page: Page) -> None:
    sign_in(page, live.url)
    page.goto(live.url + "/impression-trackers?advertiser_id=1")
    new_button = page.get_by_role("button", name="+ New")
    new_button.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog")
    expect(dialog).to_be_visible()
    name = dialog.get_by_label("Name", exact=False).first
    expect(name).to_be_focused()
    # Tab never reaches the page behind the modal dialog (past the last control the focus may
    # leave for the browser's own UI, where document.activeElement is the body).
    for _ in range(25):
        page.keyboard.press("Tab")
        where = page.evaluate(
            "(() => { const a = document.activeElement;"
            " return a === document.body ? 'browser' :"
            " document.getElementById('dialog').contains(a) ? 'dialog' : a.outerHTML; })()"
        )
        assert where in ("dialog", "browser"), where
    # The line item picker opens with Enter and its search field takes the focus.
    dialog.get_by_role("button", name="Edit line item").focus()
    page.keyboard.press("Enter")
    expect(
        dialog.get_by_role("searchbox", name="Search this advertiser's line items")
    ).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).not_to_be_visible()
    expect(new_button).to_be_focused()  # focus returns to the opener
    # More Actions opens with the keyboard and closes with Escape.
    summary = page.get_by_text("More Actions")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("menuitem", name="Export Tags")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menuitem", name="Export Tags")).not_to_be_visible()


def test_advertiser_landing_domains_are_edited_one_per_line(live: LiveApp, page: Page) -> None:
    sign_in(page, live.url)
    advertiser = live.bed.catalogue.advertisers.list().items[0]
    page.goto(f"{live.url}/advertisers/{advertiser.id}")
    domains = page.get_by_label("Landing domains")
    expect(domains).to_have_value("")
    domains.fill("Shop.Example\n*.cdn.example\nhttps://not-a-host.example/x")
    page.get_by_label("Redirect policy").select_option("allow-list")
    page.get_by_role("button", name="Save").click()
    # the bad line is named next to the field, and everything typed is still there
    expect(page.get_by_text("https://not-a-host.example/x' must be a host name")).to_be_visible()
    expect(page.get_by_label("Landing domains")).to_have_value(
        "Shop.Example\n*.cdn.example\nhttps://not-a-host.example/x"
    )
    expect(page.get_by_label("Redirect policy")).to_have_value("allow-list")
    page.get_by_label("Landing domains").fill("Shop.Example\n\n*.cdn.example\n")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved advertiser")).to_be_visible()
    saved = live.bed.catalogue.advertisers.get(advertiser.id)
    assert saved.landing_domains == ("shop.example", "*.cdn.example")
    assert saved.redirect_policy is not None and saved.redirect_policy.value == "allow-list"
    page.goto(f"{live.url}/advertisers/{advertiser.id}")
    expect(page.get_by_label("Landing domains")).to_have_value("shop.example\n*.cdn.example")
