"""CSRF protection for the console.

Every state-changing request (anything but GET/HEAD/OPTIONS) must carry the session's token,
either as the form field ``csrf_token`` or the header ``X-CSRF-Token`` (htmx sends it from the
page's ``hx-headers``). The token is an HMAC of the session nonce under the session secret, so
it needs no storage, changes with every sign-in and cannot be computed by another site. The
session cookie's ``SameSite=Lax`` is a second line of defence, not the only one.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "CsrfError", "csrf_token", "request_token", "tokens_match"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token."""


def csrf_token(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


async def request_token(request: Request) -> str | None:
    """The token the request carries: the header first, else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it for the handler
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None
