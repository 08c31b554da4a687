"""The original platform's response envelopes and error answers.

Success: ``{"response": {"status": "OK", ...the call's fields..., "dbg_info": {...}}}``.
Errors: ``{"response": {"error_id": ID, "error": TEXT, "error_description": ..., "service":
..., "method": ..., "dbg_info": {...}}}`` with the platform's error ids
(api-semantics, "Error messages") and an HTTP status that says the same:

========== ====== ===============================================================
error_id   status meaning
========== ====== ===============================================================
NOAUTH     401    no token, an unknown or lapsed one, or wrong credentials
NOAUTH_DISABLED 401 the right password of a deactivated user
UNAUTH     403    the caller's role may not do this
SYNTAX     400    malformed request or an object that breaks a rule (405 for a
                  method the service does not have)
NOTFOUND   404    no such object or service (not in the platform's table; its
                  scripts see an id they can test)
INTEGRITY  409    inconsistent with other objects: a duplicate code, an object
                  still in use
SYSTEM     500    a server fault; 503 when the database cannot write, 429 when
                  sign-ins are throttled (both with ``Retry-After``)
========== ====== ===============================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response

from adtrack import __version__
from adtrack.domain.errors import Conflict, DomainError, NotFound, PermissionDenied
from adtrack.web.api.jsonio import ApiJSONResponse

__all__ = [
    "ERROR_STATUS",
    "XandrError",
    "dbg_info",
    "domain_error",
    "error_answer",
    "ok",
]

ERROR_STATUS: Mapping[str, int] = {
    "NOAUTH": 401,
    "NOAUTH_DISABLED": 401,
    "UNAUTH": 403,
    "SYNTAX": 400,
    "NOTFOUND": 404,
    "INTEGRITY": 409,
    "SYSTEM": 500,
}


class XandrError(Exception):
    """An error answer: ``error_id`` (one of ``ERROR_STATUS``), the text, and the status when
    it is not the id's usual one."""

    def __init__(
        self,
        error_id: str,
        error: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error_id}: {error}")
        self.error_id = error_id
        self.error = error
        self.status = ERROR_STATUS[error_id] if status is None else status
        self.headers = dict(headers or {})


def _service(request: Request) -> str:
    return request.url.path.rstrip("/").rsplit("/", 1)[-1]


def dbg_info(request: Request, warnings: Sequence[str] = ()) -> dict[str, object]:
    """What the platform puts in ``dbg_info``, as far as it means something here; a write's
    ``warnings`` say what of the object adtrack did not keep as it was."""
    return {
        "instance": "adtrack",
        "version": __version__,
        "output_term": _service(request),
        "warnings": list(warnings),
    }


def ok(request: Request, body: Mapping[str, object], *, warnings: Sequence[str] = ()) -> Response:
    return ApiJSONResponse(
        {"response": {"status": "OK", **body, "dbg_info": dbg_info(request, warnings)}}
    )


def error_answer(request: Request, error: XandrError) -> Response:
    return ApiJSONResponse(
        {
            "response": {
                "error_id": error.error_id,
                "error": error.error,
                "error_description": None,
                "service": _service(request),
                "method": request.method.lower(),
                "dbg_info": dbg_info(request),
            }
        },
        status_code=error.status,
        headers=error.headers,
    )


# adtrack's attribute -> the tracker field it came from (the catalogue names its own; only
# tracker writes reach the catalogue here).
_PLATFORM_FIELDS: Mapping[str, str] = {
    "landing_page_url": "click_url",
    "placement_id": "tag",
    "payment_rule_id": "payment_rule",
    "line_item_id": "line_item",
    "publisher_id": "publisher",
}


def domain_error(exc: DomainError) -> XandrError:
    """A refusal of adtrack's services in the platform's terms."""
    text = f"{_PLATFORM_FIELDS.get(exc.field, exc.field)}: {exc.message}"
    if isinstance(exc, NotFound):
        return XandrError("NOTFOUND", text)
    if isinstance(exc, PermissionDenied):
        return XandrError("UNAUTH", text)
    if isinstance(exc, Conflict):
        return XandrError("INTEGRITY", text)
    return XandrError("SYNTAX", text)
