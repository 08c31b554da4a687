"""``GET /api/v1/reports/summary``: tracked totals from the hourly rollups (any role).

Query parameters: ``start`` and ``end`` (a date ``YYYY-MM-DD`` or an ISO 8601 datetime; without
an offset, UTC), ``group_by`` (comma-separated and/or repeated: imp_type, tracker, advertiser,
line_item, publisher, placement, payment_rule, hour, day), and optional filters
``imp_type``, ``tracker_id``, ``advertiser_id``, ``line_item_id``, ``publisher_id``,
``placement_id``, ``payment_rule_id`` (ids, comma-separated and/or repeated).

Answer: ``{"start", "end", "group_by", "rows": [...], "totals": {imps, clicks, invalid_imps,
invalid_clicks, media_cost, booked_revenue}}``, money as decimal strings in currency units.
See ``services/reports.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from adtrack.domain.errors import ValidationError
from adtrack.services import reports
from adtrack.web.api.deps import read_access
from adtrack.web.api.jsonio import ApiJSONResponse

__all__ = ["router"]

router = APIRouter(tags=["reports"], default_response_class=ApiJSONResponse)

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILTER_PARAMS = {
    "imp_type": "imp_type",
    "tracker_id": "tracker",
    "advertiser_id": "advertiser",
    "line_item_id": "line_item",
    "publisher_id": "publisher",
    "placement_id": "placement",
    "payment_rule_id": "payment_rule",
}
_ID_LIST = Annotated[list[str] | None, Query()]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _instant(value: str | None, field: str) -> datetime | date:
    if value is None or not value.strip():
        raise ValidationError(field, "is required: a date (YYYY-MM-DD) or an ISO 8601 datetime")
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValidationError(
            field, "must be a date (YYYY-MM-DD) or an ISO 8601 datetime (YYYY-MM-DDTHH:MM:SSZ)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _ids(values: list[str] | None, field: str) -> list[int]:
    ids: list[int] = []
    for part in _split(values):
        if not part.isdigit() or len(part) > 18:
            raise ValidationError(field, f"{part!r} is not an id (a whole number)")
        ids.append(int(part))
    return ids


@router.get(
    "/reports/summary",
    summary="Totals of impressions, clicks, invalid traffic, media cost and booked revenue",
    dependencies=[Depends(read_access)],
)
async def get_summary(
    engine: Annotated[Engine, Depends(_engine)],
    start: Annotated[str | None, Query(description="YYYY-MM-DD or ISO 8601; UTC")] = None,
    end: Annotated[str | None, Query(description="exclusive; rounded up to the hour")] = None,
    group_by: Annotated[list[str] | None, Query(description="comma-separated")] = None,
    imp_type: _ID_LIST = None,
    tracker_id: _ID_LIST = None,
    advertiser_id: _ID_LIST = None,
    line_item_id: _ID_LIST = None,
    publisher_id: _ID_LIST = None,
    placement_id: _ID_LIST = None,
    payment_rule_id: _ID_LIST = None,
) -> dict[str, Any]:
    given = {
        "imp_type": imp_type,
        "tracker_id": tracker_id,
        "advertiser_id": advertiser_id,
        "line_item_id": line_item_id,
        "publisher_id": publisher_id,
        "placement_id": placement_id,
        "payment_rule_id": payment_rule_id,
    }
    filters = {
        _FILTER_PARAMS[param]: _ids(values, param)
        for param, values in given.items()
        if values is not None
    }
    start_at = _instant(start, "start")
    end_at = _instant(end, "end")
    result: dict[str, Any] = await run_in_threadpool(
        reports.summary, engine, start_at, end_at, _split(group_by), filters
    )
    return result
