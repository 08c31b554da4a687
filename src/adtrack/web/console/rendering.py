"""How console pages are rendered: the templates and their filters, the formatting of money
and times, full pages, redirects (htmx-aware) and safe return paths."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from adtrack.domain.money import format_micros
from adtrack.web.console.access import csrf_for
from adtrack.web.console.console_state import console_state

__all__ = [
    "TEMPLATES_DIR",
    "is_htmx",
    "local_date",
    "local_time",
    "make_templates",
    "money_text",
    "query_string",
    "redirect",
    "render",
    "safe_next",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters["money"] = money_text
    env.filters["urlq"] = lambda value: quote(str(value), safe="")
    env.globals["query"] = query_string
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates


def money_text(micros: int | None) -> str:
    """Micros as a short decimal: 2500000 -> "2.50", 1234 -> "0.001234"."""
    if micros is None:
        return ""
    text = format_micros(micros).rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def query_string(base: Mapping[str, object], **changes: object) -> str:
    """``base`` with ``changes`` applied, as ``?a=1&b=2`` (``None`` values dropped)."""
    merged = {**base, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else "?"


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def local_date(value: datetime | None, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).date().isoformat()


def render(
    request: Request,
    template: str,
    context: Mapping[str, object] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    state = console_state(request)
    zone = state.zone
    viewer = getattr(request.state, "viewer", None)
    # Only a full page shows (and so uses up) the flash: an htmx request in flight while the
    # browser follows a redirect (a picker's delayed search, a poll) would otherwise take it.
    flash = None if is_htmx(request) else state.codec.read_flash(request)
    full: dict[str, object] = {
        "viewer": viewer,
        "user": viewer.user if viewer else None,
        "csrf_token": csrf_for(request),
        "flash": flash,
        "htmx": is_htmx(request),
        "timezone": state.settings.timezone,
        "fmt_time": lambda value: local_time(value, zone),
        "fmt_date": lambda value: local_date(value, zone),
        **(context or {}),
    }
    response = state.templates.TemplateResponse(
        request, template, full, status_code=status_code, headers=dict(headers or {})
    )
    if flash is not None:
        state.codec.clear_flash(response)
    return response


def redirect(
    request: Request, url: str, *, flash: str | None = None, flash_kind: str = "success"
) -> Response:
    """See-other to ``url``; htmx requests get ``HX-Redirect`` (a full page load) instead."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash:
        console_state(request).codec.write_flash(response, flash, flash_kind)
    return response


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths: ``/trackers`` yes, ``//evil.example`` and ``https://...`` no."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value
