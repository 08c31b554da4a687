"""``GET /api/v1/reports/summary``: tracked totals from the hourly rollups (any role).

Query parameters: ``start`` and ``end`` (a date ``YYYY-MM-DD`` or an ISO 8601 datetime; without
an offset, UTC), ``group_by`` (comma-separated and/or repeated: imp_type, tracker, advertiser,
line_item, publisher, placement, payment_rule, country, device_type, os, browser, hour, day),
and optional filters ``imp_type``, ``tracker_id``, ``advertiser_id``, ``line_item_id``,
``publisher_id``, ``placement_id``, ``payment_rule_id`` (ids, comma-separated and/or
repeated), ``country``, ``device_type``, ``os``, ``browser`` (texts; ``Unknown`` for none).

Answer: ``{"start", "end", "group_by", "rows": [...], "totals": {imps, clicks, invalid_imps,
invalid_clicks, media_cost, booked_revenue}}``, money as decimal strings in currency units.
See ``reporting/summary.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from adtrack.domain.parsing import parse_id_list, parse_local_datetime
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.summary import summary
from adtrack.web.api.deps import read_access
from adtrack.web.api.jsonio import ApiJSONResponse
from adtrack.web.state import services

__all__ = ["router"]

router = APIRouter(tags=["reports"], default_response_class=ApiJSONResponse)

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
_TEXT_LIST = Annotated[
    list[str] | None, Query(description="comma-separated; Unknown for none (docs/reporting.md)")
]


def _reports(request: Request) -> ReportEngine:
    return services(request).reports


def _instant(value: str | None, field: str) -> datetime:
    return parse_local_datetime(value, field, tz=UTC)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@router.get(
    "/reports/summary",
    summary="Totals of impressions, clicks, invalid traffic, media cost and booked revenue",
    dependencies=[Depends(read_access)],
)
async def get_summary(
    reports: Annotated[ReportEngine, Depends(_reports)],
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
    country: _TEXT_LIST = None,
    device_type: _TEXT_LIST = None,
    os: _TEXT_LIST = None,
    browser: _TEXT_LIST = None,
) -> dict[str, object]:
    given = {
        "imp_type": imp_type,
        "tracker_id": tracker_id,
        "advertiser_id": advertiser_id,
        "line_item_id": line_item_id,
        "publisher_id": publisher_id,
        "placement_id": placement_id,
        "payment_rule_id": payment_rule_id,
    }
    filters: dict[str, list[int | str]] = {
        _FILTER_PARAMS[param]: list(parse_id_list(values, param, low=0))
        for param, values in given.items()
        if values is not None
    }
    audience = {"country": country, "device_type": device_type, "os": os, "browser": browser}
    # Texts are checked by the summary (the dimension's own check).
    filters.update({name: list(values) for name, values in audience.items() if values})
    start_at = _instant(start, "start")
    end_at = _instant(end, "end")
    result: dict[str, object] = await run_in_threadpool(
        summary, reports, start_at, end_at, _split(group_by), filters
    )
    return result
