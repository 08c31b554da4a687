"""Exact JSON for money: request numbers are parsed as ``Decimal`` and responses write
``Decimal`` values as plain JSON numbers, so an amount never passes through a binary float.

- ``DecimalJSONRoute``: an ``APIRoute`` whose request bodies are parsed with
  ``json.loads(parse_float=Decimal)`` (``2.5`` arrives as ``Decimal("2.5")``). ``NaN`` and
  ``Infinity`` become non-finite Decimals, which the field validators then refuse by name.
- ``ApiJSONResponse``: orjson rendering where a ``Decimal`` is written as its exact fixed-point
  text (``999999.999999``, never ``1E+6``); datetimes as ISO 8601.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adtrack.services.exact_json import dumps


class ApiJSONResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        return dumps(content)


class DecimalJSONRequest(Request):
    async def json(self) -> object:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, parse_float=Decimal, parse_constant=Decimal)
            except json.JSONDecodeError:
                raise
            except (ValueError, RecursionError) as exc:
                # Bad UTF-8, absurdly long integers, deep nesting: malformed JSON all the same,
                # reported as such rather than as a server error.
                raise json.JSONDecodeError(str(exc) or type(exc).__name__, "", 0) from exc
        return self._json


class DecimalJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[object, object, Response]]:
        handler = super().get_route_handler()

        async def decimal_json_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return decimal_json_handler
