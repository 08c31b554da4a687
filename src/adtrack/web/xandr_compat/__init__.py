"""The original platform's API (Microsoft Invest / Xandr / AppNexus) under ``/xandr/``, so a
script written against it works by changing its base URL. Mounted only with
``ADTRACK_COMPAT_API=xandr``; see docs/xandr-api.md.

- ``POST /xandr/auth``: a token (``auth.py``).
- ``GET/POST/PUT/DELETE /xandr/imptracker`` and ``/xandr/clicktracker``; ``GET`` of
  ``/xandr/advertiser``, ``line-item``, ``publisher``, ``placement`` and ``payment-rule``
  (``resources.py``), with ``?id=N``, ``?id=1,2,3``, the services' filters and
  ``start_element``/``num_elements`` paging.
- Every answer in the platform's envelope, errors with its ``error_id`` (``envelopes.py``).

A Starlette app of its own (no OpenAPI schema: the platform's documentation is the reference),
so its error answers are the platform's, not the management API's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adtrack.domain.errors import DomainError
from adtrack.web.api.errors import STORAGE_RETRY_AFTER_SECONDS
from adtrack.web.state import services
from adtrack.web.xandr_compat import resources
from adtrack.web.xandr_compat.auth import caller, sign_in, writer
from adtrack.web.xandr_compat.envelopes import XandrError, domain_error, error_answer, ok
from adtrack.web.xandr_compat.request_input import (
    ids_param,
    json_object,
    optional_id_param,
    paging,
)

__all__ = ["XANDR_PREFIX", "create_xandr_app"]

XANDR_PREFIX = "/xandr"

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


def _endpoint(service: resources.XandrService) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        user = await caller(request)
        container = services(request)
        catalogue, settings = container.catalogue, container.settings
        method = request.method
        if method in ("GET", "HEAD"):
            filters = {
                name: value
                for name in service.filters
                if (value := optional_id_param(request, name)) is not None
            }
            answer = await run_in_threadpool(
                service.read,
                catalogue,
                settings,
                ids_param(request, settings.xandr_max_elements),
                filters,
                paging(request, settings.xandr_max_elements),
            )
            return ok(request, answer.body)
        writer(user)
        if method == "POST":
            obj = json_object(await request.body(), service.kind.value)
            advertiser_id = optional_id_param(request, "advertiser_id")
            answer = await run_in_threadpool(
                service.create, catalogue, settings, obj, advertiser_id
            )
        else:
            id = _one_id(request, settings.xandr_max_elements)
            if method == "PUT":
                obj = json_object(await request.body(), service.kind.value)
                answer = await run_in_threadpool(service.update, catalogue, settings, id, obj)
            else:
                answer = await run_in_threadpool(service.delete, catalogue, id)
        warnings = [f"{note.field}: {note.reason}" for note in answer.notes]
        return ok(request, answer.body, warnings=warnings)

    return endpoint


def _one_id(request: Request, most: int) -> int:
    ids = ids_param(request, most)
    if len(ids) != 1:
        raise XandrError("SYNTAX", "id: give the id of one object in the query string (?id=N)")
    return ids[0]


# --- error answers -------------------------------------------------------------------------


async def _xandr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, XandrError)
    return error_answer(request, exc)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_answer(request, domain_error(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = XandrError(
            "SYNTAX",
            f"this service does not take {request.method}",
            status=405,
            headers=exc.headers,
        )
    elif exc.status_code == 404:
        error = XandrError("NOTFOUND", f"no such service: {request.url.path}")
    else:
        error = XandrError("SYNTAX", str(exc.detail), status=exc.status_code, headers=exc.headers)
    return error_answer(request, error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_answer(request, XandrError("SYSTEM", "internal server error"))


async def _storage_error(request: Request, exc: Exception) -> Response:
    reason = services(request).storage_failure(exc)
    if reason is None:
        return await _unexpected_error(request, exc)
    log.error("storage unavailable on %s %s: %s", request.method, request.url.path, reason)
    return error_answer(
        request,
        XandrError(
            "SYSTEM",
            reason,
            status=503,
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        ),
    )


def create_xandr_app() -> Starlette:
    """The compatible API, to mount at ``XANDR_PREFIX``; the caller sets its ``state.web``
    (the same ``WebState`` as the main app's)."""
    routes = [Route("/auth", sign_in, methods=["POST"])]
    for service in resources.SERVICES:
        methods = ["GET", "POST", "PUT", "DELETE"] if service.writable else ["GET"]
        routes.append(Route(f"/{service.kind.value}", _endpoint(service), methods=methods))
    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        XandrError: _xandr_error,
        DomainError: _domain_error,
        HTTPException: _http_error,
        SQLAlchemyError: _storage_error,
        OSError: _storage_error,
        Exception: _unexpected_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers)
