"""Every answer of the main port carries the security headers; ``/docs`` needs no CDN."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.console import console_bed


def test_docs_page_uses_vendored_assets_under_the_csp(tmp_path: Path) -> None:
    with console_bed(tmp_path) as bed:
        client = bed.client
        page = client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'self';")
        assert page.headers["x-frame-options"] == "DENY"
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/static/swagger-ui/") for s in sources), sources
        assert "<script>" not in page.text  # no inline script: the CSP would block it
        for source in sources:
            asset = client.get(source)
            assert asset.status_code == 200, source
            assert asset.headers["x-content-type-options"] == "nosniff"
        assert client.get("/api/v1/openapi.json").status_code == 200


def test_console_pages_and_api_answers_carry_the_headers(tmp_path: Path) -> None:
    with console_bed(tmp_path) as bed:
        client = bed.client
        login = client.get("/login")
        assert login.status_code == 200 and "text/html" in login.headers["content-type"]
        assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
        missing = client.get("/no-such-page")
        assert missing.status_code == 404
        assert "content-security-policy" in missing.headers
        api = client.get("/api/v1/advertisers")
        assert api.status_code == 401
        assert api.headers["x-content-type-options"] == "nosniff"
