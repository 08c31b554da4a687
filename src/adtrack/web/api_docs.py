"""``GET /docs``: Swagger UI for the OpenAPI spec, served entirely by adtrack.

FastAPI's built-in page loads Swagger UI from a CDN and starts it with an inline script; this
one uses the copy vendored under ``/static/swagger-ui/`` (see docs/console.md) and a script file,
so it works offline and under the same Content-Security-Policy as the console.
"""

from __future__ import annotations

import html

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["add_api_docs"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API</title>
<link rel="icon" type="image/png" href="/static/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-ui/init.js"></script>
</body>
</html>
"""


def add_api_docs(app: FastAPI, path: str = "/docs") -> None:
    """Serve the Swagger UI page at ``path`` (the app must be made with ``docs_url=None``)."""
    page = _PAGE.format(
        title=html.escape(app.title), openapi_url=html.escape(app.openapi_url or "", quote=True)
    )

    async def swagger_ui(_request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    app.add_route(path, swagger_ui, methods=["GET"], include_in_schema=False)
