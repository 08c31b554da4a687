"""File answers the API and the console both give: report downloads and streamed feeds."""

from __future__ import annotations

from fastapi.responses import Response, StreamingResponse

from adtrack.domain.errors import ValidationError
from adtrack.reporting import formats
from adtrack.reporting.feed_stream import stream_feed
from adtrack.reporting.feeds import FeedFormat, FeedKind, FeedRequest
from adtrack.reporting.results import Report
from adtrack.services.ports import RawEventReader

__all__ = ["XLSX_TYPE", "check_format", "feed_response", "report_response"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    """The requested ``format`` in lower case (the first of ``allowed`` when empty)."""
    value = (fmt or allowed[0]).lower()
    if value not in allowed:
        raise ValidationError("format", f"must be one of {', '.join(allowed)}")
    return value


def report_response(report: Report, fmt: str, filename: str) -> Response:
    """``report`` as ``fmt`` (``json``, ``csv`` or ``xlsx``); CSV and XLSX as an attachment
    named ``<filename>.<fmt>``."""
    if fmt == "csv":
        return Response(
            formats.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            formats.to_xlsx(report),
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
        )
    return Response(formats.to_json(report), media_type="application/json")


def feed_response(
    raw_events: RawEventReader, feed_request: FeedRequest, feed_format: FeedFormat
) -> StreamingResponse:
    """The feed streamed as an attachment named after its kind and start
    (``click-trackers-20260309T000000Z.csv``)."""
    kind, start = feed_request.kind, f"{feed_request.start:%Y%m%dT%H%M%SZ}"
    name = "conversions" if kind is FeedKind.CONVERSION else f"{kind.value}-trackers"
    filename = f"{name}-{start}.{feed_format.value}"
    return StreamingResponse(
        stream_feed(raw_events, feed_request, feed_format),
        media_type=feed_format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
