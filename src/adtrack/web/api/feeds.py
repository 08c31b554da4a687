"""``GET /api/v1/feeds/click-trackers``, ``/api/v1/feeds/impression-trackers`` and
``/api/v1/feeds/conversions``: one row per event (``reporting/conversion_feed.py`` for the
conversions' columns), ``start``/``end`` at most 24 hours apart and within the raw-event
retention, streamed as ``format=csv`` (default) or ``jsonl`` (``reporting/feeds.py``). Any
signed-in role (no token -> 401).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from adtrack.reporting.feeds import FeedFormat, FeedKind
from adtrack.services.ports import User
from adtrack.web.api.deps import authenticated
from adtrack.web.downloads import check_format, feed_response
from adtrack.web.state import services

__all__ = ["router"]

router = APIRouter(tags=["reports"])  # included under /api/v1

Caller = Annotated[User, Depends(authenticated)]

FeedStart = Annotated[str | None, Query(description="date or datetime (at most 24 h window)")]
FeedEnd = Annotated[str | None, Query(description="exclusive; at most 24 hours after start")]
FeedTz = Annotated[str | None, Query(description="zone of times without an offset")]
FeedFmt = Annotated[str, Query(description="csv or jsonl")]


def _feed_endpoint(kind: FeedKind) -> Callable[..., StreamingResponse]:
    """``GET /feeds/<kind>-trackers``: the feed of one kind of event."""

    def feed(
        request: Request,
        _user: Caller,
        start: FeedStart = None,
        end: FeedEnd = None,
        timezone: FeedTz = None,
        format: FeedFmt = "csv",
    ) -> StreamingResponse:
        feed_format = FeedFormat(check_format(format, ("csv", "jsonl")))
        # Validate before streaming starts, so a bad window is a 422 and not a broken stream.
        feed_request = services(request).feed_rules.request(kind, start, end, timezone)
        return feed_response(services(request).raw_events, feed_request, feed_format)

    # the OpenAPI operation id
    feed.__name__ = (
        "conversion_feed" if kind is FeedKind.CONVERSION else f"{kind.value}_tracker_feed"
    )
    return feed


router.add_api_route(
    "/feeds/click-trackers",
    _feed_endpoint(FeedKind.CLICK),
    methods=["GET"],
    summary="Click-tracker feed: one row per click",
)
router.add_api_route(
    "/feeds/impression-trackers",
    _feed_endpoint(FeedKind.IMPRESSION),
    methods=["GET"],
    summary="Impression-tracker feed: one row per imp",
)
router.add_api_route(
    "/feeds/conversions",
    _feed_endpoint(FeedKind.CONVERSION),
    methods=["GET"],
    summary="Conversions feed: one row per conversion, with its click and the delay",
)
