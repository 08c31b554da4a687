"""How the management API reports refusals.

Every error answer under ``/api/`` has one shape, naming the field at fault::

    {"detail": [{"field": "revenue_value", "message": "has more than 6 decimal places"}]}

``field`` is ``"body"`` for a malformed or missing JSON body, ``"authorization"`` for a
missing or bad token, and ``null`` when no field is at fault (an unknown URL). A write the
database cannot store because its disk is full or failing answers 503 with the reason and
``Retry-After`` (not a 500: the request was fine, the server cannot take it now). A refused
delete (409) also lists what is in the way: ``"blockers": [{"type": "tracker", "id": 7, ...}]``.
A refused batch (bulk write, 422) also lists each refused item: ``"errors": [{"item": 3,
"id": null, "field": "line_item_id", "message": ...}]`` and how many were refused (``refused``).
"""

from __future__ import annotations

import html
import logging
from dataclasses import asdict
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match

from adtrack.domain.errors import BatchRefused, DomainError, InUse
from adtrack.services.ports import StorageFailure
from adtrack.services.validation_messages import batch_item_errors, validation_errors
from adtrack.web.api.answers import ErrorOut

__all__ = [
    "ERROR_RESPONSES",
    "OpenApiExtra",
    "OpenApiResponses",
    "STORAGE_RETRY_AFTER_SECONDS",
    "allowed_methods",
    "error_body",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

# Retry-After on a 503 for a full or failing disk: an operator has to free space first.
STORAGE_RETRY_AFTER_SECONDS = 60


# Any: FastAPI's own type of an operation's ``responses=`` (status -> OpenAPI response object).
OpenApiResponses = dict[int | str, dict[str, Any]]
# Any: FastAPI's own type of an operation's ``openapi_extra=`` (merged into its OpenAPI object).
OpenApiExtra = dict[str, Any]


def _documented(description: str, **extra: object) -> dict[str, object]:
    return {"model": ErrorOut, "description": description, **extra}


# The error answers of every operation under /api/v1, documented once (the OpenAPI spec's
# ``responses``; an operation may override a description with its own). All share the body
# ``{"detail": [{"field": ..., "message": ...}]}`` (``ErrorOut``), 409 adds ``blockers``.
ERROR_RESPONSES: OpenApiResponses = {
    400: _documented("Malformed request body (not JSON, or not UTF-8); `field` is `body`."),
    401: _documented("No valid API token; `field` is `authorization`."),
    403: _documented("The token's role may not do this; `field` is `role`."),
    404: _documented("The object, or an object the request refers to, does not exist."),
    409: _documented("A uniqueness rule, or objects still using this one (`blockers`)."),
    422: _documented("Invalid input: `field` names the parameter or body field at fault."),
    503: _documented(
        "The database cannot store the change now (disk full or failing); retry later.",
        headers={
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        },
    ),
}


def error_body(field: str | None, message: str, **extra: object) -> dict[str, object]:
    return {"detail": [{"field": field, "message": message}], **extra}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    extra: dict[str, object] = {}
    if isinstance(exc, InUse):
        extra["blockers"] = exc.blockers
    if isinstance(exc, BatchRefused):
        extra["errors"] = [asdict(refusal) for refusal in exc.refusals]
        extra["refused"] = exc.total
    return JSONResponse(error_body(exc.field, exc.message, **extra), status_code=exc.status)


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    status, detail = validation_errors(exc.errors())
    body: dict[str, object] = {"detail": detail}
    items = batch_item_errors(exc.errors())
    if items:
        body["errors"] = items
    return JSONResponse(body, status_code=status)


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this request's path. Starlette's own 405 names only
    the methods of the first route that matched the path, while FastAPI adds one route per
    method (GET, PATCH and DELETE of ``/advertisers/{id}`` are three routes). Each method is
    asked of the routes as a request would be, so included routers are covered too."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHOD_ORDER
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        exc = StarletteHTTPException(
            405, exc.detail, headers={**(exc.headers or {}), "Allow": allow}
        )
    if not _is_api(request):
        return await http_exception_handler(request, exc)
    if isinstance(exc.detail, list):
        body: dict[str, object] = {"detail": exc.detail}
    else:
        body = error_body(None, str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Bad input is refused before it gets here; this is a server fault. Log it, leak nothing.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body(None, "internal server error"), status_code=500)


async def _storage_error(
    storage_failure: StorageFailure, request: Request, exc: Exception
) -> Response:
    """Database and OS errors: 503 with the reason when the disk is full or failing (as
    ``storage_failure`` tells), else the same 500 as any other fault."""
    reason = storage_failure(exc)
    if reason is None:
        return await _unexpected_error(request, exc)
    log.error(
        "storage unavailable on %s %s: %s (%s)", request.method, request.url.path, reason, exc
    )
    headers = {"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)}
    if _is_api(request):
        return JSONResponse(error_body(None, reason), status_code=503, headers=headers)
    return HTMLResponse(
        f"<h1>Service unavailable</h1><p>{html.escape(reason)}</p>",
        status_code=503,
        headers=headers,
    )


def install_error_handlers(app: FastAPI, storage_failure: StorageFailure) -> None:
    """The error answers above; ``storage_failure`` tells a full or failing store (the
    adapter's classifier, handed over by the composition root)."""
    storage_error = partial(_storage_error, storage_failure)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Handled by their class (not the catch-all below) so a full disk is an answer, not a crash.
    app.add_exception_handler(SQLAlchemyError, storage_error)
    app.add_exception_handler(OSError, storage_error)
    app.add_exception_handler(Exception, _unexpected_error)
